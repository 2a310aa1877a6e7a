"""`POST /v1/uploads` and `GET /v1/uploads/<sha256>.tar.gz`: the limit (413), bodies that are not a
gzipped tar or would unpack outside the sandbox (400), tokens for the POST but not the GET (the Mesos
fetcher has none), and the round trip, with the API's error format throughout."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesos_gpu.api.app import close_app, make_app
from mesos_gpu.api.uploads import UploadStore
from mesos_gpu.core.config import SchedulerSettings
from tests.api.conftest import LAUNCHER, AppClient, json_of
from tests.api.spec import check, documented_statuses

TOKEN = "upl0ad-token"


def archive(files: dict[str, bytes], *, link: tuple[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link is not None:
            info = tarfile.TarInfo(link[0])
            info.type, info.linkname = tarfile.SYMTYPE, link[1]
            tar.addfile(info)
    return buffer.getvalue()


def make_client(
    tmp_path: Path,
    max_bytes: int = 1 << 20,
    tokens: tuple[str, ...] = (),
    base_url: str | None = "http://sched.example:8080",
) -> AppClient:
    uploads = UploadStore(max_bytes, tmp_path / "uploads", base_url)
    app = make_app(
        object(),  # type: ignore[arg-type]  # uploads need no scheduler
        settings=SchedulerSettings(api_tokens=tokens),
        launcher_bundle=LAUNCHER,
        master_url="127.0.0.1:1",
        uploads=uploads,
    )
    client = AppClient(app)
    client.setUp()
    return client


@pytest.fixture
def client(tmp_path: Path) -> Iterator[AppClient]:
    c = make_client(tmp_path)
    try:
        yield c
    finally:
        c.tearDown()
        close_app(c.application)


def post(client: AppClient, body: bytes, **kw: Any) -> Any:
    headers = {"Content-Type": "application/gzip", **kw.pop("headers", {})}
    return client.request("POST", "/v1/uploads", body, headers, **kw)


def test_an_upload_is_kept_under_its_sha256_and_served_back(client: AppClient, tmp_path: Path) -> None:
    body = archive({"train.py": b"print('hi')\n", "data/input.txt": b"42\n"})
    digest = hashlib.sha256(body).hexdigest()
    response = post(client, body)
    assert response.code == 201
    assert check("Upload", response.body) == {
        "uri": f"http://sched.example:8080/v1/uploads/{digest}.tar.gz",
        "sha256": digest,
        "bytes": len(body),
    }
    assert response.headers["Location"] == f"/v1/uploads/{digest}.tar.gz"
    assert (tmp_path / "uploads" / f"{digest}.tar.gz").read_bytes() == body
    fetched = client.request("GET", f"/v1/uploads/{digest}.tar.gz")
    assert fetched.code == 200 and fetched.body == body
    assert fetched.headers["Content-Type"] == "application/gzip"
    head = client.request("HEAD", f"/v1/uploads/{digest}.tar.gz")
    assert head.code == 200 and head.headers["Content-Length"] == str(len(body))
    # the same archive again: already kept, same answer, 200
    again = post(client, body)
    assert again.code == 200 and json_of(again)["sha256"] == digest
    assert [p.name for p in (tmp_path / "uploads").iterdir()] == [f"{digest}.tar.gz"]  # no leftovers


def test_the_uri_names_the_address_the_client_used_when_no_base_is_set(tmp_path: Path) -> None:
    c = make_client(tmp_path, base_url=None)
    try:
        answer = json_of(post(c, archive({"a": b"1"})))
        assert answer["uri"].startswith(f"http://127.0.0.1:{c.get_http_port()}/v1/uploads/")
    finally:
        c.tearDown()
        close_app(c.application)


def test_the_limit_is_published_and_a_larger_upload_is_413(tmp_path: Path) -> None:
    c = make_client(tmp_path, max_bytes=1000)
    try:
        assert check("UploadLimit", c.request("GET", "/v1/uploads").body) == {"max_bytes": 1000}
        big = archive({"big.bin": os.urandom(2000)})  # incompressible: over 1000 bytes
        assert len(big) > 1000
        response = post(c, big)
        assert response.code == 413 and 413 in documented_statuses("/v1/uploads", "POST")
        error = check("Error", response.body)["error"]
        assert error["code"] == "too_large"
        assert "limit of 0.0 MB" in error["message"] and "MESOS_GPU_UPLOAD_MAX_MB" in error["message"]
        assert list((tmp_path / "uploads").iterdir()) == []
    finally:
        c.tearDown()
        close_app(c.application)


def test_a_streamed_body_without_a_length_is_cut_at_the_limit(tmp_path: Path) -> None:
    c = make_client(tmp_path, max_bytes=1000)
    chunks = [b"\x1f\x8b" + bytes(600), bytes(600)]

    async def producer(write: Any) -> None:
        for chunk in chunks:
            await write(chunk)

    try:
        response = c.fetch(
            "/v1/uploads", method="POST", body_producer=producer, headers={"Content-Type": "application/gzip"}
        )
        assert response.code == 413, response.body
        assert json_of(response)["error"]["code"] == "too_large"
        assert list((tmp_path / "uploads").iterdir()) == []
    finally:
        c.tearDown()
        close_app(c.application)


BAD = [
    (b"", "the body is empty"),
    (b"just text", "not gzip data"),
    (gzip.compress(b"gzip, but not a tar archive " * 40), "ReadError"),
    (archive({"ok.txt": b"ok"})[:-40], "Error"),  # truncated
    (archive({"../escape.txt": b"x"}), "'../escape.txt' is refused"),
    (archive({"ok.txt": b"ok"}, link=("link", "/etc/shadow")), "'link' is refused"),
]


@pytest.mark.parametrize(("body", "words"), BAD, ids=[w for _, w in BAD])
def test_a_body_that_is_not_a_safe_gzipped_tar_is_400(
    client: AppClient, tmp_path: Path, body: bytes, words: str
) -> None:
    response = post(client, body)
    assert response.code == 400, response.body
    error = check("Error", response.body)["error"]
    assert error["code"] == "invalid_archive"
    assert words in error["message"], error
    assert error["details"] and error["details"][0]["path"] == ""
    assert list((tmp_path / "uploads").iterdir()) == []


def test_a_gzip_bomb_is_refused_before_it_is_unpacked(tmp_path: Path) -> None:
    c = make_client(tmp_path, max_bytes=10_000)  # unpacks to at most 20 x 10 kB
    try:
        response = post(c, archive({"zeros": bytes(300_000)}))
        assert response.code == 400
        assert "unpacks to more than" in json_of(response)["error"]["message"]
    finally:
        c.tearDown()
        close_app(c.application)


def test_posting_needs_a_token_and_fetching_does_not(tmp_path: Path) -> None:
    c = make_client(tmp_path, tokens=(TOKEN,))
    body = archive({"a.txt": b"a"})
    try:
        refused = post(c, body)
        assert refused.code == 401
        assert json_of(refused)["error"]["code"] == "unauthorized"
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert list((tmp_path / "uploads").iterdir()) == []
        accepted = post(c, body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert accepted.code == 201
        uri_path = "/v1/uploads/" + json_of(accepted)["uri"].rsplit("/", 1)[1]
        fetched = c.request("GET", uri_path)  # as the Mesos fetcher does: no token
        assert fetched.code == 200 and fetched.body == body
    finally:
        c.tearDown()
        close_app(c.application)


@pytest.mark.parametrize("name", ["0" * 64 + ".tar.gz", "nope.tar.gz", "..%2F..%2Fetc%2Fpasswd"])
def test_an_unknown_upload_is_a_json_404(client: AppClient, name: str) -> None:
    response = client.request("GET", f"/v1/uploads/{name}")
    assert response.code == 404
    assert json_of(response)["error"]["code"] == "not_found"


def test_a_temporary_upload_directory_is_removed_by_close_app() -> None:
    app = make_app(
        object(),  # type: ignore[arg-type]
        settings=SchedulerSettings(),
        launcher_bundle=LAUNCHER,
        master_url="127.0.0.1:1",
    )
    uploads = app.settings["api_uploads"]
    assert uploads.root.is_dir() and uploads.max_bytes == 64 << 20
    close_app(app)
    assert not uploads.root.exists()
