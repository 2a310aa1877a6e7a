"""The fault soak (issue 17 "A fault soak", issue 20 items 1, 2, 6): set up, fault, drain, check, report.

`run_soak(params, workdir)` starts its own ZooKeeper (the soak stops and restarts it, so not the test
session's), the local cluster (master + 3 agents of 2 simulated GPUs, announced in ZooKeeper),
three `mesos-gpu scheduler` processes and the submitting client; runs the seeded fault schedule;
stops submitting and waits (bounded) for every job to end; then returns the `Report` of figures and
violations, everything it started stopped. Only loopback addresses are used.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesos_gpu.client import ApiError, ClientError
from mesos_gpu.local.cluster import LocalCluster
from mesos_gpu.local.zookeeper import ZooKeeperServer, free_port
from tests.soak.audit import TERMINAL, Audit
from tests.soak.faults import Faults, SoakError
from tests.soak.params import ZOOKEEPER_TICK_MS, SoakParams
from tests.soak.schedulers import SchedulerGroup
from tests.soak.submitter import Submitter

TERMINAL_JOB = {"SUCCEEDED", "FAILED", "KILLED"}
SCHEDULER_ENV = {"MESOS_GPU_HEARTBEAT_TIMEOUT": "5", "MESOS_GPU_NEVER_FITS_AFTER_SECONDS": "0",
                 "MESOS_GPU_CPU_TASKS_ON_GPU_AGENTS": "unrestricted",
                 # share hosts run by this interpreter, lingering briefly (GPUs go share -> whole -> share)
                 "MESOS_GPU_SHARE_HOST_COMMAND": f"{sys.executable} -m isolator.sharehost",
                 "MESOS_GPU_SHARE_LINGER_SECONDS": "8"}
SESSION_VARIABLE = "MESOS_GPU_ZK_SESSION_TIMEOUT"


@dataclass
class Report:
    params: SoakParams
    faults: Faults
    seconds: float
    job_states: dict[str, str] = field(default_factory=dict)  # acknowledged job -> its last state
    stored: list[dict[str, Any]] = field(default_factory=list)  # every job the scheduler lists at the end
    violations: list[str] = field(default_factory=list)
    master: list[str] = field(default_factory=list)   # the master's view when something was stuck

    def rows(self) -> list[tuple[str, str]]:
        f, s, audit = self.faults.figures, self.faults.submitter, self.faults.audit
        takeovers = sorted(f.takeovers)
        lost = [j for j, state in self.job_states.items() if state == "MISSING"]
        stuck = [j for j, state in self.job_states.items() if state not in TERMINAL_JOB | {"MISSING"}]
        return [
            ("run", f"{self.params.name}, seed {self.params.seed}, {self.seconds:.0f} s, scheduler ZooKeeper "
                    f"session {self.params.session_timeout:g} s"),
            ("leader kills (SIGKILL)", str(f.kills)),
            ("leaders paused past their session", str(len(f.pauses))),
            ("calls from woken paused leaders", str(self.woken_calls)),
            ("RESTARTING jobs relaunched after a kill", f"{self.relaunched} of {len(f.relaunch_checks)}"),
            ("ZooKeeper outages", f"{len(f.zookeeper_outages)} ({_span(f.zookeeper_outages)} s)"),
            ("master re-announced after its session ended", f"{_span(f.reannounced_after)} s"),
            ("master restarts", str(f.master_restarts)),
            ("task processes killed", str(f.task_kills)),
            ("jobs acknowledged (2xx)", f"{len(s.acknowledged)} ({len(s.keyed)} with Idempotency-Key)"),
            ("submits given up / 503s / refused connections", f"{s.given_up} / {s.answers.get(503, 0)} / "
                                                              f"{s.unreachable}"),
            ("jobs lost", str(len(lost))),
            ("jobs stuck (not ended)", str(len(stuck))),
            ("task ids launched twice", str(len(self.faults.audit.duplicates()))),
            ("double GPU allocations", str(len(self.faults.audit.double_allocations))),
            ("GPU shares run / peak on one GPU", f"{audit.shares_seen} / {audit.peak_share / 1000:g} GPU"),
            ("GPUs that ran shares / also whole tasks", f"{len(audit.share_gpus)} / "
                                                        f"{len(audit.share_gpus & audit.whole_gpus)}"),
            ("GPU share violations", str(len(audit.share_violations))),
            ("TEARDOWN calls", str(self.faults.audit.count("TEARDOWN"))),
            ("takeover p50 / max", f"{_pct(takeovers, 50):.1f} / {max(takeovers, default=0):.1f} s"
                                   if takeovers else "-"),
            ("violations", str(len(self.violations))),
        ]

    @property
    def woken_calls(self) -> int:
        pauses = self.faults.figures.pauses
        return sum(len(self.faults.audit.calls_from(p.instance, p.woke_at, p.until)) for p in pauses)

    @property
    def relaunched(self) -> int:
        _, launches, _ = self.faults.audit.snapshot()
        return sum(1 for _, task_id in self.faults.figures.relaunch_checks if relaunched(task_id, launches))

    def table(self) -> str:
        width = max(len(k) for k, _ in self.rows())
        lines = [f"  {key:<{width}}  {value}" for key, value in self.rows()]
        lines += [f"  ! {v}" for v in self.violations[:50]]
        lines += [f"  master: {line}" for line in self.master]
        return "fault soak figures:\n" + "\n".join(lines)


def _pct(values: list[float], pct: int) -> float:
    return statistics.median(values) if pct == 50 else values[min(len(values) - 1, len(values) * pct // 100)]


def _span(values: list[float]) -> str:
    return f"{min(values):.1f}-{max(values):.1f}" if values else "-"


def run_soak(params: SoakParams, workdir: Path) -> Report:
    workdir.mkdir(parents=True, exist_ok=True)
    zookeeper = ZooKeeperServer(port=free_port(), workdir=workdir / "zookeeper", tick_ms=ZOOKEEPER_TICK_MS)
    zookeeper.start()
    started = time.monotonic()
    cluster = schedulers = submitter = None
    try:
        cluster = LocalCluster(agents=3, gpus_per_agent=2, workdir=workdir / "cluster",
                               zk_url=f"zk://{zookeeper.hosts}/mesos", heartbeat_interval=1.0,
                               status_update_retry=1.0, allocation_interval=0.2).start()
        audit = Audit()
        audit.install(cluster)
        env = {**SCHEDULER_ENV, SESSION_VARIABLE: f"{params.session_timeout:g}"}
        schedulers = SchedulerGroup(3, f"zk://{zookeeper.hosts}/mesos", f"zk://{zookeeper.hosts}/mesos-gpu",
                                    workdir, env)
        schedulers.start()
        submitter = Submitter(schedulers.urls, params.seed, params.submit_interval)
        faults = Faults(params, cluster, zookeeper, schedulers, audit, submitter, random.Random(params.seed))
        faults.steady()
        submitter.start()
        report = Report(params, faults, 0.0)
        _fault_phase(faults, report)
        submitter.stop()
        _drain(faults, report)
        report.seconds = time.monotonic() - started
        check(report)
        return report
    finally:
        if submitter is not None:
            submitter.stop()
        if schedulers is not None:
            schedulers.close()
        if cluster is not None:
            cluster.stop()
        zookeeper.stop()


def _fault_phase(faults: Faults, report: Report) -> None:
    params = faults.params
    deadline = time.monotonic() + params.fault_seconds
    for kind in params.schedule():
        if time.monotonic() > deadline:
            report.violations.append(f"fault phase bound of {params.fault_seconds:.0f} s reached before "
                                     f"all faults ran (not a product violation; shorten the run)")
            break
        if faults.figures.pauses and faults.figures.pauses[-1].until == float("inf"):
            faults.figures.pauses[-1].until = time.monotonic()
        try:
            faults.run(kind)
            time.sleep(faults.rng.uniform(*params.fault_gap))
        except SoakError as exc:
            report.violations.append(f"{kind}: {exc}")
            faults.steady()
    if faults.figures.pauses and faults.figures.pauses[-1].until == float("inf"):
        faults.figures.pauses[-1].until = time.monotonic()


def _drain(faults: Faults, report: Report) -> None:
    """Wait (bounded) until every acknowledged job and every launched task has ended."""
    deadline = time.monotonic() + faults.params.drain_seconds
    jobs = faults.submitter.jobs()
    while time.monotonic() < deadline:
        report.job_states = _job_states(faults, jobs)
        _, _, tasks = faults.audit.snapshot()
        open_tasks = [t for t, state in tasks.items() if state not in TERMINAL]
        if all(s in TERMINAL_JOB | {"MISSING"} for s in report.job_states.values()) and not open_tasks:
            break
        time.sleep(2)
    if any(s not in TERMINAL_JOB | {"MISSING"} for s in report.job_states.values()):
        try:
            report.master = faults.cluster.call(lambda: master_picture(faults.cluster.master))
        except Exception as exc:   # a diagnosis only: the run's figures stand without it
            report.master = [f"could not be read: {exc!r}"]
    try:
        api = faults.api()
        # The list gives no tasks: each job not SUCCEEDED is read whole (its tasks' states: a stuck one's
        # and a refused launch's, `refused_by_the_master`).
        report.stored = [{"id": j["id"], "name": j["name"], "state": j["state"],
                          "wait_reason": j.get("wait_reason"), "message": j.get("message"),
                          "tasks": [{key: task.get(key) for key in ("task_id", "state", "agent_id")}
                                    for task in j.get("tasks") or ()]}
                         for j in (job if job["state"] == "SUCCEEDED" else api.job(job["id"])
                                   for job in api.jobs())]
    except ClientError as exc:
        report.violations.append(f"the jobs could not be listed after the drain: {exc}")


def _job_states(faults: Faults, jobs: dict[str, str]) -> dict[str, str]:
    states: dict[str, str] = {}
    api = faults.api()
    for job_id in jobs:
        try:
            states[job_id] = str(api.job(job_id)["state"])
        except ApiError as exc:
            states[job_id] = "MISSING" if exc.status == 404 else f"ERROR {exc.status}"
        except ClientError as exc:
            states[job_id] = f"ERROR {exc}"
    return states


def stored_although_refused(stored: list[dict[str, Any]], unambiguous: dict[str, str | None]) -> list[str]:
    """Jobs sent without a key whose failed tries were all 503s or refused connections (`unambiguous`):
    one job each may be `stored` (a 503 must mean "not stored"); a second of the name came of a 503."""
    names: dict[str, list[str]] = {}
    for job in stored:
        names.setdefault(job["name"], []).append(job["id"])
    return [f"stored although answered 503: {name} has jobs {sorted(ids)}, acknowledged {unambiguous[name]}"
            for name, ids in names.items() if name in unambiguous and len(ids) > 1]


def failed_although_finished(job_states: dict[str, str], tasks: dict[str, str]) -> list[str]:
    """Jobs that ended FAILED although every task of their last attempt ended TASK_FINISHED on its agent
    (issue 20 item 6: a task that exits 0 while the master is away is not "unknown")."""
    out = []
    for job_id, state in job_states.items():
        mine = {t: s for t, s in tasks.items() if t.startswith(job_id + ".")}
        if state != "FAILED" or not mine:
            continue
        last = max(int(t.rsplit(".", 1)[1]) for t in mine)
        if all(s == "TASK_FINISHED" for t, s in mine.items() if t.endswith(f".{last}")):
            out.append(f"job {job_id} FAILED although its agents finished every task of attempt {last}")
    return out


def master_picture(master: Any) -> list[str]:
    """What the local master holds when jobs are stuck (read on its loop): each agent's total, used,
    offered and available resources; each framework's connection, suppressed roles, outstanding offers
    (with their agents) and live decline filters (with the seconds left)."""
    now = time.monotonic()
    lines = []
    for agent in sorted(master.agents.values(), key=lambda a: a.agent_id):
        lines.append(f"agent {agent.agent_id}: total {agent.total} used {agent.used} offered {agent.offered} "
                     f"available {agent.available()} executors {len(agent.executors)}")
    for framework in master.frameworks.values():
        offers = [(o, master.allocator.offers.get(o)) for o in sorted(framework.offers)]
        lines.append(f"framework {framework.framework_id}: connected {framework.connected} suppressed "
                     f"{sorted(framework.suppressed_roles)} tasks {len(framework.tasks)} offers "
                     + (", ".join(f"{o} on {r.agent_id if r else '?'}" for o, r in offers) or "-"))
        for agent_id, refusals in sorted(framework.filters.items()):
            lines += [f"  filter on {agent_id}: {refused.resources}, {refused.expires - now:.1f} s left"
                      for refused in refusals]
    return lines


def why(job: dict[str, Any] | None) -> str:
    """What a stuck job's view says of it: its wait reason, message and tasks (for the next diagnosis)."""
    if not job:
        return ""
    tasks = ", ".join(f"{task.get('task_id')} {task.get('state')} on {task.get('agent_id')}"
                      for task in job.get("tasks") or ())
    return f" (wait reason: {job.get('wait_reason') or '-'}; message: {job.get('message') or '-'}; " \
           f"tasks: {tasks or '-'})"


def stuck(job_states: dict[str, str], stored: list[dict[str, Any]]) -> list[str]:
    """The acknowledged jobs not ended at the drain's last pass (`job_states`), each described by one view
    of it: the final listing's (`stored`, read after that pass). A job that ended in between says so: its
    state from the pass beside its message from the listing read as a job RUNNING although it had
    "succeeded: worker-0 finished" (the long soak's rerun of 2026-12-05)."""
    views = {job["id"]: job for job in stored}
    lines = []
    for job_id, state in sorted(job_states.items()):
        if state in TERMINAL_JOB or state == "MISSING":
            continue
        view = views.get(job_id)
        if view is not None and view.get("state") != state:
            lines.append(f"stuck: job {job_id} was {state} at the drain's last pass, {view.get('state')} "
                         f"when listed after it{why(view)}")
        else:
            lines.append(f"stuck: job {job_id} is {state} after the drain{why(view)}")
    return lines


def refused_by_the_master(stored: list[dict[str, Any]]) -> list[str]:
    """Tasks the master refused (TASK_ERROR): the soak submits no invalid task, so each is a launch the
    scheduler got wrong (e.g. a GPU share sent to a share host whose executor had ended)."""
    return [f"refused by the master: task {task.get('task_id')} of job {job['id']} is TASK_ERROR "
            f"({job.get('message')})"
            for job in stored for task in job.get("tasks") or () if task.get("state") == "TASK_ERROR"]


def relaunched(task_id: str, launches: dict[str, int]) -> bool:
    """Whether the attempt of `task_id` or a later attempt of the same task was launched.

    A leader killed after it stored the next attempt but before its LAUNCH reached the master leaves
    that attempt unknown to the master: the next leader's reconciliation answers TASK_UNKNOWN and the
    job is placed again under a new attempt number (persist before launch), which is a relaunch too.
    """
    prefix, _, attempt = task_id.rpartition(".")
    later = (launched.rpartition(".") for launched in launches)
    return any(other == prefix and number.isdigit() and int(number) >= int(attempt)
               for other, _, number in later)


def check(report: Report) -> None:
    """Every violation the records show, appended to `report.violations`."""
    faults, violations = report.faults, report.violations
    audit, figures = faults.audit, faults.figures
    violations += [f"lost: acknowledged job {job_id} does not exist"
                   for job_id, state in sorted(report.job_states.items()) if state == "MISSING"]
    violations += stuck(report.job_states, report.stored)
    _, launches, tasks = audit.snapshot()
    violations += [f"launched twice: task {t}" for t in audit.duplicates()]
    violations += [f"stuck: task {t} is {s} on its agent after the drain" for t, s in tasks.items()
                   if s not in TERMINAL]
    violations += [f"double GPU allocation: {d}" for d in audit.double_allocations]
    violations += [f"GPU share: {v}" for v in audit.share_violations]
    if not audit.shares_seen and any(kind.startswith("share") for kind in faults.submitter.jobs().values()):
        violations.append("no GPU share ran although share jobs were acknowledged (share checks vacuous)")
    if audit.count("TEARDOWN"):
        violations.append(f"{audit.count('TEARDOWN')} TEARDOWN call(s) reached the master")
    for pause in figures.pauses:
        woken = audit.calls_from(pause.instance, pause.woke_at, pause.until)
        if woken:
            kinds = sorted({c.kind for c in woken})
            violations.append(f"woken paused leader {pause.instance} sent {len(woken)} call(s) {kinds}")
    for job_id, task_id in figures.relaunch_checks:
        if not relaunched(task_id, launches):
            violations.append(f"job {job_id} left RESTARTING at a leader kill never launched {task_id}")
    violations += [f"client: {u}" for u in faults.submitter.unexpected]
    violations += [f"stuck: job {j['id']} (never acknowledged) is {j['state']} after the drain{why(j)}"
                   for j in report.stored
                   if j["state"] not in TERMINAL_JOB and j["id"] not in report.job_states]
    violations += stored_although_refused(report.stored, faults.submitter.unambiguous)
    violations += failed_although_finished(report.job_states, tasks)
    violations += refused_by_the_master(report.stored)
    violations += figures.problems

