"""Hypothesis throws malformed bodies, headers and call sequences at the master's /api/v1/scheduler and
an agent's /api/v1/executor; nothing may answer 5xx (except 501 for UNKNOWN), and afterwards a
well-behaved pymesos framework is still served end to end."""

from __future__ import annotations

import base64
import http.client
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.local.conftest import (
    RecordingScheduler,
    command_task,
    framework_info,
    make_cluster,
    subscribe_body,
)
from tests.local.test_conformance_wire import Session

CALL_TYPES = [
    "SUBSCRIBE",
    "TEARDOWN",
    "ACCEPT",
    "DECLINE",
    "ACCEPT_INVERSE_OFFERS",
    "DECLINE_INVERSE_OFFERS",
    "REVIVE",
    "KILL",
    "SHUTDOWN",
    "ACKNOWLEDGE",
    "ACKNOWLEDGE_OPERATION_STATUS",
    "RECONCILE",
    "RECONCILE_OPERATIONS",
    "MESSAGE",
    "REQUEST",
    "SUPPRESS",
    "UPDATE_FRAMEWORK",
    "UNKNOWN",
    "BOGUS",
]
OK_CODES = {200, 202, 307, 400, 403, 404, 405, 406, 415, 501}

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=12)
)
json_value = st.recursive(
    json_leaf,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
ids = st.one_of(st.fixed_dictionaries({"value": st.text(max_size=10)}), json_value)
b64 = st.one_of(st.binary(max_size=20).map(lambda b: base64.b64encode(b).decode()), st.text(max_size=10))


def payload(kind: str) -> st.SearchStrategy[Any]:
    resources = st.lists(
        st.fixed_dictionaries(
            {
                "name": st.sampled_from(["cpus", "mem", "gpus", "ports", "disk", "x"]),
                "type": st.sampled_from(["SCALAR", "RANGES", "SET", "TEXT", "NOPE"]),
                "scalar": st.fixed_dictionaries(
                    {"value": st.one_of(st.floats(allow_nan=False), st.text(max_size=3))}
                ),
            }
        ),
        max_size=3,
    )
    task = st.fixed_dictionaries(
        {"name": st.text(max_size=5), "task_id": ids, "agent_id": ids, "resources": resources},
        optional={
            "command": st.fixed_dictionaries({"value": st.text(max_size=8)}),
            "executor": st.fixed_dictionaries({"executor_id": ids}, optional={"type": st.text(max_size=8)}),
        },
    )
    operation = st.fixed_dictionaries(
        {"type": st.sampled_from(["LAUNCH", "LAUNCH_GROUP", "RESERVE", "X"])},
        optional={
            "launch": st.fixed_dictionaries({"task_infos": st.lists(task, max_size=2)}),
            "launch_group": st.fixed_dictionaries(
                {
                    "executor": json_value,
                    "task_group": st.fixed_dictionaries({"tasks": st.lists(task, max_size=2)}),
                }
            ),
            "id": ids,
        },
    )
    shapes: dict[str, st.SearchStrategy[Any]] = {
        "accept": st.fixed_dictionaries(
            {"offer_ids": st.lists(ids, max_size=3), "operations": st.lists(operation, max_size=2)},
            optional={
                "filters": st.fixed_dictionaries(
                    {"refuse_seconds": st.one_of(st.floats(), st.text(max_size=4))}
                )
            },
        ),
        "decline": st.fixed_dictionaries({"offer_ids": st.lists(ids, max_size=3)}),
        "kill": st.fixed_dictionaries(
            {"task_id": ids}, optional={"agent_id": ids, "kill_policy": json_value}
        ),
        "shutdown": st.fixed_dictionaries({"executor_id": ids, "agent_id": ids}),
        "acknowledge": st.fixed_dictionaries({"agent_id": ids, "task_id": ids, "uuid": b64}),
        "reconcile": st.fixed_dictionaries(
            {"tasks": st.lists(st.fixed_dictionaries({"task_id": ids}), max_size=3)}
        ),
        "message": st.fixed_dictionaries({"agent_id": ids, "executor_id": ids, "data": b64}),
        "subscribe": st.fixed_dictionaries(
            {
                "framework_info": st.one_of(
                    json_value,
                    st.fixed_dictionaries(
                        {"user": st.text(max_size=4), "name": st.text(max_size=4)},
                        optional={
                            "roles": json_value,
                            "capabilities": json_value,
                            "failover_timeout": json_value,
                        },
                    ),
                )
            }
        ),
        "update_framework": st.fixed_dictionaries({"framework_info": json_value}),
    }
    return shapes.get(kind.lower(), json_value)


@st.composite
def scheduler_calls(draw: Any, framework_id: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(CALL_TYPES))
    call: dict[str, Any] = {"type": kind}
    if draw(st.booleans()):
        call["framework_id"] = {"value": framework_id} if draw(st.booleans()) else draw(ids)
    if draw(st.integers(0, 4)):
        call[kind.lower()] = draw(payload(kind))
    if draw(st.integers(0, 5)) == 0:
        call[draw(st.text(max_size=6))] = draw(json_value)
    return call


@st.composite
def requests(draw: Any, framework_id: str, stream_id: str) -> tuple[str, bytes, dict[str, str]]:
    method = draw(st.sampled_from(["POST"] * 8 + ["GET", "PUT", "DELETE"]))
    if draw(st.integers(0, 6)) == 0:
        body = draw(st.binary(max_size=64))
    else:
        body = json.dumps(draw(scheduler_calls(framework_id))).encode()
    headers = {}
    content_type = draw(
        st.sampled_from(
            [
                "application/json",
                "application/json; charset=utf-8",
                None,
                "application/x-protobuf",
                "text/plain",
                "application/jsonx",
            ]
        )
    )
    if content_type:
        headers["Content-Type"] = content_type
    if draw(st.booleans()):
        headers["Mesos-Stream-Id"] = (
            stream_id if draw(st.booleans()) else draw(st.text("abc-0123", max_size=12))
        )
    if draw(st.booleans()):
        headers["Accept"] = draw(
            st.sampled_from(["application/json", "text/html", "*/*", "application/x-protobuf"])
        )
    return method, body, headers


def send(address: str, path: str, method: str, body: bytes, headers: dict[str, str]) -> int:
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body=body if method != "GET" else None, headers=headers)
        response = conn.getresponse()
        if response.status != 200:  # a 200 on SUBSCRIBE is an endless stream: only its status matters
            response.read()
        return response.status
    finally:
        conn.close()


def well_behaved_framework_is_served(cluster: Any) -> None:
    import pymesos

    recorder = RecordingScheduler()
    driver = pymesos.MesosSchedulerDriver(recorder, framework_info(name="after-fuzz"), cluster.master_address)
    driver.start()
    try:
        recorder.wait_for("registered")
        offer = recorder.wait_for("offer")
        driver.launchTasks(offer["id"], [command_task(offer, "after-fuzz", cmd="true")])
        recorder.wait_state("after-fuzz", "TASK_FINISHED")
    finally:
        driver.stop()
        driver.join()


def test_fuzz_scheduler_api_never_fails_and_keeps_serving(tmp_path):
    with make_cluster(tmp_path, agents=1, offer_timeout=2.0) as cluster:
        session = Session(cluster.master_address, subscribe_body(failover_timeout=30.0))
        codes: list[int] = []
        try:

            @settings(
                max_examples=200,
                deadline=None,
                derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )
            @given(request=requests(session.framework_id, session.stream_id))
            def fuzz(request: tuple[str, bytes, dict[str, str]]) -> None:
                method, body, headers = request
                code = send(cluster.master_address, "/api/v1/scheduler", method, body, headers)
                codes.append(code)
                assert code in OK_CODES, (code, method, body[:200], headers)

            fuzz()
        finally:
            session.close()
        assert {202, 400} <= set(codes)  # the generator reached both accepted calls and rejections
        assert cluster.state()["activated_slaves"] == 1
        well_behaved_framework_is_served(cluster)


def test_fuzz_call_sequences_from_a_subscribed_framework(tmp_path):
    with make_cluster(tmp_path, agents=1) as cluster:
        session = Session(cluster.master_address, subscribe_body(failover_timeout=30.0))
        try:

            @settings(
                max_examples=60,
                deadline=None,
                derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )
            @given(calls=st.lists(scheduler_calls(session.framework_id), min_size=1, max_size=6))
            def fuzz(calls: list[dict[str, Any]]) -> None:
                for call in calls:
                    if call.get("type") in ("TEARDOWN", "SUBSCRIBE"):
                        continue  # keep this framework alive; those two are covered above
                    call["framework_id"] = {"value": session.framework_id}
                    status, text, _ = session.client.post(call)
                    assert status in OK_CODES, (status, text, call)

            fuzz()
            assert session.call("REVIVE")[0] == 202
        finally:
            session.close()
        well_behaved_framework_is_served(cluster)


def test_fuzz_executor_api_never_fails(tmp_path):
    with make_cluster(tmp_path, agents=1) as cluster:
        host, port = cluster.agents[0].endpoint()
        address = f"{host}:{port}"

        @settings(
            max_examples=120,
            deadline=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(
            method=st.sampled_from(["POST"] * 6 + ["GET", "PUT"]),
            body=st.one_of(
                st.binary(max_size=48),
                st.fixed_dictionaries(
                    {
                        "type": st.sampled_from(
                            ["SUBSCRIBE", "UPDATE", "MESSAGE", "HEARTBEAT", "UNKNOWN", "X"]
                        )
                    },
                    optional={
                        "executor_id": ids,
                        "framework_id": ids,
                        "subscribe": json_value,
                        "update": st.fixed_dictionaries({"status": json_value}),
                        "message": st.fixed_dictionaries({"data": b64}),
                    },
                ).map(lambda d: json.dumps(d).encode()),
            ),
            content_type=st.sampled_from(["application/json", None, "text/plain"]),
        )
        def fuzz(method: str, body: bytes, content_type: str | None) -> None:
            headers = {"Content-Type": content_type} if content_type else {}
            code = send(address, "/api/v1/executor", method, body, headers)
            assert code in OK_CODES | {503}, (code, body[:200])

        fuzz()
        well_behaved_framework_is_served(cluster)
