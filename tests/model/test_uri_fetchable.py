"""A job's `uris` are only what every fetcher here can fetch (the local agent's Mesos-like fetcher,
`mesos_gpu.local.agent.sandbox`, and the share host's, `isolator.fetcher`): http://, https://, file:///
URLs and absolute agent paths, saved under a plain file name in the sandbox. Validation refuses the rest
with the JSON path, the published schema agrees, and what validation accepts the fetchers do fetch."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from isolator.fetcher import fetch_uris
from mesos_gpu.core import joblimits as limits
from mesos_gpu.core.errors import ValidationError
from mesos_gpu.core.validation import JOB_SCHEMA_PATH, validate_job
from mesos_gpu.local.agent.sandbox import Sandbox
from mesos_gpu.local.agent.sandbox import fetch_uris as local_fetch_uris
from tests.model.cases import single

SCHEMA = json.loads(resources.files("mesos_gpu").joinpath(JOB_SCHEMA_PATH).read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def errors_of(doc: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        validate_job(doc)
    return [(e.path, e.message) for e in caught.value.errors]


@pytest.mark.parametrize("name", ["sub/x.tgz", "a/", "/x", "a/b/c", ".", ".."])
def test_an_output_file_is_a_plain_file_name_in_the_sandbox(name: str) -> None:
    doc = single(uris=["https://x/a", {"value": "https://x/b.tgz", "output_file": name}])
    assert errors_of(doc) == [("/uris/1/output_file", limits.OUTPUT_FILE_MESSAGE)]
    assert not VALIDATOR.is_valid(doc)


@pytest.mark.parametrize("url", ["hdfs://nn/model.zip", "s3://bucket/x", "ftp://host/f", "HDFS://nn/m"])
def test_a_scheme_no_fetcher_here_supports_is_refused_by_name(url: str) -> None:
    scheme = url.split("://", 1)[0]
    for doc, path in ((single(uris=[url]), "/uris/0"), (single(uris=[{"value": url}]), "/uris/0/value")):
        assert errors_of(doc) == [(path, limits.URI_SCHEME_MESSAGE.format(scheme=scheme))]
        assert not VALIDATOR.is_valid(doc)


def test_file_urls_must_name_an_absolute_path() -> None:
    doc = single(uris=["file://host/etc/x"])
    assert errors_of(doc) == [("/uris/0", limits.URI_MESSAGE)]
    assert not VALIDATOR.is_valid(doc)


GOOD = ["http://h/a.tgz", "https://h:8080/x/y.zip", "HTTPS://h/z", "file:///opt/data.tgz", "/opt/run.sh"]


@pytest.mark.parametrize("url", GOOD)
def test_http_https_file_urls_and_absolute_paths_are_accepted(url: str) -> None:
    doc = single(uris=[url, {"value": url, "output_file": "data.bin", "extract": False}])
    spec = validate_job(doc)
    assert [uri.value for uri in spec.uris] == [url, url]
    assert VALIDATOR.is_valid(doc) and VALIDATOR.is_valid(spec.to_dict())


def share_host_fetch(uris: list[dict[str, Any]], directory: Path) -> None:
    fetch_uris(uris, str(directory))


def local_agent_fetch(uris: list[dict[str, Any]], directory: Path) -> None:
    local_fetch_uris(Sandbox(directory, "f", "e", "c"), uris)


@pytest.mark.parametrize("fetch", [share_host_fetch, local_agent_fetch])
def test_what_validation_accepts_both_fetchers_fetch(fetch: Any, tmp_path: Path) -> None:
    source = tmp_path / "source.txt"
    source.write_text("data")
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    uris = [{"value": str(source), "output_file": "a.txt"},
            {"value": f"file://{source}", "output_file": "b.txt"}]
    spec = validate_job(single(uris=uris))
    fetch([uri.to_dict() for uri in spec.uris], sandbox)
    assert (sandbox / "a.txt").read_text() == (sandbox / "b.txt").read_text() == "data"
