"""The local agent's v1 executor API, `POST /api/v1/executor`, with Mesos' status codes and texts
(src/slave/http.cpp `Http::executor`): decode the Call by content type, validate it, hand it to the
agent's executor lifecycle; a SUBSCRIBE's response is the executor's RecordIO event stream.
Bodies and event streams are JSON or protobuf (`local.protobuf`): `decode_executor_call` decodes a
request body, `event_encoding` picks the stream's encoding.

    call = decode_executor_call("application/json", b'{"type": "HEARTBEAT", ...}')  # or HttpError
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tornado import web

from mesos_gpu.local import protobuf
from mesos_gpu.local.agent.records import Executor
from mesos_gpu.local.agent.validation import convert_executor_call, validate_executor_call
from mesos_gpu.local.protocol import PROTOBUF_PARSE_FAILED, HttpError, encode_record

if TYPE_CHECKING:
    from mesos_gpu.local.agent.agent import Agent

JSON_TYPE = "application/json"
PROTOBUF_TYPE = "application/x-protobuf"


def decode_executor_call(content_type: str | None, body: bytes) -> dict[str, Any]:
    """The executor Call a request body holds, by its Content-Type; HttpError (400, 415) with Mesos'
    text when it holds none. The one place a body is decoded (protobuf by `protobuf.decode`: unknown
    fields skipped, required fields enforced)."""
    if content_type is None:
        raise HttpError(400, "Expecting 'Content-Type' to be present")
    if content_type == PROTOBUF_TYPE:
        try:
            return protobuf.decode("executor.Call", body)
        except protobuf.ProtobufError:
            raise HttpError(400, PROTOBUF_PARSE_FAILED) from None
    if content_type != JSON_TYPE:
        raise HttpError(415, f"Expecting 'Content-Type' of {JSON_TYPE} or {PROTOBUF_TYPE}")
    try:
        call = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(400, f"Failed to parse body into JSON: {exc}") from exc
    problem = convert_executor_call(call)
    if problem is not None:
        raise HttpError(400, f"Failed to convert JSON into Call protobuf: {problem}")
    return dict(call)


def event_encoding(accept: str | None) -> tuple[str, Callable[[dict[str, Any]], bytes]]:
    """The media type and RecordIO record encoder of a SUBSCRIBE's event stream for an Accept header, as
    `Http::executor` picks them: JSON when it is accepted, else protobuf (binary executor.Event records).
    The one place the stream's encoding is chosen."""
    if _allows(accept, (JSON_TYPE, "*/*", "application/*")):
        return JSON_TYPE, encode_record
    return PROTOBUF_TYPE, protobuf_event


def protobuf_event(event: dict[str, Any]) -> bytes:
    """An executor event as a binary RecordIO record."""
    return protobuf.encode_record("executor.Event", event)


def accepts_json(accept: str | None) -> bool:
    """Whether an Accept header allows a JSON (or protobuf) event stream (no header: yes)."""
    return _allows(accept, (JSON_TYPE, PROTOBUF_TYPE, "*/*", "application/*"))


def _allows(accept: str | None, kinds: tuple[str, ...]) -> bool:
    """Whether an Accept header allows one of the media `kinds` with a quality above 0."""
    if not accept:
        return True
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in kinds:
            q = [p.strip() for p in part.split(";")[1:] if p.strip().startswith("q=")]
            if not q or float(q[0][2:] or 0) > 0:
                return True
    return False


class ExecutorStream:
    """The executor's SUBSCRIBE response: a chunked RecordIO event stream."""

    def __init__(
        self, handler: web.RequestHandler, encode: Callable[[dict[str, Any]], bytes] = encode_record
    ) -> None:
        self._handler = handler
        self._encode = encode
        self.closed = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.on_close: Callable[[], None] | None = None

    def send(self, event: dict[str, Any]) -> None:
        if self.closed:
            return
        self._handler.write(self._encode(event))
        self._handler.flush()

    def close(self) -> None:
        """End the stream (the chunked body's last chunk)."""
        if self.closed:
            return
        self._mark_closed()
        with contextlib.suppress(Exception):  # the connection may already be gone
            self._handler.finish()

    def connection_lost(self) -> None:
        if not self.closed:
            self._mark_closed()

    def _mark_closed(self) -> None:
        self.closed = True
        if not self.done.done():
            self.done.set_result(None)
        if self.on_close is not None:
            callback, self.on_close = self.on_close, None
            callback()


class AgentHandler(web.RequestHandler):
    """A handler of the agent's HTTP API: the agent comes through `initialize`, answers are plain text."""

    def initialize(self, agent: Agent) -> None:
        self.agent = agent

    def reply(self, status: int, text: str = "", content_type: str = "text/plain; charset=utf-8") -> None:
        self.set_status(status)
        if text:
            self.set_header("Content-Type", content_type)
            self.write(text)
        self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish()


class ExecutorApiHandler(AgentHandler):
    """POST /api/v1/executor, with Mesos' status codes and texts (src/slave/http.cpp)."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")
    _stream: ExecutorStream | None = None

    async def prepare(self) -> None:
        if self.request.method != "POST":
            self.set_header("Allow", "POST")
            self.reply(405, f"Expecting one of {{ 'POST' }}, but received '{self.request.method}'")

    def get(self) -> None:  # pragma: no cover - prepare() answered
        pass

    head = delete = patch = put = options = get

    async def post(self) -> None:
        try:
            call = decode_executor_call(self.request.headers.get("Content-Type"), self.request.body)
        except HttpError as exc:
            return self.reply(exc.code, exc.text)
        problem = validate_executor_call(call)
        if problem is not None:
            return self.reply(400, f"Failed to validate Executor::Call: {problem}")
        call_type = call["type"]
        if call_type == "SUBSCRIBE" and not accepts_json(self.request.headers.get("Accept")):
            return self.reply(406, f"Expecting 'Accept' to allow '{PROTOBUF_TYPE}' or '{JSON_TYPE}'")
        if call_type == "HEARTBEAT":
            return self.reply(202)
        executor = self._executor_of(call)
        if executor is None:
            return None
        if call_type == "SUBSCRIBE":
            await self._subscribe(executor, call)
            return None
        if executor.state == "REGISTERING":
            return self.reply(403, "Executor is not subscribed")
        if call_type == "UPDATE":
            self.reply(202)
            self.agent.lifecycle.update(executor, call["update"]["status"])
            return None
        if call_type == "MESSAGE":
            self.reply(202)
            self.agent.lifecycle.message_from(executor, call["message"]["data"])
            return None
        return self.reply(501 if call_type == "UNKNOWN" else 400, f"Unsupported call type {call_type}")

    def _executor_of(self, call: dict[str, Any]) -> Executor | None:
        """The calling executor; None after answering 400 when its framework or itself is unknown."""
        framework_id = call["framework_id"]["value"]
        if framework_id not in self.agent.frameworks:
            self.reply(400, "Framework cannot be found")
            return None
        executor = self.agent.lifecycle.find(framework_id, call["executor_id"]["value"])
        if executor is None:
            self.reply(400, "Executor cannot be found")
        return executor

    async def _subscribe(self, executor: Executor, call: dict[str, Any]) -> None:
        """Answer 200 with the event stream, open until the executor or the agent ends it."""
        content_type, encode = event_encoding(self.request.headers.get("Accept"))
        self.set_status(200)
        self.set_header("Content-Type", content_type)
        self._stream = ExecutorStream(self, encode)
        self.agent.lifecycle.subscribe(executor, self._stream, call)
        await self._stream.done

    def on_connection_close(self) -> None:
        if self._stream is not None:
            self._stream.connection_lost()
