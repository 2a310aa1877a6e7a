"""The installed console commands exist and answer `--help` and `--version`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import isolator
import mesos_gpu

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    ("command", "version"),
    [("mesos-gpu", mesos_gpu.__version__), ("mesos-gpu-agent", isolator.__version__)],
)
def test_version_and_help(command: str, version: str) -> None:
    result = subprocess.run(
        [str(BIN / command), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{command} {version}"
    result = subprocess.run(
        [str(BIN / command), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {command}")


def test_an_unknown_command_is_a_usage_error() -> None:
    result = subprocess.run(
        [str(BIN / "mesos-gpu"), "no-such-command"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
    assert "Traceback" not in result.stderr
