#!/usr/bin/env python3
"""Write mesos_gpu/api/static/templates.json: the examples' jobs (examples/*/job*.json) as the web page's
submit templates, embedded at build time because the examples are not part of the installed package.

Run after changing an example: `python scripts/web-templates.py` (tests/web/test_web_server.py fails while
the file is stale). `--check` exits 1 when the file differs from what would be written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
TARGET = REPO / "mesos_gpu" / "api" / "static" / "templates.json"


def templates() -> list[dict[str, object]]:
    """One template per example job file: its name, a short note, and the job document as written."""
    out: list[dict[str, object]] = []
    for path in sorted(EXAMPLES.glob("*/job*.json")):
        job = json.loads(path.read_text(encoding="utf-8"))
        host = path.name == "job.host.json"
        note = f"needs the image {job['image']}" if job.get("image") else "runs on the host"
        if "@EXAMPLES@" in json.dumps(job):
            note += " (replace @EXAMPLES@ with the examples' directory or a URL)"
        out.append({
            "id": f"{path.parent.name}/{path.name}",
            "title": f"{path.parent.name} ({'host' if host else 'image'})",
            "note": note,
            "job": job,
        })
    return out


def render() -> str:
    return json.dumps(templates(), indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            stale = f"{TARGET.relative_to(REPO)} is stale: run python scripts/web-templates.py"
            print(stale, file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(REPO)} ({len(templates())} templates)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
