"""Invalid job documents with the exact errors `validate_job` must report (the schema test uses them too)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from mesos_gpu.core.joblimits import (
    COMMAND_MESSAGE,
    CONSTRAINT_SHAPE_MESSAGE,
    DNS_LABEL_MESSAGE,
    GPUS_MESSAGE,
    IMAGE_MESSAGE,
    ISOLATION_MESSAGE,
    SHARE_STEP_MESSAGE,
)

DELETE = object()
SINGLE: dict[str, Any] = {"name": "job", "command": "true"}
DIST: dict[str, Any] = {"name": "tf", "command": "python t.py", "roles": {"worker": {"instances": 2}}}

CPUS = "must be a number from 0.01 to 1024"
GPUS = GPUS_MESSAGE
INSTANCES = "must be a whole number from 1 to 1000"
ENV_NAME = "not a valid variable name (letters, digits and '_', no leading digit)"
OPERATORS = "must be one of UNIQUE, CLUSTER, LIKE, UNLIKE, GROUP_BY, MAX_PER"
COUNT = 'must be a whole number from 1 to 999999, as a string ("2")'
CONSTRAINT_VALUE = "must be a string of at most 1024 characters"
SUCCESS_POLICIES = 'must be one of "chief", "worker0", "AllWorkers"'
WITH_ROLES = "not allowed in a job with roles (set it in each role)"


def single(**changes: Any) -> dict[str, Any]:
    """SINGLE with top-level changes (DELETE removes a key)."""
    return _apply(SINGLE, changes)


def dist(roles: Any = None, **changes: Any) -> dict[str, Any]:
    """DIST with its roles replaced (when given) and top-level changes."""
    doc = _apply(DIST, changes)
    if roles is not None:
        doc["roles"] = roles
    return doc


def _apply(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    for key, value in changes.items():
        if value is DELETE:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


def constraint(*items: Any) -> dict[str, Any]:
    return single(constraints=[list(items)])


@dataclass(frozen=True)
class Case:
    id: str
    doc: Any
    errors: list[tuple[str, str]]
    schema_rejects: bool = True  # False: a rule only validate_job checks (the schema cannot say it)


CASES: list[Case] = [
    # the document itself
    Case("root-list", [], [("", "must be an object")]),
    Case("root-null", None, [("", "must be an object")]),
    Case("root-string", "job", [("", "must be an object")]),
    Case("empty", {}, [("/name", "required"), ("/command", "required")]),
    Case("unknown-field", single(gpu=1), [("/gpu", "unknown field")]),
    Case("unknown-fields-all-listed", single(a=1, b=2), [("/a", "unknown field"), ("/b", "unknown field")]),
    # name
    Case("name-missing", single(name=DELETE), [("/name", "required")]),
    Case("name-uppercase", single(name="Job"), [("/name", DNS_LABEL_MESSAGE)]),
    Case("name-underscore", single(name="my_job"), [("/name", DNS_LABEL_MESSAGE)]),
    Case("name-leading-dash", single(name="-job"), [("/name", DNS_LABEL_MESSAGE)]),
    Case("name-64-chars", single(name="a" * 64), [("/name", DNS_LABEL_MESSAGE)]),
    Case("name-empty", single(name=""), [("/name", DNS_LABEL_MESSAGE)]),
    Case("name-number", single(name=5), [("/name", DNS_LABEL_MESSAGE)]),
    Case("name-trailing-newline", single(name="job\n"), [("/name", DNS_LABEL_MESSAGE)], schema_rejects=False),
    # command
    Case("command-missing", single(command=DELETE), [("/command", "required")]),
    Case("command-null", single(command=None), [("/command", "required")]),
    Case("command-blank", single(command="  \n"), [("/command", COMMAND_MESSAGE)]),
    Case("command-list", single(command=["python", "x.py"]), [("/command", COMMAND_MESSAGE)]),
    Case("command-nul", single(command="echo \x00"), [("/command", COMMAND_MESSAGE)]),
    Case("command-oversize", single(command="x" * 65_537), [("/command", COMMAND_MESSAGE)]),
    # single-task resources
    Case("cpus-bool", single(cpus=True), [("/cpus", CPUS)]),
    Case("cpus-string", single(cpus="2"), [("/cpus", CPUS)]),
    Case("cpus-zero", single(cpus=0), [("/cpus", CPUS)]),
    Case("cpus-negative", single(cpus=-1), [("/cpus", CPUS)]),
    Case("cpus-too-small", single(cpus=0.001), [("/cpus", CPUS)]),
    Case("cpus-huge", single(cpus=10**400), [("/cpus", CPUS)]),
    Case("cpus-nan", single(cpus=float("nan")), [("/cpus", CPUS)], schema_rejects=False),
    Case("cpus-infinity", single(cpus=float("inf")), [("/cpus", CPUS)]),
    Case("mem-too-small", single(mem=16), [("/mem", "must be a number from 32 to 4194304")]),
    Case("mem-null", single(mem=None), [("/mem", "must be a number from 32 to 4194304")]),
    Case("disk-negative", single(disk=-1), [("/disk", "must be a number from 0 to 16777216")]),
    Case("gpus-fractional-above-one", single(gpus=1.5), [("/gpus", GPUS)]),
    Case("gpus-share-too-fine", single(gpus=0.125), [("/gpus", SHARE_STEP_MESSAGE)]),
    Case("gpus-negative", single(gpus=-1), [("/gpus", GPUS)]),
    Case("gpus-too-many", single(gpus=65), [("/gpus", GPUS)]),
    Case("gpus-string", single(gpus="1"), [("/gpus", GPUS)]),
    Case("gpus-bool", single(gpus=True), [("/gpus", GPUS)]),
    # containerizer and image
    Case(
        "containerizer-unknown",
        single(containerizer="podman"),
        [("/containerizer", 'must be "mesos" or "docker"')],
    ),
    Case("image-space", single(image="my image"), [("/image", IMAGE_MESSAGE)]),
    Case("image-empty", single(image=""), [("/image", IMAGE_MESSAGE)]),
    Case("image-number", single(image=5), [("/image", IMAGE_MESSAGE)]),
    Case("image-oversize", single(image="a" * 513), [("/image", IMAGE_MESSAGE)]),
    Case(
        "docker-needs-image",
        single(containerizer="docker"),
        [("/image", "required with the docker containerizer")],
    ),
    Case(
        "docker-role-needs-image",
        dist({"chief": {"image": "img"}, "worker": {}}, containerizer="docker"),
        [("/roles/worker/image", "required with the docker containerizer: the job sets no image")],
    ),
    Case(
        "docker-roles-need-image",
        dist(containerizer="docker"),
        [("/image", "required with the docker containerizer")],
    ),
    # roles
    Case(
        "roles-and-top-level-resources", dist(cpus=1, gpus=1), [("/cpus", WITH_ROLES), ("/gpus", WITH_ROLES)]
    ),
    Case("roles-not-object", dist([]), [("/roles", "must be an object")]),
    Case("roles-empty", dist({}), [("/roles", "needs a chief or a worker")]),
    Case("roles-only-ps", dist({"ps": {}}), [("/roles", "needs a chief or a worker")]),
    Case(
        "roles-unknown",
        dist({"worker": {}, "master": {}}),
        [("/roles/master", "unknown role (expected chief, worker, ps or evaluator)")],
    ),
    Case("role-not-object", dist({"worker": 2}), [("/roles/worker", "must be an object")]),
    Case("role-unknown-field", dist({"worker": {"gpu": 1}}), [("/roles/worker/gpu", "unknown field")]),
    Case(
        "chief-two",
        dist({"chief": {"instances": 2}}),
        [("/roles/chief/instances", "must be 1 (a job has one chief)")],
    ),
    Case(
        "evaluator-zero",
        dist({"worker": {}, "evaluator": {"instances": 0}}),
        [("/roles/evaluator/instances", "must be 1 (a job has one evaluator)")],
    ),
    Case(
        "chief-instances-bool",
        dist({"chief": {"instances": True}}),
        [("/roles/chief/instances", "must be 1 (a job has one chief)")],
    ),
    Case("workers-zero", dist({"worker": {"instances": 0}}), [("/roles/worker/instances", INSTANCES)]),
    Case("workers-1001", dist({"worker": {"instances": 1001}}), [("/roles/worker/instances", INSTANCES)]),
    Case(
        "workers-fractional", dist({"worker": {"instances": 1.5}}), [("/roles/worker/instances", INSTANCES)]
    ),
    Case(
        "too-many-tasks",
        dist({"worker": {"instances": 600}, "ps": {"instances": 600}}),
        [("/roles", "too many tasks: 1200 (at most 1000 per job)")],
        schema_rejects=False,
    ),
    Case("role-gpus-fractional", dist({"worker": {"gpus": 1.5}}), [("/roles/worker/gpus", GPUS)]),
    Case("role-cpus-zero", dist({"worker": {"cpus": 0}}), [("/roles/worker/cpus", CPUS)]),
    Case(
        "role-errors-all-listed",
        dist({"chief": {"gpus": -1}, "worker": {"cpus": "1", "mem": 0}}),
        [
            ("/roles/chief/gpus", GPUS),
            ("/roles/worker/cpus", CPUS),
            ("/roles/worker/mem", "must be a number from 32 to 4194304"),
        ],
    ),
    Case("roles-no-command", dist(command=DELETE), [("/command", "required")]),
    Case(
        "role-missing-command",
        dist({"chief": {"command": "python chief.py"}, "ps": {}}, command=DELETE),
        [("/roles/ps/command", "required: the job sets no command")],
    ),
    Case(
        "role-command-blank", dist({"worker": {"command": ""}}), [("/roles/worker/command", COMMAND_MESSAGE)]
    ),
    Case("role-image-space", dist({"worker": {"image": "a b"}}), [("/roles/worker/image", IMAGE_MESSAGE)]),
    # env
    Case("env-not-object", single(env=["A=1"]), [("/env", "must be an object")]),
    Case("env-bad-name", single(env={"1BAD": "x"}), [("/env/1BAD", ENV_NAME)]),
    Case("env-name-with-slash", single(env={"a/b": "x"}), [("/env/a~1b", ENV_NAME)]),
    Case(
        "env-tf-config-reserved",
        single(env={"TF_CONFIG": "{}"}),
        [("/env/TF_CONFIG", "reserved: mesos-gpu sets it")],
    ),
    Case(
        "env-prefix-reserved",
        single(env={"MESOS_GPU_X": "1"}),
        [("/env/MESOS_GPU_X", "reserved: mesos-gpu sets it")],
    ),
    Case(
        "env-value-number", single(env={"A": 1}), [("/env/A", "must be a string of at most 32768 characters")]
    ),
    Case(
        "env-value-null",
        single(env={"A": None}),
        [("/env/A", "must be a string of at most 32768 characters")],
    ),
    Case(
        "env-value-oversize",
        single(env={"A": "x" * 32_769}),
        [("/env/A", "must be a string of at most 32768 characters")],
    ),
    Case(
        "env-too-many",
        single(env={f"V{i}": "x" for i in range(257)}),
        [("/env", "at most 256 variables")],
    ),
    Case(
        "role-env-bad",
        dist({"worker": {"env": {"A": 2}}}),
        [("/roles/worker/env/A", "must be a string of at most 32768 characters")],
    ),
    # constraints
    Case(
        "constraints-not-list",
        single(constraints={"hostname": "UNIQUE"}),
        [("/constraints", "must be a list of constraints")],
    ),
    Case(
        "constraint-not-list",
        single(constraints=["hostname:UNIQUE"]),
        [("/constraints/0", CONSTRAINT_SHAPE_MESSAGE)],
    ),
    Case("constraint-one-item", constraint("hostname"), [("/constraints/0", CONSTRAINT_SHAPE_MESSAGE)]),
    Case(
        "constraint-four-items",
        constraint("a", "LIKE", "b", "c"),
        [("/constraints/0", CONSTRAINT_SHAPE_MESSAGE)],
    ),
    Case(
        "constraint-empty-field",
        constraint("", "UNIQUE"),
        [("/constraints/0/0", 'must be an attribute name (or "hostname"): 1 to 255 characters')],
    ),
    Case("constraint-unknown-operator", constraint("hostname", "NEAR"), [("/constraints/0/1", OPERATORS)]),
    Case(
        "constraint-lowercase-operator", constraint("hostname", "unique"), [("/constraints/0/1", OPERATORS)]
    ),
    Case("constraint-operator-number", constraint("hostname", 1), [("/constraints/0/1", OPERATORS)]),
    Case(
        "unique-with-value",
        constraint("hostname", "UNIQUE", "x"),
        [("/constraints/0/2", "UNIQUE takes no value")],
    ),
    Case("like-without-value", constraint("gpu_model", "LIKE"), [("/constraints/0", "LIKE needs a value")]),
    Case(
        "unlike-without-value",
        constraint("gpu_model", "UNLIKE"),
        [("/constraints/0", "UNLIKE needs a value")],
    ),
    Case(
        "max-per-without-value", constraint("rack", "MAX_PER"), [("/constraints/0", "MAX_PER needs a value")]
    ),
    Case("max-per-zero", constraint("rack", "MAX_PER", "0"), [("/constraints/0/2", COUNT)]),
    Case("group-by-negative", constraint("rack", "GROUP_BY", "-1"), [("/constraints/0/2", COUNT)]),
    Case(
        "max-per-number-not-string",
        constraint("rack", "MAX_PER", 2),
        [("/constraints/0/2", CONSTRAINT_VALUE)],
    ),
    Case(
        "like-bad-regex",
        constraint("gpu_model", "LIKE", "("),
        [
            (
                "/constraints/0/2",
                "not a valid regular expression: missing ), unterminated subpattern at position 0",
            )
        ],
        schema_rejects=False,
    ),
    Case(
        "like-ambiguous-regex",
        constraint("gpu_model", "LIKE", "[[a]"),
        [("/constraints/0/2", "not a valid regular expression: Possible nested set at position 1")],
        schema_rejects=False,
    ),
    Case(
        "constraints-second-bad",
        single(constraints=[["hostname", "UNIQUE"], ["rack", "CLUSTER", 3]]),
        [("/constraints/1/2", CONSTRAINT_VALUE)],
    ),
    Case(
        "constraints-too-many",
        single(constraints=[["hostname", "UNIQUE"]] * 65),
        [("/constraints", "at most 64 constraints")],
    ),
    # restart
    Case("restart-not-object", single(restart="OnFailure"), [("/restart", "must be an object")]),
    Case(
        "restart-unknown-field",
        single(restart={"max_retries": 3}),
        [("/restart/max_retries", "unknown field")],
    ),
    Case(
        "restart-policy-always",
        single(restart={"policy": "Always"}),
        [("/restart/policy", 'must be one of "Never", "OnFailure", "ExitCode"')],
    ),
    Case(
        "restart-limit-negative",
        single(restart={"backoff_limit": -1}),
        [("/restart/backoff_limit", "must be a whole number from 0 to 100")],
    ),
    Case(
        "restart-limit-bool",
        single(restart={"backoff_limit": False}),
        [("/restart/backoff_limit", "must be a whole number from 0 to 100")],
    ),
    Case(
        "restart-backoff-negative",
        single(restart={"backoff_seconds": -5}),
        [("/restart/backoff_seconds", "must be a number from 0 to 3600")],
    ),
    Case(
        "restart-cap-below-base",
        single(restart={"backoff_seconds": 60, "max_backoff_seconds": 30}),
        [("/restart/max_backoff_seconds", "must be at least backoff_seconds")],
        schema_rejects=False,
    ),
    # success policy
    Case(
        "success-policy-single-task",
        single(success_policy="chief"),
        [("/success_policy", "only for jobs with roles")],
    ),
    Case("success-policy-unknown", dist(success_policy="Chief"), [("/success_policy", SUCCESS_POLICIES)]),
    Case(
        "success-policy-chief-without-chief",
        dist(success_policy="chief"),
        [("/success_policy", '"chief" needs a chief role')],
    ),
    Case(
        "success-policy-all-workers-without-workers",
        dist({"chief": {}}, success_policy="AllWorkers"),
        [("/success_policy", '"AllWorkers" needs a worker role')],
    ),
    # scalars
    Case(
        "deadline-zero",
        single(deadline_seconds=0),
        [("/deadline_seconds", "must be a whole number from 1 to 31536000")],
    ),
    Case(
        "deadline-fractional",
        single(deadline_seconds=1.5),
        [("/deadline_seconds", "must be a whole number from 1 to 31536000")],
    ),
    Case(
        "priority-too-high",
        single(priority=1001),
        [("/priority", "must be a whole number from -1000 to 1000")],
    ),
    Case(
        "priority-bool", single(priority=True), [("/priority", "must be a whole number from -1000 to 1000")]
    ),
    Case("tenant-uppercase", single(tenant="Team"), [("/tenant", DNS_LABEL_MESSAGE)]),
    Case(
        "rendezvous-zero",
        single(rendezvous_timeout_seconds=0),
        [("/rendezvous_timeout_seconds", "must be a number from 1 to 86400")],
    ),
    Case("isolation-shared-capped", single(isolation="shared-capped"), [("/isolation", ISOLATION_MESSAGE)]),
    Case("isolation-list", single(isolation=["exclusive"]), [("/isolation", ISOLATION_MESSAGE)]),
    Case("isolation-null", single(isolation=None), [("/isolation", ISOLATION_MESSAGE)]),
    # labels
    Case("labels-not-object", single(labels=["a"]), [("/labels", "must be an object")]),
    Case(
        "labels-bad-key",
        single(labels={"-x": "1"}),
        [
            (
                "/labels/-x",
                "not a valid label key (1 to 63 letters, digits, '_', '.', '/' or '-', "
                "starting and ending with a letter or digit)",
            )
        ],
    ),
    Case(
        "labels-value-number",
        single(labels={"team": 1}),
        [("/labels/team", "must be a string of at most 256 characters")],
    ),
    Case(
        "labels-too-many",
        single(labels={f"k{i}": "v" for i in range(65)}),
        [("/labels", "at most 64 labels")],
    ),
    # many at once, in a stable order
    Case(
        "many-errors",
        {"name": "X", "roles": {"chief": {"instances": 2}}, "cpus": 1, "env": {"TF_CONFIG": "{}"}, "x": 0},
        [
            ("/x", "unknown field"),
            ("/name", DNS_LABEL_MESSAGE),
            ("/cpus", WITH_ROLES),
            ("/roles/chief/instances", "must be 1 (a job has one chief)"),
            ("/env/TF_CONFIG", "reserved: mesos-gpu sets it"),
            ("/command", "required"),
        ],
    ),
    Case(
        "non-string-keys",
        {1: "x", "name": "a", "command": "b"},
        [("/1", "keys must be strings")],
        schema_rejects=False,
    ),
]
