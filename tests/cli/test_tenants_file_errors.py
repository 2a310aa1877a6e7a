"""`mesos-gpu scheduler` with a bad or missing `MESOS_GPU_TENANTS_FILE` ends before it connects to
ZooKeeper with one line naming the variable and the problem, exit status 2 (reviewer finding 1)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from mesos_gpu import cli
from mesos_gpu.store import zk

ARGS = ["scheduler", "--zk", "zk://127.0.0.1:1/mesos-gpu", "--master", "127.0.0.1:5050"]


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda tmp: str(tmp / "absent.json"), "cannot read the tenants file"),
        (lambda tmp: _write(tmp / "t.json", "{not json"), "is not JSON"),
        (lambda tmp: _write(tmp / "t.json", '{"tenants": {"a": {"quota": -1}}}'),
         "is not valid: /tenants/a/quota"),
    ],
    ids=["missing", "not-json", "invalid"],
)
def test_a_bad_tenants_file_is_one_line_before_zookeeper(monkeypatch, capsys, tmp_path, make, expected):
    path = make(tmp_path)
    monkeypatch.setenv("MESOS_GPU_TENANTS_FILE", path)

    def must_not_connect(*args, **kwargs):
        raise AssertionError("connected to ZooKeeper before checking the tenants file")

    monkeypatch.setattr(zk, "connect", must_not_connect)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        status = cli.main(ARGS)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1, err
    assert err[0].startswith("mesos-gpu scheduler: MESOS_GPU_TENANTS_FILE: ")
    assert expected in err[0] and path in err[0]
