"""Fidelity checklist items proved on the wire: raw HTTP and hand-parsed RecordIO against LocalCluster
(mesos-protocol.md section 3; each test names the item it proves)."""

from __future__ import annotations

import base64
import ipaddress
import itertools
import json
import re
import socket
import time
import uuid
from typing import Any

import pytest

from mesos_gpu.local import protocol as p
from mesos_gpu.local import protojson
from tests.local.conftest import CallClient, RawStream, get_json, subscribe_body

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class Session:
    """A raw framework: its SUBSCRIBE stream and a keep-alive call connection with its stream id."""

    def __init__(self, address: str, body: dict[str, Any] | None = None) -> None:
        self.address = address
        self.stream = RawStream(address, body or subscribe_body())
        assert self.stream.status == 200, self.stream.body_text()
        self.subscribed = self.stream.next_event()
        assert self.subscribed["type"] == "SUBSCRIBED"
        self.framework_id = self.subscribed["subscribed"]["framework_id"]["value"]
        self.stream_id = self.stream.headers["mesos-stream-id"]
        self.client = CallClient(address, self.stream_id)
        self.events: list[dict[str, Any]] = [self.subscribed]

    def call(
        self, kind: str, payload: dict[str, Any] | None = None, key: str | None = None
    ) -> tuple[int, str]:
        body: dict[str, Any] = {"type": kind, "framework_id": {"value": self.framework_id}}
        if payload is not None:
            body[key or kind.lower()] = payload
        status, text, _ = self.client.post(body)
        return status, text

    def next(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            event = self.stream.next_event(max(0.01, deadline - time.monotonic()))
            self.events.append(event)
            if event["type"] == kind:
                return event

    def offers(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        return self.next("OFFERS", timeout)["offers"]["offers"]

    def update(self, task_id: str, state: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.next("UPDATE", max(0.01, deadline - time.monotonic()))["update"]["status"]
            if status["task_id"]["value"] == task_id and (state is None or status["state"] == state):
                return status

    def ack(self, status: dict[str, Any]) -> None:
        code, _ = self.call(
            "ACKNOWLEDGE",
            {"agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": status["uuid"]},
        )
        assert code == 202

    def no_event(self, kind: str, seconds: float) -> bool:
        """True when no `kind` event arrives within `seconds` (other events are kept)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                event = self.stream.next_event(max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                return True
            self.events.append(event)
            if event["type"] == kind:
                return False
        return True

    def close(self) -> None:
        self.stream.close()
        self.client.close()


@pytest.fixture
def sessions(cluster):
    opened: list[Session] = []

    def open_session(body: dict[str, Any] | None = None, address: str | None = None) -> Session:
        session = Session(address or cluster.master_address, body)
        opened.append(session)
        return session

    yield open_session
    for session in opened:
        session.close()


def task(offer: dict[str, Any], task_id: str, cmd: str = "sleep 30", **resources: float) -> dict[str, Any]:
    amounts = {"cpus": 0.1, "mem": 32.0, **resources}
    return {
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": offer["agent_id"],
        "resources": [{"name": n, "type": "SCALAR", "scalar": {"value": v}} for n, v in amounts.items() if v],
        "command": {"value": cmd},
    }


def launch(session: Session, offers: list[dict[str, Any]], tasks: list[dict[str, Any]], **accept: Any) -> int:
    code, _ = session.call(
        "ACCEPT",
        {
            "offer_ids": [o["id"] for o in offers],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
            **accept,
        },
    )
    return code


# ---------------------------------------------------------------------------------------------------
# Discovery, endpoints, HTTP framing


def test_item_01_version_endpoint_is_numeric_1_11_0(cluster):
    status, body, headers = get_json(cluster.master_address, "/version")
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    assert body["version"] == "1.11.0"
    assert re.fullmatch(r"\d+\.\d+\.\d+", body["version"])
    assert {"build_date", "build_time", "build_user", "git_sha"} <= set(body)


def test_item_02_advertised_addresses_carry_a_port(cluster, sessions):
    session = sessions()
    info = session.subscribed["subscribed"]["master_info"]
    assert info["address"]["port"] == int(cluster.master_address.split(":")[1])
    assert info["pid"].endswith(f":{info['port']}")
    for offer in session.offers():
        assert isinstance(offer["url"]["address"]["port"], int) and offer["url"]["address"]["port"] > 0


def test_item_03_subscribe_streams_chunked_with_stream_id_despite_connection_close(cluster, raw_subscribe):
    stream = raw_subscribe(cluster.master_address)  # the request says `Connection: close`, like pymesos
    assert stream.status == 200
    assert stream.headers["content-type"] == "application/json"
    assert stream.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in stream.headers
    stream_id = stream.headers["mesos-stream-id"]
    assert UUID_RE.match(stream_id) and len(stream_id) <= 128
    heartbeats = 0
    deadline = time.monotonic() + 5
    while heartbeats < 3 and time.monotonic() < deadline:  # still open after several intervals
        heartbeats += stream.next_event()["type"] == "HEARTBEAT"
    assert heartbeats == 3


def test_item_04_records_are_recordio_framed_inside_chunks(cluster, raw_subscribe):
    stream = raw_subscribe(cluster.master_address)
    for _ in range(4):
        stream.next_event()
    data = b"".join(stream.chunks)
    records = 0
    while data:
        match = re.match(rb"(\d+)\n", data)
        assert match, data[:40]
        length = int(match.group(1))
        assert length > 0
        json.loads(data[match.end() : match.end() + length])
        data = data[match.end() + length :]
        records += 1
    assert records >= 4
    # the decoder used by clients accepts records split across chunks and several in one chunk
    blob = p.encode_record({"type": "HEARTBEAT"}) + p.encode_record(
        {"type": "ERROR", "error": {"message": "x"}}
    )
    decoder = p.RecordIODecoder()
    parts = [decoder.feed(blob[i : i + 3]) for i in range(0, len(blob), 3)]
    assert [r for part in parts for r in part] == [
        {"type": "HEARTBEAT"},
        {"type": "ERROR", "error": {"message": "x"}},
    ]
    assert p.RecordIODecoder().feed(blob) == [
        {"type": "HEARTBEAT"},
        {"type": "ERROR", "error": {"message": "x"}},
    ]


def test_item_05_subscribed_first_then_heartbeat_then_every_interval(cluster, raw_subscribe):
    stream = raw_subscribe(cluster.master_address)
    first = stream.next_event()
    assert first["type"] == "SUBSCRIBED"
    subscribed = first["subscribed"]
    assert subscribed["heartbeat_interval_seconds"] == 0.5
    assert {"id", "ip", "port"} <= set(subscribed["master_info"])
    assert stream.next_event()["type"] == "HEARTBEAT"
    times = []
    while len(times) < 3:
        if stream.next_event()["type"] == "HEARTBEAT":
            times.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.3 < gap < 0.9 for gap in gaps), gaps
    assert p.DEFAULT_HEARTBEAT_INTERVAL == 15.0


def test_item_06_calls_get_202_empty_on_one_keepalive_connection(cluster, sessions):
    session = sessions()
    host, port = cluster.master_address.split(":")
    socket.create_connection((host, int(port))).close()  # an idle connection closed without a request
    for _ in range(5):
        status, text, headers = session.client.post(
            {"type": "REVIVE", "framework_id": {"value": session.framework_id}}
        )
        assert (status, text, headers["content-length"]) == (202, "", "0")
        assert headers.get("connection", "keep-alive").lower() != "close"


def _bad(
    cluster, body: Any, headers: dict[str, str | None] | None = None, method: str = "POST"
) -> tuple[int, str]:
    client = CallClient(cluster.master_address)
    try:
        status, text, _ = client.post(body, headers, method=method)
        return status, text
    finally:
        client.close()


def test_item_07_error_codes_and_texts(cluster, sessions):
    fid = {"value": "unknown-framework"}
    assert _bad(cluster, {"type": "REVIVE", "framework_id": fid}, {"Content-Type": None}) == (
        400,
        "Expecting 'Content-Type' to be present",
    )
    status, text = _bad(cluster, b"{not json", {})
    assert status == 400 and text.startswith("Failed to parse body into JSON: ")
    status, text = _bad(cluster, {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"name": "x"}}})
    assert (status, text) == (
        400,
        "Failed to convert JSON into Call protobuf: Missing required fields: subscribe.framework_info.user",
    )
    assert _bad(cluster, {"type": "REVIVE"}) == (
        400,
        "Failed to validate scheduler::Call: Expecting 'framework_id' to be present",
    )
    assert _bad(cluster, {"type": "KILL", "framework_id": fid}) == (
        400,
        "Failed to validate scheduler::Call: Expecting 'kill' to be present",
    )
    assert _bad(cluster, {"type": "REVIVE", "framework_id": fid}) == (400, "Framework cannot be found")
    assert _bad(cluster, {"type": "REVIVE"}, method="GET")[0] == 405
    assert _bad(cluster, b"x", {"Content-Type": "text/plain"}) == (
        415,
        "Expecting 'Content-Type' of application/json or application/x-protobuf",
    )
    assert _bad(cluster, subscribe_body(), {"Accept": "text/html"}) == (
        406,
        "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'",
    )
    assert _bad(cluster, subscribe_body(), {"Mesos-Stream-Id": "x"}) == (
        400,
        "Subscribe calls should not include the 'Mesos-Stream-Id' header",
    )
    session = sessions(subscribe_body(failover_timeout=5.0))
    mine = {"value": session.framework_id}
    assert _bad(cluster, {"type": "REVIVE", "framework_id": mine}) == (
        400,
        "All non-subscribe calls should include the 'Mesos-Stream-Id' header",
    )
    assert _bad(cluster, {"type": "REVIVE", "framework_id": mine}, {"Mesos-Stream-Id": "bogus"}) == (
        400,
        "The stream ID 'bogus' included in this request didn't match the stream ID currently associated "
        f"with framework ID {session.framework_id}",
    )
    assert session.call("UNKNOWN")[0] == 501
    session.stream.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and session.call("REVIVE")[0] != 403:
        time.sleep(0.05)
    assert session.call("REVIVE") == (403, "Framework is not subscribed")


def test_item_07_standby_answers_307_with_protocol_relative_location(cluster):
    cluster.call(cluster.master.set_standby, "10.1.2.3:5050")
    stream = RawStream(cluster.master_address)
    try:
        assert stream.status == 307
        assert stream.headers["location"] == "//10.1.2.3:5050/api/v1/scheduler"
    finally:
        stream.close()
    cluster.call(cluster.master.set_standby, None)
    started = time.monotonic()
    assert _bad(cluster, subscribe_body()) == (503, "No leader elected")
    assert time.monotonic() - started >= 0.4  # answered slowly: pymesos retries 503 without delay (item 48)


def test_item_07_standby_asks_zookeeper_before_it_redirects(cluster):
    """A framework may see the leader's node vanish before this master's watch fires: the standby
    reads who leads now and does not send the framework back to the old leader."""
    master = cluster.master
    verdicts: list[tuple[str | None, bool] | None] = [("10.9.9.9:5050", False)]

    def probe() -> tuple[str | None, bool] | None:
        return verdicts[0]

    cluster.call(master.set_standby, "10.1.2.3:5050")      # the watch's stale view: the old leader
    cluster.call(setattr, master, "leader_probe", probe)
    try:
        stream = RawStream(cluster.master_address)
        try:
            assert stream.status == 307
            assert stream.headers["location"] == "//10.9.9.9:5050/api/v1/scheduler"
        finally:
            stream.close()
        verdicts[0] = None                                  # ZooKeeper unreadable: keep the watch's view
        stream = RawStream(cluster.master_address)
        try:
            assert stream.headers["location"] == "//10.9.9.9:5050/api/v1/scheduler"
        finally:
            stream.close()
        verdicts[0] = (None, True)                          # this master leads now: it serves
        stream = RawStream(cluster.master_address)
        try:
            assert stream.status == 200
        finally:
            stream.close()
        assert cluster.call(lambda: master.is_leader)
    finally:
        cluster.call(setattr, master, "leader_probe", None)
        cluster.call(master.set_leader)


def test_item_08_json_parsed_like_mesos(cluster, sessions, cluster_factory):
    body = subscribe_body()
    body["subscribe"]["framework_info"]["typo_field"] = 1  # unknown keys are ignored
    body["unknown_top"] = {"x": 1}
    session = sessions(body)
    assert session.framework_id
    status, text = session.call(
        "MESSAGE", {"agent_id": {"value": "a"}, "executor_id": {"value": "e"}, "data": "@@"}
    )
    assert status == 400 and "base64" in text
    status, text = session.call("KILL", {"task_id": {"value": 5}})
    assert status == 400 and text.startswith(
        "Failed to convert JSON into Call protobuf: Not expecting a JSON number"
    )
    status, text = session.call("KILL", {"task_id": {}})
    assert (status, text) == (
        400,
        "Failed to convert JSON into Call protobuf: Missing required fields: kill.task_id.value",
    )
    strict = cluster_factory(agents=0, strict=True)
    status, text = _bad(strict, body)
    assert status == 400 and "Unknown field" in text


def test_item_09_framework_id_must_match_and_stream_id_enforced(cluster, sessions):
    body = subscribe_body("a-framework")
    body["framework_id"] = {"value": "another"}
    assert _bad(cluster, body) == (
        400,
        "Failed to validate scheduler::Call: 'framework_id' differs from 'subscribe.framework_info.id'",
    )
    session = sessions()
    other = sessions()
    client = CallClient(cluster.master_address, other.stream_id)  # a stream id of another framework
    status, text, _ = client.post({"type": "REVIVE", "framework_id": {"value": session.framework_id}})
    client.close()
    assert status == 400 and "didn't match the stream ID" in text


def test_item_10_calls_answered_while_megabytes_of_events_are_unread(cluster, sessions):
    session = sessions()  # never reads its stream while we queue events
    framework = cluster.call(lambda: cluster.master.frameworks[session.framework_id])
    big = {
        "type": "MESSAGE",
        "message": {
            "agent_id": {"value": "a"},
            "executor_id": {"value": "e"},
            "data": base64.b64encode(b"x" * 65536).decode(),
        },
    }
    for _ in range(40):  # ~3.5 MB queued on the subscription socket
        cluster.call(cluster.master.send, framework, big)
    started = time.monotonic()
    assert session.call("REVIVE")[0] == 202
    assert time.monotonic() - started < 1.0


# ---------------------------------------------------------------------------------------------------
# Event shapes


def test_item_11_offers_and_error_event_shapes(cluster, sessions):
    session = sessions()
    event = session.next("OFFERS")
    assert isinstance(event["offers"], dict) and isinstance(event["offers"]["offers"], list)
    second = Session(cluster.master_address, subscribe_body(session.framework_id))
    try:
        error = session.next("ERROR")
        assert error == {"type": "ERROR", "error": {"message": "Framework failed over"}}
    finally:
        second.close()


def test_item_12_offer_fields_and_role_format(cluster, sessions):
    session = sessions()
    for offer in session.offers():
        assert {
            "id",
            "framework_id",
            "agent_id",
            "hostname",
            "url",
            "resources",
            "attributes",
            "executor_ids",
        } <= set(offer)
        assert offer["url"]["scheme"] == "http" and offer["url"]["path"] == "/slave(1)"
        assert "allocation_info" not in offer
        assert all(r["role"] == "*" and "allocation_info" not in r for r in offer["resources"])
    multi = sessions(
        subscribe_body(capabilities=[{"type": "GPU_RESOURCES"}, {"type": "MULTI_ROLE"}], roles=["tf"])
    )
    session.call("TEARDOWN")
    for offer in multi.offers():
        assert offer["allocation_info"] == {"role": "tf"}
        assert all(r["allocation_info"] == {"role": "tf"} and r["role"] == "*" for r in offer["resources"])


def test_item_13_resource_types_and_one_offer_per_agent_per_event(cluster, sessions):
    session = sessions()
    offers = session.offers()
    agents = [o["agent_id"]["value"] for o in offers]
    assert len(agents) == len(set(agents)) == 2
    for offer in offers:
        kinds = {r["name"]: r["type"] for r in offer["resources"]}
        assert kinds == {
            "cpus": "SCALAR",
            "mem": "SCALAR",
            "disk": "SCALAR",
            "gpus": "SCALAR",
            "ports": "RANGES",
        }
        gpus = next(r for r in offer["resources"] if r["name"] == "gpus")["scalar"]["value"]
        assert gpus == int(gpus) == 2


def test_item_14_failure_events_carry_agent_id_and_status(cluster, sessions):
    session = sessions()
    agent_id = session.offers()[0]["agent_id"]["value"]
    cluster.call(cluster.master.executor_exited, agent_id, session.framework_id, "exec-1", 256)
    failure = session.next("FAILURE")["failure"]
    assert failure == {"agent_id": {"value": agent_id}, "executor_id": {"value": "exec-1"}, "status": 256}
    cluster.kill_agent(1)
    lost = session.next("FAILURE")["failure"]
    assert set(lost) == {"agent_id"}


def test_item_15_update_fields_from_agent_and_from_master(cluster, sessions):
    session = sessions()
    offer = session.offers()[0]
    assert launch(session, [offer], [task(offer, "t-ok", "true")]) == 202
    status = session.update("t-ok")
    assert {"agent_id", "task_id", "state", "source", "timestamp", "uuid"} <= set(status)
    assert status["source"] in ("SOURCE_EXECUTOR", "SOURCE_AGENT")
    assert isinstance(status["timestamp"], float)
    assert len(base64.b64decode(status["uuid"])) == 16
    assert session.call("RECONCILE", {"tasks": [{"task_id": {"value": "never-there"}}]})[0] == 202
    generated = session.update("never-there")
    assert generated["source"] == "SOURCE_MASTER" and "uuid" not in generated
    assert generated["reason"] == "REASON_RECONCILIATION" and generated["message"]


def test_item_16_every_emitted_event_validates_strictly(cluster, sessions):
    session = sessions()
    offers = session.offers()
    launch(session, [offers[0]], [task(offers[0], "s-1", "true"), task(offers[0], "s-1", "true")])
    status = session.update("s-1", "TASK_STARTING")
    session.ack(status)
    session.call("RECONCILE", {"tasks": []})
    session.next("UPDATE")
    session.call("KILL", {"task_id": {"value": "nope"}})
    session.update("nope")
    cluster.call(cluster.master.executor_exited, offers[0]["agent_id"]["value"], session.framework_id, "e", 9)
    session.next("FAILURE")
    session.call("DECLINE", {"offer_ids": [offers[1]["id"]], "filters": {"refuse_seconds": 0}})
    session.next("OFFERS")
    session.next("HEARTBEAT")
    kinds = {e["type"] for e in session.events}
    assert {"SUBSCRIBED", "OFFERS", "UPDATE", "FAILURE", "HEARTBEAT"} <= kinds
    for event in session.events:
        assert protojson.strict_errors(event, "scheduler.Event") == [], event


# ---------------------------------------------------------------------------------------------------
# Framework lifecycle


def test_item_17_id_formats(cluster, sessions):
    session = sessions()
    master_id = session.subscribed["subscribed"]["master_info"]["id"]
    assert UUID_RE.match(master_id)
    assert re.fullmatch(re.escape(master_id) + r"-\d{4}", session.framework_id)
    for offer in session.offers():
        assert re.fullmatch(re.escape(master_id) + r"-O\d+", offer["id"]["value"])
        assert re.fullmatch(re.escape(master_id) + r"-S\d+", offer["agent_id"]["value"])


def test_item_18_failover_errors_old_stream_and_reoffers_without_rescind(cluster, sessions):
    session = sessions()
    session.offers()
    new = sessions(subscribe_body(session.framework_id))
    assert new.framework_id == session.framework_id
    assert session.next("ERROR")["error"]["message"] == "Framework failed over"
    assert session.stream.closed_by_server(5)
    assert not any(e["type"] == "RESCIND" for e in session.events)
    assert len(new.offers()) == 2  # the old offers were discarded and everything is offered again


def test_item_19_unknown_id_is_recovered_and_removed_id_gets_error(cluster, sessions, raw_subscribe):
    recovered = sessions(subscribe_body("some-old-framework-id"))
    assert recovered.framework_id == "some-old-framework-id"
    assert recovered.call("TEARDOWN")[0] == 202
    stream = raw_subscribe(cluster.master_address, subscribe_body("some-old-framework-id"))
    assert stream.status == 200
    assert stream.next_event() == {"type": "ERROR", "error": {"message": "Framework has been removed"}}
    assert stream.closed_by_server(5)


def test_item_20_disconnect_then_failover_timeout_kills_tasks(cluster, sessions):
    session = sessions(subscribe_body(failover_timeout=1.0))
    offer = session.offers()[0]
    launch(session, [offer], [task(offer, "long", "sleep 30")])
    session.ack(session.update("long", "TASK_STARTING"))
    session.ack(session.update("long", "TASK_RUNNING"))
    session.stream.close()
    deadline = time.monotonic() + 5
    while session.call("REVIVE")[0] != 403 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert session.call("REVIVE") == (403, "Framework is not subscribed")
    state = cluster.state()
    framework = next(f for f in state["frameworks"] if f["id"] == session.framework_id)
    assert framework["offers"] == [] and not framework["connected"]
    assert framework["tasks"][0]["state"] == "TASK_RUNNING"  # still running inside the timeout
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and session.framework_id not in {
        f["id"] for f in cluster.state()["completed_frameworks"]
    }:
        time.sleep(0.05)
    assert session.framework_id in {f["id"] for f in cluster.state()["completed_frameworks"]}
    agent = (
        cluster.agents[0] if cluster.agents[0].agent_id == offer["agent_id"]["value"] else cluster.agents[1]
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and cluster.call(
        agent.latest_state, session.framework_id, "long"
    ) not in (None, "TASK_KILLED", "TASK_FAILED"):
        time.sleep(0.05)
    assert cluster.call(agent.latest_state, session.framework_id, "long") in (
        None,
        "TASK_KILLED",
        "TASK_FAILED",
    )


def test_item_20_resubscribe_within_timeout_keeps_tasks(cluster, sessions):
    session = sessions(subscribe_body(failover_timeout=30.0))
    offer = session.offers()[0]
    launch(session, [offer], [task(offer, "keep", "sleep 30")])
    session.ack(session.update("keep", "TASK_STARTING"))
    session.ack(session.update("keep", "TASK_RUNNING"))
    session.stream.close()
    time.sleep(0.3)
    again = sessions(subscribe_body(session.framework_id, failover_timeout=30.0))
    assert again.call("RECONCILE", {"tasks": []})[0] == 202
    assert again.update("keep")["state"] == "TASK_RUNNING"


def test_item_21_teardown_kills_everything_and_remembers_the_id(cluster, sessions):
    session = sessions()
    offer = session.offers()[0]
    launch(session, [offer], [task(offer, "doomed", "sleep 30")])
    session.ack(session.update("doomed", "TASK_STARTING"))
    assert session.call("TEARDOWN") == (202, "")
    assert session.stream.closed_by_server(5)
    state = cluster.state()
    assert session.framework_id in {f["id"] for f in state["completed_frameworks"]}
    assert all(s["used_resources"]["cpus"] == 0 for s in state["slaves"])


# ---------------------------------------------------------------------------------------------------
# Offers, ACCEPT, DECLINE, filters


def test_item_25_launch_updates_in_order_each_released_after_ack(cluster, sessions):
    session = sessions()
    offer = session.offers()[0]
    assert launch(session, [offer], [task(offer, "ordered", "sleep 0.2")]) == 202
    seen = []
    for state in ("TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"):
        status = session.update("ordered")
        assert status["state"] == state
        seen.append(status["uuid"])
        if state == "TASK_STARTING":
            # not acknowledged: the same update is retried and RUNNING is held back
            retried = session.update("ordered")
            assert retried["state"] == "TASK_STARTING" and retried["uuid"] == status["uuid"]
        session.ack(status)
    assert len(set(seen)) == 3


def test_item_26_invalid_offers_get_202_and_task_lost(cluster, sessions):
    session = sessions()
    offers = session.offers()
    fake = {"id": {"value": "no-such-offer"}, "agent_id": offers[0]["agent_id"]}
    assert launch(session, [fake], [task(fake, "lost-1")]) == 202
    status = session.update("lost-1")
    assert status["state"] == "TASK_LOST" and status["reason"] == "REASON_INVALID_OFFERS"
    assert status["source"] == "SOURCE_MASTER" and "uuid" not in status
    assert status["message"] == "Task launched with invalid offers: Offer no-such-offer is no longer valid"
    assert launch(session, [], [task(offers[0], "lost-2")]) == 202
    assert session.update("lost-2")["message"] == "Task launched with invalid offers: No offers specified"
    assert launch(session, [offers[0], offers[1]], [task(offers[0], "lost-3")]) == 202
    assert "Aggregated offers must belong to one single agent" in session.update("lost-3")["message"]
    code, _ = session.call("DECLINE", {"offer_ids": [{"value": "no-such-offer"}]})
    assert code == 202
    aware = sessions(subscribe_body(capabilities=[{"type": "GPU_RESOURCES"}, {"type": "PARTITION_AWARE"}]))
    assert launch(aware, [offers[0]], [task(offers[0], "dropped")]) == 202  # already used / foreign offer
    dropped = aware.update("dropped")
    assert dropped["state"] == "TASK_DROPPED" and dropped["reason"] == "REASON_INVALID_OFFERS"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.update(resources=[]), "Task uses no resources"),
        (
            lambda t: t["resources"].append({"name": "gpus", "type": "SCALAR", "scalar": {"value": 0.5}}),
            "Task uses invalid resources: Invalid 'gpus' resource: "
            "The 'gpus' resource must be an unsigned integer",
        ),
        (
            lambda t: t.update(executor={"executor_id": {"value": "e"}, "command": {"value": "x"}}),
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present",
        ),
        (
            lambda t: t.pop("command"),
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present",
        ),
        (
            lambda t: t["resources"].append({"name": "gpus", "type": "SCALAR", "scalar": {"value": 3}}),
            "Total resources cpus(allocated: *):0.1; mem(allocated: *):32; gpus(allocated: *):3 "
            "required by task and its executor is more than available",
        ),
        (
            lambda t: t.update(agent_id={"value": "elsewhere"}),
            "Task uses invalid agent elsewhere while agent",
        ),
    ],
)
def test_item_27_invalid_task_gets_task_error_and_others_still_launch(cluster, sessions, mutate, message):
    session = sessions()
    offer = session.offers()[0]
    bad = task(offer, "bad")
    mutate(bad)
    assert launch(session, [offer], [bad, task(offer, "good", "true")]) == 202
    error = session.update("bad")
    assert error["state"] == "TASK_ERROR" and error["reason"] == "REASON_TASK_INVALID"
    assert error["source"] == "SOURCE_MASTER" and "uuid" not in error
    assert error["message"].startswith(message), error["message"]
    assert session.update("good")["state"] == "TASK_STARTING"


def test_item_27_duplicate_task_id_and_launch_operation_id(cluster, sessions):
    session = sessions()
    offers = session.offers()
    launch(session, [offers[0]], [task(offers[0], "dup"), task(offers[0], "dup")])
    assert session.update("dup", "TASK_ERROR")["message"] == "Task has duplicate ID: dup"
    code, _ = session.call(
        "ACCEPT",
        {
            "offer_ids": [offers[1]["id"]],
            "operations": [
                {
                    "type": "LAUNCH",
                    "id": {"value": "op"},
                    "launch": {"task_infos": [task(offers[1], "with-id")]},
                }
            ],
        },
    )
    assert code == 202
    assert session.update("with-id")["message"] == "The `id` field cannot be set on LAUNCH operations"


def test_item_28_decline_filters_revive_and_suppress(cluster, sessions):
    session = sessions()
    offers = session.offers()
    session.call("DECLINE", {"offer_ids": [o["id"] for o in offers], "filters": {"refuse_seconds": 1.5}})
    assert session.no_event("OFFERS", 1.0)  # filtered
    assert len(session.offers(timeout=3)) == 2  # the filter expired
    offers = session.events[-1]["offers"]["offers"]
    session.call("DECLINE", {"offer_ids": [o["id"] for o in offers], "filters": {"refuse_seconds": 3600}})
    assert session.no_event("OFFERS", 0.5)
    session.call("REVIVE")
    offers = session.offers(timeout=3)
    session.call("SUPPRESS")
    session.call("DECLINE", {"offer_ids": [o["id"] for o in offers], "filters": {"refuse_seconds": 0}})
    assert session.no_event("OFFERS", 1.0)
    assert any(e["type"] == "HEARTBEAT" for e in session.events[-3:])  # heartbeats continue
    session.call("REVIVE")
    assert session.offers(timeout=3)
    filters = cluster.call(lambda: cluster.master.frameworks[session.framework_id].filters)
    assert filters == {}


def test_item_28_accept_remainder_is_filtered_for_refuse_seconds(cluster, sessions):
    session = sessions()
    offers = session.offers()
    launch(session, [offers[0]], [task(offers[0], "part", "sleep 30")], filters={"refuse_seconds": 1.0})
    session.call("DECLINE", {"offer_ids": [offers[1]["id"]], "filters": {"refuse_seconds": 3600}})
    assert session.no_event("OFFERS", 0.7)
    again = session.offers(timeout=3)
    assert again[0]["agent_id"] == offers[0]["agent_id"]
    cpus = next(r for r in again[0]["resources"] if r["name"] == "cpus")["scalar"]["value"]
    assert cpus == pytest.approx(3.9)


def test_item_28_each_refusal_hides_what_it_holds_until_its_own_end(cluster, sessions):
    """Mesos keeps each DECLINE's (and accepted remainder's) `RefusedOfferFilter` apart: a short refusal of
    the agent's whole free resources ends when its own time is up, although a long refusal of a part of
    them still lives (merged into one, the long one hid everything the agent had, for an hour)."""
    session = sessions()
    first, other = session.offers()[:2]
    agent = first["agent_id"]
    brief = task(first, "brief", "sleep 0.3")
    assert launch(session, [first], [brief], filters={"refuse_seconds": 3600}) == 202
    session.call("DECLINE", {"offer_ids": [other["id"]], "filters": {"refuse_seconds": 3600}})
    for state in ("TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"):
        session.ack(session.update("brief", state))
    # The task's resources came back: the agent's free resources are more than the long refusal holds.
    whole = session.offers(timeout=5)
    assert [o["agent_id"] for o in whole] == [agent]
    session.call("DECLINE", {"offer_ids": [whole[0]["id"]], "filters": {"refuse_seconds": 1.0}})
    assert session.no_event("OFFERS", 0.7)
    again = session.offers(timeout=3)    # the short refusal ended: the long one does not hold all of it
    assert [o["agent_id"] for o in again] == [agent]
    assert again[0]["resources"] == whole[0]["resources"]


def test_item_29_offers_of_one_agent_combine_in_one_accept(cluster, sessions):
    session = sessions()
    offers = session.offers()
    first = offers[0]
    session.call("DECLINE", {"offer_ids": [offers[1]["id"]], "filters": {"refuse_seconds": 3600}})
    launch(session, [first], [task(first, "short", "true", cpus=1.0)], filters={"refuse_seconds": 0})
    second = session.offers()[0]  # the remainder of the first agent
    session.ack(session.update("short", "TASK_STARTING"))
    session.ack(session.update("short", "TASK_RUNNING"))
    session.ack(session.update("short", "TASK_FINISHED"))
    third = session.offers()[0]  # the freed cpu, while `second` is still outstanding
    assert second["agent_id"] == third["agent_id"] == first["agent_id"]
    assert second["id"] != third["id"]
    assert launch(session, [second, third], [task(first, "combined", "true", cpus=4.0)]) == 202
    assert session.update("combined")["state"] == "TASK_STARTING"


def test_item_30_offer_timeout_rescinds_and_returns_resources(cluster_factory):
    small = cluster_factory(agents=1, offer_timeout=0.5)
    session = Session(small.master_address)
    try:
        offer = session.offers()[0]
        rescind = session.next("RESCIND", timeout=3)
        assert rescind == {"type": "RESCIND", "rescind": {"offer_id": offer["id"]}}
        again = session.offers(timeout=3)
        assert again[0]["agent_id"] == offer["agent_id"] and again[0]["id"] != offer["id"]
    finally:
        session.close()


# ---------------------------------------------------------------------------------------------------
# Kill, acknowledge, reconcile


def test_item_31_kill_of_unknown_task(cluster, sessions):
    session = sessions()
    session.call("KILL", {"task_id": {"value": "ghost"}})
    status = session.update("ghost")
    assert (status["state"], status["reason"], status["message"]) == (
        "TASK_LOST",
        "REASON_RECONCILIATION",
        "Reconciliation: Task is unknown",
    )
    aware = sessions(subscribe_body(capabilities=[{"type": "PARTITION_AWARE"}]))
    aware.call("KILL", {"task_id": {"value": "ghost"}})
    assert aware.update("ghost")["state"] == "TASK_UNKNOWN"


def test_item_32_acknowledge_with_bad_uuid_is_400(cluster, sessions):
    session = sessions()
    bad = base64.b64encode(b"short").decode()
    status, text = session.call(
        "ACKNOWLEDGE", {"agent_id": {"value": "a"}, "task_id": {"value": "t"}, "uuid": bad}
    )
    assert (status, text) == (400, "Failed to validate scheduler::Call: Not a valid UUID")
    good = base64.b64encode(uuid.uuid4().bytes).decode()
    assert (
        session.call("ACKNOWLEDGE", {"agent_id": {"value": "a"}, "task_id": {"value": "t"}, "uuid": good})[0]
        == 202
    )


def test_item_32_acked_update_is_not_retried(cluster, sessions):
    session = sessions()
    offer = session.offers()[0]
    launch(session, [offer], [task(offer, "quiet", "sleep 30")])
    starting = session.update("quiet", "TASK_STARTING")
    session.ack(starting)
    running = session.update("quiet", "TASK_RUNNING")
    session.ack(running)
    deadline = time.monotonic() + 1.5  # three retry intervals
    while time.monotonic() < deadline:
        try:
            event = session.stream.next_event(max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            break
        if event["type"] == "UPDATE":
            assert event["update"]["status"]["task_id"]["value"] != "quiet", event


def test_item_33_reconciliation_implicit_and_explicit(cluster, sessions):
    session = sessions()
    offer = session.offers()[0]
    launch(session, [offer], [task(offer, "r1", "sleep 30")])
    session.ack(session.update("r1", "TASK_STARTING"))
    session.ack(session.update("r1", "TASK_RUNNING"))
    session.call("RECONCILE", {"tasks": []})
    implicit = session.update("r1")
    assert (implicit["state"], implicit["reason"], implicit["message"], implicit["source"]) == (
        "TASK_RUNNING",
        "REASON_RECONCILIATION",
        "Reconciliation: Latest task state",
        "SOURCE_MASTER",
    )
    assert "uuid" not in implicit
    session.call(
        "RECONCILE",
        {
            "tasks": [
                {"task_id": {"value": "r1"}},
                {"task_id": {"value": "r2"}, "agent_id": offer["agent_id"]},
            ]
        },
    )
    assert session.update("r1")["state"] == "TASK_RUNNING"
    unknown = session.update("r2")
    assert (unknown["state"], unknown["message"]) == (
        "TASK_LOST",
        "Reconciliation: Task is unknown to the agent",
    )


# ---------------------------------------------------------------------------------------------------
# GPU semantics


def test_item_36_no_offers_at_all_from_gpu_agents_without_capability(cluster_factory):
    mixed = cluster_factory(agent_gpus=[2, 0])
    session = Session(mixed.master_address, subscribe_body(gpu=False))
    try:
        offers = session.offers()
        assert [o["agent_id"]["value"] for o in offers] == [mixed.agents[1].agent_id]
        assert session.no_event("OFFERS", 0.5)
    finally:
        session.close()
    unfiltered = cluster_factory(agent_gpus=[2], filter_gpu_resources=False)
    session = Session(unfiltered.master_address, subscribe_body(gpu=False))
    try:
        offer = session.offers()[0]
        assert any(r["name"] == "gpus" and r["scalar"]["value"] == 2 for r in offer["resources"])
    finally:
        session.close()


def test_item_38_more_gpus_than_offered_is_task_error(cluster, sessions):
    session = sessions()
    offer = session.offers()[0]
    launch(session, [offer], [task(offer, "greedy", gpus=5)])
    status = session.update("greedy")
    assert (
        status["state"] == "TASK_ERROR"
        and "required by task and its executor is more than available" in status["message"]
    )


def test_item_49_master_binds_loopback_by_default(cluster):
    assert cluster.master_address.startswith("127.0.0.1:")
    # loopback only: each agent on its own 127.0.0.N (its hostname), all of them this machine
    assert all(ipaddress.ip_address(agent.endpoint()[0]).is_loopback for agent in cluster.agents)
