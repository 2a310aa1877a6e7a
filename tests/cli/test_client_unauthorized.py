"""A 401 from the API tells the CLI user how to give a token: `--token` or `MESOS_GPU_API_TOKEN`
(reviewer finding 4); with a token sent, that it was refused."""

from __future__ import annotations

import pytest

from mesos_gpu import cli
from mesos_gpu.client import ApiClient, ApiError
from tests.cli.fakeapi import fake_api, unauthorized


def test_a_401_without_a_token_names_the_variable_and_the_option() -> None:
    with fake_api(unauthorized) as api, pytest.raises(ApiError) as caught:
        ApiClient(api.url).kill("j1")
    text = str(caught.value)
    assert caught.value.status == 401
    assert "MESOS_GPU_API_TOKEN" in text and "--token" in text
    assert "refused" not in text


def test_a_401_with_a_token_says_it_was_refused() -> None:
    with fake_api(unauthorized) as api, pytest.raises(ApiError) as caught:
        ApiClient(api.url, token="wrong").kill("j1")
    text = str(caught.value)
    assert "refused" in text and "MESOS_GPU_API_TOKEN" in text


def test_the_cli_prints_the_hint_on_one_error(monkeypatch, capsys) -> None:
    monkeypatch.delenv("MESOS_GPU_API_TOKEN", raising=False)
    with fake_api(unauthorized) as api:
        status = cli.main(["kill", "j1", "--api", api.url])
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("mesos-gpu: A valid bearer token is required")
    assert "MESOS_GPU_API_TOKEN" in err
