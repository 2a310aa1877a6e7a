"""`HttpParser`: an incremental HTTP/1.1 response parser with the interface of http-parser 0.9.0.

Only what pymesos's `process.Connection.read` calls is provided: `execute`, `is_headers_complete`,
`get_status_code`, `get_headers`, `is_chunked`, `is_partial_body`, `recv_body`,
`is_message_complete`, `get_errno`, plus `get_version` and `should_keep_alive`. Parsing is done by
llhttp through httptools, which handles every split of status line, headers and chunk framing.
There is deliberately no `errno` attribute: pymesos then treats a short parse as a hard error
(`get_errno`) instead of importing `http_parser.pyparser`.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping

import httptools

HTTP_REQUEST = 0
HTTP_RESPONSE = 1
HTTP_BOTH = 2

# Error numbers as in http-parser's C extension: 0 is no error; anything else is a parse failure.
OK = 0
PARSE_ERROR = 1


class HeaderDict(MutableMapping[str, str]):
    """Headers in arrival order; lookups ignore case; repeated headers are joined with ', '."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[str, str]] = {}

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()][1]

    def __setitem__(self, key: str, value: str) -> None:
        self._items[key.lower()] = (key, value)

    def __delitem__(self, key: str) -> None:
        del self._items[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def add(self, key: str, value: str) -> None:
        if key in self:
            value = f"{self[key]}, {value}"
        self[key] = value


class HttpParser:
    """Parses one HTTP response fed in pieces of any size (`kind` is accepted for compatibility)."""

    def __init__(self, kind: int = HTTP_BOTH, decompress: bool = False) -> None:
        if kind == HTTP_REQUEST:
            raise ValueError("this http_parser provides response parsing only")
        self._parser = httptools.HttpResponseParser(self)
        self._headers = HeaderDict()
        self._body: list[bytes] = []
        self._headers_complete = False
        self._message_complete = False
        self._errno = OK
        self._errstr = ""

    # --- httptools callbacks -------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.add(name.decode("latin-1"), value.decode("latin-1").strip())

    def on_headers_complete(self) -> None:
        self._headers_complete = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._message_complete = True

    # --- the http-parser interface --------------------------------------------------------
    def execute(self, data: bytes, length: int) -> int:
        """Feed `data[:length]`; return how many bytes were consumed (all of them, or 0 on error).

        A `length` of 0 means the peer closed the connection: the message ends there.
        """
        if length == 0:
            self._message_complete = True
            return 0
        if self._errno != OK:
            return 0
        try:
            self._parser.feed_data(bytes(data[:length]))
        except httptools.HttpParserUpgrade:
            return length
        except httptools.HttpParserError as exc:
            self._errno = PARSE_ERROR
            self._errstr = str(exc)
            return 0
        return length

    def get_errno(self) -> int:
        return self._errno

    def get_errstr(self) -> str:
        return self._errstr

    def get_version(self) -> tuple[int, int] | None:
        if not self._headers_complete:
            return None
        major, minor = self._parser.get_http_version().split(".")
        return int(major), int(minor)

    def get_status_code(self) -> int:
        return int(self._parser.get_status_code())

    def get_headers(self) -> HeaderDict:
        return self._headers

    def is_headers_complete(self) -> bool:
        return self._headers_complete

    def is_chunked(self) -> bool:
        codings = self._headers.get("Transfer-Encoding", "")
        return codings.split(",")[-1].strip().lower() == "chunked"

    def is_partial_body(self) -> bool:
        """True while parsed body bytes are waiting for `recv_body`."""
        return bool(self._body)

    def recv_body(self) -> bytes:
        body = b"".join(self._body)
        self._body = []
        return body

    def is_message_complete(self) -> bool:
        return self._message_complete

    def should_keep_alive(self) -> bool:
        return bool(self._parser.should_keep_alive())
