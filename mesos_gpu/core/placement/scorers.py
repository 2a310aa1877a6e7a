"""Scorers (pure): each rates a feasible agent for a task in [0, 1], or None when it does not apply.

The stack combines the applicable ones as a weighted mean, so adding a scorer needs no retuning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from mesos_gpu.core.placement.demand import TaskDemand
from mesos_gpu.core.placement.state import AgentState, JobContext

Scorer = Callable[[AgentState, TaskDemand, JobContext], "float | None"]


def gpu_binpack(agent: AgentState, task: TaskDemand, job: JobContext) -> float | None:
    """GPU best fit: the fewer GPUs the agent has left after this task (as a share of its GPUs), the
    better, so whole agents stay free for large jobs. A CPU task on a GPU agent prefers agents whose GPUs
    are taken. Not applicable to agents without GPUs."""
    free = agent.gpus
    capacity = agent.gpu_capacity if agent.gpu_capacity > free else free
    if capacity <= 0:
        return None
    left = free - task.needs.gpus
    return 1.0 - left / capacity if left > 0 else 1.0


def ps_spread(agent: AgentState, task: TaskDemand, job: JobContext) -> float | None:
    """Parameter servers spread across agents: 1 on an agent without a ps of this job, 1/(1+n) with n."""
    if task.role != "ps":
        return None
    return 1.0 / (1 + job.ps_on.get(agent.agent_id, 0))


def job_locality(agent: AgentState, task: TaskDemand, job: JobContext) -> float | None:
    """Members of a job stay close: 1 on an agent holding a member, 0.5 in the same rack, else 0.
    Not applicable to ps (they are spread) or before a member is placed."""
    if not job.members_on or task.role == "ps":
        return None
    if agent.agent_id in job.members_on:
        return 1.0
    if agent.locality is not None and agent.locality in job.localities:
        return 0.5
    return 0.0


SCORERS: Mapping[str, Scorer] = {
    "gpu_binpack": gpu_binpack,
    "ps_spread": ps_spread,
    "job_locality": job_locality,
}


def applicable(task: TaskDemand, job: JobContext, weights: Mapping[str, float]) -> list[tuple[float, Scorer]]:
    """The weighted scorers worth running for `task` (skips ps_spread for non-ps, locality for a job
    with no member placed yet); what they skip would return None anyway."""
    out = []
    for name, scorer in SCORERS.items():
        weight = weights.get(name, 0.0)
        if not weight or (scorer is ps_spread and task.role != "ps") or \
                (scorer is job_locality and (not job.members_on or task.role == "ps")):
            continue
        out.append((weight, scorer))
    return out


def weighted_mean(scorers: Sequence[tuple[float, Scorer]], agent: AgentState, task: TaskDemand,
                  job: JobContext) -> float:
    """The weighted mean of `scorers`' scores for `agent` (those answering None left out; 0 when none
    answers)."""
    total = weight_sum = 0.0
    for weight, scorer in scorers:
        score = scorer(agent, task, job)
        if score is not None:
            total += weight * score
            weight_sum += weight
    return total / weight_sum if weight_sum else 0.0


def best_agent(feasible: Sequence[AgentState], task: TaskDemand, job: JobContext,
               weights: Mapping[str, float],
               scorers: Sequence[tuple[float, Scorer]] | None = None) -> AgentState:
    """The feasible agent with the highest weighted mean of the applicable scorers (the first of equals);
    `scorers`: `applicable(task, job, weights)` when the caller has it already."""
    if scorers is None:
        scorers = applicable(task, job, weights)
    best, best_score = feasible[0], -1.0
    if len(scorers) == 1:   # the common case (a lone task: GPU packing only), `weighted_mean` unrolled
        weight, scorer = scorers[0]
        for agent in feasible:
            one = scorer(agent, task, job)
            # (the floats weighted_mean computes, but for the sign of a zero, which `>` does not see)
            score = weight * one / weight if one is not None else 0.0
            if score > best_score:
                best, best_score = agent, score
        return best
    for agent in feasible:
        score = weighted_mean(scorers, agent, task, job)
        if score > best_score:
            best, best_score = agent, score
    return best


def combined_score(
    agent: AgentState, task: TaskDemand, job: JobContext, weights: Mapping[str, float]
) -> float:
    """The weighted mean of the applicable scorers (0 when none applies)."""
    scorers = [(weights.get(name, 0.0), scorer) for name, scorer in SCORERS.items() if weights.get(name)]
    return weighted_mean(scorers, agent, task, job)
