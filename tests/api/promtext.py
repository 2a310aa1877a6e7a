"""Reading `/metrics` in tests the way Prometheus does: through prometheus_client's own text parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def parsed(text: str) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    """Every sample of the exposition `text`, by sample name, then by its labels. Fails on text the
    parser refuses, and on a sample given twice."""
    samples: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            by_labels = samples.setdefault(sample.name, {})
            labels = frozenset(sample.labels.items())
            assert labels not in by_labels, f"{sample.name}{dict(labels)} given twice"
            by_labels[labels] = sample.value
    return samples


def value(text: str, name: str, **labels: str) -> float:
    """The value of sample `name` with exactly `labels` (KeyError when there is none)."""
    return parsed(text)[name][frozenset(labels.items())]


def families(text: str) -> dict[str, str]:
    """Each family's name and type (counter, gauge, histogram)."""
    return {family.name: family.type for family in text_string_to_metric_families(text)}
