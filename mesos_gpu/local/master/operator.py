"""The read-only calls of the v1 operator API (`POST /api/v1`, `master.proto`'s `Call` / `Response`)
as JSON: GET_STATE, GET_AGENTS, GET_FRAMEWORKS, GET_TASKS, GET_EXECUTORS, GET_MASTER, GET_VERSION and
GET_HEALTH. Messages are written as Mesos' `JSON::Protobuf` writes them: unset optional fields and
empty repeated fields left out, times as `TimeInfo` nanoseconds. Read-only."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mesos_gpu.core import wire
from mesos_gpu.local import protocol as p
from mesos_gpu.local.master.allocator import offer_json
from mesos_gpu.local.master.readonly import version_json
from mesos_gpu.local.master.records import AgentRecord, FrameworkRecord, TaskRecord
from mesos_gpu.local.protocol import value

if TYPE_CHECKING:
    from mesos_gpu.local.master.master import Master

# Every `mesos.v1.master.Call.Type` name (1.11); those not in `ANSWERS` get 501 here.
_CALL_TYPES = """
    UNKNOWN GET_HEALTH GET_FLAGS GET_VERSION GET_METRICS GET_LOGGING_LEVEL SET_LOGGING_LEVEL LIST_FILES
    READ_FILE GET_STATE GET_AGENTS GET_FRAMEWORKS GET_EXECUTORS GET_OPERATIONS GET_TASKS GET_ROLES
    GET_WEIGHTS UPDATE_WEIGHTS GET_MASTER SUBSCRIBE RESERVE_RESOURCES UNRESERVE_RESOURCES CREATE_VOLUMES
    DESTROY_VOLUMES GROW_VOLUME SHRINK_VOLUME GET_MAINTENANCE_STATUS GET_MAINTENANCE_SCHEDULE
    UPDATE_MAINTENANCE_SCHEDULE START_MAINTENANCE STOP_MAINTENANCE DRAIN_AGENT DEACTIVATE_AGENT
    REACTIVATE_AGENT GET_QUOTA UPDATE_QUOTA SET_QUOTA REMOVE_QUOTA TEARDOWN MARK_AGENT_GONE
"""
OPERATOR_CALL_TYPES = frozenset(_CALL_TYPES.split())


def time_info(seconds: float | None) -> dict[str, int] | None:
    if not seconds:
        return None
    return {"nanoseconds": int(seconds * 1e9)}


def _put(out: dict[str, Any], key: str, item: Any) -> None:
    """Set a field as `JSON::Protobuf` would: not at all when unset (None) or an empty list."""
    if item is None or (isinstance(item, list) and not item):
        return
    out[key] = item


# ---------------------------------------------------------------------------------------- agents
def get_agents(master: Master) -> dict[str, Any]:
    return {"agents": [agent_v1(a) for a in master.agents.values()], "recovered_agents": []}


def agent_v1(agent: AgentRecord) -> dict[str, Any]:
    """`Response.GetAgents.Agent` (`protobuf::master::event::createAgentResponse`)."""
    ip, port = agent.link.endpoint()
    out: dict[str, Any] = {
        "agent_info": agent.info,
        "active": True,
        "deactivated": False,
        "version": p.MESOS_VERSION,
        "pid": f"slave(1)@{ip}:{port}",
        "registered_time": time_info(agent.registered_time),
    }
    _put(out, "total_resources", wire.resources_to_mesos(agent.total))
    _put(out, "allocated_resources", wire.resources_to_mesos(agent.used))
    _put(out, "offered_resources", wire.resources_to_mesos(agent.offered))
    _put(out, "capabilities", list(agent.info.get("capabilities", [])))
    return out


# ---------------------------------------------------------------------------------------- frameworks
def get_frameworks(master: Master) -> dict[str, Any]:
    return {
        "frameworks": [framework_v1(master, f) for f in master.frameworks.values()],
        "completed_frameworks": [framework_v1(master, f) for f in master.completed_frameworks],
    }


def framework_v1(master: Master, framework: FrameworkRecord) -> dict[str, Any]:
    """`Response.GetFrameworks.Framework` (`model(const Framework&)` in src/master/http.cpp)."""
    role = framework.role
    offers = [master.offers[o] for o in sorted(framework.offers) if o in master.offers]
    offered = [
        r for o in offers for r in wire.resources_to_mesos(o.resources.with_labels(allocation_role=role))
    ]
    out: dict[str, Any] = {
        "framework_info": framework.info,
        "active": framework.active,
        "connected": framework.connected,
        "recovered": framework.recovered,
    }
    _put(out, "registered_time", time_info(framework.registered_time))
    _put(out, "unregistered_time", time_info(framework.unregistered_time))
    _put(
        out,
        "offers",
        [offer_json(o, framework, master.agents[o.agent_id]) for o in offers if o.agent_id in master.agents],
    )
    _put(
        out,
        "allocated_resources",
        wire.resources_to_mesos(framework.used().with_labels(allocation_role=role)),
    )
    _put(out, "offered_resources", offered)
    return out


# ---------------------------------------------------------------------------------------- tasks, executors
def get_tasks(master: Master) -> dict[str, Any]:
    every = [*master.frameworks.values(), *master.completed_frameworks]
    return {
        "tasks": [task_v1(t, f.role) for f in every for t in f.tasks.values()],
        "unreachable_tasks": [],
        "completed_tasks": [task_v1(t, f.role) for f in every for t in f.completed_tasks],
    }


def task_v1(task: TaskRecord, role: str) -> dict[str, Any]:
    """A v1 `Task` as the master keeps it: its TaskInfo's fields, state, latest status."""
    info = task.info
    out: dict[str, Any] = {
        "name": info.get("name", ""),
        "task_id": value(task.task_id),
        "framework_id": value(task.framework_id),
    }
    if task.executor_id:
        out["executor_id"] = value(task.executor_id)
    out["agent_id"] = value(task.agent_id)
    out["state"] = task.state
    _put(out, "resources", wire.resources_to_mesos(task.resources.with_labels(allocation_role=role)))
    if task.status is not None:
        out["statuses"] = [task.status]
        out["status_update_state"] = task.status.get("state", task.state)
        _put(out, "status_update_uuid", task.status.get("uuid"))
    for key in ("labels", "discovery", "container", "health_check"):
        _put(out, key, info.get(key))
    return out


def get_executors(master: Master) -> dict[str, Any]:
    executors = [
        {"executor_info": executor.info, "agent_id": value(agent.agent_id)}
        for agent in master.agents.values()
        for executor in agent.executors.values()
    ]
    return {"executors": executors}


def get_state(master: Master) -> dict[str, Any]:
    """`Response.GetState`: tasks, executors, frameworks and agents in one answer."""
    return {
        "get_tasks": get_tasks(master),
        "get_executors": get_executors(master),
        "get_frameworks": get_frameworks(master),
        "get_agents": get_agents(master),
    }


def get_master(master: Master) -> dict[str, Any]:
    out: dict[str, Any] = {"master_info": master.master_info(), "start_time": master.start_time}
    if master.is_leader:
        out["elected_time"] = master.start_time
    return out


def get_version(_: Master) -> dict[str, Any]:
    return {"version_info": version_json()}


def get_health(_: Master) -> dict[str, Any]:
    return {"healthy": True}


ANSWERS: dict[str, Callable[[Master], dict[str, Any]]] = {
    "GET_HEALTH": get_health,
    "GET_VERSION": get_version,
    "GET_STATE": get_state,
    "GET_AGENTS": get_agents,
    "GET_FRAMEWORKS": get_frameworks,
    "GET_EXECUTORS": get_executors,
    "GET_TASKS": get_tasks,
    "GET_MASTER": get_master,
}


def answer(master: Master, kind: str) -> dict[str, Any] | None:
    """The `Response` of a read-only call (`{"type": T, "get_x": {...}}`), None when not served here."""
    render = ANSWERS.get(kind)
    if render is None:
        return None
    return {"type": kind, kind.lower(): render(master)}
