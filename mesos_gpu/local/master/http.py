"""The master's HTTP endpoints (tornado): the scheduler API with its checks in the order of
`Master::Http::scheduler`, the read-only operator API on `/api/v1`, `/master/state`, `/master/slaves`,
`/master/frameworks`, `/master/redirect`, `/version` and `/health`.

A call's body is decoded by its Content-Type in one place, `decode_call` (JSON, or protobuf through
`local.protobuf`); a subscriber accepting only protobuf gets binary RecordIO. The handlers hold no master
state and reach the current `Master` through a `MasterHolder` (swapped when a test restarts it)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import tornado.httputil
import tornado.web

from mesos_gpu.local import protobuf, protojson
from mesos_gpu.local import protocol as p
from mesos_gpu.local.master import operator as master_operator
from mesos_gpu.local.master import readonly as master_state
from mesos_gpu.local.master.validation import validate_scheduler_call
from mesos_gpu.local.protocol import HttpError

if TYPE_CHECKING:
    from mesos_gpu.local.master.master import Master

log = logging.getLogger(__name__)

SCHEDULER_PATH = "/api/v1/scheduler"
STANDBY_503_DELAY = 0.5  # pymesos retries 503 without any delay; answering slowly avoids a tight loop
JSON_TYPE = "application/json"
PROTOBUF_TYPE = "application/x-protobuf"


class MasterHolder:
    """The current `Master` behind the HTTP listener (swapped by `MasterServer.restart`)."""

    def __init__(self, master: Master) -> None:
        self.master = master


def decode_call(content_type: str | None, body: bytes, message: str) -> Any:
    """The body of a `message` call ("scheduler.Call", "master.Call") as protobuf-JSON, by its
    Content-Type: JSON parsed, protobuf decoded (`decode_protobuf`), anything else 415. Raises
    `HttpError` with Mesos' text."""
    if content_type is None:
        raise HttpError(400, p.MISSING_CONTENT_TYPE)
    media = content_type.split(";")[0].strip().lower()
    if media == PROTOBUF_TYPE:
        return decode_protobuf(body, message)
    if media != JSON_TYPE:
        raise HttpError(415, p.UNSUPPORTED_CONTENT_TYPE)
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise HttpError(400, p.json_parse_error(str(exc))) from None


def decode_protobuf(body: bytes, message: str) -> Any:
    """A protobuf-encoded `message` in its JSON form; bytes that do not parse (truncated, malformed, a
    required field missing) fail as in Mesos."""
    try:
        return protobuf.decode(message, body)
    except protobuf.ProtobufError:
        raise HttpError(400, p.PROTOBUF_PARSE_FAILED) from None


def protobuf_event(event: dict[str, Any]) -> bytes:
    """A scheduler event as a binary RecordIO record (for a subscriber accepting only protobuf)."""
    return protobuf.encode_record("scheduler.Event", event)


def accepts(request: tornado.httputil.HTTPServerRequest, media: str) -> bool:
    """`Request::acceptsMediaType`: no Accept header, `*/*`, `type/*` or the type itself."""
    accept = request.headers.get("Accept")
    if accept is None:
        return True
    kinds = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return bool(kinds & {media, "*/*", media.split("/", maxsplit=1)[0] + "/*"})


def refresh_leadership(master: Master) -> None:
    """A standby asks ZooKeeper who leads before it answers (the watch may not have told it yet)."""
    if master.is_leader or master.leader_probe is None:
        return
    verdict = master.leader_probe()
    if verdict is not None:
        leader, is_self = verdict
        if is_self:
            master.set_leader()
        else:
            master.set_standby(leader)


def _text(handler: tornado.web.RequestHandler, code: int, text: str) -> None:
    handler.set_status(code)
    if text:
        handler.set_header("Content-Type", "text/plain; charset=utf-8")
        handler.finish(text.encode("utf-8"))
    else:
        handler.clear_header("Content-Type")
        handler.finish()


def _redirect(handler: tornado.web.RequestHandler, location: str) -> None:
    handler.set_status(307)
    handler.set_header("Location", location)
    handler.clear_header("Content-Type")
    handler.finish()


class EventStream:
    """One SUBSCRIBE response: RecordIO records written into a chunked body without ever waiting for
    the socket (tornado buffers per connection), so calls are answered independently (checklist 10).
    `encode` frames one event: JSON records, or protobuf ones (`protobuf_event`)."""

    def __init__(
        self, handler: tornado.web.RequestHandler, encode: Callable[[dict[str, Any]], bytes] = p.encode_record
    ) -> None:
        self.handler = handler
        self.encode = encode
        self.closed = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.on_client_close: Callable[[EventStream], None] | None = None

    def send(self, event: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            record = self.encode(event)
        except protobuf.ProtobufError:
            log.exception("cannot encode a %s event as protobuf; dropped", event.get("type"))
            return
        self.handler.write(record)
        self.handler.flush()

    def close(self, abrupt: bool = False) -> None:
        """End the stream: `abrupt` drops the TCP connection, otherwise the chunked body is finished."""
        if self.closed:
            return
        self.closed = True
        stream = getattr(self.handler.request.connection, "stream", None)
        if abrupt or stream is None or stream.closed():
            if stream is not None:
                stream.close()
        else:
            try:
                finished = self.handler.finish()
            except Exception:
                stream.close()
            else:
                finished.add_done_callback(lambda _: stream.close())
        if not self.done.done():
            self.done.set_result(None)

    def client_closed(self) -> None:
        if self.closed:
            return
        self.closed = True
        if not self.done.done():
            self.done.set_result(None)
        if self.on_client_close is not None:
            self.on_client_close(self)


class CallHandler(tornado.web.RequestHandler):
    """Every method reaches `_handle` (405 is Mesos' answer, not tornado's); no ETag."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def initialize(self, holder: MasterHolder) -> None:
        self.holder = holder

    def compute_etag(self) -> str | None:
        return None

    async def _handle(self) -> None:
        raise NotImplementedError

    async def get(self) -> None:
        await self._handle()

    async def head(self) -> None:
        await self._handle()

    async def post(self) -> None:
        await self._handle()

    async def put(self) -> None:
        await self._handle()

    async def delete(self) -> None:
        await self._handle()

    async def patch(self) -> None:
        await self._handle()

    async def options(self) -> None:
        await self._handle()

    async def _check_leader(self, master: Master, location: str) -> bool:
        """False (answered 307, or 503 slowly) when this master does not lead."""
        refresh_leadership(master)
        if master.is_leader:
            return True
        if master.leader_address:
            _redirect(self, f"//{master.leader_address}{location}")
            return False
        await asyncio.sleep(STANDBY_503_DELAY)
        raise HttpError(503, p.NO_LEADER)

    def _check_post(self) -> None:
        if self.request.method != "POST":
            self.set_header("Allow", "POST")
            raise HttpError(405, f"Expecting 'POST', received '{self.request.method}'")

    def on_finish(self) -> None:
        quick_ack(self.request.connection)


class SchedulerHandler(CallHandler):
    """`/api/v1/scheduler`: the checks in the order of `Master::Http::scheduler` (src/master/http.cpp)."""

    def initialize(self, holder: MasterHolder) -> None:
        super().initialize(holder)
        self.event_stream: EventStream | None = None

    async def _handle(self) -> None:
        master = self.holder.master
        master.scheduler_requests += 1
        try:
            if not await self._check_leader(master, SCHEDULER_PATH):
                return
            self._check_post()
            call = self._parse(master.config.strict)
            if call["type"] == "SUBSCRIBE":
                if not (accepts(self.request, JSON_TYPE) or accepts(self.request, PROTOBUF_TYPE)):
                    raise HttpError(406, p.BAD_ACCEPT)
                if "Mesos-Stream-Id" in self.request.headers:
                    raise HttpError(400, p.SUBSCRIBE_WITH_STREAM_ID)
                await self._subscribe(master, call)
                return
            code = master.handle_call(call, self.request.headers.get("Mesos-Stream-Id"))
            _text(self, code, "")
        except HttpError as error:
            if not self._finished:
                _text(self, error.code, error.text)

    def _parse(self, strict: bool) -> dict[str, Any]:
        body = decode_call(self.request.headers.get("Content-Type"), self.request.body, "scheduler.Call")
        try:
            call = protojson.convert(body, "scheduler.Call", strict=strict)
        except protojson.ConversionError as exc:
            raise HttpError(400, p.conversion_error(str(exc))) from None
        error = validate_scheduler_call(call)
        if error is not None:
            raise HttpError(400, p.call_validation_error(error))
        return call

    async def _subscribe(self, master: Master, call: dict[str, Any]) -> None:
        """200 and the event stream, in JSON unless the client accepts only protobuf."""
        as_json = accepts(self.request, JSON_TYPE)
        stream_id = p.new_stream_id()
        self.set_status(200)
        self.set_header("Content-Type", JSON_TYPE if as_json else PROTOBUF_TYPE)
        self.set_header("Mesos-Stream-Id", stream_id)
        stream = getattr(self.request.connection, "stream", None)
        if stream is not None:
            stream.set_nodelay(True)  # each event goes out at once, not held back by Nagle
        self.flush()
        events = EventStream(self, p.encode_record if as_json else protobuf_event)
        self.event_stream = events
        master.subscribe(call, events, stream_id)
        await events.done
        if not self._finished:
            with contextlib.suppress(Exception):
                self.finish()

    def on_connection_close(self) -> None:
        if self.event_stream is not None:
            self.event_stream.client_closed()


class OperatorHandler(CallHandler):
    """`/api/v1`: the read-only operator calls, in the order of `Master::Http::api`."""

    async def _handle(self) -> None:
        master = self.holder.master
        try:
            if not await self._check_leader(master, self.request.uri or "/api/v1"):
                return
            self._check_post()
            kind = self._parse()
            if not accepts(self.request, JSON_TYPE):
                raise HttpError(406, p.BAD_ACCEPT)  # protobuf answers are not written here
            if kind == "UNKNOWN":
                raise HttpError(501)
            response = master_operator.answer(master, kind)
            if response is None:
                raise HttpError(501, f"'{kind}' is not served by the local master")
            self.set_header("Content-Type", JSON_TYPE)
            self.finish(json.dumps(response))
        except HttpError as error:
            if not self._finished:
                _text(self, error.code, error.text)

    def _parse(self) -> str:
        """The call's type; a JSON number for it fails conversion, an unknown name is dropped (so the
        call has no type), as stout's protobuf parser does."""
        body = decode_call(self.request.headers.get("Content-Type"), self.request.body, "master.Call")
        if not isinstance(body, dict):
            raise HttpError(400, p.conversion_error("Expecting a JSON object"))
        kind = body.get("type")
        if isinstance(kind, int | float) and not isinstance(kind, bool):
            raise HttpError(400, p.conversion_error("Not expecting a JSON number for field 'type'"))
        if not isinstance(kind, str) or kind not in master_operator.OPERATOR_CALL_TYPES:
            raise HttpError(400, "Failed to validate master::Call: Expecting 'type' to be present")
        return kind


class JsonHandler(tornado.web.RequestHandler):
    """A read-only JSON endpoint: `view(master)` answered as `application/json`."""

    def initialize(self, holder: MasterHolder, view: Callable[[Master], Any]) -> None:
        self.holder = holder
        self.view = view

    def get(self) -> None:
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(json.dumps(self.view(self.holder.master)))


class HealthHandler(tornado.web.RequestHandler):
    def initialize(self, holder: MasterHolder) -> None:
        self.holder = holder

    def get(self) -> None:
        self.set_status(200)
        self.clear_header("Content-Type")
        self.finish()


class RedirectHandler(tornado.web.RequestHandler):
    """`/master/redirect` (`Master::Http::redirect`): 307 to the leader's `//hostname:port`, 503 without
    a leader; anything below it is 404 (no redirect loops)."""

    def initialize(self, holder: MasterHolder) -> None:
        self.holder = holder

    def get(self, below: str | None = None) -> None:
        if below is not None:
            _text(self, 404, "")
            return
        master = self.holder.master
        refresh_leadership(master)
        if master.is_leader:
            _redirect(self, f"//{master.config.advertised_hostname}:{master.config.port}")
        elif master.leader_address:
            _redirect(self, f"//{master.leader_address}")
        else:
            _text(self, 503, p.NO_LEADER)


def quick_ack(connection: Any) -> None:
    """Acknowledge the next request's first segment at once (Linux TCP_QUICKACK, re-armed after every
    response): http.client writes headers and body in two sends, and Nagle on the client side plus
    delayed ACKs here would otherwise cost ~40 ms per pymesos call."""
    stream = getattr(connection, "stream", None)
    sock = getattr(stream, "socket", None)
    option = getattr(socket, "TCP_QUICKACK", None)
    if sock is None or option is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, option, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def make_app(holder: MasterHolder) -> tornado.web.Application:
    args = {"holder": holder}

    def json_route(pattern: str, view: Callable[[Master], Any]) -> tuple[str, type, dict[str, Any]]:
        return (pattern, JsonHandler, {"holder": holder, "view": view})

    return tornado.web.Application(
        [
            (SCHEDULER_PATH, SchedulerHandler, args),
            (r"/master/api/v1/scheduler", SchedulerHandler, args),
            (r"/api/v1", OperatorHandler, args),
            (r"/master/api/v1", OperatorHandler, args),
            json_route(r"/version", lambda _: master_state.version_json()),
            json_route(r"/state", master_state.state),
            json_route(r"/master/state", master_state.state),
            json_route(r"/state\.json", master_state.state),
            json_route(r"/master/state\.json", master_state.state),
            json_route(r"/slaves", master_state.slaves),
            json_route(r"/master/slaves", master_state.slaves),
            json_route(r"/frameworks", master_state.frameworks),
            json_route(r"/master/frameworks", master_state.frameworks),
            (r"/(?:master/)?redirect(?:/(.*))?", RedirectHandler, args),
            (r"/health", HealthHandler, args),
            (r"/master/health", HealthHandler, args),
        ],
        compress_response=False,
    )
