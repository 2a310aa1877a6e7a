"""Reading Mesos over HTTP for the API: the master's `GET /state` and an agent's `GET /files/read`.

Logs are read as Mesos serves them (the way `dcos task log` does): the master's state names the
agent (`slaves[].pid` "slave(1)@ip:port") and the task's executor; the agent serves the sandbox under
the virtual path `/frameworks/<F>/executors/<E>/runs/latest`, with the agent's own `GET /state`
(`executors[].directory`) as the fallback when the virtual path is not there.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from mesos_gpu.core.errors import NotFoundError, UnavailableError
from mesos_gpu.core.wire import MasterUrl

JsonDict = dict[str, Any]

#: The most one log read returns (Mesos itself caps a read at 16 pages of 4 KiB).
MAX_LOG_READ = 1 << 20


def http_base(address: str) -> str:
    """`host:port` or `http(s)://host:port[/]` -> `http(s)://host:port`."""
    address = address.strip().rstrip("/")
    return address if "://" in address else f"http://{address}"


def agent_base(pid: str) -> str | None:
    """`slave(1)@10.0.0.5:5051` -> `http://10.0.0.5:5051`."""
    _, at, address = pid.rpartition("@")
    return f"http://{address}" if at and address else None


@dataclass(frozen=True)
class TaskLocation:
    """Where a task's sandbox is: the agent's base URL and the executor that ran the task."""

    agent_url: str
    framework_id: str
    executor_id: str
    agent_id: str
    # The task's own directory inside its executor's sandbox: "" when the executor runs only this task
    # (command tasks, the docker executor); "tasks/<task id>/" for an executor of several tasks (our
    # share host, like Mesos' default executor, which keeps each task's files there).
    task_dir: str = ""


def _framework_tasks(framework: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield from framework.get("tasks", ())
    yield from framework.get("unreachable_tasks", ())
    yield from framework.get("completed_tasks", ())


def locate_task(
    state: Mapping[str, Any], task_id: str, agent_id: str | None, framework_id: str | None
) -> TaskLocation:
    """Find a task's agent and executor in the master's `/state`; NotFoundError when it is not there."""
    executor_id = task_id  # command tasks (and the isolator's executor) use the task id
    found_framework = framework_id
    frameworks = [*state.get("frameworks", ()), *state.get("completed_frameworks", ())]
    for framework in frameworks:
        if framework_id is not None and framework.get("id") != framework_id:
            continue
        for task in _framework_tasks(framework):
            if task.get("id") == task_id:
                executor_id = task.get("executor_id") or task_id
                agent_id = task.get("slave_id") or task.get("agent_id") or agent_id
                found_framework = framework.get("id") or found_framework
                break
    if found_framework is None:
        raise NotFoundError(f"the Mesos master does not know task {task_id}")
    for agent in state.get("slaves", ()):
        if agent.get("id") == agent_id:
            url = agent_base(str(agent.get("pid", "")))
            if url is None and agent.get("hostname") and agent.get("port"):
                url = f"http://{agent['hostname']}:{agent['port']}"
            if url is not None:
                task_dir = "" if executor_id == task_id else f"tasks/{task_id.replace('/', '_')}/"
                return TaskLocation(url, found_framework, executor_id, str(agent_id), task_dir)
    raise NotFoundError(f"agent {agent_id} of task {task_id} is not registered with the Mesos master")


def executor_directory(agent_state: Mapping[str, Any], framework_id: str, executor_id: str) -> str | None:
    """The sandbox directory of an executor in an agent's `/state` (running or completed)."""
    for framework in (*agent_state.get("frameworks", ()), *agent_state.get("completed_frameworks", ())):
        if framework.get("id") != framework_id:
            continue
        for executor in (*framework.get("executors", ()), *framework.get("completed_executors", ())):
            if executor.get("id") == executor_id and executor.get("directory"):
                return str(executor["directory"])
    return None


class MesosReader:
    """Async reads of the master's and agents' HTTP endpoints (on the API's IOLoop)."""

    def __init__(self, master_url: MasterUrl, timeout: float = 5.0) -> None:
        self._master_url = master_url
        self.timeout = timeout

    def master_base(self) -> str:
        url = self._master_url() if callable(self._master_url) else self._master_url
        if not url:
            raise UnavailableError("the Mesos master is not known yet")
        if url.startswith("zk://"):
            raise UnavailableError(f"the API cannot read the Mesos master through ZooKeeper ({url})")
        return http_base(url)

    async def _get_json(self, url: str, what: str) -> Any:
        request = HTTPRequest(url, connect_timeout=self.timeout, request_timeout=self.timeout)
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as exc:
            if exc.code == 404:
                raise NotFoundError(f"{what}: not found") from exc
            raise UnavailableError(f"{what} answered HTTP {exc.code}") from exc
        except OSError as exc:
            raise UnavailableError(f"{what} cannot be reached: {exc}") from exc
        try:
            return json.loads(response.body)
        except ValueError as exc:
            raise UnavailableError(f"{what} did not answer JSON") from exc

    async def master_state(self) -> JsonDict:
        base = self.master_base()
        state = await self._get_json(f"{base}/state", f"the Mesos master at {base}")
        if not isinstance(state, dict):
            raise UnavailableError(f"the Mesos master at {base} answered an unexpected /state")
        return state

    async def read_file(self, agent_url: str, path: str, offset: int, length: int) -> JsonDict:
        query = urllib.parse.urlencode({"path": path, "offset": offset, "length": length})
        body = await self._get_json(f"{agent_url}/files/read?{query}", f"the agent at {agent_url}")
        if not isinstance(body, dict) or not isinstance(body.get("data"), str):
            raise UnavailableError(f"the agent at {agent_url} answered an unexpected /files/read")
        return body

    async def read_sandbox(self, location: TaskLocation, file: str, offset: int, length: int) -> JsonDict:
        """Read `file` ("stdout" / "stderr") of the task's sandbox through the agent's /files/read."""
        file = location.task_dir + file
        virtual = f"/frameworks/{location.framework_id}/executors/{location.executor_id}/runs/latest/{file}"
        try:
            return await self.read_file(location.agent_url, virtual, offset, length)
        except NotFoundError:
            pass
        agent_state = await self._get_json(
            f"{location.agent_url}/state", f"the agent at {location.agent_url}"
        )
        directory = executor_directory(agent_state, location.framework_id, location.executor_id)
        if directory is None:
            raise NotFoundError(
                f"the sandbox of executor {location.executor_id} is gone from agent {location.agent_id}"
            )
        try:
            return await self.read_file(location.agent_url, f"{directory}/{file}", offset, length)
        except NotFoundError:
            raise NotFoundError(
                f"no {file} in the sandbox of {location.executor_id} on agent {location.agent_id}"
            ) from None


# ------------------------------------------------------------------------------------- the cluster view
def _flat_attributes(raw: Any) -> dict[str, Any]:
    """Agent attributes as a flat dict, from /state's flat form or AgentInfo's list form."""
    if isinstance(raw, dict):
        return dict(raw)
    out: dict[str, Any] = {}
    for item in raw or ():
        name = item.get("name")
        if name is None:
            continue
        kind = item.get("type", "TEXT")
        if kind == "SCALAR":
            out[name] = item.get("scalar", {}).get("value")
        elif kind == "TEXT":
            out[name] = item.get("text", {}).get("value")
        else:
            out[name] = item.get(kind.lower())
    return out


def _scalar(resources: Any, name: str) -> float:
    if not isinstance(resources, dict):
        return 0.0
    value = resources.get(name, 0)
    return float(value) if isinstance(value, int | float) else 0.0


def cluster_json(
    state: Mapping[str, Any], master_url: str, gpu_model_attribute: str = "gpu_model"
) -> JsonDict:
    """`GET /v1/cluster`: every agent the master knows, its GPUs (total/used/free, model) and CPUs/mem."""
    agents = []
    models: dict[str, int] = {}
    totals = {"total": 0, "used": 0, "free": 0}
    for agent in sorted(state.get("slaves", ()), key=lambda a: (a.get("hostname", ""), a.get("id", ""))):
        total, used = agent.get("resources", {}), agent.get("used_resources", {})
        attributes = _flat_attributes(agent.get("attributes"))
        gpus_total, gpus_used = int(_scalar(total, "gpus")), int(_scalar(used, "gpus"))
        model = attributes.get(gpu_model_attribute)
        model = str(model) if model is not None and gpus_total else None
        if model is not None:
            models[model] = models.get(model, 0) + gpus_total
        free = max(gpus_total - gpus_used, 0)
        totals["total"] += gpus_total
        totals["used"] += gpus_used
        totals["free"] += free
        agents.append(
            {
                "id": agent.get("id"),
                "hostname": agent.get("hostname"),
                "active": bool(agent.get("active", True)),
                "gpus": {"total": gpus_total, "used": gpus_used, "free": free, "model": model},
                "cpus": {"total": _scalar(total, "cpus"), "used": _scalar(used, "cpus")},
                "mem": {"total": _scalar(total, "mem"), "used": _scalar(used, "mem")},
                "attributes": {k: v for k, v in attributes.items() if isinstance(v, str | int | float)},
            }
        )
    return {
        "master": {
            "url": master_url,
            "version": state.get("version"),
            "leader": state.get("leader") or None,
        },
        "agents": agents,
        "gpus": totals,
        "gpu_models": [{"model": m, "gpus": n} for m, n in sorted(models.items())],
    }
