"""A stand-in for DC/OS Admin Router in front of the API: `/service/<name>/<path>` is proxied to the API's
`/<path>` with the prefix removed, as Admin Router does for an app labelled DCOS_SERVICE_NAME (and
DCOS_SERVICE_REWRITE_REQUEST_URLS left at its default, true). `requests` records every path it was asked
for, so a test can tell that the page never left its prefix."""

from __future__ import annotations

from typing import Any

import tornado.web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"}


class _Proxy(tornado.web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE")

    def initialize(self, upstream: str, requests: list[str]) -> None:
        self.upstream, self.requests = upstream, requests

    async def _forward(self, rest: str) -> None:
        self.requests.append(self.request.uri or "")
        query = f"?{self.request.query}" if self.request.query else ""
        headers = {k: v for k, v in self.request.headers.get_all() if k.lower() not in HOP_BY_HOP}
        method = self.request.method or "GET"
        body = self.request.body if method == "POST" else None
        request = HTTPRequest(f"{self.upstream}/{rest}{query}", method=method, headers=headers, body=body,
                              follow_redirects=False, decompress_response=False)
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
        self.set_status(response.code, response.reason)
        for name, value in response.headers.get_all():
            if name.lower() not in HOP_BY_HOP:
                self.set_header(name, value)
        if response.code == 304:
            self.finish()
        else:
            self.finish(response.body or b"")

    get = head = post = delete = _forward

    def check_etag_header(self) -> bool:
        return False  # the upstream's answer is passed on as it is


class _NotOurs(tornado.web.RequestHandler):
    def initialize(self, requests: list[str]) -> None:
        self.requests = requests

    def get(self, *args: Any) -> None:
        self.requests.append(self.request.uri or "")
        self.set_status(404)
        self.finish("not under the service prefix")

    post = delete = get


def admin_router(service: str, upstream: str, requests: list[str]) -> tornado.web.Application:
    """The proxy app: `/service/<service>/...` to `upstream`, anything else 404 (and recorded)."""
    return tornado.web.Application([
        (rf"/service/{service}/(.*)", _Proxy, {"upstream": upstream, "requests": requests}),
        (r"/(.*)", _NotOurs, {"requests": requests}),
    ])
