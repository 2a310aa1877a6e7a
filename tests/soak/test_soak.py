"""The fault soak (tests/soak/soak.py): the short run in every `pytest`, the long one with MESOS_GPU_SOAK=long
(`make soak`). It fails on any violation and prints its figures either way (see them with `-s`; a path
in MESOS_GPU_SOAK_REPORT also gets them; MESOS_GPU_SOAK_DIR keeps the run's logs in a folder of that
directory, named by the run and its seed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.soak.params import soak_params
from tests.soak.soak import run_soak

_BOUND = soak_params()
pytestmark = [pytest.mark.soak, pytest.mark.zookeeper, pytest.mark.slow,
              pytest.mark.timeout(_BOUND.fault_seconds + _BOUND.drain_seconds + 120)]


def test_the_fault_soak_loses_nothing_doubles_nothing_and_fences_woken_leaders(tmp_path: Path) -> None:
    params = soak_params()
    kept = os.environ.get("MESOS_GPU_SOAK_DIR")     # logs kept there (pytest's own tmp dirs are rotated)
    workdir = Path(kept) / f"{params.name}-{params.seed}" if kept else tmp_path / "soak"
    report = run_soak(params, workdir)
    print("\n" + report.table())
    if os.environ.get("MESOS_GPU_SOAK_REPORT"):
        Path(os.environ["MESOS_GPU_SOAK_REPORT"]).write_text(report.table() + "\n")
    assert not report.violations, report.table()
