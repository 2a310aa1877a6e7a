"""What each tenant's jobs hold and ask for, in thousandths of a GPU (pure): the state machine's side
of tenant admission (`mesos_gpu.core.tenancyadmit`).

A running or launching task holds its GPUs: whole GPUs as its spec asks, a GPU share the fraction its
share host granted (`MemberRecord.share["gpus"]`). A job ready to place asks for `JobSpec.total_gpus`
(an elastic share counts its largest size: admission never lets placement take more than was admitted).
A finished job's members still being killed hold their GPUs until Mesos says they ended.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mesos_gpu.core.model import TaskKey
from mesos_gpu.core.records import JobRecord
from mesos_gpu.core.tenancy import milli_gpus
from mesos_gpu.core.tenancyadmit import Waiting

__all__ = ["member_gpus", "tenant_usage", "waiting_of"]


def member_gpus(job: JobRecord, key: TaskKey) -> int:
    """Thousandths of a GPU member `key` of `job` holds while active."""
    share = job.members[key].share
    if share is not None:
        return milli_gpus(float(share.get("gpus", 0)))
    spec = job.spec
    if spec.roles:
        return milli_gpus(spec.roles[key.role].gpus)
    return milli_gpus(spec.resources.gpus) if spec.resources is not None else 0


def tenant_usage(jobs: Mapping[str, JobRecord], active: Iterable[tuple[str, TaskKey]]) -> dict[str, int]:
    """Per tenant, the thousandths held by the `active` members ((job id, key), e.g. the state
    machine's task index); tenants holding none are left out."""
    usage: dict[str, int] = {}
    for job_id, key in active:
        job = jobs[job_id]
        gpus = member_gpus(job, key)
        if gpus:
            tenant = job.spec.tenant
            usage[tenant] = usage.get(tenant, 0) + gpus
    return usage


def waiting_of(job: JobRecord) -> Waiting:
    """A job ready to place as admission sees it: its id, tenant and GPUs asked for in all."""
    return Waiting(job.id, job.spec.tenant, milli_gpus(job.spec.total_gpus))
