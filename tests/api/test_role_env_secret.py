"""A `{"secret": NAME}` in a role's env is refused with a message that says where secrets go (the job's
env), not a string-length message (reviewer finding 7); the job's env still takes secrets."""

from __future__ import annotations

import pytest

from mesos_gpu.core.errors import ValidationError
from mesos_gpu.core.validation import validate_job

SECRETS = {"db": {"source": "team/db-password"}}


def _errors(job: dict) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        validate_job(job)
    return {error.path: error.message for error in caught.value.errors}


@pytest.mark.parametrize("value", [{"secret": "db"}, {"secret": "nope"}])
def test_a_secret_in_a_roles_env_says_where_secrets_go(value: dict) -> None:
    job = {"name": "x", "command": "true", "secrets": SECRETS, "roles": {"worker": {"env": {"P": value}}}}
    message = _errors(job)["/roles/worker/env/P"]
    assert "characters" not in message
    assert "job's env" in message and "secret" in message


def test_other_non_strings_in_a_roles_env_keep_the_string_message() -> None:
    job = {"name": "x", "command": "true", "roles": {"worker": {"env": {"P": 3}}}}
    assert "must be a string" in _errors(job)["/roles/worker/env/P"]


def test_the_jobs_env_takes_a_secret() -> None:
    spec = validate_job({"name": "x", "command": "true", "secrets": SECRETS, "env": {"P": {"secret": "db"}}})
    assert spec.secret_env == {"P": "db"}
