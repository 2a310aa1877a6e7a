"""docs/sharing.md stays true: its isolation table is STATEMENTS' words, and its examples are valid jobs
for both validate_job and the published schema."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from mesos_gpu.core.isolationtext import ASPECTS, describe, markdown_table, summary
from mesos_gpu.core.model import Isolation
from mesos_gpu.core.sharing import STATEMENTS, statement
from mesos_gpu.core.validation import JOB_SCHEMA_PATH, validate_job

DOC = (Path(__file__).parents[2] / "docs" / "sharing.md").read_text()
SCHEMA = json.loads(resources.files("mesos_gpu").joinpath(JOB_SCHEMA_PATH).read_text())
EXAMPLES = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", DOC, re.S)]


def test_the_docs_isolation_table_is_the_statements() -> None:
    table = re.search(r"<!-- isolation-table[^>]*-->\n(.*?)<!-- /isolation-table -->", DOC, re.S)
    assert table is not None
    assert table.group(1).strip() == markdown_table()


def test_the_table_has_every_level_and_every_word() -> None:
    rows = markdown_table().splitlines()[2:]
    assert [row.split("|")[1].strip() for row in rows] == [f"`{level.value}`" for level in Isolation]
    for row, words in zip(rows, STATEMENTS.values(), strict=True):
        assert [cell.strip() for cell in row.split("|")[2:-1]] == [
            *(words[a] for a in ASPECTS), words["enforced_by"], words["cost"]
        ]


@pytest.mark.parametrize("doc", EXAMPLES, ids=[doc["name"] for doc in EXAMPLES])
def test_the_docs_examples_are_valid_jobs(doc: dict) -> None:
    assert jsonschema.Draft202012Validator(SCHEMA).is_valid(doc)
    spec = validate_job(doc)
    assert spec.has_shares


def test_six_examples() -> None:
    assert len(EXAMPLES) == 6


@pytest.mark.parametrize("level", list(Isolation))
def test_describe_and_summary_use_only_the_statements_words(level: Isolation) -> None:
    words = STATEMENTS[level]
    line = describe(level)
    assert all(words[key] in line for key in words)
    short = summary(statement(level))
    assert short.startswith(f"{level.value}: ")
    enforcer = words["enforced_by"].split(" (")[0].split(",")[0]
    assert enforcer in short or short.endswith("nothing enforced")
