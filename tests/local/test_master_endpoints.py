"""The master's read-only endpoints against the shapes Mesos writes: `/master/state`, `/master/slaves`
and `/master/frameworks` against the field lists of the JSON writers, `/master/redirect`, and the v1
operator API's GET_STATE / GET_AGENTS / GET_FRAMEWORKS on `/api/v1`."""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest

from mesos_gpu.local import protojson
from mesos_gpu.local.master.readonly import flat_attributes
from tests.local.conftest import CallClient, get_json
from tests.local.test_conformance_wire import Session, launch, task

# Field lists of Mesos 1.11's JSON writers, in the order they write them. From
# src/master/readonly_handler.cpp (`ReadOnlyHandler::state`, `SlaveWriter`, `SlavesWriter::writeSlave`,
# `FullFrameworkWriter`, `json(Summary<Framework>)`, `ReadOnlyHandler::frameworks`) and
# src/common/http.cpp (`json(MasterInfo)`, `json(SlaveInfo)`, `json(Task)`, `json(TaskStatus)`,
# `json(Offer)`, `json(Resources)`). Optional fields a writer leaves out here (git_branch, cluster,
# log_dir, domain, reregistered_time, principal, labels, drain_info, ...) are not listed.
STATE_FIELDS = [
    "version", "git_sha", "git_tag", "build_date", "build_time", "build_user", "start_time",
    "elected_time", "id", "pid", "hostname", "capabilities", "activated_slaves", "deactivated_slaves",
    "unreachable_slaves", "leader", "leader_info", "flags", "slaves", "recovered_slaves", "frameworks",
    "completed_frameworks", "orphan_tasks", "unregistered_frameworks",
]  # fmt: skip
MASTER_INFO_FIELDS = ["id", "pid", "port", "hostname"]
SLAVE_INFO_FIELDS = ["id", "hostname", "port", "attributes"]
SLAVE_WRITER_FIELDS = [
    *SLAVE_INFO_FIELDS, "pid", "registered_time", "resources", "used_resources", "offered_resources",
    "reserved_resources", "unreserved_resources", "active", "deactivated", "version", "capabilities",
]  # fmt: skip
SLAVES_FULL_FIELDS = [
    "reserved_resources_full", "unreserved_resources_full", "used_resources_full", "offered_resources_full",
]  # fmt: skip
FRAMEWORK_SUMMARY_FIELDS = [
    "id", "name", "used_resources", "offered_resources", "capabilities", "hostname", "webui_url",
    "active", "connected", "recovered",
]  # fmt: skip
FULL_FRAMEWORK_FIELDS = [
    *FRAMEWORK_SUMMARY_FIELDS, "user", "failover_timeout", "checkpoint", "registered_time",
    "unregistered_time", "resources", "role", "tasks", "unreachable_tasks", "completed_tasks", "offers",
    "executors", "offer_constraints",
]  # fmt: skip
TASK_FIELDS = [
    "id", "name", "framework_id", "executor_id", "slave_id", "state", "resources", "role", "statuses",
]  # fmt: skip
TASK_STATUS_FIELDS = ["state", "timestamp"]
STATUS_OPTIONAL = {"labels", "container_status", "healthy"}
OFFER_FIELDS = ["id", "framework_id", "allocation_info", "slave_id", "resources"]
RESOURCES_FIELDS = {"cpus", "gpus", "mem", "disk"}  # json(Resources) always writes these four
# `Response.GetAgents.Agent` and `Response.GetFrameworks.Framework` (include/mesos/v1/master/master.proto):
# the required fields and those the local master always has.
AGENT_V1_FIELDS = {
    "agent_info", "active", "deactivated", "version", "pid", "registered_time", "total_resources",
}  # fmt: skip
FRAMEWORK_V1_FIELDS = {"framework_info", "active", "connected", "recovered", "registered_time"}
LOCAL_ADDITIONS = {"agent_id"}  # tasks and offers repeat slave_id as agent_id for older readers


def fields(obj: dict[str, Any], expected: list[str]) -> list[str]:
    """The keys of `obj` that Mesos' writer would write, in order (local additions left out)."""
    return [key for key in obj if key not in LOCAL_ADDITIONS or key in expected]


@pytest.fixture
def busy(cluster_factory):
    """A cluster with agent attributes, one framework with a running task and an outstanding offer."""
    cluster = cluster_factory(agents=2, agent_attributes={"rack": 3, "zone": "a"})
    session = Session(cluster.master_address)
    offers = session.offers()
    assert launch(session, offers[:1], [task(offers[0], "t1")]) == 202
    status = session.update("t1")
    while status["state"] != "TASK_RUNNING":  # the agent sends the next update after an ACK
        session.ack(status)
        status = session.update("t1")
    session.ack(status)
    yield cluster, session
    session.close()


def test_master_state_has_the_fields_of_readonly_handler_state(busy):
    cluster, session = busy
    status, state, headers = get_json(cluster.master_address, "/master/state")
    assert status == 200 and headers["content-type"] == "application/json"
    assert list(state) == STATE_FIELDS
    assert list(state["leader_info"]) == MASTER_INFO_FIELDS
    assert state["leader"] == state["leader_info"]["pid"] == state["pid"]
    assert state["capabilities"] == ["AGENT_UPDATE"]
    assert (state["activated_slaves"], state["deactivated_slaves"], state["unreachable_slaves"]) == (2, 0, 0)
    assert state["orphan_tasks"] == state["unregistered_frameworks"] == state["recovered_slaves"] == []
    assert {"build_date", "build_time", "build_user"} <= set(state) and state["version"] == "1.11.0"
    for agent in state["slaves"]:
        assert list(agent) == SLAVE_WRITER_FIELDS
    [framework] = state["frameworks"]
    assert framework["id"] == session.framework_id
    assert fields(framework, FULL_FRAMEWORK_FIELDS) == FULL_FRAMEWORK_FIELDS
    [running] = framework["tasks"]
    assert fields(running, TASK_FIELDS) == TASK_FIELDS and running["agent_id"] == running["slave_id"]
    [latest] = running["statuses"]
    assert list(latest)[:2] == TASK_STATUS_FIELDS and set(latest) - set(TASK_STATUS_FIELDS) <= STATUS_OPTIONAL
    assert running["state"] == "TASK_RUNNING" and set(running["resources"]) >= RESOURCES_FIELDS
    assert framework["offers"]  # the other agent's, still outstanding
    for offer in framework["offers"]:
        assert fields(offer, OFFER_FIELDS) == OFFER_FIELDS and offer["allocation_info"] == {"role": "*"}


def test_master_slaves_has_the_fields_of_slaves_writer_and_flat_attributes(busy):
    cluster, _ = busy
    status, answer, _ = get_json(cluster.master_address, "/master/slaves")
    assert status == 200 and list(answer) == ["slaves", "recovered_slaves"]
    for agent in answer["slaves"]:
        assert list(agent) == SLAVE_WRITER_FIELDS + SLAVES_FULL_FIELDS
        assert agent["attributes"] == {
            "gpu_model": "Simulated-GPU", "gpu_memory_mb": 16384.0, "gpu_mps": "false",
            "rack": 3.0, "zone": "a",
        }
        assert agent["reserved_resources"] == agent["reserved_resources_full"] == {}
        assert agent["unreserved_resources"] == agent["resources"]
        assert (agent["active"], agent["deactivated"], agent["version"]) == (True, False, "1.11.0")
        for resource in agent["unreserved_resources_full"]:
            assert protojson.strict_errors(resource, "Resource") == []
    used = [a for a in answer["slaves"] if a["used_resources"]["cpus"] > 0]
    assert len(used) == 1 and used[0]["used_resources_full"]


@pytest.mark.parametrize(
    ("attribute", "flat"),
    [
        ({"name": "n", "type": "SCALAR", "scalar": {"value": 2.5}}, 2.5),
        ({"name": "n", "type": "TEXT", "text": {"value": "r1"}}, "r1"),
        ({"name": "n", "type": "RANGES",
          "ranges": {"range": [{"begin": 1, "end": 2}, {"begin": 5, "end": 6}]}},
         "[1-2, 5-6]"),
        ({"name": "n", "type": "SET", "set": {"item": ["a", "b"]}}, "{a, b}"),
    ],
)
def test_attributes_are_written_flat_as_mesos_stringifies_values(attribute, flat):
    """`json(ObjectWriter*, const Attributes&)` in src/common/http.cpp."""
    assert flat_attributes([attribute]) == {"n": flat}


def test_master_frameworks_lists_registered_and_completed(busy):
    cluster, session = busy
    status, answer, _ = get_json(cluster.master_address, "/master/frameworks")
    assert status == 200 and list(answer) == ["frameworks", "completed_frameworks", "unregistered_frameworks"]
    assert [f["id"] for f in answer["frameworks"]] == [session.framework_id]
    assert fields(answer["frameworks"][0], FULL_FRAMEWORK_FIELDS) == FULL_FRAMEWORK_FIELDS
    assert session.call("TEARDOWN") == (202, "")
    _, after, _ = get_json(cluster.master_address, "/frameworks")
    assert after["frameworks"] == []
    assert [f["id"] for f in after["completed_frameworks"]] == [session.framework_id]
    assert [t["state"] for t in after["completed_frameworks"][0]["completed_tasks"]] == ["TASK_KILLED"]


def get_text(address: str, path: str) -> tuple[int, str, dict[str, str]]:
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode(), {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def test_master_redirect_points_at_the_leader(cluster):
    address = cluster.master_address
    status, _, headers = get_text(address, "/master/redirect")
    assert (status, headers["location"]) == (307, f"//{address}")
    assert get_text(address, "/redirect")[0] == 307
    assert get_text(address, "/master/redirect/state")[:2] == (404, "")  # no redirect loops
    cluster.call(cluster.master.set_standby, "10.1.2.3:5050")
    status, _, headers = get_text(address, "/master/redirect")
    assert (status, headers["location"]) == (307, "//10.1.2.3:5050")
    _, state, _ = get_json(address, "/master/state")
    assert state["leader_info"] == {"pid": "master@10.1.2.3:5050", "port": 5050, "hostname": "10.1.2.3"}
    assert "elected_time" not in state
    cluster.call(cluster.master.set_standby, None)
    assert get_text(address, "/master/redirect")[:2] == (503, "No leader elected")
    _, state, _ = get_json(address, "/master/state")
    assert "leader" not in state and "leader_info" not in state
    cluster.call(cluster.master.set_leader)


def operator_call(address: str, body: Any, **headers: str) -> tuple[int, Any, dict[str, str]]:
    client = CallClient(address)
    try:
        status, text, head = client.post(body, headers=headers or None, path="/api/v1")
    finally:
        client.close()
    is_json = head.get("content-type") == "application/json"
    return status, json.loads(text) if is_json else text, head


def test_operator_get_state_agents_and_frameworks(busy):
    cluster, session = busy
    address = cluster.master_address
    status, answer, _ = operator_call(address, {"type": "GET_STATE"})
    assert status == 200 and list(answer) == ["type", "get_state"] and answer["type"] == "GET_STATE"
    state = answer["get_state"]
    assert list(state) == ["get_tasks", "get_executors", "get_frameworks", "get_agents"]
    assert list(state["get_tasks"]) == ["tasks", "unreachable_tasks", "completed_tasks"]
    [running] = state["get_tasks"]["tasks"]
    assert running["task_id"] == {"value": "t1"} and running["state"] == "TASK_RUNNING"
    assert running["framework_id"] == {"value": session.framework_id}
    assert state["get_executors"] == {"executors": []}  # a command task has no executor of its own

    status, answer, _ = operator_call(address, {"type": "GET_AGENTS"})
    assert status == 200 and answer["type"] == "GET_AGENTS"
    agents = answer["get_agents"]
    assert list(agents) == ["agents", "recovered_agents"] and len(agents["agents"]) == 2
    for agent in agents["agents"]:
        assert set(agent) >= AGENT_V1_FIELDS
        assert protojson.strict_errors(agent["agent_info"], "AgentInfo") == []
        assert set(agent["registered_time"]) == {"nanoseconds"}
    assert agents == state["get_agents"]

    status, answer, _ = operator_call(address, {"type": "GET_FRAMEWORKS"})
    assert status == 200 and answer["type"] == "GET_FRAMEWORKS"
    [framework] = answer["get_frameworks"]["frameworks"]
    assert set(framework) >= FRAMEWORK_V1_FIELDS
    assert framework["framework_info"]["id"] == {"value": session.framework_id}
    assert protojson.strict_errors(framework["framework_info"], "FrameworkInfo") == []
    assert answer["get_frameworks"]["completed_frameworks"] == []


def test_operator_api_errors_follow_master_http_api(cluster):
    address = cluster.master_address
    client = CallClient(address)
    try:
        status, _, head = client.post({"type": "GET_STATE"}, method="GET", path="/api/v1")
        assert (status, head.get("allow")) == (405, "POST")
        assert client.post({"type": "GET_STATE"}, headers={"Content-Type": None}, path="/api/v1")[:2] == (
            400, "Expecting 'Content-Type' to be present",
        )  # fmt: skip
    finally:
        client.close()
    assert operator_call(address, {"type": "NOT_A_CALL"})[:2] == (
        400, "Failed to validate master::Call: Expecting 'type' to be present",
    )  # fmt: skip
    assert operator_call(address, {"type": 9})[0] == 400
    assert operator_call(address, b"{", **{"Content-Type": "application/json"})[0] == 400
    assert operator_call(address, {"type": "GET_STATE"}, **{"Content-Type": "text/plain"})[0] == 415
    assert operator_call(address, {"type": "GET_STATE"}, Accept="text/html")[0] == 406
    assert operator_call(address, {"type": "UNKNOWN"})[0] == 501
    assert operator_call(address, {"type": "GET_ROLES"})[0] == 501  # not served by the local master
    health = {"type": "GET_HEALTH", "get_health": {"healthy": True}}
    assert operator_call(address, {"type": "GET_HEALTH"})[1] == health
    cluster.call(cluster.master.set_standby, "10.1.2.3:5050")
    status, _, head = operator_call(address, {"type": "GET_STATE"})
    assert (status, head["location"]) == (307, "//10.1.2.3:5050/api/v1")
    cluster.call(cluster.master.set_leader)
