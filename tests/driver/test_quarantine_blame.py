"""Review 9b, findings 1, 2 and 6 (pure): only the jobs at fault are quarantined (a batch-mate of the
poison job is not), a record the state machine fails on even FAILED is marked `skip` so that no later term
(on any process) resigns on it again, and a record failing only at recovery is quarantined at the second
failed recovery. Each test failed on a7406c3."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.driver.quarantine import (
    MARKER,
    StoredFailures,
    blame,
    quarantined,
    recover_quarantining,
    skipped,
)
from mesos_gpu.store.base import Versioned
from tests.driver.fakes import Store


def _store(*ids: str) -> Store:
    store = Store()
    store.create_many([(job_id, {"id": job_id, "state": "PENDING", "message": ""}) for job_id in ids])
    return store


def poisoned_by(bad: Collection[str], *, even_failed: bool = False, calls: list[list[str]] | None = None
                ) -> Any:
    """A recovery that raises when a record in `bad` is present (unless FAILED, or `even_failed`)."""
    def recover(records: Sequence[Versioned[dict[str, Any]]]) -> None:
        if calls is not None:
            calls.append([record.id for record in records])
        if any(r.id in bad and (even_failed or r.data["state"] != "FAILED") for r in records):
            raise RuntimeError("the state machine fails on a bad record")
    return recover


def test_a_healthy_job_stored_in_the_same_batch_as_the_poison_one_is_not_marked_failed() -> None:
    failures = StoredFailures()
    failures.failed(["bad", "good"])          # _take_stored: one group-commit batch, the state machine raised
    store = _store("old", "bad", "good")
    recover_quarantining(poisoned_by({"bad"}), store.list(), failures, store, 5.0)
    assert store.get("bad").data["state"] == "FAILED"
    assert store.get("bad").data[MARKER]["was"] == "PENDING" and not skipped(store.get("bad").data)
    assert store.get("good").data["state"] == "PENDING" and MARKER not in store.get("good").data
    assert store.get("old").version == 0 and failures.counts == {}


def test_after_the_even_failed_fallback_no_later_term_resigns_on_it_on_any_process() -> None:
    failures = StoredFailures()
    failures.failed(["bad"])
    store = _store("old", "bad")
    recover = poisoned_by({"bad"}, even_failed=True)
    recover_quarantining(recover, store.list(), failures, store, 5.0)      # this term: quarantined
    assert skipped(store.get("bad").data) and store.get("bad").data["state"] == "FAILED"
    calls: list[list[str]] = []
    recover_quarantining(poisoned_by({"bad"}, even_failed=True, calls=calls), store.list(), failures, store,
                         6.0)                                               # the next term: no resign
    recover_quarantining(recover, store.list(), StoredFailures(), store, 7.0)   # another process: none
    assert calls == [["old"]] and store.get("bad").version == 2    # one recovery, nothing written again


def test_a_record_failing_only_at_recovery_is_quarantined_at_the_second_failed_recovery() -> None:
    failures = StoredFailures()     # no failed submit seen by this process (e.g. it restarted)
    store = _store("a", "b", "bad", "c")
    with pytest.raises(RuntimeError):
        recover_quarantining(poisoned_by({"bad"}), store.list(), failures, store, 5.0)   # resign once
    assert store.get("bad").data["state"] == "PENDING"
    recover_quarantining(poisoned_by({"bad"}), store.list(), failures, store, 6.0)
    assert [r.id for r in store.list() if r.data["state"] == "FAILED"] == ["bad"]


def test_past_the_trial_bound_nothing_is_written_and_the_term_resigns() -> None:
    bad = {f"j{i:02d}" for i in range(0, 40, 2)}      # 20 culprits among 40: more than 32 trials
    ids = sorted(bad | {f"j{i:02d}" for i in range(1, 40, 2)})
    failures = StoredFailures()
    failures.failed(ids)
    store = _store(*ids)
    with pytest.raises(RuntimeError):
        recover_quarantining(poisoned_by(bad), store.list(), failures, store, 5.0)
    assert all(record.version == 0 for record in store.list())


def test_an_old_record_without_the_marker_loads_and_a_second_quarantine_keeps_what_it_was() -> None:
    old = {"id": "a", "state": "RUNNING", "message": "", "finished_at": None}
    assert not skipped(old)
    once = quarantined(old, 2, 5.0)
    twice = quarantined(once, 3, 6.0, skip=True)
    assert once[MARKER] == {"at": 5.0, "failures": 2, "was": "RUNNING", "skip": False}
    assert twice[MARKER]["was"] == "RUNNING" and skipped(twice) and twice["finished_at"] == 5.0


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 300), data=st.data())
def test_blame_finds_exactly_the_culprits_among_the_suspects_and_one_within_the_bound(
        n: int, data: st.DataObject) -> None:
    ids = [f"j{i:03d}" for i in range(n)]
    suspects = data.draw(st.sets(st.sampled_from(ids), min_size=1))
    culprits = data.draw(st.sets(st.sampled_from(sorted(suspects)), min_size=1, max_size=3))
    records = [Versioned(job_id, {"state": "PENDING"}, 0) for job_id in ids]
    calls: list[list[str]] = []
    found = blame(poisoned_by(culprits, calls=calls), records, suspects, max_trials=10_000)
    assert found == culprits
    assert len(calls) <= 1 + 2 * len(culprits) * max(1, len(suspects).bit_length())
    outside = set(ids) - suspects
    assert blame(poisoned_by(culprits | outside), records, suspects) is None or not outside
