"""The profile as `GET /v1/cluster` (`api.profiles.cluster_profile`) and `mesos-gpu cluster` show it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from mesos_gpu.api.profiles import cluster_profile
from mesos_gpu.commands.cluster import profile_text
from mesos_gpu.core.tenancy import TenantsConfig

CONFIG = TenantsConfig.of({"profiles": {
    "time_zone": "UTC", "drain_seconds": 900,
    "profiles": {"day": {}, "night": {"groups": [{"share_gpus": 0}]}},
    "schedule": [{"at": "0 8 * * *", "profile": "day"}, {"at": "0 20 * * *", "profile": "night"}],
}})
NOON = datetime(2026, 12, 4, 12, tzinfo=UTC).timestamp()


def service(config: TenantsConfig | None, **extra: object) -> SimpleNamespace:
    return SimpleNamespace(tenancy=SimpleNamespace(current=lambda: config), **extra)


def test_from_the_tenants_book():
    shown = cluster_profile(service(CONFIG), clock=lambda: NOON)
    assert shown is not None
    assert (shown["current"], shown["since"], shown["next"], shown["next_at"], shown["drain_deadline"]) == (
        "day", "2026-12-04T08:00:00+00:00", "night", "2026-12-04T20:00:00+00:00", "2026-12-04T08:15:00+00:00")
    assert shown["draining_share_hosts"] == []


def test_none_without_profiles_or_a_book():
    assert cluster_profile(service(None), clock=lambda: NOON) is None
    assert cluster_profile(service(TenantsConfig.of({})), clock=lambda: NOON) is None
    assert cluster_profile(SimpleNamespace(), clock=lambda: NOON) is None


def test_the_schedulers_own_view_comes_first():
    own = {"current": "night", "draining_share_hosts": ["sharehost.x"]}
    shown = cluster_profile(service(CONFIG, profile_view=lambda now: own), clock=lambda: NOON)
    assert shown == own


def test_the_cli_line():
    shown = cluster_profile(service(CONFIG), clock=lambda: NOON)
    text = profile_text(shown)
    assert text == ("GPU profile: day since 2026-12-04T08:00:00+00:00 (UTC). "
                    "Next: night at 2026-12-04T20:00:00+00:00.")
    draining = profile_text({**shown, "current": "night", "draining_share_hosts": ["h1", "h2"]})
    assert draining.endswith("Draining (no new shares): h1, h2; their share tasks are killed at "
                             "2026-12-04T08:15:00+00:00.")
    assert "none in force" in profile_text({**shown, "current": None})


def test_the_documented_example_is_valid():
    text = Path(__file__).parents[2].joinpath("docs", "tenancy.md").read_text(encoding="utf-8")
    section = text[text.index("## Profiles"):]
    block = re.search(r"```json\n(.*?)```", section, re.DOTALL)
    assert block is not None
    config = TenantsConfig.of(json.loads(block.group(1)))
    assert config.profiles is not None and set(config.profiles.profiles) == {"day", "night"}
