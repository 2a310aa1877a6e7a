"""Every example file the docs name (`examples/<name>/job.json`, ...) exists, so a reader's command
does not fail on a missing path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCS += sorted((ROOT / "examples").glob("*/README.md"))
PATH = re.compile(r"(?<![\w/.-])(examples/[\w./-]*\w)")


def named_paths(doc: Path) -> list[str]:
    return sorted(set(PATH.findall(doc.read_text(encoding="utf-8"))))


def test_the_docs_name_example_files() -> None:
    assert "examples/tf_distributed/job.json" in named_paths(ROOT / "docs" / "dcos.md")


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: str(doc.relative_to(ROOT)))
def test_every_named_example_path_exists(doc: Path) -> None:
    missing = [path for path in named_paths(doc) if not (ROOT / path).exists()]
    assert not missing, f"{doc.relative_to(ROOT)} names missing paths: {missing}"
