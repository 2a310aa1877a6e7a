"""The Universe package: its files against the real DC/OS schemas, and the app Cosmos would render from it."""

from __future__ import annotations

import base64
import struct
from typing import Any

import jsonschema
import pytest

import mesos_gpu
from mesos_gpu.core.config import ENV, SchedulerSettings
from mesos_gpu.core.errors import ValidationError
from tests.universe.render import (
    PACKAGE_DIR,
    SCHEMAS,
    extract_defaults,
    load_json,
    merged_options,
    package_files,
    render,
)

FILES = package_files()
UNIVERSE = SCHEMAS / "universe"
APP_SCHEMA = load_json(SCHEMAS / "marathon" / "AppDefinition.json")

# --- package.json ------------------------------------------------------------------------------------


def test_shared_schemas_are_present():
    # Without ../shared the schema tests below would have nothing to check against: fail, never skip.
    assert (UNIVERSE / "package-schema.json").is_file(), f"missing {UNIVERSE}"
    assert (SCHEMAS / "marathon" / "AppDefinition.json").is_file()


def test_package_json_is_valid_against_package_schema():
    schema = load_json(UNIVERSE / "package-schema.json")
    package = FILES["package"]
    # As Universe CI does: the whole oneOf, with a Draft 4 validator.
    jsonschema.Draft4Validator(schema).validate(package)
    # And against the definition of its own packagingVersion in particular.
    assert package["packagingVersion"] == "4.0"
    v40 = dict(schema["definitions"]["v40Package"], definitions=schema["definitions"])
    jsonschema.Draft4Validator(v40).validate(package)
    for other in ("v20Package", "v30Package", "v50Package"):
        candidate = dict(schema["definitions"][other], definitions=schema["definitions"])
        assert not jsonschema.Draft4Validator(candidate).is_valid(package), other


def test_package_json_has_what_the_issue_asks_for():
    package = FILES["package"]
    assert package["framework"] is True
    assert package["selected"] is False
    for key in ("description", "maintainer", "preInstallNotes", "postInstallNotes", "minDcosReleaseVersion"):
        assert package[key].strip(), key
    assert package["tags"] and package["licenses"]
    assert package["version"] == mesos_gpu.__version__


def test_a_broken_package_json_is_rejected_by_the_schema():
    # The schema check can fail: an unknown key and a missing maintainer are caught.
    schema = load_json(UNIVERSE / "package-schema.json")
    broken = {k: v for k, v in FILES["package"].items() if k != "maintainer"} | {"gpus": 1}
    assert not jsonschema.Draft4Validator(schema).is_valid(broken)


# --- config.json -------------------------------------------------------------------------------------


def test_config_json_is_a_valid_draft4_schema():
    config = FILES["config"]
    jsonschema.Draft4Validator.check_schema(config)
    # Universe CI validates config.json against the Draft 4 meta-schema copy it keeps.
    jsonschema.Draft4Validator(load_json(UNIVERSE / "config-schema.json")).validate(config)


def missing_defaults(schema: dict[str, Any], path: str = "") -> list[str]:
    """Every required option (recursively) that has no default and is not a group of defaults."""
    missing = []
    properties = schema.get("properties", {})
    for name in schema.get("required", []):
        prop = properties.get(name)
        where = f"{path}/{name}"
        if prop is None:
            missing.append(f"{where} (required but not declared)")
        elif "default" in prop:
            continue
        elif prop.get("type") == "object" and "properties" in prop:
            missing.extend(missing_defaults(prop, where))
        else:
            missing.append(where)
    for name, prop in properties.items():
        if name not in schema.get("required", []) and prop.get("type") == "object":
            missing.extend(missing_defaults(prop, f"{path}/{name}"))
    return missing


def test_every_required_option_has_a_default():
    assert missing_defaults(FILES["config"]) == []


def test_missing_defaults_finds_a_required_option_without_one():
    schema = {"type": "object", "required": ["g"], "properties": {
        "g": {"type": "object", "required": ["a", "b"], "properties": {"a": {"default": 1}, "b": {}}}}}
    assert missing_defaults(schema) == ["/g/b"]


def test_the_defaults_alone_satisfy_config_json():
    config = FILES["config"]
    defaults = extract_defaults(config)
    assert set(defaults) == {"service", "api", "gpu", "jobs"}
    jsonschema.Draft4Validator(config).validate(defaults)


def test_every_option_has_a_description():
    for group, spec in FILES["config"]["properties"].items():
        assert spec.get("description"), group
        for name, prop in spec["properties"].items():
            assert prop.get("description"), f"{group}.{name}"


# --- resource.json -----------------------------------------------------------------------------------


def test_resource_json_is_valid_against_its_schema():
    # v3-resource-schema.json is the one for packagingVersion 3.0, 4.0 and 5.0.
    jsonschema.Draft4Validator(load_json(UNIVERSE / "v3-resource-schema.json")).validate(FILES["resource"])


def test_resource_names_the_scheduler_image_at_the_package_version():
    image = FILES["resource"]["assets"]["container"]["docker"]["scheduler"]
    assert image.rsplit(":", 1)[1] == FILES["package"]["version"]


@pytest.mark.parametrize(("key", "size"), [("icon-small", 48), ("icon-medium", 128), ("icon-large", 256)])
def test_icons_are_the_packaged_pngs(key, size):
    uri = FILES["resource"]["images"][key]
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    data = base64.b64decode(uri[len(prefix):], validate=True)
    assert data == (PACKAGE_DIR / "images" / f"{key}.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (size, size)


# --- marathon.json.mustache rendered as Cosmos renders it --------------------------------------------

OPTION_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "ha-2-instances": {"service": {"high_availability": True, "instances": 2}},
    "ha-alone": {"service": {"high_availability": True}},
    "instances-without-ha": {"service": {"instances": 3}},
    "auth-on": {"api": {"auth_token_secret": "mesos-gpu/api-tokens", "auth_reads": True}},
    "ha-and-auth": {"service": {"high_availability": True},
                    "api": {"auth_token_secret": "mesos-gpu/api-tokens", "auth_reads": True}},
    "secret-alone": {"service": {"secret_name": "mesos-gpu/service-secret"}},
    "private-registry": {"service": {"docker_image": "registry.example.com/mesos-gpu/scheduler:0.1.0",
                                     "docker_credentials_uri": "file:///etc/docker.tar.gz"}},
    "placement": {"service": {"placement_constraints": [
        {"field": "@region", "operator": "IS", "value": "us-east-1"},
        {"field": "gpu_model", "operator": "UNLIKE", "value": "A100.*"},
        {"field": "rack", "operator": "GROUP_BY"},
        {"field": "@hostname", "operator": "CLUSTER", "value": ""},
    ]}},
    "custom-zookeeper": {"service": {"zookeeper": "zk-1.example:2181,zk-2.example:2181,zk-3.example:2181",
                                     "mesos_master": "zk://zk-1.example:2181,zk-2.example:2181/mesos"}},
    "custom-role": {"service": {"role": "gpu-team", "principal": "mesos-gpu-principal",
                                "secret_name": "mesos-gpu/service-secret"}},
    "retention-off": {"jobs": {"retention_seconds": 0, "retention_max_finished": 0}},
    "retention-long": {"jobs": {"retention_seconds": 3e9}},
    "fast-failover": {"service": {"high_availability": True, "zk_session_timeout": 4}},
    "everything": {
        "service": {
            "name": "gpu-prod", "user": "root", "cpus": 0.5, "mem": 2048, "high_availability": True,
            "instances": 3, "zookeeper": "10.0.0.1:2181", "mesos_master": "10.0.0.2:5050",
            "role": "ml/gpu", "principal": "gpu-prod", "secret_name": "gpu-prod/secret",
            "failover_timeout": 3000000000, "heartbeat_timeout": 30.5, "zk_session_timeout": 4.5,
            "log_level": "DEBUG",
            "docker_image": "registry.example.com/gpu/scheduler:0.1.0",
            "docker_credentials_uri": "https://config.example.com/docker.tar.gz",
            "placement_constraints": [{"field": "rack", "operator": "MAX_PER", "value": "1"}],
        },
        "api": {"port": 10080, "auth_token_secret": "gpu-prod/tokens", "auth_reads": False},
        "gpu": {"default_containerizer": "docker", "cpu_tasks_on_gpu_agents": "fallback",
                "reserve_after_seconds": 0},
        "jobs": {"retention_seconds": 86400.5, "retention_max_finished": 2147483647},
    },
    "escaping": {"service": {"principal": 'odd"prin\\cipal',
                             "secret_name": 'path/with "quotes" \\ and \u00e9',
                             "placement_constraints": [{"field": "rack", "operator": "LIKE",
                                                        "value": 'r"[0-9]\\d \u00e9'}]}},
}

# What the scheduler must read from each rendered app: settings field -> value.
EXPECTED: dict[str, dict[str, Any]] = {
    "defaults": {},
    "ha-2-instances": {"instances": 2},
    "ha-alone": {"instances": 2},
    "instances-without-ha": {},  # service.instances counts only with high availability
    "auth-on": {"api_tokens": ("token-from-the-secret-store",), "api_auth_reads": True},
    "ha-and-auth": {"instances": 2, "api_tokens": ("token-from-the-secret-store",), "api_auth_reads": True},
    # without service.principal, the secret authenticates service.name
    "secret-alone": {"principal": "mesos-gpu", "secret": "secret-from-the-secret-store"},
    "private-registry": {},
    "placement": {},
    "custom-zookeeper": {"zk_url": "zk://zk-1.example:2181,zk-2.example:2181,zk-3.example:2181/mesos-gpu",
                         "master": "zk://zk-1.example:2181,zk-2.example:2181/mesos"},
    "custom-role": {"role": "gpu-team", "principal": "mesos-gpu-principal",
                    "secret": "secret-from-the-secret-store"},
    "retention-off": {"retention_seconds": 0.0, "retention_max_finished": 0},
    "retention-long": {"retention_seconds": 3e9},
    "fast-failover": {"instances": 2, "zk_session_timeout": 4.0},
    "everything": {
        "framework_name": "gpu-prod", "user": "root", "instances": 3, "zk_url": "zk://10.0.0.1:2181/mesos-gpu",
        "master": "10.0.0.2:5050", "role": "ml/gpu", "principal": "gpu-prod",
        "secret": "secret-from-the-secret-store", "failover_timeout": 3e9, "heartbeat_timeout": 30.5,
        "log_level": "DEBUG", "api_tokens": ("token-from-the-secret-store",), "api_auth_reads": False,
        "default_containerizer": "docker", "cpu_tasks_on_gpu_agents": "fallback",
        "reserve_after_seconds": 0.0, "zk_session_timeout": 4.5, "retention_seconds": 86400.5,
        "retention_max_finished": 2147483647,
    },
    "escaping": {"principal": 'odd"prin\\cipal', "secret": "secret-from-the-secret-store"},
}

DEFAULT_SETTINGS = {
    "framework_name": "mesos-gpu", "master": "zk://master.mesos:2181/mesos",
    "zk_url": "zk://master.mesos:2181/mesos-gpu", "role": "*", "user": "nobody", "principal": None,
    "secret": None, "secret_file": None, "failover_timeout": 604800.0, "api_host": "0.0.0.0",
    "api_tokens": (), "api_tokens_file": None, "api_auth_reads": False, "log_level": "INFO",
    "default_containerizer": "mesos", "cpu_tasks_on_gpu_agents": "restricted", "heartbeat_timeout": 75.0,
    "instances": 1, "launcher_uri_base": None, "reserve_after_seconds": 300.0,
    "zk_session_timeout": 10.0, "retention_seconds": 604800.0, "retention_max_finished": 10000,
    "tenants_file": None,
}

SECRET_STORE = {"token": "token-from-the-secret-store", "secret": "secret-from-the-secret-store"}


def marathon_task_env(app: dict[str, Any], host: str, port: int) -> dict[str, str]:
    """The environment Marathon and Mesos give the task: the app's env with secret references resolved
    from the secret store, plus Marathon's HOST, PORT0, PORT_<NAME> and PORTS."""
    env: dict[str, str] = {}
    for name, value in app["env"].items():
        if isinstance(value, dict):
            source = app["secrets"][value["secret"]]["source"]
            env[name] = SECRET_STORE["token" if "token" in source else "secret"]
        else:
            env[name] = value
    env.update({"HOST": host, "PORT0": str(port), "PORTS": str(port)})
    for definition in app["portDefinitions"]:
        env[f"PORT_{definition['name'].upper()}"] = str(port)
    return env


@pytest.fixture(params=sorted(OPTION_SETS), scope="module")
def rendered(request) -> tuple[str, dict[str, Any], dict[str, Any]]:
    name = request.param
    return name, OPTION_SETS[name], render(OPTION_SETS[name])


def test_rendered_app_is_valid_against_marathons_schema(rendered):
    _, _, app = rendered
    jsonschema.Draft4Validator(APP_SCHEMA).validate(app)


def test_rendered_app_runs_the_scheduler_image_without_gpus(rendered):
    _, options, app = rendered
    service = merged_options(options)["service"]
    image = service["docker_image"] or FILES["resource"]["assets"]["container"]["docker"]["scheduler"]
    assert app["container"]["docker"]["image"] == image
    # Registry credentials fetched into the sandbox are read by the Docker engine only.
    credentials = service["docker_credentials_uri"]
    assert app["container"]["type"] == ("DOCKER" if credentials else "MESOS")
    if credentials:
        assert app["fetch"] == [{"uri": credentials, "executable": False, "extract": True}]
    else:
        assert "fetch" not in app
    assert app.get("gpus", 0) == 0
    assert app["cmd"].endswith("mesos-gpu scheduler")


def test_rendered_app_has_the_dcos_labels(rendered):
    _, options, app = rendered
    merged = merged_options(options)
    name = merged["service"]["name"]
    labels = app["labels"]
    assert app["id"] == f"/{name}"
    assert labels["DCOS_PACKAGE_FRAMEWORK_NAME"] == name == app["env"]["DCOS_PACKAGE_FRAMEWORK_NAME"]
    assert labels["DCOS_SERVICE_NAME"] == name
    assert labels["DCOS_SERVICE_PORT_INDEX"] == "0"
    assert labels["DCOS_SERVICE_SCHEME"] == "http"
    assert all(isinstance(v, str) for v in labels.values())


def test_single_instance_or_ha(rendered):
    _, options, app = rendered
    service = merged_options(options)["service"]
    ha = service["high_availability"]
    strategy = app["upgradeStrategy"]
    if ha:
        assert app["instances"] == service["instances"] >= 2
        assert "MARATHON_SINGLE_INSTANCE_APP" not in app["labels"]
        assert strategy == {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0}
    else:
        assert app["instances"] == 1
        assert app["labels"]["MARATHON_SINGLE_INSTANCE_APP"] == "true"
        assert strategy == {"minimumHealthCapacity": 0, "maximumOverCapacity": 0}
    extra = [[c["field"], c["operator"], *([c["value"]] if c.get("value") else [])]
             for c in service["placement_constraints"]]
    assert app["constraints"] == [["hostname", "UNIQUE"], *extra]


def test_health_check_and_port(rendered):
    _, options, app = rendered
    # Marathon kills a task whose health check keeps failing: liveness, which a ZooKeeper or Mesos
    # outage never fails (a standby is live too). Readiness only gates deployments (old tasks are
    # killed once new ones are ready) and never kills, so it goes in readinessChecks.
    [check] = app["healthChecks"]
    assert check["path"] == "/v1/health/live"
    assert check["protocol"] == "MESOS_HTTP"
    assert check["portIndex"] == 0
    [ready] = app["readinessChecks"]
    assert ready["path"] == "/v1/health/ready"
    assert ready["protocol"] == "HTTP"
    assert ready["httpStatusCodesForReady"] == [200]
    assert ready["timeoutSeconds"] < ready["intervalSeconds"]  # Marathon's rule for the two
    [port] = app["portDefinitions"]
    assert ready["portName"] == port["name"]
    assert port["name"] == "api" and port["protocol"] == "tcp"
    merged = merged_options(options)
    assert port["port"] == merged["api"]["port"]
    # DC/OS's metrics collection (Telegraf's prometheus input) scrapes ports with these labels, but
    # only while /metrics answers without a token.
    metrics = {"DCOS_METRICS_FORMAT": "prometheus", "DCOS_METRICS_ENDPOINT": "/metrics"}
    vip = {"VIP_0": f"/{merged['service']['name']}:80"}
    expected = vip | ({} if merged["api"]["auth_reads"] else metrics)
    assert port["labels"] == expected


def test_secrets_are_declared_only_when_used(rendered):
    _, options, app = rendered
    merged = merged_options(options)
    expected = {}
    if merged["service"]["secret_name"]:
        expected["frameworkSecret"] = {"source": merged["service"]["secret_name"]}
    if merged["api"]["auth_token_secret"]:
        expected["apiTokens"] = {"source": merged["api"]["auth_token_secret"]}
    assert app.get("secrets", {}) == expected
    if not expected:
        assert "secrets" not in app  # DC/OS open has no secret store: no "secrets" key at all
    references = {v["secret"] for v in app["env"].values() if isinstance(v, dict)}
    assert references == set(expected)


def test_the_template_sets_only_variables_the_scheduler_reads(rendered):
    _, _, app = rendered
    assert set(app["env"]) <= ENV.names()


def test_the_scheduler_reads_the_rendered_environment(rendered):
    name, _, app = rendered
    settings = SchedulerSettings.from_env(marathon_task_env(app, host="agent-1.example", port=31457))
    expected = DEFAULT_SETTINGS | EXPECTED[name]
    actual = {field: getattr(settings, field) for field in expected}
    assert actual == expected
    # Marathon's dynamic port and host: the API listens there and tasks fetch the launcher there.
    assert settings.api_port == 31457
    assert settings.advertised_host == "agent-1.example"
    assert settings.launcher_base_url() == "http://agent-1.example:31457"
    assert settings.zk_framework_root == f"/mesos-gpu/{settings.framework_name}"


def test_the_escaped_values_reach_the_app_unchanged():
    app = render(OPTION_SETS["escaping"])
    assert app["env"]["MESOS_GPU_PRINCIPAL"] == 'odd"prin\\cipal'
    assert app["secrets"]["frameworkSecret"]["source"] == 'path/with "quotes" \\ and \u00e9'


def test_big_numbers_render_as_java_doubles_that_the_scheduler_still_reads():
    app = render(OPTION_SETS["everything"])
    assert app["env"]["MESOS_GPU_FAILOVER_TIMEOUT"] == "3.0E9"
    assert app["env"]["MESOS_GPU_HEARTBEAT_TIMEOUT"] == "30.5"
    assert app["cpus"] == 0.5 and app["mem"] == 2048


def test_the_defaults_render_the_session_and_retention_variables():
    env = render({})["env"]
    assert env["MESOS_GPU_ZK_SESSION_TIMEOUT"] == "10"
    assert env["MESOS_GPU_RETENTION_SECONDS"] == "604800"
    assert env["MESOS_GPU_RETENTION_MAX_FINISHED"] == "10000"
    assert "MESOS_GPU_TENANTS_FILE" not in env  # tenants are set at run time on DC/OS (docs/dcos.md)
    # The package's defaults are the scheduler's own, so rendering them changes nothing.
    assert SchedulerSettings.from_env(env).retention == SchedulerSettings().retention


def test_retention_limits_of_zero_turn_them_off_in_the_scheduler():
    app = render(OPTION_SETS["retention-off"])
    assert app["env"]["MESOS_GPU_RETENTION_SECONDS"] == "0"
    assert app["env"]["MESOS_GPU_RETENTION_MAX_FINISHED"] == "0"
    policy = SchedulerSettings.from_env(app["env"]).retention
    assert (policy.max_age_seconds, policy.max_finished) == (None, None)
    assert render(OPTION_SETS["retention-long"])["env"]["MESOS_GPU_RETENTION_SECONDS"] == "3.0E9"


INVALID = {
    "no-instances": {"service": {"high_availability": True, "instances": 0}},
    "auth-reads-without-token": {"api": {"auth_reads": True}},
    "image-with-space": {"service": {"docker_image": "registry.example.com/a b"}},
    "credentials-not-a-uri": {"service": {"docker_credentials_uri": "/etc/docker.tar.gz"}},
    "constraint-bad-operator": {"service": {"placement_constraints": [{"field": "rack",
                                                                      "operator": "NEAR"}]}},
    "constraint-like-without-value": {"service": {"placement_constraints": [{"field": "rack",
                                                                           "operator": "LIKE"}]}},
    "constraint-unknown-key": {"service": {"placement_constraints": [{"field": "rack", "operator": "UNIQUE",
                                                                     "values": "x"}]}},
    "unknown-option": {"service": {"gpus": 1}},
    "unknown-group": {"scheduler": {}},
    "name-with-slash": {"service": {"name": "team/mesos-gpu"}},
    "bad-role": {"service": {"role": "-gpu"}},
    "bad-zookeeper": {"service": {"zookeeper": "zk://master.mesos:2181"}},
    "bad-containerizer": {"gpu": {"default_containerizer": "podman"}},
    "zero-failover": {"service": {"failover_timeout": 0}},
    "port-too-big": {"api": {"port": 70000}},
    "zk-session-zero": {"service": {"zk_session_timeout": 0}},
    "zk-session-under-a-second": {"service": {"zk_session_timeout": 0.5}},
    "zk-session-too-long": {"service": {"zk_session_timeout": 601}},
    "zk-session-text": {"service": {"zk_session_timeout": "10"}},
    "retention-negative": {"jobs": {"retention_seconds": -1}},
    "retention-text": {"jobs": {"retention_seconds": "7d"}},
    "max-finished-negative": {"jobs": {"retention_max_finished": -1}},
    "max-finished-fraction": {"jobs": {"retention_max_finished": 1.5}},
    # 2^31 would reach the template as a Java Double ("2.147483648E9"), which is no whole number.
    "max-finished-beyond-int": {"jobs": {"retention_max_finished": 2147483648}},
    "unknown-jobs-option": {"jobs": {"retention_days": 7}},
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_options_are_refused_before_rendering(name):
    with pytest.raises(jsonschema.ValidationError):
        render(INVALID[name])


def test_the_rendered_environment_alone_is_read_as_is(rendered):
    # Exactly the app's env, before Marathon adds anything: strings are read, and an unresolved secret
    # reference is refused by name rather than taken as a value.
    _, _, app = rendered
    secret_refs = sorted(key for key, value in app["env"].items() if isinstance(value, dict))
    if not secret_refs:
        settings = SchedulerSettings.from_env(app["env"])
        assert settings.framework_name == app["labels"]["DCOS_PACKAGE_FRAMEWORK_NAME"]
        assert settings.api_port == 8080 and settings.advertised_host is None
    else:
        with pytest.raises(ValidationError) as info:
            SchedulerSettings.from_env(app["env"])
        assert [e.path for e in info.value.errors] == [f"/{key}" for key in secret_refs]
