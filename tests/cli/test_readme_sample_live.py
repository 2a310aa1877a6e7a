"""The README's sample job ("Using it") runs as written on the local cluster, and the commands the
README shows around it work on it: `wait` (exit 0), `logs` (every task, prefixed), `--task`, `--tail`,
`jobs -o name`, `status -o wide|json` (ISO times)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from mesos_gpu.standalone import Standalone
from tests.cli.conftest import run_cli

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_sample_job() -> dict:
    """The first JSON block of the README's "Using it" section."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Using it"):]
    section = section[: section.index("\n## ", 1)]
    block = re.search(r"```json\n(.*?)```", section, re.DOTALL)
    assert block, "no JSON job in the README's 'Using it'"
    return json.loads(block.group(1))


def test_the_readme_sample_runs_as_written(local: Standalone, tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(readme_sample_job()))
    job_id = json.loads(run_cli("submit", str(path), "--json", api=local.api_url).stdout)["id"]

    waited = run_cli("wait", job_id, "--timeout", "90", "--interval", "0.2", api=local.api_url)
    assert waited.returncode == 0, (waited.stdout, waited.stderr)
    assert "SUCCEEDED" in waited.stdout

    names = ["chief-0", "worker-0", "worker-1", "ps-0"]
    shown = run_cli("logs", job_id, api=local.api_url)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == [f"[{name}]" for name in names]
    for name, line in zip(names, lines, strict=True):
        role, index = name.split("-")
        config = json.loads(line.split("TF_CONFIG=", 1)[1])
        assert line.startswith(f"[{name}] {name}: ") and config["task"] == {"type": role, "index": int(index)}

    alone = run_cli("logs", job_id, "--task", "worker-1", api=local.api_url).stdout
    assert alone == lines[2].removeprefix("[worker-1] ") + "\n"
    assert run_cli("logs", job_id, "--tail", "1", "--follow", api=local.api_url).stdout == shown.stdout

    assert job_id in run_cli("jobs", "-o", "name", api=local.api_url).stdout.split()
    wide = run_cli("status", job_id, "-o", "wide", api=local.api_url).stdout
    assert "TASK ID" in wide and f"{job_id}" in wide
    view = json.loads(run_cli("status", job_id, "-o", "json", api=local.api_url).stdout)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", view["finished_at_iso"])
