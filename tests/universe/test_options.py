"""The package's form as a user meets it: every option ticked or filled alone renders a Marathon app
valid against the real schema (the one cross-field rule left, auth_reads without tokens, is refused with
an error that names the missing field), the secret fields carry the media type the DC/OS UI reads, and
the notes' commands run with the real CLI parser and agree with the README and docs/dcos.md."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from mesos_gpu import cli
from tests.universe.render import (
    REPO,
    SCHEMAS,
    deep_merge,
    extract_defaults,
    load_json,
    package_files,
    render,
)

FILES = package_files()
CONFIG = FILES["config"]
APP_SCHEMA = load_json(SCHEMAS / "marathon" / "AppDefinition.json")
SECRET_MEDIA = {"type": "application/x-secret+string"}  # what the DC/OS UI mounts its secret picker on

# A value for each option that has no useful non-default to derive (strings): option path -> value.
SAMPLES: dict[str, Any] = {
    "service.principal": "mesos-gpu-principal",
    "service.secret_name": "mesos-gpu/secret",
    "service.docker_image": "registry.example.com/mesos-gpu/scheduler:0.1.0",
    "service.docker_credentials_uri": "file:///etc/docker.tar.gz",
    "service.placement_constraints": [{"field": "@zone", "operator": "GROUP_BY", "value": "3"}],
    "api.auth_token_secret": "mesos-gpu/api-tokens",
}
# The only options refused when set alone, and the option each then needs (no default can supply it).
REFUSED_ALONE = {"api.auth_reads": "auth_token_secret"}


def options(schema: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        if prop.get("type") == "object" and "properties" in prop:
            yield from options(prop, f"{path}.")
        else:
            yield path, prop


def nested(path: str, value: Any) -> dict[str, Any]:
    group, name = path.split(".")
    return {group: {name: value}}


BOOLEANS = sorted(path for path, prop in options(CONFIG) if prop.get("type") == "boolean")


def test_the_booleans_are_the_ones_this_file_knows() -> None:
    assert BOOLEANS == ["api.auth_reads", "gpu.backfill", "gpu.preemption", "service.high_availability"]


@pytest.mark.parametrize("path", BOOLEANS)
def test_each_boolean_ticked_alone(path: str) -> None:
    prop = dict(options(CONFIG))[path]
    choice = nested(path, not prop["default"])
    if path in REFUSED_ALONE:
        with pytest.raises(jsonschema.ValidationError) as info:
            render(choice)
        # The error leads to the field that is missing, and the option's text says so in words.
        assert any(REFUSED_ALONE[path] in error.path for error in info.value.context)
        assert f"api.{REFUSED_ALONE[path]}" in prop["description"]
    else:
        jsonschema.Draft4Validator(APP_SCHEMA).validate(render(choice))


@pytest.mark.parametrize("path", sorted(SAMPLES))
def test_each_option_filled_alone_renders_a_valid_app(path: str) -> None:
    jsonschema.Draft4Validator(APP_SCHEMA).validate(render(nested(path, SAMPLES[path])))


def test_ha_alone_runs_two_schedulers_and_ha_with_auth_keeps_both() -> None:
    assert render(nested("service.high_availability", True))["instances"] == 2
    both = render(deep_merge(nested("service.high_availability", True),
                             {"api": {"auth_token_secret": "mesos-gpu/api-tokens", "auth_reads": True}}))
    jsonschema.Draft4Validator(APP_SCHEMA).validate(both)
    assert both["instances"] == 2 and "MARATHON_SINGLE_INSTANCE_APP" not in both["labels"]
    assert both["secrets"] == {"apiTokens": {"source": "mesos-gpu/api-tokens"}}
    assert both["env"]["MESOS_GPU_API_AUTH_READS"] == "true"
    assert "DCOS_METRICS_FORMAT" not in both["portDefinitions"][0]["labels"]  # /metrics needs a token now


def test_no_cross_field_rule_is_left_but_the_one_no_default_can_satisfy() -> None:
    # Rules across options live in anyOf/allOf/oneOf/not of a group; only api's remains.
    combinators = {"anyOf", "allOf", "oneOf", "not", "dependencies"}
    groups = {name for name, group in CONFIG["properties"].items() if combinators & set(group)}
    assert groups == {"api"}


def test_secret_fields_carry_the_secret_media_type() -> None:
    secrets = {path for path, prop in options(CONFIG) if "secret" in path.split(".")[1]}
    assert secrets == {"service.secret_name", "api.auth_token_secret"}
    for path, prop in options(CONFIG):
        assert (prop.get("media") == SECRET_MEDIA) == (path in secrets), path


def test_the_defaults_match_the_option_texts_about_instances() -> None:
    service = extract_defaults(CONFIG)["service"]
    assert service["high_availability"] is False and service["instances"] == 2
    assert render({})["instances"] == 1


# --- the notes ---------------------------------------------------------------------------------------

PLACEHOLDERS = {"<dcos-url>": "https://dcos.example.com", "<service.name>": "mesos-gpu", "<token>": "t0ken"}


def note_commands(text: str, program: str) -> list[list[str]]:
    commands = []
    for snippet in re.findall(r"`([^`]+)`", text):
        command = snippet
        for placeholder, value in PLACEHOLDERS.items():
            command = command.replace(placeholder, value)
        words = shlex.split(command)
        if words and words[0] == program:
            commands.append(words[1:])
    return commands


def test_the_post_install_notes_cli_commands_parse_with_the_real_parser() -> None:
    commands = note_commands(FILES["package"]["postInstallNotes"], "mesos-gpu")
    assert ["--api", "http://mesos-gpu.marathon.l4lb.thisdcos.directory", "jobs"] in commands
    parser = cli.build_parser()
    for argv in commands:
        args = parser.parse_args(argv)
        assert callable(args.func), argv
        if "--api" in argv:
            assert args.api == argv[argv.index("--api") + 1]


def test_the_notes_curl_example_sends_the_header_admin_router_reads() -> None:
    [curl] = note_commands(FILES["package"]["postInstallNotes"], "curl")
    assert curl[0] == "-H" and curl[1].startswith("Authorization: token=")


def test_strict_mode_is_called_unsupported_everywhere() -> None:
    pre = FILES["package"]["preInstallNotes"]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    dcos = (REPO / "docs" / "dcos.md").read_text(encoding="utf-8")
    for text in (pre, readme, dcos):
        assert re.search(r"strict[^.]*not supported", text, re.IGNORECASE | re.DOTALL), text[:80]
    assert "service.principal and service.secret_name" not in pre  # the old advice for strict mode


def test_the_repository_has_the_licence_the_package_names() -> None:
    [licence] = FILES["package"]["licenses"]
    assert "Apache" in licence["name"] and "2.0" in licence["name"]
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text


def test_the_placement_and_log_options_reach_the_scheduler() -> None:
    from mesos_gpu.core.config import SchedulerSettings
    from tests.universe.test_package import marathon_task_env

    app = render({"gpu": {"placement_strategy": "fgd", "share_hosts": "spread", "backfill": False},
                  "service": {"log_format": "json"}})
    settings = SchedulerSettings.from_env(marathon_task_env(app, host="agent-1.example", port=31457))
    assert (settings.placement_strategy, settings.share_hosts, settings.backfill) == ("fgd", "spread", False)
    assert settings.log_format == "json"


# Each new scheduler setting set alone, at its bounds: option path -> (value, variable, settings field, read).
NUMBERS_ALONE = [
    ("service.zk_session_timeout", 1, "MESOS_GPU_ZK_SESSION_TIMEOUT", "zk_session_timeout", 1.0),
    ("service.zk_session_timeout", 600, "MESOS_GPU_ZK_SESSION_TIMEOUT", "zk_session_timeout", 600.0),
    ("service.zk_session_timeout", 2.5, "MESOS_GPU_ZK_SESSION_TIMEOUT", "zk_session_timeout", 2.5),
    ("jobs.retention_seconds", 0, "MESOS_GPU_RETENTION_SECONDS", "retention_seconds", 0.0),
    ("jobs.retention_seconds", 3600.5, "MESOS_GPU_RETENTION_SECONDS", "retention_seconds", 3600.5),
    ("jobs.retention_max_finished", 0, "MESOS_GPU_RETENTION_MAX_FINISHED", "retention_max_finished", 0),
    ("jobs.retention_max_finished", 2**31 - 1, "MESOS_GPU_RETENTION_MAX_FINISHED", "retention_max_finished",
     2**31 - 1),
]


@pytest.mark.parametrize(("path", "value", "variable", "field", "read"), NUMBERS_ALONE)
def test_each_new_setting_alone_renders_a_valid_app_the_scheduler_reads(
        path: str, value: Any, variable: str, field: str, read: Any) -> None:
    from mesos_gpu.core.config import SchedulerSettings

    app = render(nested(path, value))
    jsonschema.Draft4Validator(APP_SCHEMA).validate(app)
    settings = SchedulerSettings.from_env(app["env"])
    assert getattr(settings, field) == read, app["env"][variable]


@pytest.mark.parametrize(("path", "value"), [
    ("service.zk_session_timeout", 0.99), ("service.zk_session_timeout", 600.5),
    ("jobs.retention_seconds", -0.5), ("jobs.retention_max_finished", -1),
    ("jobs.retention_max_finished", 2**31), ("jobs.retention_max_finished", 10.5),
])
def test_each_new_setting_out_of_range_is_refused_by_the_form(path: str, value: Any) -> None:
    with pytest.raises(jsonschema.ValidationError) as info:
        render(nested(path, value))
    assert list(info.value.path) == path.split(".")


def test_the_form_ranges_are_the_schedulers() -> None:
    # What the form accepts at its edges the scheduler accepts, and just beyond them it refuses too.
    from mesos_gpu.core.config import SchedulerSettings
    from mesos_gpu.core.errors import ValidationError

    prop = dict(options(CONFIG))["service.zk_session_timeout"]
    for raw, ok in ((prop["minimum"], True), (prop["maximum"], True),
                    (prop["minimum"] - 0.5, False), (prop["maximum"] + 1, False)):
        env = {"MESOS_GPU_ZK_SESSION_TIMEOUT": str(raw)}
        if ok:
            assert SchedulerSettings.from_env(env).zk_session_timeout == raw
        else:
            with pytest.raises(ValidationError):
                SchedulerSettings.from_env(env)
    assert dict(options(CONFIG))["jobs.retention_seconds"]["minimum"] == 0
    assert dict(options(CONFIG))["jobs.retention_max_finished"]["minimum"] == 0


def test_the_dcos_tenants_commands_parse_with_the_real_parser() -> None:
    dcos = (REPO / "docs" / "dcos.md").read_text(encoding="utf-8")
    section = dcos.split("## 11. Tenants and GPU quotas", 1)[1].split("\n## ", 1)[0]
    lines = [line.split("#", 1)[0].strip() for line in section.splitlines()]
    commands = [shlex.split(line)[1:] for line in lines if line.startswith("mesos-gpu ")]
    assert ["--api", "http://mesos-gpu.marathon.l4lb.thisdcos.directory", "tenants", "set", "--file",
            "tenants.json"] in commands
    parser = cli.build_parser()
    for argv in commands:
        args = parser.parse_args(argv)
        assert args.action in ("show", "set", "reset"), argv
        assert callable(args.func), argv
    assert "PUT" in section and "X-Mesos-GPU-Token" in section and "/service/mesos-gpu/v1/tenants" in section
