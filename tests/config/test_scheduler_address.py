"""Issue 19 item 9: `mesos-gpu scheduler` told its host (a flag, or Marathon's HOST/PORT0) binds the API
where agents reach it and puts that host, never a loopback address, in every TaskInfo's launcher URI."""

from __future__ import annotations

import argparse
import ipaddress
import socket
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu import scheduler_main
from mesos_gpu.core.config import SchedulerSettings
from mesos_gpu.core.model import Role
from mesos_gpu.core.taskinfo import Placed, build_task_info
from mesos_gpu.core.validation import validate_job

PS_JOB = validate_job({"name": "dist", "command": "python train.py", "roles": {"worker": {}, "ps": {}}})


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    scheduler_main.register(parser.add_subparsers())
    return parser.parse_args(["scheduler", *argv])


def settings_for(argv: tuple[str, ...], env: dict[str, str]) -> SchedulerSettings:
    return scheduler_main.settings_from(parse(*argv), env)


def launcher_uris(settings: SchedulerSettings, bound_port: int) -> list[str]:
    """The launcher URI of every TF member's TaskInfo, built as the running scheduler builds them."""
    launch = scheduler_main.launch_settings(settings, bound_port)
    placed = Placed(agent_id="S1", hostname="agent-1.example", ports=(31000,))
    infos = [build_task_info(PS_JOB, task, 0, placed, launch) for task in PS_JOB.tasks("dist-1")]
    uris = [uri["value"] for info in infos for uri in info["command"]["uris"]]
    assert len(uris) == len([t for t in PS_JOB.tasks("dist-1") if t.role is not Role.TASK]) == 2
    return uris


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def test_the_advertised_host_flag_names_the_launcher_host_and_the_api_binds_beyond_loopback() -> None:
    settings = settings_for(("--advertised-host", "sched-1.example", "--api-port", "8080"), {})
    assert not is_loopback(settings.api_host)
    assert launcher_uris(settings, 8080) == ["http://sched-1.example:8080/v1/launcher.pyz"] * 2


def test_the_launcher_uri_base_flag_wins() -> None:
    argv = ("--advertised-host", "sched-1.example", "--launcher-uri-base", "https://lb.example/mesos-gpu/")
    settings = settings_for(argv, {})
    assert launcher_uris(settings, 8080) == ["https://lb.example/mesos-gpu/v1/launcher.pyz"] * 2


def test_under_marathon_the_defaults_are_host_and_port0() -> None:
    settings = settings_for((), {"HOST": "agent-3.example", "PORT0": "31500"})
    assert (settings.api_host, settings.api_port) == ("0.0.0.0", 31500)
    assert launcher_uris(settings, 31500) == ["http://agent-3.example:31500/v1/launcher.pyz"] * 2


def test_an_explicit_api_host_is_kept() -> None:
    settings = settings_for(("--api-host", "10.0.0.5"), {"HOST": "agent-3.example"})
    assert settings.api_host == "10.0.0.5"


def test_untold_the_scheduler_stays_on_loopback_as_before() -> None:
    assert settings_for((), {}).api_host == "127.0.0.1"


HOSTS = st.sampled_from(["sched-1.example", "10.1.2.3", "fd00::7", "agent-3"])
BINDS = st.sampled_from([(), ("--api-host", "0.0.0.0"), ("--api-host", "::")])


@settings(max_examples=40, deadline=None)
@given(host=HOSTS, binds=BINDS, by_flag=st.booleans(), port=st.integers(1, 65535))
def test_told_its_host_no_launcher_uri_names_a_loopback_address(
    host: str, binds: tuple[str, ...], by_flag: bool, port: int
) -> None:
    argv = (*binds, "--advertised-host", host) if by_flag else binds
    env = {} if by_flag else {"HOST": host, "PORT0": str(port)}
    settings = settings_for(argv, env)
    for uri in launcher_uris(settings, port):
        assert not is_loopback(urlsplit(uri).hostname or ""), uri
    assert not is_loopback(settings.api_host)


def test_a_loopback_launcher_host_is_never_guessed_from_the_fqdn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getfqdn", lambda: "sched-2.example")
    settings = settings_for(("--api-host", "0.0.0.0"), {})
    assert launcher_uris(settings, 9000) == ["http://sched-2.example:9000/v1/launcher.pyz"] * 2
