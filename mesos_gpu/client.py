"""A small client of the mesos-gpu REST API (standard library only), used by the `mesos-gpu` CLI.

Errors::

    ClientError               base; str() is a plain sentence for the user
     ├── ApiUnreachable       no connection (refused, timed out, bad address)
     └── ApiError             the API answered an error: .status, .code, .message, .details

Example::

    api = ApiClient("http://127.0.0.1:8080")
    job, created = api.submit({"name": "hello", "command": "echo hi"})
    api.job(job["id"])["state"]
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

DEFAULT_API = "http://127.0.0.1:8080"
ENV_API = "MESOS_GPU_API"
ENV_TOKEN = "MESOS_GPU_API_TOKEN"
ENV_DCOS_TOKEN = "MESOS_GPU_DCOS_TOKEN"
#: The header the API reads its own token from when `Authorization` carries the DC/OS token.
TOKEN_HEADER = "X-Mesos-GPU-Token"
MAX_REDIRECTS = 3

JsonDict = dict[str, Any]


class ClientError(Exception):
    """Base of the client's errors; the message is a sentence for the user."""


class ApiUnreachable(ClientError):  # noqa: N818 - reads as "API unreachable"
    """The API could not be reached at all."""


class ApiError(ClientError):
    """The API answered with an error."""

    def __init__(self, status: int, code: str, message: str, details: list[JsonDict] | None = None,
                 hint: str = "") -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details or [])
        self.hint = hint
        super().__init__(self.sentence())

    def sentence(self) -> str:
        text = self.message.rstrip(".") + "."
        lines = [text[0].upper() + text[1:]]
        shown = {self.message}
        for detail in self.details:
            line = f"  {detail.get('path') or '/'}: {detail.get('message')}"
            if line not in shown:
                lines.append(line)
        if self.hint:
            lines.append(self.hint)
        return "\n".join(lines)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """307/308 are followed by `ApiClient` itself (keeping the method and body, which urllib won't)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class ApiClient:
    """Calls the API at `base_url` (which may carry a path prefix, e.g. DC/OS Admin Router's
    `https://<dcos>/service/mesos-gpu`). `token` (the API's own) is sent as `Authorization: Bearer`;
    with a `dcos_token`, that goes in `Authorization: token=<dcos_token>` (what Admin Router reads) and
    `token` in `X-Mesos-GPU-Token`, and a redirect to another origin (a standby naming its leader's
    address inside the cluster) is not followed: the DC/OS token is never sent past Admin Router."""

    def __init__(self, base_url: str = DEFAULT_API, token: str | None = None, timeout: float = 10.0,
                 dcos_token: str | None = None) -> None:
        base = base_url.strip().rstrip("/")
        if "://" not in base:
            base = f"http://{base}"
        self.base_url = base
        self.token = token
        self.dcos_token = dcos_token
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirects())

    # -- the wire ----------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
        *,
        raw: bytes | None = None,
    ) -> tuple[int, Mapping[str, str], Any]:
        """Send one request; return (status, headers, parsed JSON or text) for a 2xx, else raise.
        `body` is sent as JSON; `raw` as it is (give its Content-Type in `headers`)."""
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = raw
        all_headers = {"Accept": "application/json", **(headers or {})}
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        all_headers.update(self._credentials())
        for _ in range(MAX_REDIRECTS + 1):
            status, reply_headers, payload = self._send(method, url, data, all_headers)
            if status in (307, 308) and reply_headers.get("Location"):
                target = urllib.parse.urljoin(url, reply_headers["Location"])
                if self.dcos_token and _origin(target) != _origin(url):
                    raise ApiError(status, "redirect_refused", f"the API at {self.base_url} redirected to "
                                   f"{target} (a standby naming its leader); not followed with a DC/OS "
                                   "token: try again (Admin Router picks an instance)")
                url = target
                continue
            if status >= 400 or status in (307, 308):
                raise _api_error(status, payload, self._hint(status, payload))
            return status, reply_headers, payload
        raise ApiError(508, "redirect_loop", f"too many redirects, last to {url}")

    def _credentials(self) -> dict[str, str]:
        """The headers that carry the tokens (see the class docstring)."""
        if self.dcos_token:
            own = {TOKEN_HEADER: self.token} if self.token else {}
            return {"Authorization": f"token={self.dcos_token}", **own}
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _hint(self, status: int, payload: Any = None) -> str:
        """What the user can do about a 401: the API's own token when the API answered (its JSON error),
        else the DC/OS token a proxy in front of it (Admin Router) asks for. No hint for other statuses."""
        if status != 401:
            return ""
        ours = isinstance(payload, dict) and isinstance(payload.get("error"), dict)
        if not ours:
            if self.dcos_token:
                return ("Admin Router (or a proxy) refused the DC/OS token given "
                        f"(--dcos-token or {ENV_DCOS_TOKEN}).")
            return (f"A proxy in front of the API (DC/OS Admin Router?) asks for a login: give a DC/OS token "
                    f"with --dcos-token or {ENV_DCOS_TOKEN} (e.g. "
                    f"`export {ENV_DCOS_TOKEN}=$(dcos config show core.dcos_acs_token)`).")
        if self.token:
            return f"The API refused the token given (--token or {ENV_TOKEN}): check it."
        return f"Give the API's token with --token or in {ENV_TOKEN}."

    def _send(
        self, method: str, url: str, data: bytes | None, headers: Mapping[str, str]
    ) -> tuple[int, Mapping[str, str], Any]:
        request = urllib.request.Request(url, data=data, headers=dict(headers), method=method)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.status, dict(response.headers), _parse(response.read(), response.headers)
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, dict(exc.headers), _parse(exc.read(), exc.headers)
        except urllib.error.URLError as exc:
            raise ApiUnreachable(_unreachable(self.base_url, exc.reason)) from None
        except TimeoutError as exc:
            raise ApiUnreachable(_unreachable(self.base_url, exc)) from None
        except (http.client.HTTPException, OSError) as exc:
            raise ApiUnreachable(_unreachable(self.base_url, exc)) from None

    # -- the API -----------------------------------------------------------------------------------
    def submit(
        self, job: Mapping[str, Any], idempotency_key: str | None = None, retries: int = 3
    ) -> tuple[JsonDict, bool]:
        """Submit a job; returns (job, created). The submit carries an Idempotency-Key (a fresh UUID
        unless given), so retrying after a lost connection or a 503 never creates a second job."""
        key = idempotency_key or str(uuid.uuid4())
        for attempt in range(retries + 1):
            try:
                status, _, payload = self.request("POST", "/v1/jobs", dict(job), {"Idempotency-Key": key})
                return payload, status == 201
            except (ApiUnreachable, ApiError) as exc:
                retryable = isinstance(exc, ApiUnreachable) or exc.status == 503
                if not retryable or attempt == retries:
                    raise
                time.sleep(min(0.5 * 2**attempt, 4.0))
        raise AssertionError("unreachable")

    def job(self, job_id: str) -> JsonDict:
        return self._get(f"/v1/jobs/{_quote(job_id)}")

    def tasks(self, job_id: str) -> JsonDict:
        return self._get(f"/v1/jobs/{_quote(job_id)}/tasks")

    def kill(self, job_id: str) -> JsonDict:
        _, _, payload = self.request("DELETE", f"/v1/jobs/{_quote(job_id)}")
        return dict(payload)

    def jobs_page(
        self, state: str | None = None, tenant: str | None = None, limit: int = 100, offset: int = 0
    ) -> JsonDict:
        query = {"state": state, "tenant": tenant, "limit": limit, "offset": offset}
        return self._get("/v1/jobs", query)

    def jobs(self, state: str | None = None, tenant: str | None = None) -> Iterator[JsonDict]:
        """Every job matching the filters, page after page."""
        offset = 0
        while True:
            page = self.jobs_page(state, tenant, 500, offset)
            yield from page["jobs"]
            if page.get("next") is None or not page["jobs"]:
                return
            offset += len(page["jobs"])

    def logs(
        self,
        job_id: str,
        task: str | None = None,
        stream: str = "stdout",
        offset: int = 0,
        length: int = 65536,
        *,
        attempt: int | None = None,
        tail: int | None = None,
    ) -> JsonDict:
        """A chunk of a task's output; `attempt`: launch attempt N (0 first; default the current one);
        `tail`: the last N lines instead (at most `length` bytes; `offset` is ignored), read by the server."""
        query = {"task": task, "stream": stream, "offset": offset, "length": length, "attempt": attempt,
                 "tail": tail}
        return self._get(f"/v1/jobs/{_quote(job_id)}/logs", query)

    def upload_limit(self) -> int | None:
        """The largest upload the scheduler takes (bytes), or None when it does not say (an older one)."""
        try:
            return int(self._get("/v1/uploads")["max_bytes"])
        except ApiError as exc:
            if exc.status in (404, 405):
                return None
            raise

    def upload(self, archive: bytes, retries: int = 3) -> JsonDict:
        """Send a gzipped tar to `POST /v1/uploads`; returns {"uri", "sha256", "bytes"}. Retried after a
        lost connection or a 503 (an upload is kept under its sha256, so a retry keeps nothing twice)."""
        headers = {"Content-Type": "application/gzip"}
        for attempt in range(retries + 1):
            try:
                _, _, payload = self.request("POST", "/v1/uploads", headers=headers, raw=archive)
                return dict(payload)
            except (ApiUnreachable, ApiError) as exc:
                retryable = isinstance(exc, ApiUnreachable) or exc.status == 503
                if not retryable or attempt == retries:
                    raise
                time.sleep(min(0.5 * 2**attempt, 4.0))
        raise AssertionError("unreachable")

    def cluster(self) -> JsonDict:
        return self._get("/v1/cluster")

    def health(self) -> JsonDict:
        return self._get("/v1/health")

    def _get(self, path: str, query: Mapping[str, Any] | None = None) -> JsonDict:
        _, _, payload = self.request("GET", path, query=query)
        return dict(payload)


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _quote(job_id: str) -> str:
    return urllib.parse.quote(job_id, safe="")


def _parse(raw: bytes, headers: Any) -> Any:
    content_type = str(headers.get("Content-Type", ""))
    if "json" in content_type:
        try:
            return json.loads(raw)
        except ValueError:
            pass
    return raw.decode("utf-8", "replace")


def _api_error(status: int, payload: Any, hint: str = "") -> ApiError:
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return ApiError(
            status,
            str(error.get("code", "error")),
            str(error.get("message") or f"the API answered HTTP {status}"),
            [d for d in error.get("details", []) if isinstance(d, dict)],
            hint,
        )
    text = str(payload).strip()[:200] if payload else ""
    message = f"the API answered HTTP {status}" + (f": {text}" if text else "")
    return ApiError(status, "error", message, hint=hint)


def _unreachable(base_url: str, reason: object) -> str:
    text = str(reason)
    if isinstance(reason, ConnectionRefusedError) or "refused" in text.lower():
        return (
            f"Cannot reach the mesos-gpu API at {base_url}: the connection was refused (nothing listens "
            "there). Is the scheduler running? Start one on this machine with `mesos-gpu local`, or point "
            f"--api or {ENV_API} at it."
        )
    if isinstance(reason, TimeoutError) or "timed out" in text.lower():
        return f"The mesos-gpu API at {base_url} did not answer in time ({text})."
    if isinstance(reason, socket.gaierror) or "Name or service not known" in text:
        return f"Cannot reach the mesos-gpu API at {base_url}: the host name does not resolve ({text})."
    return f"Cannot reach the mesos-gpu API at {base_url}: {text}."
