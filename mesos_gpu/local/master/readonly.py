"""What the master shows operators, in the shapes of Mesos' JSON writers: `/master/state`,
`/master/slaves`, `/master/frameworks` (`src/master/readonly_handler.cpp` with the `json()` overloads
of `src/common/http.cpp`) and the v1 operator API's GET_STATE / GET_AGENTS / GET_FRAMEWORKS /
GET_TASKS / GET_EXECUTORS answers (`master.proto`'s `Response`). Read-only: nothing here changes
the master."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mesos_gpu.core import wire
from mesos_gpu.core.resources import Resources
from mesos_gpu.local import protocol as p
from mesos_gpu.local.master.records import (
    AgentRecord,
    ExecutorRecord,
    FrameworkRecord,
    OfferRecord,
    TaskRecord,
)

if TYPE_CHECKING:
    from mesos_gpu.local.master.master import Master

BUILD = {
    "build_date": "2020-11-24 00:00:00",
    "build_time": 1606176000.0,
    "build_user": "mesos-gpu",
    "git_sha": "0000000000000000000000000000000000000000",
}
STATUS_KEPT = ("labels", "container_status", "healthy")  # json(TaskStatus) beyond state and timestamp


def version_json() -> dict[str, Any]:
    """`GET /version` as Mesos 1.11 serves it; the version is purely numeric (pymesos parses it)."""
    return {"version": p.MESOS_VERSION, **BUILD, "git_tag": p.MESOS_VERSION}


# ---------------------------------------------------------------------------------------- /master/state
def state(master: Master) -> dict[str, Any]:
    """`GET /master/state` (`ReadOnlyHandler::state`)."""
    info = master.master_info()
    out: dict[str, Any] = {
        "version": p.MESOS_VERSION,
        "git_sha": BUILD["git_sha"],
        "git_tag": p.MESOS_VERSION,
        "build_date": BUILD["build_date"],
        "build_time": BUILD["build_time"],
        "build_user": BUILD["build_user"],
        "start_time": master.start_time,
    }
    if master.is_leader:
        out["elected_time"] = master.start_time
    out.update(
        id=master.master_id,
        pid=info["pid"],
        hostname=info["hostname"],
        capabilities=[c["type"] for c in info["capabilities"]],
        activated_slaves=len(master.agents),
        deactivated_slaves=0,
        unreachable_slaves=len(master.unreachable_agents),
    )
    leader = leader_info(master)
    if leader is not None:
        out["leader"] = leader["pid"]
        out["leader_info"] = leader
    out["flags"] = flags(master)
    out["slaves"] = [slave_json(master, agent) for agent in master.agents.values()]
    out["recovered_slaves"] = []
    listed = frameworks(master)
    out["frameworks"] = listed["frameworks"]
    out["completed_frameworks"] = listed["completed_frameworks"]
    out["orphan_tasks"] = []
    out["unregistered_frameworks"] = []
    return out


def leader_info(master: Master) -> dict[str, Any] | None:
    """`json(MasterInfo)` of the leader: id, pid, port, hostname (a standby knows only the address)."""
    if master.is_leader:
        info = master.master_info()
        return {key: info[key] for key in ("id", "pid", "port", "hostname")}
    if not master.leader_address:
        return None
    host, _, port = master.leader_address.rpartition(":")
    return {"pid": f"master@{master.leader_address}", "port": int(port), "hostname": host}


def flags(master: Master) -> dict[str, str]:
    """The flags Mesos would print for this master's knobs (an unset Option flag is left out)."""
    config = master.config
    out = {
        "allocation_interval": wire.format_duration(config.allocation_interval),
        "filter_gpu_resources": str(config.filter_gpu_resources).lower(),
        "hostname": config.advertised_hostname,
        "ip": config.host,
        "port": str(config.port),
    }
    if config.offer_timeout:
        out["offer_timeout"] = wire.format_duration(config.offer_timeout)
    return dict(sorted(out.items()))


# ---------------------------------------------------------------------------------------- agents
def slaves(master: Master) -> dict[str, Any]:
    """`GET /master/slaves` (`SlavesWriter`): each agent as `/state` shows it plus its resources in full."""
    agents = []
    for agent in master.agents.values():
        full = {
            "reserved_resources_full": {},
            "unreserved_resources_full": wire.resources_to_mesos(agent.total),
            "used_resources_full": wire.resources_to_mesos(agent.used),
            "offered_resources_full": wire.resources_to_mesos(agent.offered),
        }
        agents.append({**slave_json(master, agent), **full})
    return {"slaves": agents, "recovered_slaves": []}


def slave_json(master: Master, agent: AgentRecord) -> dict[str, Any]:
    """`SlaveWriter`: `json(SlaveInfo)` (attributes flat) and the agent's registration and resources.
    The local master models no reservations: everything is unreserved."""
    ip, port = agent.link.endpoint()
    capabilities = agent.info.get("capabilities", [])
    return {
        "id": agent.agent_id,
        "hostname": agent.hostname,
        "port": int(port),
        "attributes": flat_attributes(agent.info.get("attributes", [])),
        "pid": f"slave(1)@{ip}:{port}",
        "registered_time": agent.registered_time,
        "resources": p.resources_to_state(agent.total),
        "used_resources": p.resources_to_state(agent.used),
        "offered_resources": p.resources_to_state(agent.offered),
        "reserved_resources": {},
        "unreserved_resources": p.resources_to_state(agent.total),
        "active": True,
        "deactivated": False,
        "version": p.MESOS_VERSION,
        "capabilities": [c.get("type", "") for c in capabilities if isinstance(c, dict)],
    }


def flat_attributes(attributes: Any) -> dict[str, Any]:
    """`json(ObjectWriter*, const Attributes&)`: name -> scalar number, or the text, `[1-2, 5-6]` ranges
    and `{a, b}` sets as Mesos stringifies them."""
    out: dict[str, Any] = {}
    for attribute in attributes or ():
        if not isinstance(attribute, dict) or "name" not in attribute:
            continue
        kind = attribute.get("type", "TEXT")
        if kind == "SCALAR":
            out[attribute["name"]] = attribute.get("scalar", {}).get("value", 0.0)
        elif kind == "RANGES":
            ranges = attribute.get("ranges", {}).get("range", [])
            out[attribute["name"]] = "[" + ", ".join(f"{r.get('begin')}-{r.get('end')}" for r in ranges) + "]"
        elif kind == "SET":
            out[attribute["name"]] = "{" + ", ".join(attribute.get("set", {}).get("item", [])) + "}"
        else:
            out[attribute["name"]] = attribute.get("text", {}).get("value", "")
    return out


# ---------------------------------------------------------------------------------------- frameworks
def frameworks(master: Master) -> dict[str, Any]:
    """`GET /master/frameworks` (`ReadOnlyHandler::frameworks`)."""
    return {
        "frameworks": [framework_json(master, f) for f in master.frameworks.values()],
        "completed_frameworks": [framework_json(master, f) for f in master.completed_frameworks],
        "unregistered_frameworks": [],
    }


def framework_json(master: Master, framework: FrameworkRecord) -> dict[str, Any]:
    """`FullFrameworkWriter`: the summary (id ... recovered), then the full fields, tasks and offers."""
    info = framework.info
    offers = [master.offers[o] for o in sorted(framework.offers) if o in master.offers]
    offered = sum((o.resources for o in offers), Resources())
    used = framework.used()
    out: dict[str, Any] = {
        "id": framework.framework_id,
        "name": info.get("name", ""),
        "used_resources": p.resources_to_state(used),
        "offered_resources": p.resources_to_state(offered),
        "capabilities": sorted(framework.capabilities()),
        "hostname": info.get("hostname", ""),
        "webui_url": info.get("webui_url", ""),
        "active": framework.active,
        "connected": framework.connected,
        "recovered": framework.recovered,
        "user": info.get("user", ""),
        "failover_timeout": framework.failover_timeout,
        "checkpoint": bool(info.get("checkpoint", False)),
        "registered_time": framework.registered_time,
        "unregistered_time": framework.unregistered_time or 0,
    }
    if "principal" in info:
        out["principal"] = info["principal"]
    out["resources"] = p.resources_to_state(used + offered)
    if framework.has("MULTI_ROLE"):
        out["roles"] = list(info.get("roles", []))
    else:
        out["role"] = framework.role
    out["tasks"] = [task_json(t, framework.role) for t in framework.tasks.values()]
    out["unreachable_tasks"] = []
    out["completed_tasks"] = [task_json(t, framework.role) for t in framework.completed_tasks]
    out["offers"] = [offer_json(o, framework.role) for o in offers]
    out["executors"] = [
        executor_json(e, framework.role)
        for a in master.agents.values()
        for k, e in a.executors.items()
        if k[0] == framework.framework_id
    ]
    if "labels" in info:
        out["labels"] = info["labels"].get("labels", [])
    out["offer_constraints"] = {}
    return out


def offer_json(offer: OfferRecord, role: str) -> dict[str, Any]:
    """`json(Offer)` (the master allocates every offer to the framework's role); `agent_id` repeats
    `slave_id`."""
    return {
        "id": offer.offer_id,
        "framework_id": offer.framework_id,
        "allocation_info": {"role": role},
        "slave_id": offer.agent_id,
        "agent_id": offer.agent_id,
        "resources": p.resources_to_state(offer.resources),
    }


def task_json(task: TaskRecord, role: str = "*") -> dict[str, Any]:
    """`json(Task)`; `agent_id` repeats `slave_id` (a local addition older readers use)."""
    out: dict[str, Any] = {
        "id": task.task_id,
        "name": task.info.get("name", ""),
        "framework_id": task.framework_id,
        "executor_id": task.executor_id or "",
        "slave_id": task.agent_id,
        "agent_id": task.agent_id,
        "state": task.state,
        "resources": p.resources_to_state(task.resources),
        "role": role,
        "statuses": [_status_json(task.status)] if task.status else [],
    }
    if "labels" in task.info:
        out["labels"] = task.info["labels"].get("labels", [])
    for key in ("discovery", "container", "health_check"):
        if key in task.info:
            out[key] = task.info[key]
    return out


def _status_json(status: dict[str, Any]) -> dict[str, Any]:
    """`json(TaskStatus)`: state and timestamp, and labels, container status and health when set."""
    out = {"state": status.get("state", ""), "timestamp": status.get("timestamp", 0.0)}
    for key in STATUS_KEPT:
        if key in status:
            out[key] = status[key].get("labels", []) if key == "labels" else status[key]
    return out


def executor_json(executor: ExecutorRecord, role: str = "*") -> dict[str, Any]:
    """`json(ExecutorInfo)` plus `slave_id`, as a framework's `executors` lists them."""
    info = executor.info
    out: dict[str, Any] = {
        "executor_id": p.id_of(info, "executor_id") or "",
        "name": info.get("name", ""),
        "framework_id": executor.framework_id,
        "command": _command_json(info.get("command", {})),
        "resources": p.resources_to_state(executor.resources),
    }
    if not executor.resources.is_empty():
        out["role"] = role
    if "labels" in info:
        out["labels"] = info["labels"].get("labels", [])
    if "type" in info:
        out["type"] = info["type"]
    out["slave_id"] = executor.agent_id
    return out


def _command_json(command: dict[str, Any]) -> dict[str, Any]:
    """`json(CommandInfo)`: shell and value when set, argv, environment when set, and the URIs."""
    out: dict[str, Any] = {k: command[k] for k in ("shell", "value") if k in command}
    out["argv"] = list(command.get("arguments", []))
    if "environment" in command:
        out["environment"] = command["environment"]
    out["uris"] = [
        {"value": u.get("value", ""), "executable": bool(u.get("executable", False))}
        for u in command.get("uris", [])
    ]
    return out
