"""What each isolation level enforces, in the words people read (pure), all made from
`mesos_gpu.core.sharing.STATEMENTS` so the schema, the docs and the CLI can never say more than it:

- `describe(level)`: one line with every aspect (the job schema's and OpenAPI's isolation description).
- `summary(enforced)`: a short line for a CLI table cell, from a task view's `enforced` statement
  ("capped: memory capped by the share host's NVML watchdog; compute and faults NOT isolated").
- `markdown_table()`: the isolation table of docs/sharing.md (level, what is enforced, by what, cost).
"""

from __future__ import annotations

from collections.abc import Mapping

from mesos_gpu.core.model import Isolation
from mesos_gpu.core.sharing import STATEMENTS

__all__ = ["ASPECTS", "describe", "markdown_table", "summary"]

ASPECTS = ("memory", "compute", "faults")


def describe(level: Isolation | str) -> str:
    """'capped: memory capped: ...; compute NOT isolated: ...; faults NOT isolated; enforced by ...;
    cost: ...' (every word from STATEMENTS)."""
    isolation = Isolation(level)
    words = STATEMENTS[isolation]
    parts = [f"{aspect} {words[aspect]}" for aspect in ASPECTS]
    parts.append(f"enforced by {words['enforced_by']}")
    parts.append(f"cost: {words['cost']}")
    return f"{isolation.value}: " + "; ".join(parts)


def _verdict(text: str) -> str:
    """The leading verdict of an aspect's statement: "NOT isolated: time-sliced" -> "NOT isolated"."""
    return text.split(":", 1)[0].strip()


def _enforcer(text: str) -> str:
    """The enforcer's name without its details: "CUDA MPS control daemon, one per ..." -> its first part."""
    for mark in (" (", ","):
        text = text.split(mark, 1)[0]
    return text.strip()


def _aspects(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def summary(enforced: Mapping[str, str]) -> str:
    """A short, honest line from a statement (`sharing.statement(level)`, or a task view's `enforced`):
    what is enforced and by what, then what is not."""
    by_verdict: dict[str, list[str]] = {}
    for aspect in ASPECTS:
        by_verdict.setdefault(_verdict(str(enforced.get(aspect, "NOT isolated"))), []).append(aspect)
    held = [(verdict, names) for verdict, names in by_verdict.items() if not verdict.startswith("NOT")]
    loose = [name for verdict, names in by_verdict.items() if verdict.startswith("NOT") for name in names]
    level = enforced.get("level", "")
    if not held:
        return f"{level}: nothing enforced"
    enforcer = _enforcer(str(enforced.get("enforced_by", "")))
    text = ", ".join(f"{_aspects(names)} {verdict}" for verdict, names in held) + f" by {enforcer}"
    if loose:
        text += f"; {_aspects(loose)} NOT isolated"
    return f"{level}: {text}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table() -> str:
    """The isolation table: one row per level, every cell from STATEMENTS."""
    lines = [
        "| level | memory | compute | faults | enforced by | what it costs |",
        "|---|---|---|---|---|---|",
    ]
    for level, words in STATEMENTS.items():
        cells = [f"`{level.value}`", *(words[a] for a in ASPECTS), words["enforced_by"], words["cost"]]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)
