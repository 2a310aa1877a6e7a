"""The GPU profile in force in `GET /v1/tenants` and `mesos-gpu tenants`: its name, the next switch, and the
tenants' terms it overrides (their rows show those terms, marked). Pure (`active_profile`, the CLI text)
and through the real API and CLI on a runtime with the memory store."""

from __future__ import annotations

import json
from pathlib import Path

from mesos_gpu.client import ApiClient
from mesos_gpu.commands.tenants import tenants_text
from mesos_gpu.core.profiles import ProfilesConfig
from mesos_gpu.core.profilesapply import active_profile
from mesos_gpu.core.tenancy import TenantsConfig
from tests.cli.conftest import run_cli
from tests.tenancy.test_cli import api  # noqa: F401 - the real API on a memory-store runtime (fixture)

#: "day" fires every minute (always in force, next switch within a minute); "night" never fires first.
DOCUMENT = {
    "tenants": {"teaching": {"quota": 2}, "research": {"quota": 4}},
    "profiles": {
        "time_zone": "Europe/Berlin",
        "profiles": {"day": {"groups": [{"share_gpus": 1}],
                             "tenants": {"teaching": {"quota": 8, "limit": 12, "may_borrow": False}}},
                     "night": {"groups": [{"share_gpus": 0}]}},
        "schedule": [{"at": "0 3 1 1 *", "profile": "night"}, {"at": "* * * * *", "profile": "day"}],
    },
}
NOW = 1_780_000_000.0   # 2026-05-28T20:26:40Z


def profiles() -> ProfilesConfig:
    config = TenantsConfig.of(DOCUMENT).profiles
    assert config is not None
    return config


def test_the_active_profile_with_its_overrides():
    shown = active_profile(profiles(), NOW)
    assert shown is not None
    assert (shown["current"], shown["next"], shown["time_zone"]) == ("day", "day", "Europe/Berlin")
    assert shown["since_epoch"] == NOW // 60 * 60 and shown["next_at_epoch"] == NOW // 60 * 60 + 60
    assert shown["tenants"] == {"teaching": {"quota": 8, "limit": 12, "may_borrow": False, "weight": 1}}
    assert "draining_share_hosts" not in shown
    assert active_profile(None, NOW) is None


def test_no_profile_in_force_overrides_nothing():
    document = {"profiles": {"profiles": {"day": {"tenants": {"a": {"quota": 1}}}},
                             "schedule": [{"at": "0 0 30 2 *", "profile": "day"}]}}   # 30 February: never
    shown = active_profile(TenantsConfig.of(document).profiles, NOW)
    assert shown is not None and (shown["current"], shown["tenants"]) == (None, {})


def test_the_cli_text_marks_the_profile_terms():
    body = {"quotas": True, "source": "store", "version": 3, "unassigned_gpus": 0,
            "tenants": [{"name": "research", "quota": 4, "limit": None, "may_borrow": True, "weight": 1,
                         "used_gpus": 0, "borrowed_gpus": 0, "waiting_jobs": 0, "waiting_gpus": 0,
                         "profile_terms": False},
                        {"name": "teaching", "quota": 8, "limit": 12, "may_borrow": False, "weight": 1,
                         "used_gpus": 1, "borrowed_gpus": 0, "waiting_jobs": 0, "waiting_gpus": 0,
                         "profile_terms": True}],
            "profile": active_profile(profiles(), NOW)}
    text = tenants_text(body)
    lines = text.splitlines()
    assert lines[1].split()[:2] == ["research", "4"]
    assert lines[2].split()[:4] == ["teaching", "*", "8", "12"]
    assert "GPU profile: day since 2026-05-28T22:26:00+02:00 (Europe/Berlin)." in text
    assert "Next: day at 2026-05-28T22:27:00+02:00." in text
    assert "Terms of profile day in force (*): teaching (quota 8, limit 12, borrows no)." in text
    body["profile"] = None
    assert "GPU profile" not in tenants_text(body)


def test_get_tenants_and_the_cli_show_the_profile_in_force(api: str, tmp_path: Path) -> None:  # noqa: F811
    client = ApiClient(api)
    _, _, before = client.request("GET", "/v1/tenants")
    assert before["profile"] is None
    client.request("PUT", "/v1/tenants", DOCUMENT)
    client.submit({"name": "lesson", "command": "true", "gpus": 1, "tenant": "teaching"})
    _, _, body = client.request("GET", "/v1/tenants")
    profile = body["profile"]
    assert (profile["current"], profile["next"]) == ("day", "day")
    assert profile["tenants"] == {"teaching": {"quota": 8, "limit": 12, "may_borrow": False, "weight": 1}}
    rows = {tenant["name"]: tenant for tenant in body["tenants"]}
    # The rows show the terms in force: teaching's from the profile, research's own.
    assert (rows["teaching"]["quota"], rows["teaching"]["limit"], rows["teaching"]["profile_terms"]) == \
        (8, 12, True)
    assert (rows["research"]["quota"], rows["research"]["profile_terms"]) == (4, False)
    # The document itself is unchanged (the base terms are what PUT stored).
    assert client.request("GET", "/v1/tenants")[2]["default"] is not None
    shown = run_cli("tenants", api=api)
    assert shown.returncode == 0, shown.stderr
    assert "GPU profile: day since" in shown.stdout
    assert "Terms of profile day in force (*): teaching (quota 8, limit 12, borrows no)." in shown.stdout
    assert any(line.split()[:3] == ["teaching", "*", "8"] for line in shown.stdout.splitlines())
    as_json = json.loads(run_cli("tenants", "-o", "json", api=api).stdout)
    assert as_json["profile"]["current"] == "day"
