"""`mesos-gpu scheduler` with no ZooKeeper answering ends with one line naming it, not a traceback
(issue 19 item 11e)."""

from __future__ import annotations

import signal

import pytest

from mesos_gpu import cli
from mesos_gpu.store import zk
from mesos_gpu.store.base import StoreUnavailable


def test_an_unreachable_zookeeper_is_one_line_and_exit_status_1(monkeypatch, capsys):
    def unreachable(url, *args, **kwargs):
        raise StoreUnavailable("no ZooKeeper server of 127.0.0.1:1 answered within 15.0 s")

    monkeypatch.setattr(zk, "connect", unreachable)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        status = cli.main(["scheduler", "--zk", "zk://127.0.0.1:1/mesos-gpu", "--master", "127.0.0.1:5050"])
    except StoreUnavailable:
        pytest.fail("the scheduler ended in a traceback")
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    err = capsys.readouterr().err
    assert status == 1
    assert err.strip().splitlines() == [
        "mesos-gpu scheduler: cannot reach ZooKeeper at zk://127.0.0.1:1/mesos-gpu: "
        "no ZooKeeper server of 127.0.0.1:1 answered within 15.0 s"
    ]
