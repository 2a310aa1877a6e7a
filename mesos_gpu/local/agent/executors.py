"""Executors on the local agent (Mesos' slave.cpp): a custom executor's life: launch it, hold its tasks
until it SUBSCRIBEs, deliver them, forward its UPDATEs and MESSAGEs, heartbeat it, SHUTDOWN it, reap it.
Everything runs on the agent's IOLoop thread. What the containerizer warns of (an image it could not
use: no Docker engine) is said in the messages of the executor's tasks' STARTING and RUNNING, as the
command executor's, and in the agent's own terminal update of a task the executor never reported on.

    lifecycle = ExecutorLifecycle(agent)
    lifecycle.launch(framework_id, executor_info, "task", task_info, [task_info])
    # ... the executor POSTs SUBSCRIBE: lifecycle.subscribe(executor, stream, call) sends LAUNCH
"""

from __future__ import annotations

import logging
import signal
import time
import uuid
from typing import TYPE_CHECKING, Any

from mesos_gpu.core.wire import TERMINAL_TASK_STATES, format_duration, kill_grace_seconds
from mesos_gpu.local.agent.command_executor import with_stderr_tail
from mesos_gpu.local.agent.containerizer import fetch_then, scalar_resource
from mesos_gpu.local.agent.gpus import GpuAllocationError
from mesos_gpu.local.agent.mounts import SecretResolver, secret_environment
from mesos_gpu.local.agent.records import EventStream, Executor, Queued, Task, launch_failed
from mesos_gpu.local.agent.runners import LaunchSpec, Runner
from mesos_gpu.local.agent.sandbox import FetchError, create_sandbox

if TYPE_CHECKING:
    from mesos_gpu.local.agent.agent import Agent

log = logging.getLogger(__name__)


class ExecutorLifecycle:
    """Launches, feeds and reaps the agent's executors (kept in `agent.executors`)."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    # ---------------------------------------------------------------- launch

    def launch(
        self,
        framework_id: str,
        info: dict[str, Any],
        kind: str,
        payload: dict[str, Any],
        task_infos: list[dict[str, Any]],
    ) -> None:
        """Run a task ("task") or task group ("group") on the custom executor `info`, launching it first
        if it is not running; the tasks wait in its queue until it subscribes."""
        agent = self.agent
        executor_id = str(info["executor_id"]["value"])
        executor = agent.executors.get((framework_id, executor_id))
        tasks = []
        for task_info in task_infos:
            task = Task(framework_id, task_info, executor.container_id if executor else "", executor_id)
            agent.tasks[(framework_id, task.task_id)] = task
            tasks.append(task)
        if executor is None:
            self._spawn(framework_id, info, tasks, (kind, payload))
            return
        if executor.state in ("TERMINATING", "TERMINATED"):
            state = "TASK_DROPPED" if agent.has_capability(framework_id, "PARTITION_AWARE") else "TASK_LOST"
            for task in tasks:
                agent.agent_update(
                    framework_id, task, state, "Executor terminating", "REASON_EXECUTOR_TERMINATED"
                )
            return
        for task in tasks:
            holder = f"{executor.container_id}/{task.task_id}"
            try:
                agent.gpus.allocate(holder, scalar_resource(task.info.get("resources", []), "gpus"))
            except GpuAllocationError as exc:
                self._fail_unlaunched(
                    tasks, f"Failed to update container: {exc}", "REASON_CONTAINER_UPDATE_FAILED"
                )
                return
        for task in tasks:
            executor.tasks[task.task_id] = task
        executor.queued.append((kind, payload))
        if executor.stream is not None:
            self._flush_queue(executor, set())

    def _spawn(self, framework_id: str, info: dict[str, Any], tasks: list[Task], queued: Queued) -> None:
        """A new executor container: sandbox, GPUs (its own and its first tasks'), URIs, then its process."""
        agent = self.agent
        info.setdefault("framework_id", {"value": framework_id})
        executor_id = str(info["executor_id"]["value"])
        container_id = str(uuid.uuid4())
        for task in tasks:
            task.container_id = container_id
        try:
            sandbox = create_sandbox(agent.root, framework_id, executor_id, container_id)
        except (OSError, ValueError) as exc:
            self._fail_unlaunched(tasks, f"Failed to create sandbox: {exc}", "REASON_CONTAINER_LAUNCH_FAILED")
            return
        agent.files.attach(sandbox)
        gpus: list[int] = []
        try:
            gpus += agent.gpus.allocate(container_id, scalar_resource(info.get("resources", []), "gpus"))
            for task in tasks:
                gpus += agent.gpus.allocate(
                    f"{container_id}/{task.task_id}", scalar_resource(task.info.get("resources", []), "gpus")
                )
        except GpuAllocationError as exc:
            agent.gpus.release_container(container_id)
            self._fail_unlaunched(
                tasks, f"Failed to launch container: {exc}", "REASON_CONTAINER_LAUNCH_FAILED"
            )
            return
        executor = Executor(framework_id, info, container_id, sandbox)
        executor.tasks = {task.task_id: task for task in tasks}
        executor.queued.append(queued)
        agent.executors[(framework_id, executor_id)] = executor
        env = agent.executor_environment(framework_id, executor_id, sandbox)
        env.update(self._executor_env(framework_id, info))
        spec, runner, executor.warnings = agent.containerizer.launch_spec(
            info, sorted(gpus), sandbox, env, name=f"mesos-{container_id}"
        )
        uris = list(info.get("command", {}).get("uris", []))
        if not uris:
            self._start(executor, spec, runner)
            return

        def fetch_failed(exc: FetchError) -> None:
            message = f"Failed to fetch all URIs for container '{container_id}': {exc}"
            executor.pending_termination = launch_failed(f"Failed to launch container: {message}")
            self.exited(executor, -1)

        # a kill of all its tasks meanwhile shuts it down (TERMINATED, GPUs freed): the fetch does nothing
        executor.fetch = fetch_then(
            sandbox,
            uris,
            then=lambda: self._start(executor, spec, runner),
            failed=fetch_failed,
            wanted=lambda: executor.state == "REGISTERING",
        )

    def _start(self, executor: Executor, spec: LaunchSpec, runner: Runner) -> None:
        """Start the executor's process and its registration timeout."""
        try:   # its SECRET environment variables too (an ExecutorInfo's, as Mesos' containerizer does)
            resolver = SecretResolver(self.agent.config.secrets_dir)
            spec.env.update(secret_environment(executor.info.get("command") or {}, resolver))
            executor.process = runner.start(spec, lambda status: self.exited(executor, status))
        except Exception as exc:
            log.warning("executor %s failed to launch: %s", executor.executor_id, exc)
            executor.sandbox.append_stderr(f"Failed to launch executor: {exc}")
            executor.pending_termination = launch_failed(f"Failed to launch container: {exc}")
            self.exited(executor, -1)
            return
        executor.registration_timer = self.agent.loop.call_later(
            self.agent.config.executor_registration_timeout, self._registration_timeout, executor
        )

    def _executor_env(self, framework_id: str, info: dict[str, Any]) -> dict[str, str]:
        """What a custom executor's environment adds: its own shutdown grace period, and the recovery
        settings when its framework checkpoints."""
        config = self.agent.config
        framework = self.agent.frameworks.get(framework_id, {})
        grace = _shutdown_grace_period(info, config.executor_shutdown_grace_period)
        env = {"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": format_duration(grace)}
        if framework.get("checkpoint"):
            env["MESOS_RECOVERY_TIMEOUT"] = format_duration(config.recovery_timeout)
            env["MESOS_SUBSCRIPTION_BACKOFF_MAX"] = format_duration(config.subscription_backoff_max)
        return env

    def _fail_unlaunched(self, tasks: list[Task], message: str, reason: str) -> None:
        for task in tasks:
            self.agent.agent_update(task.framework_id, task, "TASK_FAILED", message, reason)

    # ---------------------------------------------------------------- kill and shutdown

    def kill_task(self, task: Task, kill_policy: dict[str, Any] | None) -> None:
        """Kill a task of a custom executor: KILL to the executor, or, not delivered yet (the executor
        still fetched, started or registering), drop its launch from the queue with TASK_KILLED for each
        of its tasks, a whole task group as Mesos does (slave.cpp killTask), and shut an executor left
        without tasks down."""
        executor = self.agent.executors.get((task.framework_id, task.executor_id or ""))
        if executor is None:
            return
        if task.delivered:
            event: dict[str, Any] = {"task_id": {"value": task.task_id}}
            if kill_policy:
                event["kill_policy"] = kill_policy
            self._send_event(executor, {"type": "KILL", "kill": event})
            return
        launches = [q for q in executor.queued if task.task_id in _queued_task_ids(q)]
        executor.queued = [q for q in executor.queued if task.task_id not in _queued_task_ids(q)]
        message = "Killed before delivery to the executor"
        killed = [task.task_id]
        if launches and launches[0][0] == "group":
            message = "A task within the task group was killed before delivery to the executor"
            killed = _queued_task_ids(launches[0])
        for task_id in killed:
            victim = executor.tasks.get(task_id)
            if victim is not None and victim.state not in TERMINAL_TASK_STATES:
                self.agent.agent_update(
                    task.framework_id, victim, "TASK_KILLED", message, "REASON_TASK_KILLED_DURING_LAUNCH"
                )
        if not any(t.state not in TERMINAL_TASK_STATES for t in executor.tasks.values()):
            self.shutdown(task.framework_id, executor.executor_id)

    def shutdown(self, framework_id: str, executor_id: str) -> None:
        """The master's SHUTDOWN of one executor; its tasks end TASK_GONE (partition-aware) or TASK_LOST."""
        executor = self.agent.executors.get((framework_id, executor_id))
        if executor is None or executor.state in ("TERMINATING", "TERMINATED"):
            return
        gone = "TASK_GONE" if self.agent.has_capability(framework_id, "PARTITION_AWARE") else "TASK_LOST"
        if executor.pending_termination is None:
            executor.pending_termination = (gone, "REASON_EXECUTOR_TERMINATED", "Executor terminated")
        self.terminate(executor)

    def terminate(self, executor: Executor) -> None:
        """SHUTDOWN to the executor, SIGKILL to its group after its grace period (at once if it never
        subscribed). A DEFAULT executor kills its tasks and ends when they have."""
        if executor.state in ("TERMINATING", "TERMINATED"):
            return
        subscribed = executor.stream is not None
        executor.state = "TERMINATING"
        if executor.default:
            active = [
                t.command for t in executor.tasks.values() if t.command is not None and not t.command.terminal
            ]
            for command in active:
                command.kill(None)
            if not active:
                self.exited(executor, 0)
            return
        self._cancel_timer(executor, "registration_timer")
        if subscribed:
            self._send_event(executor, {"type": "SHUTDOWN"})
            grace = _shutdown_grace_period(executor.info, self.agent.config.executor_shutdown_grace_period)
            executor.shutdown_timer = self.agent.loop.call_later(grace, self._kill, executor)
        else:
            self._kill(executor)

    def stop(self) -> None:
        """The agent stops: SIGKILL every executor's group, end every stream, cancel every timer."""
        for executor in list(self.agent.executors.values()):
            self._cancel_timers(executor)
            if executor.stream is not None:
                executor.stream.close()
            if executor.process is not None:
                executor.process.signal(signal.SIGKILL)

    def _registration_timeout(self, executor: Executor) -> None:
        executor.registration_timer = None
        if executor.state != "REGISTERING":
            return
        timeout = format_duration(self.agent.config.executor_registration_timeout)
        log.warning("executor %s did not register within %s: destroying it", executor.executor_id, timeout)
        message = f"Executor did not register within {timeout}"   # its stderr may say why (stuck)
        executor.pending_termination = (
            "TASK_FAILED",
            "REASON_EXECUTOR_REGISTRATION_TIMEOUT",
            with_stderr_tail(message, executor.sandbox.stderr),
        )
        executor.state = "TERMINATING"
        if executor.process is not None:
            executor.process.signal(signal.SIGKILL)

    def _kill(self, executor: Executor) -> None:
        executor.shutdown_timer = None
        if executor.process is not None and not executor.process.exited:
            executor.process.signal(signal.SIGKILL)
        elif executor.process is None and executor.state != "TERMINATED":
            self.exited(executor, -1)  # never launched (still fetching)

    def exited(self, executor: Executor, wait_status: int) -> None:
        """The executor is gone (reaped, or never started): its open tasks end with its pending
        termination (else TASK_FAILED), its GPUs return, the master hears `executor_exited`."""
        agent = self.agent
        if executor.state == "TERMINATED":
            return
        executor.state = "TERMINATED"
        self._cancel_timers(executor)
        if executor.stream is not None:
            executor.stream.close()
            executor.stream = None
        state, reason, message = executor.pending_termination or (
            "TASK_FAILED",
            "REASON_EXECUTOR_TERMINATED",
            "Executor terminated",
        )
        for task in list(executor.tasks.values()):
            if task.state in TERMINAL_TASK_STATES:
                continue
            said = message
            if task.state == "TASK_STAGING" and executor.warnings:  # never reported on: not said yet
                said = "; ".join([message, *executor.warnings])
            if executor.pending_termination is None:  # it exited by itself: its stderr says why
                said = with_stderr_tail(said, executor.sandbox.stderr)
            agent.agent_update(executor.framework_id, task, state, said, reason)
        agent.gpus.release_container(executor.container_id)
        agent.executors.pop((executor.framework_id, executor.executor_id), None)
        agent.completed_executors.append(executor)
        del agent.completed_executors[:-100]
        if agent.master is not None and executor.framework_id not in agent.removed_frameworks:
            try:
                agent.master.executor_exited(
                    agent.agent_id, executor.framework_id, executor.executor_id, wait_status
                )
            except Exception:
                log.exception("master.executor_exited failed")

    def _cancel_timers(self, executor: Executor) -> None:
        for name in ("registration_timer", "shutdown_timer", "heartbeat_timer"):
            self._cancel_timer(executor, name)

    def _cancel_timer(self, executor: Executor, name: str) -> None:
        timer = getattr(executor, name)
        if timer is not None:
            self.agent.loop.remove_timeout(timer)
        setattr(executor, name, None)

    # ---------------------------------------------------------------- the executor's calls

    def find(self, framework_id: str, executor_id: str) -> Executor | None:
        return self.agent.executors.get((framework_id, executor_id))

    def subscribe(self, executor: Executor, stream: EventStream, call: dict[str, Any]) -> None:
        """A validated SUBSCRIBE: SUBSCRIBED, then the queued tasks (but those the executor already
        has), then its unacknowledged updates as if sent again; SHUTDOWN if it is on its way out."""
        agent = self.agent
        if executor.stream is not None and executor.stream is not stream:
            executor.stream.close()
        executor.stream = stream
        stream.on_close = lambda: self._disconnected(executor, stream)
        if (
            executor.state in ("TERMINATING", "TERMINATED")
            or executor.framework_id in agent.removed_frameworks
        ):
            stream.send({"type": "SHUTDOWN"})
            stream.close()
            return
        executor.state = "RUNNING"
        self._cancel_timer(executor, "registration_timer")
        subscribe = call.get("subscribe", {})
        framework = agent.frameworks.get(executor.framework_id, {"id": {"value": executor.framework_id}})
        subscribed = {
            "executor_info": executor.info,
            "framework_info": framework,
            "agent_info": agent.agent_info(),
            "container_id": {"value": executor.container_id},
        }
        stream.send({"type": "SUBSCRIBED", "subscribed": subscribed})
        unacknowledged = {
            str(t.get("task_id", {}).get("value")) for t in subscribe.get("unacknowledged_tasks", [])
        }
        self._flush_queue(executor, unacknowledged)
        for update in subscribe.get("unacknowledged_updates", []):
            status = update.get("status") if isinstance(update, dict) else None
            if isinstance(status, dict) and "uuid" in status:
                self.update(executor, status)
        self._arm_heartbeat(executor)

    def update(self, executor: Executor, status: dict[str, Any]) -> None:
        """A validated UPDATE: record it (once per uuid), forward it to the master, ACKNOWLEDGE it."""
        status = dict(status)
        uuid_b64 = str(status["uuid"])
        task_id = str(status["task_id"]["value"])
        if uuid_b64 not in executor.recorded_uuids:
            executor.recorded_uuids.add(uuid_b64)
            status["agent_id"] = {"value": self.agent.agent_id}
            status["executor_id"] = {"value": executor.executor_id}
            status.setdefault("timestamp", time.time())
            container_status = dict(status.get("container_status", {}))
            container_status.setdefault("container_id", {"value": executor.container_id})
            status["container_status"] = container_status
            if executor.warnings and status.get("state") in ("TASK_STARTING", "TASK_RUNNING"):
                said = [*executor.warnings, *([status["message"]] if status.get("message") else [])]
                status["message"] = "; ".join(said)   # as a command task's STARTING and RUNNING
            self.agent.record_update(executor.framework_id, status)
        ack = {"type": "ACKNOWLEDGED", "acknowledged": {"task_id": {"value": task_id}, "uuid": uuid_b64}}
        self.agent.loop.add_callback(self._send_event, executor, ack)

    def message_from(self, executor: Executor, data_b64: str) -> None:
        """The executor's MESSAGE, on to the master (its scheduler)."""
        agent = self.agent
        if agent.master is not None and executor.framework_id not in agent.removed_frameworks:
            agent.master.executor_message(
                agent.agent_id, executor.framework_id, executor.executor_id, data_b64
            )

    def message_to(self, framework_id: str, executor_id: str, data_b64: str) -> None:
        """The scheduler's MESSAGE, on to a subscribed executor (dropped otherwise, as Mesos does)."""
        executor = self.agent.executors.get((framework_id, executor_id))
        if executor is None or executor.stream is None:
            log.warning("dropping message for executor %s/%s: not subscribed", framework_id, executor_id)
            return
        self._send_event(executor, {"type": "MESSAGE", "message": {"data": data_b64}})

    def _disconnected(self, executor: Executor, stream: EventStream) -> None:
        if executor.stream is stream:
            executor.stream = None
            self._cancel_timer(executor, "heartbeat_timer")

    def _flush_queue(self, executor: Executor, unacknowledged: set[str]) -> None:
        """LAUNCH / LAUNCH_GROUP every queued task the executor does not report having already."""
        queued, executor.queued = executor.queued, []
        for kind, info in queued:
            if kind == "task":
                task_id = str(info["task_id"]["value"])
                _mark_delivered(executor, [task_id])
                if task_id not in unacknowledged:
                    self._send_event(executor, {"type": "LAUNCH", "launch": {"task": info}})
                continue
            _mark_delivered(executor, [str(t["task_id"]["value"]) for t in info.get("tasks", [])])
            tasks = [t for t in info.get("tasks", []) if str(t["task_id"]["value"]) not in unacknowledged]
            if tasks:
                group = {**info, "tasks": tasks}
                self._send_event(executor, {"type": "LAUNCH_GROUP", "launch_group": {"task_group": group}})

    def _send_event(self, executor: Executor, event: dict[str, Any]) -> None:
        if executor.stream is not None:
            executor.stream.send(event)

    def _arm_heartbeat(self, executor: Executor) -> None:
        self._cancel_timer(executor, "heartbeat_timer")

        def beat() -> None:
            executor.heartbeat_timer = None
            if executor.stream is not None and executor.state == "RUNNING":
                executor.stream.send({"type": "HEARTBEAT"})
                self._arm_heartbeat(executor)

        executor.heartbeat_timer = self.agent.loop.call_later(
            self.agent.config.executor_heartbeat_interval, beat
        )


def _shutdown_grace_period(info: dict[str, Any], default: float) -> float:
    """ExecutorInfo.shutdown_grace_period in seconds, or the agent's `default`."""
    if "shutdown_grace_period" not in info:
        return default
    return kill_grace_seconds({"grace_period": info["shutdown_grace_period"]}, default)


def _mark_delivered(executor: Executor, task_ids: list[str]) -> None:
    for task_id in task_ids:
        task = executor.tasks.get(task_id)
        if task is not None:
            task.delivered = True


def _queued_task_ids(queued: Queued) -> list[str]:
    """The ids of the tasks of a queued launch."""
    kind, info = queued
    if kind == "task":
        return [str(info["task_id"]["value"])]
    return [str(t["task_id"]["value"]) for t in info.get("tasks", [])]
