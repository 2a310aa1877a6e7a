"""The local agent's HTTP server: its routes, its own endpoints (`GET /state`, `/files/read`, `/version`;
src/slave/http.cpp, src/files/files.cpp) and the `/state` rendering. The executor API is in executor_api.

    server = httpserver.HTTPServer(agent_application(agent))
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tornado import web

from mesos_gpu.core.wire import TERMINAL_TASK_STATES
from mesos_gpu.local.agent.executor_api import JSON_TYPE, AgentHandler, ExecutorApiHandler
from mesos_gpu.local.agent.records import Executor, Task
from mesos_gpu.local.agent.sandbox import FileReadError
from mesos_gpu.local.protocol import MESOS_VERSION

if TYPE_CHECKING:
    from mesos_gpu.local.agent.agent import Agent


def agent_application(agent: Agent) -> web.Application:
    """The agent's routes: the v1 executor API, sandbox files, version and state."""
    return web.Application(
        [
            (r"/api/v1/executor", ExecutorApiHandler, {"agent": agent}),
            (r"/files/read(?:\.json)?", FilesReadHandler, {"agent": agent}),
            (r"/version", VersionHandler),
            (r"/state(?:\.json)?", StateHandler, {"agent": agent}),
        ],
        compress_response=False,
    )


def agent_state(agent: Agent) -> dict[str, Any]:
    """GET /state: this agent's resources, frameworks, executors and tasks (Mesos' shape, trimmed).
    A command task shows as its own executor (the command executor), as in Mesos."""
    frameworks: dict[str, dict[str, Any]] = {}

    def framework_entry(framework_id: str) -> dict[str, Any]:
        if framework_id not in frameworks:
            info = agent.frameworks.get(framework_id, {})
            frameworks[framework_id] = {"id": framework_id, "name": info.get("name", ""), "executors": []}
        return frameworks[framework_id]

    for executor in agent.executors.values():
        framework_entry(executor.framework_id)["executors"].append(_executor_state(agent, executor))
    for task in agent.tasks.values():
        if task.command is not None and task.executor_id is None:
            framework_entry(task.framework_id)["executors"].append(_command_executor_state(agent, task))
    return {
        "id": agent.agent_id,
        "pid": agent.pid(),
        "hostname": agent.hostname,
        "version": MESOS_VERSION,
        "resources": agent.resources(),
        "attributes": agent.attributes(),
        "gpus": [
            {"index": d.index, "uuid": d.uuid, "model": d.model, "simulated": d.simulated}
            for d in agent.gpus.devices
        ],
        "frameworks": list(frameworks.values()),
    }


def _executor_state(agent: Agent, executor: Executor) -> dict[str, Any]:
    return {
        "id": executor.executor_id,
        "container": executor.container_id,
        "directory": str(executor.sandbox.directory),
        "state": executor.state,
        "resources": executor.info.get("resources", []),
        "gpus": agent.gpus.held(executor.container_id),
        "tasks": [_task_state(t) for t in executor.tasks.values()],
    }


def _command_executor_state(agent: Agent, task: Task) -> dict[str, Any]:
    assert task.command is not None
    return {
        "id": task.task_id,
        "container": task.container_id,
        "directory": str(task.command.spec.cwd),
        "state": "TERMINATED" if task.state in TERMINAL_TASK_STATES else "RUNNING",
        "resources": task.info.get("resources", []),
        "gpus": agent.gpus.held(task.container_id),
        "tasks": [_task_state(task)],
    }


def _task_state(task: Task) -> dict[str, Any]:
    return {
        "id": task.task_id,
        "name": task.info.get("name", ""),
        "framework_id": task.framework_id,
        "executor_id": task.executor_id or "",
        "state": task.state,
        "resources": task.info.get("resources", []),
    }


class FilesReadHandler(AgentHandler):
    """GET /files/read?path=&offset=&length= for sandbox files, as Mesos' FilesProcess serves it."""

    def get(self) -> None:
        args = {k: self.get_query_argument(k, None) for k in ("path", "offset", "length")}
        try:
            body = self.agent.files.read(args["path"], args["offset"], args["length"])
        except FileReadError as exc:
            return self.reply(exc.status, exc.text)
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(json.dumps(body))


class VersionHandler(web.RequestHandler):
    """GET /version: Mesos' version JSON."""

    def get(self) -> None:
        self.set_header("Content-Type", JSON_TYPE)
        version = {
            "version": MESOS_VERSION,
            "build_date": "",
            "build_time": 0,
            "build_user": "mesos-gpu",
            "git_sha": "",
        }
        self.finish(json.dumps(version))


class StateHandler(AgentHandler):
    """GET /state (and /state.json)."""

    def get(self) -> None:
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(json.dumps(agent_state(self.agent)))
