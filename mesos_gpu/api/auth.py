"""Bearer-token authentication for the API: tokens from the settings and an optional file, compared in
constant time. The file (one token per line or comma-separated; `#` starts a comment) is re-read when
it changes, so tokens rotate without a restart.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from collections.abc import Iterable

log = logging.getLogger(__name__)


def parse_tokens(text: str) -> tuple[str, ...]:
    """Tokens in a tokens file: separated by newlines or commas, blank lines and `#` comments ignored."""
    tokens: list[str] = []
    for line in text.splitlines():
        content = line.split("#", 1)[0]
        tokens.extend(part.strip() for part in content.split(",") if part.strip())
    return tuple(tokens)


#: The API's own token header: the same tokens as `Authorization: Bearer`, for clients behind a proxy
#: that owns `Authorization` (DC/OS Admin Router takes it for the DC/OS login): the web page sends this.
TOKEN_HEADER = "X-Mesos-GPU-Token"


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class TokenAuthenticator:
    """Checks bearer tokens. Enabled when it was given tokens or a tokens file.

    Example::

        auth = TokenAuthenticator(["s3cret"], tokens_file=None, reads=False)
        auth.required("POST")          # True: writes need a token
        auth.accepts("Bearer s3cret")  # True
        auth.accepts(None, "s3cret")   # True: the X-Mesos-GPU-Token header
    """

    def __init__(
        self, tokens: Iterable[str] = (), tokens_file: str | None = None, reads: bool = False
    ) -> None:
        self._inline = tuple(t for t in tokens if t)
        self._file = tokens_file
        self._file_tokens: tuple[str, ...] = ()
        self._file_stamp: tuple[float, int] | None = None
        self._lock = threading.Lock()
        self.reads = reads
        if tokens_file is not None:
            self._reload()

    @property
    def enabled(self) -> bool:
        return bool(self._inline) or self._file is not None

    def required(self, method: str) -> bool:
        """Whether a request with this method needs a token."""
        if not self.enabled:
            return False
        return self.reads or method.upper() not in ("GET", "HEAD", "OPTIONS")

    def _reload(self) -> None:
        assert self._file is not None
        try:
            stat = os.stat(self._file)
            stamp = (stat.st_mtime, stat.st_size)
            if stamp == self._file_stamp:
                return
            with open(self._file, encoding="utf-8") as handle:
                self._file_tokens = parse_tokens(handle.read())
            self._file_stamp = stamp
        except OSError as exc:
            # Fail closed: with the file unreadable only the inline tokens are accepted.
            log.error("cannot read the API tokens file %s: %s", self._file, exc)
            self._file_tokens = ()
            self._file_stamp = None

    def tokens(self) -> tuple[str, ...]:
        if self._file is not None:
            with self._lock:
                self._reload()
        return self._inline + self._file_tokens

    def accepts(self, authorization: str | None, token_header: str | None = None) -> bool:
        """Whether the Authorization header's bearer token, or the `X-Mesos-GPU-Token` header, is a
        known token (every token is compared, so the time taken does not tell which one matched or how
        much of it)."""
        presented = [t for t in (bearer_token(authorization), (token_header or "").strip()) if t]
        matched = False
        for token in presented:
            candidate = token.encode("utf-8")
            for known in self.tokens():
                matched |= hmac.compare_digest(candidate, known.encode("utf-8"))
        return matched
