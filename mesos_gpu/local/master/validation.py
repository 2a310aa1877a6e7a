"""Pure validation of what schedulers send the master (Mesos keeps it in `src/master/validation.cpp`):
calls, FrameworkInfo, the offers of an ACCEPT, tasks, executors and task groups. Every check returns
Mesos' message, or None when the thing is valid; nothing here changes state."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from mesos_gpu.core import wire
from mesos_gpu.core.resources import to_milli
from mesos_gpu.local import protocol as p
from mesos_gpu.local.master.records import AgentRecord, FrameworkRecord, OfferRecord, roles_of
from mesos_gpu.local.protocol import id_of

NO_PAYLOAD_CALLS = frozenset({"REVIVE", "SUPPRESS", "TEARDOWN", "UNKNOWN"})
PAYLOAD_KEY = {
    "ACCEPT": "accept",
    "DECLINE": "decline",
    "ACCEPT_INVERSE_OFFERS": "accept_inverse_offers",
    "DECLINE_INVERSE_OFFERS": "decline_inverse_offers",
    "KILL": "kill",
    "SHUTDOWN": "shutdown",
    "ACKNOWLEDGE": "acknowledge",
    "ACKNOWLEDGE_OPERATION_STATUS": "acknowledge_operation_status",
    "RECONCILE": "reconcile",
    "RECONCILE_OPERATIONS": "reconcile_operations",
    "MESSAGE": "message",
    "REQUEST": "request",
    "UPDATE_FRAMEWORK": "update_framework",
    "REVIVE": "revive",  # optional (NO_PAYLOAD_CALLS): no roles named means all the framework's
    "SUPPRESS": "suppress",
}


# ---------------------------------------------------------------------------------------- calls
def validate_scheduler_call(call: dict[str, Any]) -> str | None:
    """`validation::scheduler::call::validate` (src/master/validation.cpp)."""
    kind = call.get("type")
    if kind is None:
        return "Expecting 'type' to be present"
    if kind == "SUBSCRIBE":
        return _validate_subscribe(call)
    if "framework_id" not in call:
        return "Expecting 'framework_id' to be present"
    key = PAYLOAD_KEY.get(kind)
    if kind not in NO_PAYLOAD_CALLS and key is not None and key not in call:
        return f"Expecting '{key}' to be present"
    if kind == "ACKNOWLEDGE":
        try:
            raw = p.decode_bytes(call["acknowledge"]["uuid"])
        except ValueError:
            raw = b""
        if len(raw) != 16:
            return "Not a valid UUID"
    if kind == "ACKNOWLEDGE_OPERATION_STATUS" and "agent_id" not in call["acknowledge_operation_status"]:
        return "Expecting 'agent_id' to be present"
    if kind == "UPDATE_FRAMEWORK":
        info_id = id_of(call["update_framework"]["framework_info"], "id")
        if info_id != id_of(call, "framework_id"):
            return "'framework_id' differs from 'update_framework.framework_info.id'"
    return None


def _validate_subscribe(call: dict[str, Any]) -> str | None:
    if "subscribe" not in call:
        return "Expecting 'subscribe' to be present"
    info_id = id_of(call["subscribe"]["framework_info"], "id")
    call_id = id_of(call, "framework_id")
    if info_id is not None and info_id != call_id:
        return "'framework_id' differs from 'subscribe.framework_info.id'"
    return None


def validate_framework_info(info: dict[str, Any]) -> str | None:
    """The role/roles rule of `validation::framework::validate`."""
    multi_role = any(c.get("type") == "MULTI_ROLE" for c in info.get("capabilities", []))
    if multi_role and "role" in info:
        return "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable"
    if not multi_role and info.get("roles"):
        return "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"
    return None


def validate_suppressed_roles(info: dict[str, Any], suppressed: Collection[str]) -> str | None:
    """`validateSuppressedRoles`: a SUBSCRIBE or UPDATE_FRAMEWORK suppresses only the framework's roles."""
    invalid = sorted(set(suppressed) - roles_of(info))
    if not invalid:
        return None
    return f"Suppressed roles {{ {', '.join(invalid)} }} are not contained in the set of roles"


# ---------------------------------------------------------------------------------------- offers
def validate_offers(
    framework_id: str, offer_ids: list[str], offers: Mapping[str, OfferRecord], agents: Collection[str]
) -> str | None:
    """`validation::offer::validate`: some offers, no duplicates, all live, all this framework's, all
    of one registered agent."""
    if not offer_ids:
        return "No offers specified"
    if len(set(offer_ids)) != len(offer_ids):
        duplicate = next(o for i, o in enumerate(offer_ids) if o in offer_ids[:i])
        return f"Duplicate offer {duplicate} in offer list"
    for offer_id in offer_ids:
        if offer_id not in offers:
            return f"Offer {offer_id} is no longer valid"
    for offer_id in offer_ids:
        owner = offers[offer_id].framework_id
        if owner != framework_id:
            return (
                f"Offer {offer_id} has invalid framework {owner} while framework {framework_id} is expected"
            )
    first_agent = offers[offer_ids[0]].agent_id
    for offer_id in offer_ids:
        agent_id = offers[offer_id].agent_id
        if agent_id != first_agent:
            return (
                "Aggregated offers must belong to one single agent. Offer "
                f"{offer_id} uses agent {agent_id} and agent {first_agent}"
            )
        if agent_id not in agents:
            return f"Offer {offer_id} is no longer valid"
    return None


# ---------------------------------------------------------------------------------------- tasks
def validate_task(
    framework: FrameworkRecord, agent: AgentRecord, task: dict[str, Any], pending: Collection[str]
) -> str | None:
    """The checks every task passes, alone or in a group (`validation::task::internal`)."""
    task_id = id_of(task, "task_id") or ""
    if not task_id:
        return "ID must not be empty"
    if any(c in task_id for c in "/\\\x00") or task_id in (".", ".."):
        return f"TaskID '{task_id}' contains invalid characters"
    if task_id in framework.tasks or task_id in pending:
        return f"Task has duplicate ID: {task_id}"
    task_agent = id_of(task, "agent_id")
    if task_agent != agent.agent_id:
        return f"Task uses invalid agent {task_agent} while agent {agent.agent_id} is expected"
    grace = task.get("kill_policy", {}).get("grace_period", {})
    if isinstance(grace, dict) and int(grace.get("nanoseconds", 0)) < 0:
        return "Task's 'kill_policy.grace_period' must be non-negative"
    if not task.get("resources"):
        return "Task uses no resources"
    gpu_error = _gpu_error(task.get("resources", []))
    if gpu_error is not None:
        return f"Task uses invalid resources: {gpu_error}"
    return None


def validate_lone_task(task: dict[str, Any]) -> str | None:
    """A LAUNCH task: exactly one of `command` and `executor`, and a custom executor with a command."""
    if ("executor" in task) == ("command" in task):
        return "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
    return None


def validate_custom_executor(executor: dict[str, Any]) -> str | None:
    if executor.get("type", "CUSTOM") != "CUSTOM":
        return "'ExecutorInfo.type' must be 'CUSTOM'"
    if "command" not in executor:
        return "'ExecutorInfo.command' must be set"
    return None


def _gpu_error(resources: list[dict[str, Any]]) -> str | None:
    gpus = wire.resources_from_mesos(resources, lenient=True).scalar_milli("gpus")
    if gpus % to_milli(1) != 0:
        return "Invalid 'gpus' resource: The 'gpus' resource must be an unsigned integer"
    return None


def validate_executor(framework: FrameworkRecord, agent: AgentRecord, executor: dict[str, Any]) -> str | None:
    """`validation::executor::internal`: type vs command, framework id, grace period, GPUs, and no
    different ExecutorInfo under a running executor's id."""
    kind = executor.get("type")
    if kind == "DEFAULT" and "command" in executor:
        return "'ExecutorInfo.command' must not be set for 'DEFAULT' executor"
    if kind == "CUSTOM" and "command" not in executor:
        return "'ExecutorInfo.command' must be set for 'CUSTOM' executor"
    executor_framework = id_of(executor, "framework_id")
    if executor_framework != framework.framework_id:
        return (
            "ExecutorInfo has an invalid FrameworkID (Actual: "
            f"{executor_framework} vs Expected: {framework.framework_id})"
        )
    grace = executor.get("shutdown_grace_period", {})
    if isinstance(grace, dict) and int(grace.get("nanoseconds", 0)) < 0:
        return "ExecutorInfo's 'shutdown_grace_period' must be non-negative"
    gpu_error = _gpu_error(executor.get("resources", []))
    if gpu_error is not None:
        return f"Executor uses invalid resources: {gpu_error}"
    existing = agent.executors.get((framework.framework_id, id_of(executor, "executor_id") or ""))
    if existing is not None and not executor_infos_equal(existing.info, executor):
        return "ExecutorInfo is not compatible with existing ExecutorInfo with same ExecutorID)."
    return None


# ---------------------------------------------------------------------------------------- equality
def executor_infos_equal(left: Mapping[str, Any], right: Mapping[str, Any]) -> bool:
    """Mesos' `operator==(ExecutorInfo, ExecutorInfo)` (src/common/type_utils.cpp), which decides
    whether a task may join a running executor: type (set or not, and its value), executor id, data,
    resources as Resources (order and splitting do not matter), command (URIs and environment
    variables in any order, arguments in order, proto defaults), framework id, name, source, container
    and discovery. Labels, shutdown_grace_period and the rest are not compared. Container and discovery
    are compared whole, their lists in any order (Mesos compares a subset of their fields)."""
    if ("type" in left) != ("type" in right) or left.get("type") != right.get("type"):
        return False
    return (
        id_of(left, "executor_id") == id_of(right, "executor_id")
        and _data(left) == _data(right)
        and _resources(left) == _resources(right)
        and _command_key(left.get("command") or {}) == _command_key(right.get("command") or {})
        and id_of(left, "framework_id") == id_of(right, "framework_id")
        and left.get("name", "") == right.get("name", "")
        and left.get("source", "") == right.get("source", "")
        and _canonical(left.get("container")) == _canonical(right.get("container"))
        and _canonical(left.get("discovery")) == _canonical(right.get("discovery"))
    )


def _data(info: Mapping[str, Any]) -> bytes:
    text = info.get("data", "")
    try:
        return p.decode_bytes(str(text))
    except ValueError:
        return str(text).encode()


def _resources(info: Mapping[str, Any]) -> Any:
    return wire.resources_from_mesos(info.get("resources", []), lenient=True)


def _command_key(command: Mapping[str, Any]) -> tuple[Any, ...]:
    """CommandInfo as its `operator==` sees it: URIs (value, executable, extract, output_file) and
    environment variables (name, value) as multisets, arguments in order, value, user, shell."""
    uris = sorted(
        (str(u.get("value", "")), bool(u.get("executable", False)), bool(u.get("extract", True)),
         str(u.get("output_file", "")))
        for u in command.get("uris", [])
    )
    variables = sorted(
        (str(v.get("name", "")), str(v.get("value", "")))
        for v in (command.get("environment") or {}).get("variables", [])
    )
    return (
        uris, variables, [str(a) for a in command.get("arguments", [])], command.get("value", ""),
        command.get("user", ""), bool(command.get("shell", True)),
    )


def _canonical(message: Any) -> Any:
    """A JSON message with every list sorted (its order not significant), for comparison."""
    if isinstance(message, Mapping):
        return tuple(sorted((str(k), _canonical(v)) for k, v in message.items()))
    if isinstance(message, list):
        return tuple(sorted((_canonical(v) for v in message), key=repr))
    return message


# ---------------------------------------------------------------------------------------- task groups
def validate_group_tasks(
    framework: FrameworkRecord, agent: AgentRecord, tasks: list[dict[str, Any]]
) -> str | None:
    pending: set[str] = set()
    for task in tasks:
        error = validate_task(framework, agent, task, pending)
        if error is None and task.get("container", {}).get("type") == "DOCKER":
            error = "Docker ContainerInfo is not supported on the task"
        if error is not None:
            return f"Task '{id_of(task, 'task_id')}' is invalid: {error}"
        pending.add(id_of(task, "task_id") or "")
    return None


def validate_group_executor(executor: dict[str, Any], tasks: list[dict[str, Any]]) -> str | None:
    """`validation::task::group::internal::validateExecutor`: a typed, non-Docker executor that every
    task names unchanged (if it names one), with the minimum cpus, mem and some disk."""
    executor_id = id_of(executor, "executor_id") or ""
    if "type" not in executor:
        return "'ExecutorInfo.type' must be set"
    if executor.get("type") == "UNKNOWN":
        return "Unknown executor type"
    if executor.get("container", {}).get("type") == "DOCKER":
        return "Docker ContainerInfo is not supported on the executor"
    for task in tasks:
        if "executor" in task and task["executor"] != executor:
            return (
                f"The `ExecutorInfo` of task '{id_of(task, 'task_id')}' is different from executor "
                f"'{executor_id}'"
            )
    resources = wire.resources_from_mesos(executor.get("resources", []), lenient=True)
    if resources.scalar("cpus") < p.MIN_CPUS:
        return f"Executor '{executor_id}' uses less CPUs than the minimum required ({p.MIN_CPUS})"
    if resources.scalar("mem") < p.MIN_MEM:
        return f"Executor '{executor_id}' uses less memory than the minimum required (32MB)"
    if "disk" not in resources.names():
        return f"Executor '{executor_id}' uses no disk"
    return None
