"""Table tests for SchedulerSettings.from_env: defaults, parsing, precedence and errors."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.core.config import ENV, ONE_WEEK_SECONDS, SchedulerSettings, zookeeper_url
from mesos_gpu.core.errors import ValidationError


def test_defaults_from_an_empty_environment():
    s = SchedulerSettings.from_env({})
    assert s == SchedulerSettings()
    assert s.framework_name == "mesos-gpu"
    assert s.master == "127.0.0.1:5050"
    assert s.zk_url == "zk://127.0.0.1:2181/mesos-gpu"
    assert s.role == "*"
    assert s.user is None and s.principal is None and s.secret is None and s.secret_file is None
    assert s.failover_timeout == ONE_WEEK_SECONDS == 604800.0
    assert (s.api_host, s.api_port) == ("127.0.0.1", 8080)
    assert s.api_tokens == () and not s.api_auth_enabled and s.api_auth_reads is False
    assert s.log_level == "INFO"
    assert s.default_containerizer == "mesos"
    assert s.cpu_tasks_on_gpu_agents == "restricted"
    assert s.heartbeat_timeout == 75.0
    assert s.instances == 1
    # A specific bind address is reachable, so the launcher base is derived from it.
    assert s.launcher_uri_base is None
    assert s.launcher_base_url() == "http://127.0.0.1:8080"


def test_empty_and_blank_values_mean_unset():
    env = {name: "" for name in ENV.names()} | {ENV.ROLE: "   "}
    assert SchedulerSettings.from_env(env) == SchedulerSettings()


PARSED = [
    # (variable, raw value, settings field, expected value)
    (ENV.FRAMEWORK_NAME, "gpu-prod", "framework_name", "gpu-prod"),
    (ENV.FRAMEWORK_NAME_DCOS, "dcos-gpu", "framework_name", "dcos-gpu"),
    (ENV.MASTER, "10.0.0.5:5050", "master", "10.0.0.5:5050"),
    (ENV.MASTER, "zk://master.mesos:2181/mesos", "master", "zk://master.mesos:2181/mesos"),
    (ENV.MASTER, " zk://a:2181,b:2181,c:2181/mesos ", "master", "zk://a:2181,b:2181,c:2181/mesos"),
    (ENV.ZK, "zk://zk-1.example:2181,zk-2.example:2181/ml/mesos-gpu", "zk_url",
     "zk://zk-1.example:2181,zk-2.example:2181/ml/mesos-gpu"),
    (ENV.ZK, "zk://[::1]:2181/x", "zk_url", "zk://[::1]:2181/x"),
    (ENV.ROLE, "gpu", "role", "gpu"),
    (ENV.ROLE, "team-a/gpu", "role", "team-a/gpu"),
    (ENV.USER, "nobody", "user", "nobody"),
    (ENV.FAILOVER_TIMEOUT, "3600", "failover_timeout", 3600.0),
    (ENV.FAILOVER_TIMEOUT, "0.5", "failover_timeout", 0.5),
    (ENV.API_HOST, "0.0.0.0", "api_host", "0.0.0.0"),
    (ENV.API_PORT, "0", "api_port", 0),
    (ENV.API_PORT, "31005", "api_port", 31005),
    (ENV.MARATHON_PORT_API, "31006", "api_port", 31006),
    (ENV.MARATHON_PORT0, "31007", "api_port", 31007),
    (ENV.API_TOKENS, "abc", "api_tokens", ("abc",)),
    (ENV.API_TOKENS, " abc, def ,,", "api_tokens", ("abc", "def")),
    (ENV.API_TOKENS_FILE, "/run/secrets/tokens", "api_tokens_file", "/run/secrets/tokens"),
    (ENV.LOG_LEVEL, "debug", "log_level", "DEBUG"),
    (ENV.LOG_LEVEL, "Warn", "log_level", "WARNING"),
    (ENV.LOG_LEVEL, "CRITICAL", "log_level", "CRITICAL"),
    (ENV.DEFAULT_CONTAINERIZER, "docker", "default_containerizer", "docker"),
    (ENV.DEFAULT_CONTAINERIZER, "MESOS", "default_containerizer", "mesos"),
    (ENV.CPU_TASKS_ON_GPU_AGENTS, "fallback", "cpu_tasks_on_gpu_agents", "fallback"),
    (ENV.CPU_TASKS_ON_GPU_AGENTS, "unrestricted", "cpu_tasks_on_gpu_agents", "unrestricted"),
    (ENV.HEARTBEAT_TIMEOUT, "30", "heartbeat_timeout", 30.0),
    (ENV.ADVERTISED_HOST, "sched.example", "advertised_host", "sched.example"),
    (ENV.MARATHON_HOST, "agent-7.example", "advertised_host", "agent-7.example"),
    (ENV.LAUNCHER_URI_BASE, "https://lb.example:8443/mesos-gpu/", "launcher_uri_base",
     "https://lb.example:8443/mesos-gpu"),
    (ENV.INSTANCES, "3", "instances", 3),
    (ENV.RESERVE_AFTER, "0", "reserve_after_seconds", 0.0),
    (ENV.NEVER_FITS_AFTER, "60", "never_fits_after_seconds", 60.0),
    (ENV.NEVER_FITS_AFTER, "0", "never_fits_after_seconds", 0.0),
    (ENV.LAUNCH_CHECK, "15", "launch_check_seconds", 15.0),
    (ENV.LAUNCH_CHECK, "0", "launch_check_seconds", 0.0),
]


@pytest.mark.parametrize(("name", "raw", "attr", "expected"), PARSED, ids=[f"{p[0]}={p[1]}" for p in PARSED])
def test_each_variable_is_parsed(name, raw, attr, expected):
    assert getattr(SchedulerSettings.from_env({name: raw}), attr) == expected


BOOLEANS = [("true", True), ("1", True), ("YES", True), ("on", True), ("false", False), ("0", False),
            ("No", False), ("off", False)]


@pytest.mark.parametrize(("raw", "expected"), BOOLEANS)
def test_booleans(raw, expected):
    s = SchedulerSettings.from_env({ENV.API_AUTH_READS: raw, ENV.API_TOKENS: "t"})
    assert s.api_auth_reads is expected


BAD = [
    # (variable, raw value, words the message must contain)
    (ENV.FRAMEWORK_NAME, "a/b", "ZooKeeper node name"),
    (ENV.FRAMEWORK_NAME_DCOS, "two words", "whitespace"),
    (ENV.FRAMEWORK_NAME, "..", "ZooKeeper node name"),
    (ENV.MASTER, "http://m:5050", "host:port or zk://"),
    (ENV.MASTER, "m1:5050,m2:5050", "host:port or zk://"),
    (ENV.MASTER, "master.mesos", "is not host:port"),
    (ENV.MASTER, "master:99999", "is not host:port"),
    (ENV.MASTER, "zk://master.mesos:2181", "needs a path"),
    (ENV.ZK, "master.mesos:2181", "must start with zk://"),
    (ENV.ZK, "zk://h:2181/", "needs a path"),
    (ENV.ZK, "zk://h:2181/a//b", "needs a path"),
    (ENV.ZK, "zk://h:2181/a/../b", "needs a path"),
    (ENV.ZK, "zk:///mesos-gpu", "names no host"),
    (ENV.ZK, "zk://h:2181/a/", "needs a path"),
    (ENV.ZK, "zk://u:p@h:2181/x", "credentials"),
    (ENV.ZK, "zk://h:port/x", "is not host:port"),
    (ENV.ROLE, "-gpu", "not a valid Mesos role"),
    (ENV.ROLE, "a b", "not a valid Mesos role"),
    (ENV.ROLE, "/gpu", "not a valid Mesos role"),
    (ENV.ROLE, "gpu/", "not a valid Mesos role"),
    (ENV.ROLE, ".", "not a valid Mesos role"),
    (ENV.ROLE, "a/*", "not a valid Mesos role"),
    (ENV.USER, "no body", "whitespace"),
    (ENV.PRINCIPAL, "a:b", "must not contain ':'"),
    (ENV.FAILOVER_TIMEOUT, "a week", "number of seconds"),
    (ENV.FAILOVER_TIMEOUT, "0", "more than 0"),
    (ENV.FAILOVER_TIMEOUT, "-5", "more than 0"),
    (ENV.FAILOVER_TIMEOUT, "inf", "finite"),
    (ENV.FAILOVER_TIMEOUT, "nan", "finite"),
    (ENV.FAILOVER_TIMEOUT, "1e12", "Mesos Duration"),
    (ENV.API_HOST, "a b", "whitespace"),
    (ENV.API_PORT, "65536", "port number"),
    (ENV.API_PORT, "-1", "port number"),
    (ENV.MARATHON_PORT0, "http", "port number"),
    (ENV.API_TOKENS, "a b,c", "whitespace"),
    (ENV.API_AUTH_READS, "maybe", "true or false"),
    (ENV.LOG_LEVEL, "verbose", "one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    (ENV.DEFAULT_CONTAINERIZER, "podman", "one of mesos, docker"),
    (ENV.CPU_TASKS_ON_GPU_AGENTS, "never", "one of restricted, fallback, unrestricted"),
    (ENV.HEARTBEAT_TIMEOUT, "0", "more than 0"),
    (ENV.LAUNCHER_URI_BASE, "ftp://x", "http:// or https://"),
    (ENV.LAUNCHER_URI_BASE, "scheduler:8080", "http:// or https://"),
    (ENV.INSTANCES, "0", "1 or more"),
    (ENV.INSTANCES, "two", "1 or more"),
]


@pytest.mark.parametrize(("name", "raw", "words"), BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_each_bad_variable_is_named(name, raw, words):
    with pytest.raises(ValidationError) as info:
        SchedulerSettings.from_env({name: raw})
    error = info.value
    assert [e.path for e in error.errors] == [f"/{name}"]
    assert words in error.errors[0].message
    assert name in str(error) and words in str(error)


def test_every_bad_variable_is_reported_at_once():
    env = {
        ENV.MASTER: "nowhere",
        ENV.ZK: "zk://h:2181",
        ENV.ROLE: "-x",
        ENV.FAILOVER_TIMEOUT: "soon",
        ENV.LOG_LEVEL: "loud",
        ENV.MARATHON_PORT0: "x",
        ENV.ADVERTISED_HOST: "ok.example",  # a good one among the bad ones is not reported
    }
    with pytest.raises(ValidationError) as info:
        SchedulerSettings.from_env(env)
    paths = [e.path for e in info.value.errors]
    assert paths == sorted(f"/{name}" for name in env if name != ENV.ADVERTISED_HOST)
    assert info.value.to_dict()["error"]["code"] == "invalid"
    assert info.value.http_status == 400


def test_a_value_that_is_not_a_string_is_an_error():
    # A Marathon secret reference ({"secret": ...}) that was never resolved into a value.
    with pytest.raises(ValidationError) as info:
        SchedulerSettings.from_env({ENV.SECRET: {"secret": "serviceSecret"}, ENV.PRINCIPAL: "p"})  # type: ignore[dict-item]
    assert [e.path for e in info.value.errors] == [f"/{ENV.SECRET}"]
    assert "must be a string" in info.value.errors[0].message


def test_secret_values_never_appear_in_errors_or_repr():
    with pytest.raises(ValidationError) as info:
        SchedulerSettings.from_env({ENV.API_TOKENS: "hunter2 withspace"})
    assert "hunter2" not in str(info.value)
    assert "hidden" in str(info.value)
    s = SchedulerSettings.from_env({ENV.PRINCIPAL: "p", ENV.SECRET: "s3cret", ENV.API_TOKENS: "tok3n"})
    assert "s3cret" not in repr(s) and "tok3n" not in repr(s)


PRECEDENCE = [
    ({ENV.FRAMEWORK_NAME_DCOS: "dcos", ENV.FRAMEWORK_NAME: "plain"}, "framework_name", "dcos"),
    ({ENV.FRAMEWORK_NAME_DCOS: "", ENV.FRAMEWORK_NAME: "plain"}, "framework_name", "plain"),
    ({ENV.API_PORT: "1", ENV.MARATHON_PORT_API: "2", ENV.MARATHON_PORT0: "3"}, "api_port", 1),
    ({ENV.MARATHON_PORT_API: "2", ENV.MARATHON_PORT0: "3"}, "api_port", 2),
    ({ENV.MARATHON_PORT0: "3"}, "api_port", 3),
    ({ENV.ADVERTISED_HOST: "explicit", ENV.MARATHON_HOST: "agent"}, "advertised_host", "explicit"),
]


@pytest.mark.parametrize(("env", "attr", "expected"), PRECEDENCE)
def test_precedence_between_variables(env, attr, expected):
    assert getattr(SchedulerSettings.from_env(env), attr) == expected


def test_an_earlier_bad_variable_is_reported_even_when_a_later_one_is_good():
    with pytest.raises(ValidationError) as info:
        SchedulerSettings.from_env({ENV.MARATHON_PORT_API: "x", ENV.MARATHON_PORT0: "31000"})
    assert [e.path for e in info.value.errors] == [f"/{ENV.MARATHON_PORT_API}"]


SECRETS = [
    ({ENV.PRINCIPAL: "p", ENV.SECRET: "s"}, None),
    ({ENV.PRINCIPAL: "p", ENV.SECRET_FILE: "/run/secret"}, None),
    ({ENV.PRINCIPAL: "p"}, None),
    ({ENV.SECRET: "s"}, ENV.PRINCIPAL),
    ({ENV.SECRET_FILE: "/run/secret"}, ENV.PRINCIPAL),
    ({ENV.PRINCIPAL: "p", ENV.SECRET: "s", ENV.SECRET_FILE: "/f"}, ENV.SECRET_FILE),
    ({ENV.API_AUTH_READS: "true"}, ENV.API_AUTH_READS),
    ({ENV.API_AUTH_READS: "true", ENV.API_TOKENS_FILE: "/t"}, None),
]


@pytest.mark.parametrize(("env", "bad"), SECRETS)
def test_rules_between_variables(env, bad):
    if bad is None:
        SchedulerSettings.from_env(env)
    else:
        with pytest.raises(ValidationError) as info:
            SchedulerSettings.from_env(env)
        assert [e.path for e in info.value.errors] == [f"/{bad}"]


def test_resolve_secret_reads_the_file_through_the_callers_reader():
    read = []

    def read_text(path: str) -> str:
        read.append(path)
        return "from-file\n"

    inline = SchedulerSettings.from_env({ENV.PRINCIPAL: "p", ENV.SECRET: "inline"})
    from_file = SchedulerSettings.from_env({ENV.PRINCIPAL: "p", ENV.SECRET_FILE: "/run/s"})
    assert inline.resolve_secret(read_text) == "inline"
    assert from_file.resolve_secret(read_text) == "from-file"
    assert SchedulerSettings().resolve_secret(read_text) is None
    assert read == ["/run/s"]


LAUNCHER = [
    ({}, None, "http://127.0.0.1:8080"),
    ({}, 41000, "http://127.0.0.1:41000"),
    ({ENV.API_HOST: "0.0.0.0"}, None, None),
    ({ENV.API_HOST: "0.0.0.0", ENV.MARATHON_HOST: "agent-3", ENV.MARATHON_PORT0: "31500"}, None,
     "http://agent-3:31500"),
    ({ENV.API_HOST: "::", ENV.ADVERTISED_HOST: "fd00::7", ENV.API_PORT: "9000"}, None, "http://[fd00::7]:9000"),
    ({ENV.API_PORT: "0"}, None, None),
    ({ENV.API_PORT: "0"}, 41001, "http://127.0.0.1:41001"),
    ({ENV.LAUNCHER_URI_BASE: "http://vip.example:80", ENV.API_HOST: "0.0.0.0"}, 5, "http://vip.example:80"),
]


@pytest.mark.parametrize(("env", "bound", "expected"), LAUNCHER)
def test_launcher_base_url_is_explicit_or_derived(env, bound, expected):
    assert SchedulerSettings.from_env(env).launcher_base_url(bound) == expected


ZK = [
    ("zk://127.0.0.1:2181/mesos-gpu", "127.0.0.1:2181", "/mesos-gpu", "/mesos-gpu/mesos-gpu"),
    ("zk://a:1,b:2/x/y", "a:1,b:2", "/x/y", "/x/y/mesos-gpu"),
]


@pytest.mark.parametrize(("url", "hosts", "path", "root"), ZK)
def test_zookeeper_url_parts(url, hosts, path, root):
    s = SchedulerSettings.from_env({ENV.ZK: url})
    assert (zookeeper_url(url).hosts, zookeeper_url(url).path) == (hosts, path)
    assert (s.zk_hosts, s.zk_path, s.zk_framework_root) == (hosts, path, root)


def test_framework_root_follows_the_framework_name():
    s = SchedulerSettings.from_env({ENV.FRAMEWORK_NAME_DCOS: "gpu-team-a", ENV.ZK: "zk://z:2181/mesos-gpu"})
    assert s.zk_framework_root == "/mesos-gpu/gpu-team-a"


@pytest.mark.parametrize(("master", "is_zk"), [("zk://m:2181/mesos", True), ("m:5050", False)])
def test_master_is_zk(master, is_zk):
    assert SchedulerSettings.from_env({ENV.MASTER: master}).master_is_zk is is_zk


def test_settings_are_frozen():
    s = SchedulerSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.role = "gpu"  # type: ignore[misc]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(ENV.names())), st.text(max_size=40), max_size=8))
def test_any_text_gives_settings_or_a_validation_error(env):
    try:
        s = SchedulerSettings.from_env(env)
    except ValidationError as exc:
        assert exc.errors
        assert all(e.path.lstrip("/") in ENV.names() for e in exc.errors)
    else:
        assert isinstance(s, SchedulerSettings)
