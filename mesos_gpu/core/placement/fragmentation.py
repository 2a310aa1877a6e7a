"""GPU fragmentation (pure), after FGD (Weng et al., "Beware of Fragmentation", USENIX ATC '23).

A device's free part is *fragmented* for a task when the task cannot use it. FGD measures fragmentation
against the distribution of the tasks that arrive: the expected amount of free GPU that the next task
(drawn from that distribution) could not use, and places each task where that expectation grows least
(its *gradient*). For one device with `f` thousandths free, F(f) = f * P(size > f), where `size` is a
task's need on one device (a share's fraction; 1000 for a whole GPU): `gradient` ranks the devices a
share could go to, so that a share fills a part few tasks could use rather than cut a part many could.

FGD also counts a node's free GPU as fragmented for tasks whose cpus the node no longer has. Measured
on the openb trace, FGD's own form of it (P(cpus needed > cpus left) * GPU free) acts only once a node's
cpus are nearly gone; `stranded` instead compares a node's cpus left with its free GPU at the tasks'
mean GPU per cpu, smoothly (a softplus), so that a cpu-heavy share avoids nodes whose cpus are getting
tight before it strands their GPUs, and a cpu-light share prefers them (it placed 15 % fewer tasks
unplaced than the FGD form there).

`TaskSizes` is the distribution seen so far (each job counted once, recent ones weighing more: a
decaying histogram), per device and, for FGD's measure over whole nodes (`fgd`), as joint task shapes
(cpus, GPU per device, devices); `FragmentationTable` holds F and r, rebuilt as the distribution moves.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

#: Each new observation weighs this much more than the one before it: tasks seen HALF_LIFE jobs ago
#: count half.
HALF_LIFE = 4096
_GROWTH = 2.0 ** (1.0 / HALF_LIFE)
_SEEN_LIMIT = 100_000  # job ids remembered (so that a job retried every cycle is counted once)
WHOLE = 1000
#: tau of `FragmentationTable.stranded`: how far ahead (thousandths of a GPU) a node's cpus getting
#: tight starts to count. Four GPUs' worth: measured on the openb trace, 1 to 16 GPUs place alike.
STRANDED_SCALE = 4000.0


class TaskSizes:
    """A decaying histogram of the GPU tasks seen (each job once): share sizes (thousandths of a device),
    whole-GPU counts, and cpus (thousandths)."""

    __slots__ = ("_changed", "_cpus", "_seen", "_shapes", "_shares", "_step", "_total", "_whole", "version")

    def __init__(self) -> None:
        self._shares: dict[int, float] = {}
        self._shapes: dict[tuple[int, int, int], float] = {}
        self._whole: dict[int, float] = {}
        self._cpus: dict[int, float] = {}
        self._total = 0.0
        self._step = 1.0
        self._seen: set[str] = set()
        self._changed = 0
        self.version = 0

    def knows(self, job_id: str) -> bool:
        """Whether `observe` has counted `job_id` (and would ignore it again)."""
        return job_id in self._seen

    def observe(self, job_id: str, tasks: Iterable[tuple[int, int, int]]) -> None:
        """Count a job's GPU tasks once, each as (thousandths per device, devices, cpus in thousandths);
        later calls for the same job are ignored."""
        if job_id in self._seen:
            return
        if len(self._seen) >= _SEEN_LIMIT:
            self._seen.clear()
        self._seen.add(job_id)
        for size, count, cpus in tasks:
            self.add(size, count, cpus)

    def add(self, size: int, count: int = 1, cpus: int = 0) -> None:
        """One more task: a share of `size` thousandths, or (`size` 1000) `count` whole GPUs; `cpus`."""
        self._step *= _GROWTH
        weight = self._step
        if size >= WHOLE:
            self._whole[count] = self._whole.get(count, 0.0) + weight
            shape = (cpus, WHOLE, count)
        else:
            size = max(size, 1)
            self._shares[size] = self._shares.get(size, 0.0) + weight
            shape = (cpus, size, 1)
        self._shapes[shape] = self._shapes.get(shape, 0.0) + weight
        self._cpus[cpus] = self._cpus.get(cpus, 0.0) + weight
        self._total += weight
        self._changed += 1
        if self._step > 1e100:      # renormalise long before floats overflow
            scale = 1.0 / self._step
            self._shares = {s: w * scale for s, w in self._shares.items()}
            self._whole = {k: w * scale for k, w in self._whole.items()}
            self._cpus = {c: w * scale for c, w in self._cpus.items()}
            self._shapes = {k: w * scale for k, w in self._shapes.items()}
            self._total *= scale
            self._step = 1.0
        if self._changed * 8 >= max(16, len(self._seen)) or self.version == 0:
            self._changed = 0
            self.version += 1

    def probabilities(self) -> dict[int, float]:
        """Each per-device size's share of the tasks (whole-GPU tasks as 1000; empty before any)."""
        total = self._total
        if not total:
            return {}
        out = {size: weight / total for size, weight in self._shares.items()}
        whole = sum(self._whole.values())
        if whole:
            out[WHOLE] = whole / total
        return out

    def mean_gpus(self) -> float:
        """The mean GPU of a task (thousandths; whole-GPU tasks count all their GPUs)."""
        total = self._total
        if not total:
            return 0.0
        shares = sum(size * weight for size, weight in self._shares.items())
        return (shares + sum(count * WHOLE * weight for count, weight in self._whole.items())) / total

    def shapes(self) -> list[tuple[tuple[int, int, int], float]]:
        """Each joint task shape (cpus, thousandths per device, devices) with its share of the tasks
        (empty before any): the workload FGD measures a node's fragmentation against."""
        total = self._total
        return [(shape, weight / total) for shape, weight in self._shapes.items()] if total else []

    def cpu_probabilities(self) -> dict[int, float]:
        """Each cpu demand's share of the tasks."""
        total = self._total
        return {cpus: weight / total for cpus, weight in self._cpus.items()} if total else {}


class FragmentationTable:
    """The FGD measures for one distribution of tasks (`TaskSizes`), rebuilt when it has moved."""

    __slots__ = ("_sizes", "frag", "gpu_per_cpu", "version")

    def __init__(self, sizes: TaskSizes | None = None) -> None:
        self._sizes = sizes if sizes is not None else TaskSizes()
        self.version = -1
        self.frag: list[float] = [0.0] * (WHOLE + 1)   # F(f) = f * P(size > f)
        self.gpu_per_cpu = 0.0     # r: the tasks' mean GPU (thousandths per device) per cpu (thousandths)
        self.refresh()

    @property
    def sizes(self) -> TaskSizes:
        return self._sizes

    def refresh(self) -> bool:
        """Rebuild the measures if the distribution moved since; whether it did."""
        if self.version == self._sizes.version:
            return False
        self.version = self._sizes.version
        probabilities = self._sizes.probabilities()
        if not probabilities:
            # Nothing seen yet: every size alike, so that large free parts are kept.
            probabilities = {size: 1.0 / 100 for size in range(10, WHOLE + 1, 10)}
        at = [0.0] * (WHOLE + 1)
        for size, p in probabilities.items():
            at[size] += p
        above = 1.0
        frag = self.frag
        for f in range(WHOLE + 1):
            above -= at[f]
            frag[f] = f * max(above, 0.0)
        mean_cpus = sum(c * p for c, p in self._sizes.cpu_probabilities().items())
        mean_gpu = self._sizes.mean_gpus()
        self.gpu_per_cpu = mean_gpu / mean_cpus if mean_cpus else 0.0
        return True

    def gradient(self, free: int, share: int) -> float:
        """How much placing `share` on a device with `free` thousandths free changes the device's own
        fragmentation F (lower is better; negative when it uses up a part few tasks could use)."""
        frag = self.frag
        return frag[free - share] - frag[free]

    def stranded(self, gpu_free: int, cpus: int) -> float:
        """A node's GPU (thousandths free in all) stranded behind its `cpus` left (thousandths): with
        S = cpus * r - gpu_free (r: the tasks' GPU per cpu), tau * softplus(-S / tau): about -S once
        the cpus cannot serve the free GPU, about 0 while they amply can, smooth in between."""
        slack = cpus * self.gpu_per_cpu - gpu_free
        x = -slack / STRANDED_SCALE
        if x > 30.0:
            return -slack
        if x < -30.0:
            return 0.0
        return STRANDED_SCALE * math.log1p(math.exp(x))
