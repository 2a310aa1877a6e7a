"""Which jobs one state machine event changed, for the snapshot the runtime's worker publishes after it
(`mesos_gpu.driver.snapshot.following`): the records its commands persist, the jobs a submit hands over,
and the jobs it names (a kill, a status update's task), whose views are made again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mesos_gpu.core.state import (
    Command,
    Event,
    JobsSubmitted,
    JobSubmitted,
    KillRequested,
    Persist,
    SchedulerState,
    StatusReceived,
)

from .snapshot import Snapshot


def changed_records(
    event: Event, commands: list[Command], previous: Snapshot
) -> dict[str, Mapping[str, Any]]:
    """Job id -> the new record of each job `event` changed: what each `Persist` of `commands` writes, and
    the record of each job a submit hands over that `previous` did not have (`new_job_record`: its
    `to_dict()`; a job submitted again is the one known already)."""
    records: dict[str, Mapping[str, Any]] = {
        command.job_id: command.record for command in commands if isinstance(command, Persist)}
    for job_id, record in submitted(event).items():
        if job_id not in records and job_id not in previous:
            records[job_id] = record
    return records


def submitted(event: Event) -> dict[str, Mapping[str, Any]]:
    """Job id -> record of each job a submit event hands over (`new_job_record`: its `to_dict()`)."""
    if isinstance(event, JobsSubmitted):
        return {str(each.record["id"]): each.record for each in event.submitted}
    if isinstance(event, JobSubmitted):
        return {str(event.record["id"]): event.record}
    return {}


def named_jobs(state: SchedulerState, event: Event) -> list[str]:
    """The jobs `event` names (a kill, a status update's task): their views are made again."""
    match event:
        case KillRequested():
            return [event.job_id]
        case StatusReceived():
            ref = state.task_index.get(str(event.status.get("task_id", {}).get("value", "")))
            return [ref[0]] if ref is not None else []
    return []
