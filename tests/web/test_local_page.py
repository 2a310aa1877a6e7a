"""`mesos-gpu local` prints the web page's URL, and that URL serves the page and its map."""

from __future__ import annotations

import io
import json
import re
import threading
import urllib.request
import uuid
from pathlib import Path

import pytest

from mesos_gpu.standalone import Standalone, run_standalone


class _Watcher(io.StringIO):
    """`run_standalone`'s output: once the startup lines are out, fetch the printed page URL, then stop."""

    def __init__(self, stop: threading.Event) -> None:
        super().__init__()
        self.stop = stop
        self.fetched: dict[str, bytes] = {}
        self.error: BaseException | None = None

    def write(self, text: str) -> int:
        written = super().write(text)
        if "Press Ctrl-C" in text and not self.stop.is_set():
            threading.Thread(target=self._visit, daemon=True).start()
        return written

    def _visit(self) -> None:
        try:
            url = re.search(r"web page: (http://\S+/)\n", self.getvalue()).group(1)  # type: ignore[union-attr]
            for path in ("", "v1/cluster/map"):
                with urllib.request.urlopen(url + path, timeout=10) as response:
                    self.fetched[path] = response.read()
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.stop.set()


@pytest.mark.zookeeper
def test_local_prints_the_page_url_and_it_serves_the_page(zk_hosts: str, tmp_path: Path) -> None:
    stop = threading.Event()
    out = _Watcher(stop)
    local = Standalone(port=0, zk_hosts=zk_hosts, framework_name=f"page-{uuid.uuid4().hex[:8]}",
                       workdir=tmp_path, tick_seconds=0.2)
    assert run_standalone(local, out, stop) == 0
    assert out.error is None, out.error
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"  web page: http://127\.0\.0\.1:\d+/", lines[1]), lines
    assert b'<script type="module" src="static/main.js">' in out.fetched[""]
    assert len(json.loads(out.fetched["v1/cluster/map"])["agents"]) == 2
