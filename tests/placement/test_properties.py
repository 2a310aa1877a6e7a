"""Hypothesis properties of a placement cycle on random offers and jobs: an accept never exceeds its
offer, a gang is all or nothing, nothing is given twice, and what was placed is exactly what was debited."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.core.placement import GangPlanner, OfferView, PlacementPolicy, Plan, WaitReason
from mesos_gpu.core.placement.stack import PlacementStack
from mesos_gpu.core.placement.state import CapacityLedger, JobContext
from mesos_gpu.core.resources import Resources, ranges_contains
from tests.placement.strategies import agent_builders, jobs

POLICIES = st.builds(PlacementPolicy, cpu_tasks_on_gpu_agents=st.booleans(),
                     candidate_limit=st.integers(1, 4))


def run_cycle(builders, job_list, policy):
    offers = OfferView(tuple(b.build() for b in builders))
    cycle = GangPlanner(policy).start(offers)
    for job in job_list:
        cycle.place(job)
    return offers, cycle, cycle.finish()


@settings(max_examples=150, deadline=None)
@given(builders=agent_builders(), job_list=jobs(), policy=POLICIES)
def test_cycle_invariants(builders, job_list, policy):
    offers, cycle, result = run_cycle(builders, job_list, policy)
    slots = offers.by_agent()

    # One ACCEPT per agent, with all of that agent's offers, never exceeding them.
    agent_ids = [launch.agent_id for launch in result.accepts]
    assert len(agent_ids) == len(set(agent_ids))
    for launch in result.accepts:
        slot = slots[launch.agent_id]
        assert launch.offer_ids == slot.offer_ids
        used = launch.resources
        assert slot.available.contains(used), f"{used} exceeds {slot.available}"
        # Placing then summing equals the debit.
        assert cycle.remaining(launch.agent_id) + used == slot.available
        # No port given twice, every port from the offer's ranges.
        ports = [port for task in launch.tasks for port in task.ports]
        assert len(ports) == len(set(ports))
        assert ranges_contains(slot.available.ports, [(p, p) for p in ports])
    # Agents nothing was placed on are declined whole and left untouched.
    declined = set(result.declines)
    for slot in offers.slots:
        if slot.agent_id not in agent_ids:
            assert set(slot.offer_ids) <= declined
            assert cycle.remaining(slot.agent_id) == slot.available

    # A gang is all or nothing.
    placed_by_job: dict[str, list[str]] = {}
    for launch in result.accepts:
        for task in launch.tasks:
            placed_by_job.setdefault(task.job_id, []).append(task.task_id)
    for job in job_list:
        outcome = result.outcomes[job.job_id]
        members = sorted(m.task_id for m in job.members)
        if isinstance(outcome, Plan):
            assert sorted(placed_by_job.get(job.job_id, [])) == members
            assert sorted(p.task_id for p in outcome.placements) == members
            check_plan_respects_constraints(job, outcome, slots, policy)
        else:
            assert job.job_id not in placed_by_job
            if isinstance(outcome, WaitReason):
                assert sum(n for _, n in outcome.counts) == len(offers.slots)
                assert f"0/{len(offers.slots)} agents fit" in outcome.summary
                if len(job.members) > 1:
                    assert outcome.members == len(job.members) and len(outcome.placed) < len(job.members)
                    assert outcome.summary.startswith(f"{len(outcome.placed)} of {len(job.members)} members")
                else:
                    assert outcome.summary.startswith(f"0/{len(offers.slots)} agents fit")


def check_plan_respects_constraints(job, plan, slots, policy):
    by_task = {p.task_id: slots[p.agent_id] for p in plan.placements}
    for member in job.members:
        slot = by_task[member.task_id]
        wants_gpus = member.resources.gpus > 0
        if not wants_gpus and not policy.cpu_tasks_on_gpu_agents:
            assert not slot.has_gpus(), f"{member.task_id} is CPU-only but went to GPU agent {slot.agent_id}"
        if wants_gpus:
            assert slot.attributes.get("gpu_health") != "unhealthy"
        for constraint in member.constraints:
            if constraint.operator == "UNIQUE":
                hosts = [by_task[m.task_id].hostname for m in job.members]
                assert len(hosts) == len(set(hosts))
            elif constraint.operator in ("LIKE", "UNLIKE"):
                value = slot.attributes.get(constraint.field)
                assert constraint.allows(value, {})
            elif constraint.operator == "MAX_PER":
                values = [by_task[m.task_id].attributes.get(constraint.field) for m in job.members]
                assert max(values.count(v) for v in values) <= constraint.limit
            elif constraint.operator == "CLUSTER":
                assert len({by_task[m.task_id].attributes.get(constraint.field) for m in job.members}) == 1


@settings(max_examples=60, deadline=None)
@given(builders=agent_builders(), job_list=jobs(max_jobs=3), policy=POLICIES)
def test_cycle_is_deterministic(builders, job_list, policy):
    first = run_cycle(builders, job_list, policy)[2]
    second = run_cycle(builders, job_list, policy)[2]
    assert first == second


@settings(max_examples=150, deadline=None)
@given(builders=agent_builders(), job_list=jobs(max_jobs=1, max_members=1), policy=POLICIES)
def test_bulk_reason_counts_match_the_agent_by_agent_reference(builders, job_list, policy):
    ledger = CapacityLedger([b.build() for b in builders], policy)
    stack = PlacementStack(ledger, policy)
    [job] = job_list
    [member] = job.members
    context = JobContext(job, policy)
    chosen, counts = stack.select(member, context)
    reference = stack.explain(member.needs, context)
    if chosen is None:
        assert dict(counts) == reference
    else:
        assert reference.get("fits", 0) >= 1


@settings(max_examples=100, deadline=None)
@given(builders=agent_builders(), job_list=jobs(), policy=POLICIES)
def test_a_failed_gang_leaves_the_snapshot_exactly_as_it_was(builders, job_list, policy):
    offers = OfferView(tuple(b.build() for b in builders))
    cycle = GangPlanner(policy).start(offers)
    for job in job_list:
        before = {slot.agent_id: cycle.remaining(slot.agent_id) for slot in offers.slots}
        outcome = cycle.place(job)
        after = {slot.agent_id: cycle.remaining(slot.agent_id) for slot in offers.slots}
        if isinstance(outcome, Plan):
            used = Resources.sum(p.resources for p in outcome.placements)
            assert Resources.sum(before.values()) == Resources.sum(after.values()) + used
        else:
            assert before == after
