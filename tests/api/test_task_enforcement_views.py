"""Task views say what is in effect for a share (the share host's own words, `enforced.in_effect`),
state nothing about isolation for a task without GPUs (`enforced: null`), and job summaries show an
elastic share as the range it is (`gpus_text`), not as a whole GPU."""

from __future__ import annotations

from typing import Any

import pytest

from mesos_gpu.api import views
from mesos_gpu.core.model import Isolation
from mesos_gpu.core.sharing import ShareGrant, statement
from tests.api.test_share_views import GANG, GRANT, view_of

IN_EFFECT = "memory NOT enforced: NVML reports no per-process memory here"


def tasks_of(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {task["name"]: task for task in views.tasks_json(view)}


def test_a_share_task_view_says_what_its_share_host_reported_in_effect() -> None:
    share = {**GRANT.to_dict(), "device": "GPU-1", "enforcement": IN_EFFECT}
    view = view_of(GANG, {"worker-0": {"state": "TASK_RUNNING", "share": share}})
    tasks = tasks_of(view)
    assert tasks["worker-0"]["share"]["enforcement"] == IN_EFFECT
    assert tasks["worker-0"]["enforced"] == {**statement(Isolation.MPS), "in_effect": IN_EFFECT}
    # not known yet (not running, or a share host that does not say): the level's statement only
    assert tasks["worker-1"]["enforced"] == statement(Isolation.MPS)
    waiting = view_of(GANG, {"worker-0": {"share": {**GRANT.to_dict(), "device": None, "enforcement": None}}})
    assert "in_effect" not in tasks_of(waiting)["worker-0"]["enforced"]


def test_a_task_without_gpus_states_no_isolation_enforced() -> None:
    tasks = tasks_of(view_of(GANG))
    evaluator = tasks["evaluator-0"]
    assert (evaluator["gpus"], evaluator["isolation"], evaluator["enforced"]) == (0, "exclusive", None)
    assert tasks["chief-0"]["enforced"] == statement(Isolation.EXCLUSIVE)
    single = tasks_of(view_of({"name": "cpu", "command": "true"}))["task-0"]
    assert (single["isolation"], single["enforced"], single["share"]) == ("exclusive", None, None)


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    return views.job_summary(view_of(doc))


@pytest.mark.parametrize(
    ("doc", "gpus", "text"),
    [
        ({"gpus": {"min": 0.3, "max": 1}}, 1, "0.3-1 (share)"),
        ({"gpus": 1}, 1, "1"),
        ({"gpus": 0}, 0, "0"),
        ({}, 0, "0"),
        ({"gpus": 0.25}, 0.25, "0.25 (share)"),
        ({"roles": {"worker": {"instances": 4, "gpus": 0.25}}}, 1, "1 (4 shares)"),
        ({"roles": {"chief": {"gpus": 2}, "worker": {"instances": 2, "gpus": {"min": 0.3, "max": 0.5}}}},
         3, "2 + 0.6-1 (2 shares)"),
    ],
)
def test_a_job_summary_shows_shares_and_elastic_ranges_as_they_are(doc: dict[str, Any], gpus: Any,
                                                                   text: str) -> None:
    job = summary({"name": "j", "command": "true", **doc})
    assert (job["gpus"], job["gpus_text"]) == (gpus, text)


def test_the_full_job_view_carries_the_same_text() -> None:
    view = view_of(GANG)
    text = views.job_summary(view)["gpus_text"]
    assert views.job_json(view)["gpus_text"] == text == "1 + 0.9-1.5 (3 shares)"


def test_a_mig_grant_reported_in_effect_rides_along() -> None:
    grant = ShareGrant("h", False, Isolation.MIG, 285, 20480, 81920, mig_index=1, mig_profile="2g.20gb")
    share = {**grant.to_dict(), "device": "MIG-1", "enforcement": "MIG instance 2g.20gb (hardware)"}
    doc = {"name": "m", "command": "true", "gpus": 0.25, "isolation": "mig"}
    task = tasks_of(view_of(doc, {"task-0": {"state": "TASK_RUNNING", "share": share}}))["task-0"]
    assert task["enforced"]["in_effect"] == "MIG instance 2g.20gb (hardware)"
    assert task["enforced"]["level"] == "mig"
