"""Every process of a share task, so that none outlives it (as Mesos kills a whole container).

A plain-command share runs as its own process group in the share host's container; its processes may
leave the group (`setsid`, `setpgid`) or be reparented to init once their parent exits (`nohup x &`).
`TaskProcesses` remembers each process it has seen belong to the task (pid and start time, so a reused
pid is never taken for it): the root, every descendant of a known process, every member of a process
group or session one of them created. `ProcessTracker.refresh()` walks /proc once for all tasks (the
share host calls it every tick and at each task's end); `kill(task, signal)` signals the groups and
sessions the task made and every known process still alive. At the end a last walk also takes any
process whose environment carries the task's marker (MESOS_TASK_ID and MESOS_SANDBOX of its own
sandbox): a daemon that double-forked away between two ticks still inherited them.

    tracker = ProcessTracker()
    tracker.track("t1", root_pid, marker={"MESOS_TASK_ID": "t1", "MESOS_SANDBOX": "/.../tasks/t1"})
    tracker.refresh()                      # each tick
    tracker.pids("t1")                     # what the watchdog counts
    tracker.kill("t1", signal.SIGKILL)     # finish, kill, watchdog verdict
    tracker.forget("t1")
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProcInfo:
    """What /proc/<pid>/stat says of a process."""

    ppid: int
    pgrp: int
    session: int
    start: int  # start time in clock ticks since boot: (pid, start) names one process for ever


def read_stat(pid: int, proc: str = "/proc") -> ProcInfo | None:
    """The process's parent, group, session and start time; None when it is gone."""
    try:
        with open(os.path.join(proc, str(pid), "stat")) as handle:
            text = handle.read()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # state ppid pgrp session tty tpgid flags ... starttime
    if len(fields) < 20:
        return None
    return ProcInfo(int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19]))


def proc_table(proc: str = "/proc") -> dict[int, ProcInfo]:
    """pid -> ProcInfo of every process."""
    table: dict[int, ProcInfo] = {}
    try:
        names = os.listdir(proc)
    except OSError:
        return table
    for name in names:
        if name.isdigit():
            info = read_stat(int(name), proc)
            if info is not None:
                table[int(name)] = info
    return table


@dataclass
class TaskProcesses:
    """The processes known to belong to one task."""

    root: int
    marker: tuple[bytes, ...] = ()
    known: dict[int, int] = field(default_factory=dict)  # pid -> start time
    groups: set[int] = field(default_factory=set)
    sessions: set[int] = field(default_factory=set)

    def alive(self, table: Mapping[int, ProcInfo]) -> set[int]:
        return {pid for pid, start in self.known.items() if pid in table and table[pid].start == start}

    def absorb(self, table: Mapping[int, ProcInfo], own: ProcInfo) -> None:
        """Add what now belongs to the task: descendants of known live processes, members of the groups
        and sessions its processes created (never the share host's own group or session)."""
        if not self.known and self.root in table:
            self.known[self.root] = table[self.root].start
        in_use = {info.pgrp for info in table.values()}, {info.session for info in table.values()}
        self.groups &= in_use[0]  # an empty group's id may be reused by a stranger: forget it
        self.sessions &= in_use[1]
        changed = True
        while changed:
            changed = False
            live = self.alive(table)
            for pid, info in table.items():
                if pid in live or pid == os.getpid():
                    continue
                if info.ppid in live or info.pgrp in self.groups or info.session in self.sessions:
                    self.known[pid] = info.start
                    changed = True
            for pid in self.alive(table):
                info = table[pid]
                if info.pgrp == pid and pid != own.pgrp:
                    self.groups.add(pid)
                if info.session == pid and pid != own.session:
                    self.sessions.add(pid)
        self.groups.discard(own.pgrp)
        self.sessions.discard(own.session)

    def absorb_marked(self, table: Mapping[int, ProcInfo], proc: str) -> None:
        """Add every process whose environment holds the task's marker (readable ones: our uid)."""
        if not self.marker:
            return
        for pid, info in table.items():
            if pid == os.getpid() or pid in self.known:
                continue
            try:
                with open(os.path.join(proc, str(pid), "environ"), "rb") as handle:
                    environ = b"\0" + handle.read()
            except OSError:
                continue
            if all(b"\0" + item + b"\0" in environ for item in self.marker):
                self.known[pid] = info.start


class ProcessTracker:
    """The processes of every tracked task on this host."""

    def __init__(self, proc: str = "/proc") -> None:
        self.proc = proc
        self._tasks: dict[str, TaskProcesses] = {}
        self._lock = threading.Lock()

    def track(self, task_id: str, root: int, marker: Mapping[str, str] | None = None) -> None:
        items = tuple(f"{k}={v}".encode() for k, v in sorted((marker or {}).items()))
        with self._lock:  # a plain share's root leads its own process group (Popen process_group=0)
            self._tasks[task_id] = TaskProcesses(root, items, groups={root})
        self.refresh()

    def forget(self, task_id: str) -> None:
        with self._lock:
            self._tasks.pop(task_id, None)

    def refresh(self, marked: tuple[str, ...] = ()) -> dict[int, ProcInfo]:
        """One /proc walk for every task (and the environment marker of the tasks in `marked`)."""
        table = proc_table(self.proc)
        own = table.get(os.getpid()) or read_stat(os.getpid(), self.proc) or ProcInfo(0, -1, -1, 0)
        with self._lock:
            for task_id, task in self._tasks.items():
                task.absorb(table, own)
                if task_id in marked:
                    task.absorb_marked(table, self.proc)
                    task.absorb(table, own)
        return table

    def tracking(self) -> bool:
        with self._lock:
            return bool(self._tasks)

    def pids(self, task_id: str) -> set[int]:
        """The task's processes alive now (after a fresh walk)."""
        table = self.refresh()
        with self._lock:
            task = self._tasks.get(task_id)
            return task.alive(table) if task is not None else set()

    def pids_of_root(self, root: int) -> set[int] | None:
        """The processes of the task whose root is `root` (the watchdog's view); None: not tracked."""
        with self._lock:
            task_id = next((t for t, task in self._tasks.items() if task.root == root), None)
        return self.pids(task_id) if task_id is not None else None

    def kill(self, task_id: str, signum: int, final: bool = False) -> set[int]:
        """Signal all of the task's processes: its groups, the sessions it made, every known process
        still alive. `final`: also look for processes carrying its environment marker. The pids hit."""
        table = self.refresh((task_id,) if final else ())
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return set()
            alive, groups = task.alive(table), set(task.groups)
        for group in groups:
            if group > 1 and any(info.pgrp == group for info in table.values()):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(group, signum)
        for pid in alive:
            if pid > 1 and pid != os.getpid():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signum)
        return alive
