"""When a quarantined record no recovery loads (marker `skip`) counts its age from, for retention: its
finished time, else its marker's time, else when this process first saw it (kept from term to term), and
which of the leader's skip records the retention policy names."""

from __future__ import annotations

from typing import Any

import pytest

from mesos_gpu.core.retention import RetentionPolicy, expired
from mesos_gpu.driver.quarantine import SkippedRecords, age_from
from mesos_gpu.driver.retention import skipped_jobs
from mesos_gpu.store.base import Versioned

MARKED = {"at": 50.0, "failures": 2, "was": "PENDING", "skip": True}


@pytest.mark.parametrize(("data", "since"), [
    ({"finished_at": 40.0, "quarantined": MARKED}, 40.0),                 # its finished time
    ({"finished_at": None, "quarantined": MARKED}, 50.0),                 # else its marker's time
    ({"finished_at": "soon", "quarantined": {"skip": True}}, 99.0),       # else first seen
    ({"finished_at": float("nan"), "quarantined": {"at": True, "skip": True}}, 99.0),
    ({"quarantined": {"at": 7, "skip": True}}, 7.0),
])
def test_the_age_of_a_skip_record_counts_from_its_own_times_else_from_first_seen(
        data: dict[str, Any], since: float) -> None:
    assert age_from(data, 99.0) == since


def record(job_id: str, version: int = 0, **fields: Any) -> Versioned[dict[str, Any]]:
    return Versioned(job_id, {"id": job_id, "state": "FAILED", "quarantined": {"skip": True}, **fields},
                     version)


def test_a_record_without_times_keeps_the_time_this_process_first_saw_it_from_term_to_term() -> None:
    known = SkippedRecords()
    known.listed([record("legacy"), record("dated", finished_at=5.0, submitted_at=1.0)], now=100.0)
    known.listed([record("legacy", version=1), record("new")], now=200.0)     # a later term's listing
    assert {entry.record.id: (entry.since, entry.record.version) for entry in known} == {
        "legacy": (100.0, 1), "new": (200.0, 0)}       # "dated" is no longer stored: forgotten
    known.wrote(record("marked", version=3, finished_at=150.0, submitted_at=140.0), now=210.0)
    known.forget(["new"])
    assert sorted(entry.record.id for entry in known) == ["legacy", "marked"] and len(known) == 2


def test_the_policy_names_the_skip_records_past_the_age_limit_and_keeps_recent_submits() -> None:
    known = SkippedRecords()
    known.listed([record("old", finished_at=0.0, submitted_at=0.0),
                  record("young", finished_at=90_000.0, submitted_at=0.0),
                  record("just-submitted", finished_at=0.0, submitted_at=99_000.0)], now=1.0)
    policy = RetentionPolicy(max_age_seconds=86_400.0, max_finished=None)
    assert expired(skipped_jobs(known), policy, now=100_000.0) == ["old"]
