"""`pip install mesos_gpu-*.whl` into a fresh virtual environment, with nothing but the wheel and the
package index: no compat build installed first, no repository on the path. Then the CLI runs and
pymesos's HTTP path (its `process.Connection` with the shipped `http_parser`) imports and parses.

Needs the package index (as `make test` does for its own install); about 13 s here with pip's cache
warm (build 2 s, venv 6 s, install 5 s)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mesos_gpu

REPO = Path(__file__).resolve().parents[2]
# What building the wheel needs, and nothing else (the Docker build context keeps the same set).
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "LICENSE", "mesos_gpu", "isolator", "third_party",
           "compat/http-parser/http_parser")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")

CHECK = r"""
import json, pathlib, sys
import mesos_gpu, pymesos, http_parser
import pymesos.process
from mesos_gpu.driver.mesosdriver import pymesos_driver_factory  # the scheduler's pymesos glue
from pymesos.process import Connection, HttpParser
parser = HttpParser()
response = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"7\r\n{\"a\":1}\r\n0\r\n\r\n")
for i in range(0, len(response), 5):  # fed in pieces, as TCP delivers them
    piece = response[i:i + 5]
    assert parser.execute(piece, len(piece)) == len(piece)
print(json.dumps({
    "files": [m.__file__ for m in (mesos_gpu, pymesos, http_parser)],
    "parser": HttpParser.__module__, "status": parser.get_status_code(), "body": parser.recv_body().decode(),
    "complete": parser.is_message_complete(), "chunked": parser.is_chunked(), "path": sys.path,
    "pymesos_licence": (pathlib.Path(pymesos.__file__).parent / "LICENSE").read_text()[:9] == "Copyright",
}))
"""


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 240) -> str:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.slow
def test_the_wheel_installs_from_the_index_alone_and_runs(tmp_path: Path) -> None:
    source = tmp_path / "src"
    for name in SOURCES:
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=IGNORE)
        else:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, source / name)
    dropped = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    work = tmp_path / "elsewhere"
    work.mkdir()

    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(source), "-w", str(tmp_path / "dist")],
        cwd=work, env=env)
    [wheel] = (tmp_path / "dist").glob("mesos_gpu-*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=work, env=env)
    python = str(venv / "bin" / "python")
    run([python, "-m", "pip", "install", "-q", str(wheel)], cwd=work, env=env)

    assert run([str(venv / "bin" / "mesos-gpu"), "--version"], cwd=work, env=env).strip() == (
        f"mesos-gpu {mesos_gpu.__version__}")
    report = json.loads(run([python, "-c", CHECK], cwd=work, env=env))
    for installed in report["files"]:
        assert installed.startswith(str(venv)), installed
    assert not any(entry.startswith(str(REPO)) for entry in report["path"] if entry)
    assert report["parser"] == "http_parser.http"
    parsed = (report["status"], report["body"], report["complete"], report["chunked"])
    assert parsed == (200, '{"a":1}', True, True)
    assert report["pymesos_licence"]  # the BSD licence travels with the shipped pymesos

    # The environment is consistent, and holds no separate pymesos or http-parser distribution.
    run([python, "-m", "pip", "check"], cwd=work, env=env)
    installed = {row["name"].lower() for row in json.loads(
        run([python, "-m", "pip", "list", "--format=json"], cwd=work, env=env))}
    assert "mesos-gpu" in installed and installed.isdisjoint({"pymesos", "http-parser"})


def dockerignore_keeps(path: str, patterns: list[str]) -> bool:
    """Whether `.dockerignore` lets `path` (a top-level file or folder) into the build context: the
    last pattern that matches it decides, `!` keeps (folder patterns match what lies under them)."""
    kept = True
    for pattern in patterns:
        keep = pattern.startswith("!")
        bare = pattern.lstrip("!").rstrip("/")
        if bare in ("**", path) or path.startswith(bare + "/"):
            kept = keep
    return kept


def test_the_image_build_context_holds_what_the_wheel_needs() -> None:
    # The scheduler image runs `pip install .` on the context .dockerignore lets through.
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert not dockerignore_keeps("tests", patterns)  # the parse above can say no
    assert [name for name in SOURCES if not dockerignore_keeps(name, patterns)] == []
