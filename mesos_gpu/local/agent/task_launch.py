"""Task launch on the local agent: a command task under Mesos' built-in command executor (its own
container), and a task group under the emulated DEFAULT executor (mesos-default-executor: one nested
container per task). Sandbox, GPUs, URIs fetched, secrets and volumes (`local.agent.mounts`), then the
process through the containerizer. A task's
TASK_RUNNING names the GPUs it was given (labels `mesos-gpu/device`, `mesos-gpu/device-index`:
`core.devicelabels`), which Mesos' own executors do not: the scheduler shows them when they are there.

    launcher = TaskLauncher(agent, lifecycle)
    launcher.launch_command_task(framework_id, task_info)
    launcher.launch_default_executor(framework_id, executor_info, task_group_info)
"""

from __future__ import annotations

import functools
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mesos_gpu.core.devicelabels import mesos_labels
from mesos_gpu.core.wire import TERMINAL_TASK_STATES
from mesos_gpu.local.agent.command_executor import CommandTask, CommandTaskConfig
from mesos_gpu.local.agent.containerizer import fetch_then, scalar_resource
from mesos_gpu.local.agent.executors import ExecutorLifecycle
from mesos_gpu.local.agent.gpus import GpuAllocationError
from mesos_gpu.local.agent.mounts import (
    SecretResolver,
    TaskInputError,
    prepare_volumes,
    remove_private,
    secret_environment,
)
from mesos_gpu.local.agent.records import Executor, Task, launch_failed
from mesos_gpu.local.agent.sandbox import FetchError, Sandbox, create_sandbox, create_task_sandbox

if TYPE_CHECKING:
    from mesos_gpu.local.agent.agent import Agent

# A kill before the process started: the agent itself ends a command task (its executor has not
# registered: slave.cpp killTask); a DEFAULT executor's task ends as that executor reports it.
COMMAND_KILLED_BEFORE_START = ("SOURCE_AGENT", "Killed before delivery to the executor")
POD_KILLED_BEFORE_START = ("SOURCE_EXECUTOR", "Killed before its container was launched")


class TaskLauncher:
    """Launches command tasks and DEFAULT-executor task groups; their tasks go into `agent.tasks`,
    a DEFAULT executor into `agent.executors` (its end goes through `lifecycle`)."""

    def __init__(self, agent: Agent, lifecycle: ExecutorLifecycle) -> None:
        self.agent = agent
        self.lifecycle = lifecycle

    # ---------------------------------------------------------------- command tasks

    def launch_command_task(
        self, framework_id: str, info: dict[str, Any], pod: Executor | None = None
    ) -> Task | None:
        """A command task: under the built-in command executor (its own container), or, with `pod`,
        as one task of a DEFAULT executor's group (a nested sandbox `.../runs/<C>/tasks/<T>`)."""
        agent = self.agent
        task_id = str(info["task_id"]["value"])
        container_id = pod.container_id if pod else str(uuid.uuid4())
        task = Task(framework_id, info, container_id, pod.executor_id if pod else None)
        agent.tasks[(framework_id, task_id)] = task
        sandbox = self._sandbox(task, pod)
        if sandbox is None:
            return None
        gpu_holder = f"{container_id}/{task_id}" if pod else container_id
        try:
            gpus = agent.gpus.allocate(gpu_holder, scalar_resource(info.get("resources", []), "gpus"))
        except GpuAllocationError as exc:
            self._fail(task, f"Failed to launch container: {exc}")
            return None
        command = task.command = self._command_task(task, pod, sandbox, gpus, gpu_holder)
        uris = list(info.get("command", {}).get("uris", []))
        start = functools.partial(self._start, task, command, sandbox, gpu_holder)
        if not uris:
            start()
            return task

        def fetch_failed(exc: FetchError) -> None:
            agent.gpus.release(gpu_holder)
            message = f"Failed to fetch all URIs for container '{container_id}': {exc}"
            self._fail(task, f"Failed to launch container: {message}")

        # a kill meanwhile ends the task at once (TASK_KILLED, GPUs freed): its fetch then does nothing
        task.fetch = fetch_then(
            sandbox, uris, then=start, failed=fetch_failed, wanted=lambda: command.launchable
        )
        return task

    def _private(self, task: Task) -> Path:
        """The agent-private directory of a task's secret files (outside its sandbox)."""
        return self.agent.root / "secrets" / task.container_id / task.task_id

    def _start(self, task: Task, command: CommandTask, sandbox: Sandbox, gpu_holder: str) -> None:
        """Resolve the task's secrets and make its volumes available (after its URIs are fetched, so a
        fetched file never lands in a volume), then start its process; fail it when they cannot be."""
        if not command.launchable:
            return
        resolver = SecretResolver(self.agent.config.secrets_dir)
        private = self._private(task)
        spec = command.spec
        try:
            spec.env.update(secret_environment(task.info.get("command") or {}, resolver))
            spec.binds = prepare_volumes(task.info.get("container"), sandbox.directory, private, resolver,
                                         in_docker=spec.image is not None)
        except (TaskInputError, OSError) as exc:
            remove_private(private)
            self.agent.gpus.release(gpu_holder)
            text = str(exc) if isinstance(exc, TaskInputError) else f"volume: {exc.strerror}"
            sandbox.append_stderr(f"Failed to prepare the container: {text}")
            self._fail(task, f"Failed to launch container: {text}")
            return
        command.start()

    def _sandbox(self, task: Task, pod: Executor | None) -> Sandbox | None:
        """The task's sandbox (a nested one in a pod); None after failing the task when it cannot be made."""
        agent = self.agent
        try:
            if pod is None:
                sandbox = create_sandbox(agent.root, task.framework_id, task.task_id, task.container_id)
                agent.files.attach(sandbox)
                return sandbox
            pod.tasks[task.task_id] = task
            return create_task_sandbox(pod.sandbox, task.task_id)
        except (OSError, ValueError) as exc:
            self._fail(task, f"Failed to create sandbox: {exc}")
            return None

    def _command_task(
        self, task: Task, pod: Executor | None, sandbox: Sandbox, gpus: list[int], gpu_holder: str
    ) -> CommandTask:
        """The command executor emulation for `task`, its process not started yet."""
        agent = self.agent
        executor_id = pod.executor_id if pod else task.task_id
        env = agent.executor_environment(task.framework_id, executor_id, sandbox)
        name = f"mesos-{task.container_id}-{task.task_id}" if pod else f"mesos-{task.container_id}"
        spec, runner, warnings = agent.containerizer.launch_spec(
            task.info, gpus, sandbox, env, name=name, task_id=task.task_id
        )

        def terminated(_cmd: CommandTask, _status: int | None) -> None:
            agent.gpus.release_container(gpu_holder)
            remove_private(self._private(task))
            if pod is not None:
                self._pod_task_terminated(pod, task)

        return CommandTask(
            task.info,
            spec,
            runner,
            agent.loop,
            emit=lambda state, message, reason, source: self._command_update(
                task, state, message, reason, source
            ),
            on_terminated=terminated,
            config=CommandTaskConfig(
                kill_grace_period=agent.config.command_kill_grace_period,
                task_killing_state=agent.has_capability(task.framework_id, "TASK_KILLING_STATE"),
                warnings=warnings,
                killed_before_start=COMMAND_KILLED_BEFORE_START if pod is None else POD_KILLED_BEFORE_START,
            ),
        )

    def _command_update(
        self, task: Task, state: str, message: str | None, reason: str | None, source: str
    ) -> None:
        status = self.agent.new_status(task, state, source, message, reason)
        # the command executor's id is the task id; a default executor's tasks carry the pod's id
        status["executor_id"] = {"value": task.executor_id or task.task_id}
        gpus = task.command.spec.gpus if task.command else []
        if state == "TASK_RUNNING" and gpus:   # which GPUs: more than Mesos' command executor says
            status["labels"] = mesos_labels(self.agent.gpus.device_labels(gpus))
        process = task.command.process if task.command else None
        if process is not None and process.pid and task.executor_id is None:
            status["container_status"]["executor_pid"] = process.pid
        self.agent.record_update(task.framework_id, status)

    # ---------------------------------------------------------------- the default executor (task groups)

    def launch_default_executor(self, framework_id: str, info: dict[str, Any], group: dict[str, Any]) -> None:
        """Emulate mesos-default-executor: every task of the group is a command task in a nested
        container; when one fails or is killed the others are killed; the executor ends (status 0)
        once all its tasks are terminal."""
        agent = self.agent
        info.setdefault("framework_id", {"value": framework_id})
        executor_id = str(info["executor_id"]["value"])
        pod = agent.executors.get((framework_id, executor_id))
        tasks_info = list(group.get("tasks", []))
        if pod is not None and pod.state != "RUNNING":
            partition_aware = agent.has_capability(framework_id, "PARTITION_AWARE")
            state = "TASK_DROPPED" if partition_aware else "TASK_LOST"
            for task_info in tasks_info:
                task = Task(framework_id, task_info, pod.container_id, executor_id)
                agent.tasks[(framework_id, task.task_id)] = task
                agent.agent_update(
                    framework_id, task, state, "Executor terminating", "REASON_EXECUTOR_TERMINATED"
                )
            return
        if pod is None:
            pod = self._new_pod(framework_id, info)
        pod.groups.append([str(t["task_id"]["value"]) for t in tasks_info])
        for task_info in tasks_info:
            if pod.pending_termination is not None:
                task = Task(framework_id, task_info, pod.container_id, executor_id)
                agent.tasks[(framework_id, task.task_id)] = task
                pod.tasks[task.task_id] = task
                continue
            self.launch_command_task(framework_id, task_info, pod)
        if pod.pending_termination is not None:
            self.lifecycle.exited(pod, 1 << 8)

    def _new_pod(self, framework_id: str, info: dict[str, Any]) -> Executor:
        """A DEFAULT executor: a sandbox and its own GPUs, no process."""
        agent = self.agent
        executor_id = str(info["executor_id"]["value"])
        container_id = str(uuid.uuid4())
        sandbox = create_sandbox(agent.root, framework_id, executor_id, container_id)
        agent.files.attach(sandbox)
        pod = Executor(framework_id, info, container_id, sandbox, state="RUNNING", default=True)
        agent.executors[(framework_id, executor_id)] = pod
        try:
            agent.gpus.allocate(container_id, scalar_resource(info.get("resources", []), "gpus"))
        except GpuAllocationError as exc:
            pod.pending_termination = launch_failed(f"Failed to launch container: {exc}")
        return pod

    def _pod_task_terminated(self, pod: Executor, task: Task) -> None:
        """A pod task ended: one that did not finish kills the rest of its group; the pod ends with
        its last task."""
        if task.state != "TASK_FINISHED":
            for group in pod.groups:
                if task.task_id in group:
                    for other_id in group:
                        other = pod.tasks.get(other_id)
                        if other is not None and other.command is not None and not other.command.terminal:
                            other.command.kill(None)
        if pod.state != "TERMINATED" and all(t.state in TERMINAL_TASK_STATES for t in pod.tasks.values()):
            self.lifecycle.exited(pod, 0)

    def _fail(self, task: Task, message: str) -> None:
        """TASK_FAILED for a task whose container could not launch."""
        self.agent.agent_update(
            task.framework_id, task, "TASK_FAILED", message, "REASON_CONTAINER_LAUNCH_FAILED"
        )
