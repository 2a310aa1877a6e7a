"""Text that is not valid Unicode: a lone surrogate (JSON's "\\ud800" escape decodes to one, UTF-8 cannot
encode it) anywhere in a job document, in a value or in an object key, is a 400 at its JSON path, never
an exception from the store later (issue 20, item 4)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from mesos_gpu.core.errors import ValidationError, json_pointer
from mesos_gpu.core.joblimits import unicode_problem
from mesos_gpu.core.validation import validate_job
from tests.model.cases import dist, single

LONE = "\ud800"


def text_error(index: int, code: str = "\\ud800") -> str:
    return f"must be valid Unicode text (a lone surrogate {code} at character {index})"


def key_error(shown: str, index: int) -> str:
    """A bad key is reported at its object's path, shown escaped: no error holds a lone surrogate."""
    return f'key "{shown}" {text_error(index)}'


def errors_of(doc: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        validate_job(doc)
    return [(error.path, error.message) for error in caught.value.errors]


@pytest.mark.parametrize(
    ("doc", "errors"),
    [
        pytest.param(single(name=LONE), [("/name", text_error(0))], id="name"),
        pytest.param(single(command=f"echo {LONE}"), [("/command", text_error(5))], id="command"),
        pytest.param(single(image=f"img{LONE}"), [("/image", text_error(3))], id="image"),
        pytest.param(single(containerizer=LONE), [("/containerizer", text_error(0))], id="containerizer"),
        pytest.param(single(tenant=f"t{LONE}"), [("/tenant", text_error(1))], id="tenant"),
        pytest.param(single(isolation=LONE), [("/isolation", text_error(0))], id="isolation"),
        pytest.param(single(cpus=LONE), [("/cpus", text_error(0))], id="string-for-a-number"),
        pytest.param(single(env={"A": f"x{LONE}"}), [("/env/A", text_error(1))], id="env-value"),
        pytest.param(single(env={f"A{LONE}": "x"}), [("/env", key_error("A\\ud800", 1))], id="env-key"),
        pytest.param(single(labels={"k": f"v{LONE}"}), [("/labels/k", text_error(1))], id="label-value"),
        pytest.param(
            single(labels={f"{LONE}k": "v"}), [("/labels", key_error("\\ud800k", 0))], id="label-key"
        ),
        pytest.param(
            single(constraints=[[f"rack{LONE}", "UNIQUE"]]), [("/constraints/0/0", text_error(4))],
            id="constraint-field",
        ),
        pytest.param(
            single(constraints=[["rack", LONE]]), [("/constraints/0/1", text_error(0))],
            id="constraint-operator",
        ),
        pytest.param(
            single(constraints=[["rack", "LIKE", f"a.*{LONE}"]]), [("/constraints/0/2", text_error(3))],
            id="constraint-value",
        ),
        pytest.param(
            single(restart={"policy": LONE}), [("/restart/policy", text_error(0))], id="restart-policy"
        ),
        pytest.param(
            single(restart={LONE: 1}), [("/restart", key_error("\\ud800", 0))], id="restart-unknown-key"
        ),
        pytest.param(
            dist({"worker": {"instances": 2, "command": f"run {LONE}"}}),
            [("/roles/worker/command", text_error(4))],
            id="role-command",
        ),
        pytest.param(
            dist({"worker": {"instances": 2, "image": LONE}}), [("/roles/worker/image", text_error(0))],
            id="role-image",
        ),
        pytest.param(
            dist({"worker": {"instances": 2, "env": {"B": LONE}}}), [("/roles/worker/env/B", text_error(0))],
            id="role-env-value",
        ),
        pytest.param(
            dist({"worker": {"instances": 2, "env": {LONE: "b"}}}),
            [("/roles/worker/env", key_error("\\ud800", 0))],
            id="role-env-key",
        ),
        pytest.param(
            dist({"worker": {"instances": 2}, LONE: {}}),
            [("/roles", key_error("\\ud800", 0))],
            id="role-name",
        ),
        pytest.param(dist(success_policy=LONE), [("/success_policy", text_error(0))], id="success-policy"),
        pytest.param(single(**{LONE: "x"}), [("", key_error("\\ud800", 0))], id="unknown-top-level-key"),
        pytest.param(
            single(env={f"{'A' * 70}{LONE}": {"deeper": LONE}}),
            [("/env", key_error("A" * 60 + "...", 70))],
            id="a-long-key-is-shortened-and-what-it-holds-skipped",
        ),
        pytest.param(
            single(extra=[{"deep": ["ok", f"..{LONE}"]}]),
            [("/extra/0/deep/1", text_error(2)), ("/extra", "unknown field")],
            id="inside-an-unknown-field",
        ),
        pytest.param(
            single(command="\ude00\ud83d"), [("/command", text_error(0, "\\ude00"))], id="reversed-pair"
        ),
        pytest.param(
            single(command=f"echo {LONE}", env={"A": LONE}),
            [("/command", text_error(5)), ("/env/A", text_error(0))],
            id="every-one-is-reported",
        ),
    ],
)
def test_a_lone_surrogate_is_reported_at_its_path(doc: dict[str, Any], errors: list[tuple[str, str]]) -> None:
    assert errors_of(doc) == errors


def test_escaped_surrogates_that_form_a_pair_are_one_valid_character() -> None:
    doc = json.loads('{"name": "a", "command": "echo \\ud83d\\ude00", "labels": {"k": "\\u00e9t\\u00e9"}}')
    spec = validate_job(doc)
    assert spec.command == "echo \U0001f600"
    assert spec.labels == {"k": "été"}


def test_the_message_names_the_first_bad_character_of_a_string() -> None:
    assert unicode_problem("plain") is None
    assert unicode_problem("été \U0001f600") is None
    assert unicode_problem(f"ab{LONE}c\udfff") == "a lone surrogate \\ud800 at character 2"
    assert unicode_problem("\udfff") == "a lone surrogate \\udfff at character 0"


RICH: dict[str, Any] = {
    "name": "mnist",
    "image": "tensorflow/tensorflow:2.16.1-gpu",
    "containerizer": "mesos",
    "command": "python train.py",
    "roles": {
        "chief": {"instances": 1, "command": "python chief.py", "image": "img", "env": {"C": "1"}},
        "worker": {"instances": 2, "env": {"W": "2"}},
    },
    "env": {"TF_CPP_MIN_LOG_LEVEL": "1"},
    "constraints": [["hostname", "UNIQUE"], ["gpu_model", "LIKE", "A100.*"], ["rack", "GROUP_BY", "2"]],
    "restart": {"policy": "OnFailure"},
    "success_policy": "chief",
    "tenant": "team-a",
    "isolation": "exclusive",
    "labels": {"team": "vision", "app.kubernetes.io/name": "mnist"},
}


def _strings(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], bool]]:
    """(path, is a key) of every string of a document."""
    if isinstance(value, str):
        yield path, False
    elif isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key), True
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _spoiled(doc: dict[str, Any], path: tuple[str | int, ...], key: bool) -> tuple[Any, str]:
    """A copy of `doc` with a lone surrogate appended to the string (or key) at `path`; its pointer."""
    copied = copy.deepcopy(doc)
    parent: Any = copied
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if key:
        assert isinstance(last, str)
        parent[last + LONE] = parent.pop(last)
        return copied, json_pointer(path[:-1])
    parent[last] += LONE
    return copied, json_pointer(path)


def test_every_string_of_a_valid_job_is_checked() -> None:
    validate_job(RICH)
    places = list(_strings(RICH))
    assert len(places) > 40
    for path, key in places:
        doc, pointer = _spoiled(RICH, path, key)
        errors = errors_of(doc)
        assert [p for p, m in errors if "valid Unicode text" in m] == [pointer], (path, key, errors)
        assert all(unicode_problem(p + m) is None for p, m in errors)
