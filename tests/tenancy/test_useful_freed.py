"""`preempt._useful` checked against `FreedGpus` itself (review 9b, last point of finding 6): on records of
whole-GPU victims and share victims on hosts that may also hold non-victim shares, the victims it leaves
out together free what the whole set frees, each left out frees nothing by leaving, each kept is needed."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from mesos_gpu.core.model import Isolation, JobState, TaskState
from mesos_gpu.core.preempt import _useful
from mesos_gpu.core.preemptoffers import FreedGpus
from mesos_gpu.core.records import JobRecord, MemberRecord
from mesos_gpu.core.sharehosts import ShareHostRecord
from mesos_gpu.core.sharing import ShareGrant
from tests.scheduler.builders import share_job, single_job


def _grant(host_id: str) -> ShareGrant:
    return ShareGrant(host_id, False, Isolation.CAPPED, 250, 1000, 16000)


def _records(kinds: Sequence[str], others: dict[str, int]) -> tuple[dict[str, JobRecord],
                                                                    dict[str, ShareHostRecord]]:
    """Victim v<i>: a running whole-GPU job, or a running share on host a/b/c, which also holds
    `others[host]` shares of jobs that are not victims."""
    jobs: dict[str, JobRecord] = {}
    hosts = {name: ShareHostRecord(name, "S", "h", Isolation.CAPPED, 16000, {"linger_seconds": 30.0}, {}, 0.0)
             for name in "abc"}
    for i, kind in enumerate(kinds):
        job_id = f"v{i}"
        spec = single_job(job_id, gpus=1) if kind == "whole" else share_job(job_id, gpus=0.25)
        (task,) = spec.tasks(job_id)
        share = None if kind == "whole" else {**_grant(kind).to_dict(), "host": kind}
        member = MemberRecord(task.key, 0, f"t-{job_id}", TaskState.RUNNING, "S", "h", share=share)
        jobs[job_id] = JobRecord(job_id, spec, JobState.RUNNING, 0.0, {task.key: member}, attempt=0)
        if kind != "whole":
            hosts[kind].tasks[f"t-{job_id}"] = _grant(kind)
    for name, count in others.items():
        for n in range(count):
            hosts[name].tasks[f"other-{name}-{n}"] = _grant(name)
    return jobs, {name: host for name, host in hosts.items() if host.tasks}


@given(st.lists(st.sampled_from(["whole", "a", "b", "c"]), min_size=1, max_size=8),
       st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(0, 3)))
def test_the_useless_victims_left_out_free_what_the_whole_set_frees(kinds: list[str],
                                                                   others: dict[str, int]) -> None:
    jobs, hosts = _records(kinds, others)
    victims = tuple(jobs)

    def total(chosen: Sequence[str]) -> int:
        return FreedGpus(jobs, hosts).total(chosen)

    whole = total(victims)
    # the records are read as meant: each whole GPU, and each share host all of whose shares are victims
    assert whole == 1000 * (kinds.count("whole") + sum(1 for h in "abc" if h in kinds and not others.get(h)))
    useful = _useful(victims, total)
    assert total(useful) == whole
    for v in set(victims) - set(useful):
        assert total([u for u in victims if u != v]) == whole
    for v in useful:
        assert total([u for u in useful if u != v]) < whole
