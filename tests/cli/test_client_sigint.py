"""Client commands keep the SIGINT disposition they were started with (issue 19 item 11d): pymesos
installs its own SIGINT handler at import, which crashed a backgrounded `logs --follow` (SIGINT ignored)
with `TypeError: 'Handlers' object is not callable` when it got a SIGINT."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a shell does to a background job
from mesos_gpu import cli
from mesos_gpu.client import ClientError
from mesos_gpu.commands import logs

def client_from(args):
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)
    raise ClientError("ignored: " + str(signal.getsignal(signal.SIGINT) == signal.SIG_IGN))

logs.client_from = client_from
sys.exit(cli.main(["logs", "job-1", "--follow", "--api", "http://127.0.0.1:9"]))
"""


def test_a_backgrounded_client_command_ignores_sigint_instead_of_crashing():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], check=False, capture_output=True, text=True, timeout=60
    )
    assert "TypeError" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stderr
    assert "mesos-gpu: ignored: True" in result.stderr
