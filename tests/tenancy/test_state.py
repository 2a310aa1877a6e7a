"""The state machine with tenants: jobs beyond their quota are not offered to the planner and say why;
idle quota is borrowed; the borrowable GPUs are split fairly; a change applies at the next cycle."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mesos_gpu.core.declinegrid import aligned_refuse
from mesos_gpu.core.model import JobState
from mesos_gpu.core.placement import CyclePlan
from mesos_gpu.core.sharing import ShareHostView
from mesos_gpu.core.state import Accept, Decline, GangRequest, Revive
from mesos_gpu.core.tenancy import TenantsConfig
from tests.scheduler.builders import first_fit_planner, offer, share_job, single_job
from tests.scheduler.test_state import Harness, of_type


class Tenanted(Harness):
    """A harness whose planner records the jobs it is offered, with tenants' quotas."""

    def __init__(self, document: Mapping[str, Any] | None) -> None:
        super().__init__()
        self.config = None if document is None else TenantsConfig.of(document)
        self.state.tenancy = lambda: self.config
        self.offered: list[list[str]] = []
        self.state.planner = self._planner

    def _planner(self, requests: Sequence[GangRequest], offers: Sequence[Mapping[str, Any]],
                 hosts: Sequence[ShareHostView] = ()) -> CyclePlan:
        self.offered.append([request.job_id for request in requests])
        return first_fit_planner(requests, offers, hosts)

    def launched(self, commands: list[Any]) -> list[str]:
        return sorted(info["task_id"]["value"].split(".")[0] for accept in of_type(commands, Accept)
                      for info in accept.task_infos)


TWO_TEAMS = {"tenants": {"team-a": {"quota": 2}, "team-b": {"quota": 2}}}


def test_a_job_beyond_its_quota_is_not_offered_to_the_planner_and_says_why() -> None:
    h = Tenanted({"tenants": {"team-a": {"quota": 2, "may_borrow": False}}})
    h.subscribe()
    h.submit("a1", single_job("a1", gpus=2, tenant="team-a"))
    h.submit("a2", single_job("a2", gpus=1, tenant="team-a"))
    commands = h.offers(offer("S1", gpus=4))
    assert h.launched(commands) == ["a1"]
    assert h.offered == [["a1"]]
    assert h.job("a2").wait_reason == "team-a uses 2 of its 2 GPUs; the job needs 1; team-a may not borrow"
    assert h.job("a2").state is JobState.PENDING
    # the GPUs a1 holds count while it runs; once it ends, a2 is admitted at the next offers
    h.run_all("a1")
    h.offers(offer("S1", gpus=2))
    assert h.offered[-1] == [] or "a2" not in h.offered[-1]
    h.update(h.job("a1").members[next(iter(h.job("a1").members))].task_id, "TASK_FINISHED")
    commands = h.offers(offer("S1", gpus=4))
    assert h.launched(commands) == ["a2"] and h.job("a2").wait_reason == ""


def test_offers_are_declined_with_the_short_filter_while_jobs_are_held_and_no_revive_loops() -> None:
    h = Tenanted({"tenants": {"team-a": {"quota": 0, "may_borrow": False}}})
    h.subscribe()
    h.submit("a1", single_job("a1", gpus=1, tenant="team-a"))
    for _ in range(3):
        commands = h.offers(offer("S1", gpus=4))
        (decline,) = of_type(commands, Decline)
        assert decline.refuse_seconds == aligned_refuse(h.now, h.state.refuse_seconds_pending)
        assert not of_type(commands, Revive)
    assert h.offered == []      # never offered to the planner
    assert "team-a uses 0 of its 0 GPUs" in h.job("a1").wait_reason


def test_idle_quota_of_another_tenant_is_borrowed() -> None:
    h = Tenanted(TWO_TEAMS)
    h.subscribe()
    for name in ("a1", "a2"):
        h.submit(name, single_job(name, gpus=2, tenant="team-a"))
    commands = h.offers(offer("S1", gpus=4))
    assert h.launched(commands) == ["a1", "a2"]     # a2 on team-b's idle 2 GPUs
    h.run_all("a1")
    h.run_all("a2")
    assert h.state.tenant_usage() == {"team-a": 4000}
    (row,) = [s for s in h.state.tenant_summaries(h.now) if s.name == "team-a"]
    assert row.borrowed == 2000


def test_the_lenders_own_waiting_job_is_not_lent_away() -> None:
    h = Tenanted(TWO_TEAMS)
    h.subscribe()
    h.submit("b1", single_job("b1", gpus=2, tenant="team-b"))
    h.submit("a1", single_job("a1", gpus=2, tenant="team-a"))
    h.submit("a2", single_job("a2", gpus=2, tenant="team-a"))
    commands = h.offers(offer("S1", gpus=8))
    assert h.launched(commands) == ["a1", "b1"]
    assert h.job("a2").wait_reason == "team-a uses 2 of its 2 GPUs; borrowing: 0 idle; the job needs 2 more"


def test_two_borrowers_split_the_idle_quota_fairly() -> None:
    h = Tenanted({"tenants": {"team-a": {"quota": 0}, "team-b": {"quota": 0}, "idle": {"quota": 4}}})
    h.subscribe()
    for i in range(4):
        h.submit(f"a{i}", single_job(f"a{i}", gpus=1, tenant="team-a"))
    for i in range(4):
        h.submit(f"b{i}", single_job(f"b{i}", gpus=1, tenant="team-b"))
    commands = h.offers(offer("S1", gpus=8))
    assert h.launched(commands) == ["a0", "a1", "b0", "b1"]


def test_gpu_shares_count_the_fraction_granted() -> None:
    h = Tenanted({"tenants": {"team-a": {"quota": 0.5, "may_borrow": False}}})
    h.subscribe()
    for name in ("s1", "s2", "s3"):
        h.submit(name, share_job(name, gpus=0.25, tenant="team-a"))
    commands = h.offers(offer("S1", gpus=1, gpu_memory=16000))
    assert h.launched(commands) == ["s1", "s2"]
    assert h.state.tenant_usage() == {"team-a": 500}
    assert h.job("s3").wait_reason.startswith("team-a uses 0.5 of its 0.5 GPUs")


def test_a_change_of_quotas_applies_at_the_next_cycle() -> None:
    h = Tenanted({"tenants": {"team-a": {"quota": 1, "may_borrow": False}}})
    h.subscribe()
    h.submit("a1", single_job("a1", gpus=2, tenant="team-a"))
    assert h.launched(h.offers(offer("S1", gpus=4))) == []
    h.config = TenantsConfig.of({"tenants": {"team-a": {"quota": 2}}})
    assert h.launched(h.offers(offer("S1", gpus=4))) == ["a1"]


def test_without_quotas_every_job_is_offered_as_before() -> None:
    for document in (None,):
        h = Tenanted(document)
        h.subscribe()
        for i in range(3):
            h.submit(f"j{i}", single_job(f"j{i}", gpus=2, tenant="team-a"))
        assert h.launched(h.offers(offer("S1", gpus=8))) == ["j0", "j1", "j2"]
        assert {s.name: s.used for s in h.state.tenant_summaries(h.now)} == {"team-a": 6000}
