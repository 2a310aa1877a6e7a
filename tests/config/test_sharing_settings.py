"""The GPU-sharing and upload settings: MESOS_GPU_SHARE_LINGER_SECONDS, MESOS_GPU_SHARE_HOST_COMMAND,
MESOS_GPU_UPLOAD_MAX_MB and MESOS_GPU_UPLOAD_DIR (defaults, parsing, errors naming the variable)."""

from __future__ import annotations

import pytest

from mesos_gpu.core.config import ENV, SchedulerSettings
from mesos_gpu.core.errors import ValidationError
from mesos_gpu.core.sharing import DEFAULT_LINGER_SECONDS, SHARE_HOST_COMMAND


def test_defaults():
    s = SchedulerSettings.from_env({})
    assert s.share_linger_seconds == DEFAULT_LINGER_SECONDS == 30.0
    assert s.share_host_command == SHARE_HOST_COMMAND
    assert s.upload_max_mb == 64 and s.upload_max_bytes == 64 * 1024 * 1024
    assert s.upload_dir is None


PARSED = [
    (ENV.SHARE_LINGER, "0", "share_linger_seconds", 0.0),
    (ENV.SHARE_LINGER, "2.5", "share_linger_seconds", 2.5),
    (
        ENV.SHARE_HOST_COMMAND,
        " /opt/venv/bin/python -m isolator.sharehost ",
        "share_host_command",
        "/opt/venv/bin/python -m isolator.sharehost",
    ),
    (ENV.UPLOAD_MAX_MB, "1", "upload_max_mb", 1),
    (ENV.UPLOAD_MAX_MB, "512", "upload_max_mb", 512),
    (ENV.UPLOAD_DIR, "/var/lib/mesos-gpu/uploads", "upload_dir", "/var/lib/mesos-gpu/uploads"),
]


@pytest.mark.parametrize(("name", "raw", "attr", "expected"), PARSED, ids=[f"{p[0]}={p[1]}" for p in PARSED])
def test_each_variable_is_parsed(name, raw, attr, expected):
    assert getattr(SchedulerSettings.from_env({name: raw}), attr) == expected


BAD = [
    (ENV.SHARE_LINGER, "-1", "0 (give the GPU back at once) or more seconds"),
    (ENV.SHARE_LINGER, "half a minute", "number of seconds"),
    (ENV.SHARE_LINGER, "inf", "finite"),
    (ENV.SHARE_HOST_COMMAND, "python3 -m\nisolator.sharehost", "one line of printable text"),
    (ENV.UPLOAD_MAX_MB, "0", "whole number of megabytes from 1"),
    (ENV.UPLOAD_MAX_MB, "1.5", "whole number of megabytes from 1"),
    (ENV.UPLOAD_MAX_MB, "64MB", "whole number of megabytes from 1"),
    (ENV.UPLOAD_MAX_MB, "99999999999", "whole number of megabytes from 1"),
    (ENV.UPLOAD_DIR, "uploads", "absolute path"),
]


@pytest.mark.parametrize(("name", "raw", "words"), BAD, ids=[f"{b[0]}={b[1]!r}" for b in BAD])
def test_each_bad_value_is_named_with_what_was_given(name, raw, words):
    with pytest.raises(ValidationError) as info:
        SchedulerSettings.from_env({name: raw})
    [error] = info.value.errors
    assert error.path == f"/{name}"
    assert words in error.message
    assert repr(raw) in error.message  # the value as given
    assert name in str(info.value)


def test_the_new_variables_are_listed_for_the_package_template():
    names = ENV.names()
    assert {
        "MESOS_GPU_SHARE_LINGER_SECONDS",
        "MESOS_GPU_SHARE_HOST_COMMAND",
        "MESOS_GPU_UPLOAD_MAX_MB",
        "MESOS_GPU_UPLOAD_DIR",
    } <= names


def test_launch_settings_carry_the_share_host_command_and_linger():
    from mesos_gpu.scheduler_main import launch_settings

    env = {ENV.SHARE_LINGER: "12", ENV.SHARE_HOST_COMMAND: "/opt/py -m isolator.sharehost"}
    launch = launch_settings(SchedulerSettings.from_env(env), 8080)
    assert launch.share_host_command == "/opt/py -m isolator.sharehost"
    assert launch.share_linger_seconds == 12.0
    assert launch.launcher_uri == "http://127.0.0.1:8080/v1/launcher.pyz"


def test_uploads_are_served_from_the_launcher_address_with_the_configured_limit(tmp_path):
    from mesos_gpu.scheduler_main import upload_store

    env = {ENV.UPLOAD_MAX_MB: "2", ENV.UPLOAD_DIR: str(tmp_path / "up"), ENV.ADVERTISED_HOST: "sched.example"}
    store = upload_store(SchedulerSettings.from_env(env), 31000)
    assert store.max_bytes == 2 << 20 and store.root == tmp_path / "up" and store.root.is_dir()
    expected = f"http://sched.example:31000/v1/uploads/{'ab' * 32}.tar.gz"
    assert store.uri("ab" * 32, "http://ignored:1") == expected


def test_the_local_cluster_runs_share_hosts_with_this_interpreter_and_honours_the_variables():
    import shlex
    import sys

    from mesos_gpu.standalone import StandaloneError, local_settings

    default = local_settings({})
    assert shlex.split(default.share_host_command) == [sys.executable, "-m", "isolator.sharehost"]
    assert default.share_linger_seconds == 30.0 and default.upload_max_mb == 64
    chosen = local_settings({ENV.SHARE_LINGER: "3", ENV.UPLOAD_MAX_MB: "5", ENV.MASTER: "ignored"})
    assert (chosen.share_linger_seconds, chosen.upload_max_mb) == (3.0, 5)
    with pytest.raises(StandaloneError) as info:
        local_settings({ENV.SHARE_LINGER: "-2"})
    assert ENV.SHARE_LINGER in str(info.value)
