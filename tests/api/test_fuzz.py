"""Schema-driven fuzzing: schemathesis generates requests from `/openapi.json` (valid and invalid ones)
against the live API (real runtime on the in-memory store, a real local Mesos master for /v1/cluster):
no 5xx, and every response matches the document (status, content type, headers, body schema).

`MESOS_GPU_FUZZ_EXAMPLES` sets the examples per operation (default 30: about 35 s for every route on 2
cores in `make test`; e.g. MESOS_GPU_FUZZ_EXAMPLES=500 for a deeper run of several minutes)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from mesos_gpu.api.app import make_app, openapi_document
from mesos_gpu.api.server import ApiServer
from mesos_gpu.core.config import SchedulerSettings
from mesos_gpu.local.cluster import LocalCluster
from mesos_gpu.store.memory import MemoryBackend, MemoryStore
from tests.api.conftest import LAUNCHER, make_runtime, started

MAX_EXAMPLES = int(os.environ.get("MESOS_GPU_FUZZ_EXAMPLES", "30"))


@pytest.fixture(scope="module")
def live_api() -> Iterator[str]:
    with LocalCluster(agents=2, gpus_per_agent=2) as cluster:
        runtime = started(make_runtime(MemoryStore(MemoryBackend())))
        app = make_app(
            runtime, settings=SchedulerSettings(), launcher_bundle=LAUNCHER, master_url=cluster.master_address
        )
        server = ApiServer("127.0.0.1", 0)
        server.start(app)
        try:
            yield server.url
        finally:
            server.stop()
            runtime.stop()


@schemathesis.serializer("application/gzip")
def _raw_bytes(ctx: object, value: object) -> bytes:
    """`POST /v1/uploads` takes a gzipped tar: send what was generated as it is (garbage included, which
    the endpoint must refuse with a 400, never a 500)."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")


schema = schemathesis.openapi.from_dict(openapi_document())


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_conforms_to_its_document(case: schemathesis.Case, live_api: str) -> None:
    excluded: list[Any] = []
    if (case.operation.method.upper(), case.operation.path) == ("POST", "/v1/jobs"):
        # The job schema cannot say every rule (job.schema.json lists the server-only ones), so a
        # schema-valid job may get a 400 naming the problem; every other check still applies.
        excluded.append(positive_data_acceptance)
    if (case.operation.method.upper(), case.operation.path) == ("PUT", "/v1/tenants"):
        # Cross-field rules (a limit below its quota) are the server's: a 400 names the field.
        excluded.append(positive_data_acceptance)
    if (case.operation.method.upper(), case.operation.path) == ("POST", "/v1/uploads"):
        # A schema can say "bytes" but not "a complete gzipped tar": generated bodies are refused (400).
        excluded.append(positive_data_acceptance)
    if (case.operation.method.upper(), case.operation.path) == ("GET", "/v1/health/ready"):
        # 503 is readiness's documented "not ready" (this runtime's driver never subscribes to Mesos);
        # its body is still checked against the document's Readiness schema.
        excluded.append(not_a_server_error)
    response = case.call(base_url=live_api)
    if response.status_code == 413:
        # A body over the limit is refused before anything in it is read (its Content-Length), so a
        # too large and otherwise invalid request gets 413, which schemathesis does not count as a
        # rejection of the invalid part.
        excluded.append(negative_data_rejection)
    case.validate_response(response, excluded_checks=excluded)
