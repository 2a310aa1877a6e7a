"""Profiles (`mesos_gpu.core.profiles`, `profilesapply`): the section's validation with JSON paths, the
profile in force and the next one, tenant overrides, which share hosts drain, and what is overdue."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.core.errors import ValidationError
from mesos_gpu.core.model import Isolation
from mesos_gpu.core.profiles import AgentGroup, Profile
from mesos_gpu.core.profilesapply import draining, effective_tenants, overdue, profile_view
from mesos_gpu.core.sharing import ShareHostView
from mesos_gpu.core.tenancy import TenantQuota, TenantsConfig

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args: int) -> float:
    return datetime(*args, tzinfo=BERLIN).timestamp()


DAY_NIGHT = {
    "tenants": {"teaching": {"quota": 4}, "research": {"quota": 8}},
    "profiles": {
        "time_zone": "Europe/Berlin",
        "drain_seconds": 3600,
        "profiles": {
            "day": {"groups": [{"selector": {"gpu_model": "A100"}, "share_gpus": 4,
                                "isolation": ["capped", "mps"], "share_sizes": [0.25, 0.5]}],
                    "tenants": {"teaching": {"quota": 8, "limit": 12}}},
            "night": {"groups": [{"selector": {}, "share_gpus": 0}], "drain_seconds": 600},
        },
        "schedule": [{"at": "0 8 * * 1-5", "profile": "day"}, {"at": "0 20 * * *", "profile": "night"}],
    },
}


def config(document=None) -> TenantsConfig:
    return TenantsConfig.of(DAY_NIGHT if document is None else document)


def with_profiles(section: object) -> dict:
    return {"profiles": section}


# (name, profiles section, JSON path, message fragment)
INVALID = [
    ("not an object", [], "/profiles", "must be an object"),
    ("unknown key", {"zone": "UTC"}, "/profiles/zone", "unknown field"),
    ("bad zone", {"time_zone": "Mars/Olympus"}, "/profiles/time_zone", "IANA time zone"),
    ("zone not a string", {"time_zone": 1}, "/profiles/time_zone", "IANA time zone"),
    ("negative drain", {"drain_seconds": -1}, "/profiles/drain_seconds", "seconds from 0"),
    ("drain a string", {"drain_seconds": "1h"}, "/profiles/drain_seconds", "seconds from 0"),
    ("profiles a list", {"profiles": []}, "/profiles/profiles", "profile name -> "),
    ("bad profile name", {"profiles": {"Day": {}}}, "/profiles/profiles/Day", "profile name"),
    ("profile a list", {"profiles": {"day": []}}, "/profiles/profiles/day", "must be an object"),
    ("unknown profile key", {"profiles": {"day": {"gpus": 1}}}, "/profiles/profiles/day/gpus", "unknown"),
    ("groups an object", {"profiles": {"d": {"groups": {}}}}, "/profiles/profiles/d/groups", "a list"),
    ("selector a list", {"profiles": {"d": {"groups": [{"selector": ["a"]}]}}},
     "/profiles/profiles/d/groups/0/selector", "agent attribute"),
    ("selector value a number", {"profiles": {"d": {"groups": [{"selector": {"rack": 1}}]}}},
     "/profiles/profiles/d/groups/0/selector", "agent attribute"),
    ("share_gpus fractional", {"profiles": {"d": {"groups": [{"share_gpus": 1.5}]}}},
     "/profiles/profiles/d/groups/0/share_gpus", "whole number"),
    ("share_gpus true", {"profiles": {"d": {"groups": [{"share_gpus": True}]}}},
     "/profiles/profiles/d/groups/0/share_gpus", "whole number"),
    ("exclusive is not a share level", {"profiles": {"d": {"groups": [{"isolation": ["exclusive"]}]}}},
     "/profiles/profiles/d/groups/0/isolation", "share levels"),
    ("size 0.125", {"profiles": {"d": {"groups": [{"share_sizes": [0.5, 0.125]}]}}},
     "/profiles/profiles/d/groups/0/share_sizes/1", "multiple of 0.01"),
    ("size 1", {"profiles": {"d": {"groups": [{"share_sizes": [1]}]}}},
     "/profiles/profiles/d/groups/0/share_sizes/0", "below 1"),
    ("sizes empty", {"profiles": {"d": {"groups": [{"share_sizes": []}]}}},
     "/profiles/profiles/d/groups/0/share_sizes", "non-empty"),
    ("override a bad tenant name", {"profiles": {"d": {"tenants": {"Team": {}}}}},
     "/profiles/profiles/d/tenants/Team", "tenant name"),
    ("override limit below quota", {"profiles": {"d": {"tenants": {"t": {"quota": 4, "limit": 2}}}}},
     "/profiles/profiles/d/tenants/t/limit", "must not be below the quota"),
    ("schedule an object", {"schedule": {}}, "/profiles/schedule", "a list"),
    ("bad cron", {"profiles": {"d": {}}, "schedule": [{"at": "0 25 * * *", "profile": "d"}]},
     "/profiles/schedule/0/at", "hour: 25"),
    ("unknown profile", {"profiles": {"d": {}}, "schedule": [{"at": "0 8 * * *", "profile": "x"}]},
     "/profiles/schedule/0/profile", "known: d"),
    ("entry unknown key", {"profiles": {"d": {}}, "schedule": [{"at": "0 8 * * *", "profile": "d", "x": 1}]},
     "/profiles/schedule/0/x", "unknown"),
]


@pytest.mark.parametrize(("name", "section", "path", "fragment"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_sections_are_refused_at_their_path(name, section, path, fragment):
    with pytest.raises(ValidationError) as caught:
        TenantsConfig.of(with_profiles(section))
    found = {error.path: error.message for error in caught.value.errors}
    assert path in found, found
    assert fragment in found[path]


def test_every_problem_is_reported_at_once():
    section = {"time_zone": "x", "profiles": {"d": {"groups": [{"share_gpus": -1}]}},
               "schedule": [{"at": "", "profile": "e"}]}
    with pytest.raises(ValidationError) as caught:
        TenantsConfig.of(with_profiles(section))
    assert {e.path for e in caught.value.errors} == {
        "/profiles/time_zone", "/profiles/profiles/d/groups/0/share_gpus", "/profiles/schedule/0/at",
        "/profiles/schedule/0/profile"}


def test_a_document_without_profiles_is_written_as_before():
    assert "profiles" not in TenantsConfig.of({"tenants": {}}).to_dict()
    assert TenantsConfig.of({}).profiles is None


def test_the_canonical_document_reads_back_the_same():
    parsed = config()
    again = TenantsConfig.of(parsed.to_dict())
    assert again == parsed
    assert again.to_dict() == parsed.to_dict()
    night = parsed.to_dict()["profiles"]["profiles"]["night"]
    assert night["drain_seconds"] == 600 and night["groups"][0]["share_sizes"] is None


# (name, instant in Berlin, current, since, next, next at, drain deadline)
AT = [
    ("friday afternoon", berlin(2026, 12, 4, 15, 0), "day", berlin(2026, 12, 4, 8), "night",
     berlin(2026, 12, 4, 20), berlin(2026, 12, 4, 9)),
    ("friday night", berlin(2026, 12, 4, 23, 0), "night", berlin(2026, 12, 4, 20), "night",
     berlin(2026, 12, 5, 20), berlin(2026, 12, 4, 20, 10)),
    ("the weekend stays at night", berlin(2026, 12, 6, 12, 0), "night", berlin(2026, 12, 5, 20), "night",
     berlin(2026, 12, 6, 20), berlin(2026, 12, 5, 20, 10)),
    ("monday 08:00 exactly", berlin(2026, 12, 7, 8, 0), "day", berlin(2026, 12, 7, 8), "night",
     berlin(2026, 12, 7, 20), berlin(2026, 12, 7, 9)),
    ("a second before", berlin(2026, 12, 7, 7, 59) + 59, "night", berlin(2026, 12, 6, 20), "day",
     berlin(2026, 12, 7, 8), berlin(2026, 12, 6, 20, 10)),
    ("summer time", berlin(2026, 7, 1, 9, 0), "day", berlin(2026, 7, 1, 8), "night", berlin(2026, 7, 1, 20),
     berlin(2026, 7, 1, 9)),
]


@pytest.mark.parametrize("case", AT, ids=[c[0] for c in AT])
def test_the_profile_in_force_and_the_next(case):
    _, now, *expected = case
    at = config().profiles.at(now)
    assert [at.profile.name, at.since, at.next_profile, at.next_at, at.drain_deadline] == expected


def test_same_instant_the_later_entry_wins():
    section = {"profiles": {"a": {}, "b": {}},
               "schedule": [{"at": "0 8 * * *", "profile": "a"}, {"at": "0 8 * * *", "profile": "b"}]}
    at = TenantsConfig.of(with_profiles(section)).profiles.at(berlin(2026, 1, 1, 12))
    assert at.profile.name == "b" and at.next_profile == "b"


def test_no_schedule_no_profile():
    at = TenantsConfig.of(with_profiles({"profiles": {"a": {}}})).profiles.at(0.0)
    assert at == (None, None, None, None, None)


def test_the_memo_never_answers_outside_its_span():
    profiles = config().profiles
    instants = (berlin(2026, 12, 4, 15), berlin(2026, 12, 4, 21), berlin(2026, 12, 4, 15),
                berlin(2026, 12, 7, 8))
    for now in instants:
        assert profiles.at(now) == profiles._at(now)


def test_profile_view_for_the_api():
    shown = profile_view(config().profiles, berlin(2026, 12, 4, 15))
    assert shown["current"] == "day" and shown["next"] == "night"
    assert shown["since"] == "2026-12-04T08:00:00+01:00"
    assert shown["next_at"] == "2026-12-04T20:00:00+01:00"
    assert shown["drain_deadline_epoch"] == berlin(2026, 12, 4, 9)
    assert profile_view(None, 0.0) is None


# ---------------------------------------------------------------------------------- tenant overrides
def test_overrides_replace_a_tenants_terms_while_in_force():
    base = config()
    day = effective_tenants(base, berlin(2026, 12, 4, 15))
    night = effective_tenants(base, berlin(2026, 12, 4, 23))
    assert day.of_tenant("teaching") == TenantQuota(8000, 12000)
    assert day.of_tenant("research") == TenantQuota(8000)
    assert night is base and night.of_tenant("teaching") == TenantQuota(4000)
    assert effective_tenants(None, 0.0) is None
    plain = TenantsConfig.of({"tenants": {"a": {"quota": 1}}})
    assert effective_tenants(plain, 0.0) is plain


# -------------------------------------------------------------------------------------------- draining
def host(host_id: str, agent_id: str = "a", isolation: str = "capped", used: int = 0) -> ShareHostView:
    return ShareHostView(host_id, agent_id, Isolation(isolation), 0, used, 0)


GROUPS = {"a": AgentGroup({}, 2), "b": AgentGroup({}, 0), "c": None,
          "d": AgentGroup({}, None, frozenset({Isolation.MPS}))}

# (name, hosts, draining)
DRAIN = [
    ("under the cap", [host("h1"), host("h2")], set()),
    ("over the cap: the least used drain", [host("h1", used=500), host("h2", used=250), host("h3", used=750)],
     {"h2"}),
    ("ties: the larger id drains", [host("h1"), host("h2"), host("h3")], {"h3"}),
    ("cap 0: all drain", [host("h1", "b", used=900), host("h2", "b")], {"h1", "h2"}),
    ("no group: nothing drains", [host("h1", "c"), host("h2", "c"), host("h3", "c")], set()),
    ("a level no longer offered drains", [host("h1", "d", "mps"), host("h2", "d", "capped")], {"h2"}),
]


@pytest.mark.parametrize(("name", "hosts", "expected"), DRAIN, ids=[c[0] for c in DRAIN])
def test_which_hosts_drain(name, hosts, expected):
    assert draining(hosts, GROUPS.get) == expected


hosts_lists = st.lists(
    st.builds(host, st.integers(0, 30).map(lambda n: f"h{n}"), st.sampled_from("abcd"),
              st.sampled_from(["capped", "mps", "shared"]), st.integers(0, 1000)),
    max_size=20, unique_by=lambda h: h.host_id)
caps = st.none() | st.integers(0, 4)


@settings(max_examples=200, deadline=None)
@given(hosts_lists, caps, st.frozensets(st.sampled_from([Isolation.CAPPED, Isolation.MPS, Isolation.SHARED])))
def test_draining_keeps_at_most_the_cap_and_only_offered_levels(hosts, cap, levels):
    group = AgentGroup({}, cap, levels)
    drained = draining(hosts, lambda agent: group)
    for agent in "abcd":
        on = [h for h in hosts if h.agent_id == agent]
        kept = [h for h in on if h.host_id not in drained]
        offered = [h for h in on if h.isolation in levels]
        assert all(h.isolation in levels for h in kept)
        assert len(kept) == (len(offered) if cap is None else min(cap, len(offered)))
        # the kept hosts hold at least as much as any drained host of an offered level
        if kept:
            assert min(h.used for h in kept) >= max(
                (h.used for h in offered if h.host_id in drained), default=0)


def test_overdue_only_after_the_deadline_and_only_on_draining_hosts():
    profile = Profile("night")
    tasks = {"t1": "h1", "t2": "h2"}
    assert overdue(tasks, frozenset({"h1"}), profile, 100.0, 99.9) == []
    killed = overdue(tasks, frozenset({"h1"}), profile, 100.0, 100.0)
    assert [task for task, _ in killed] == ["t1"]
    assert "profile switch to 'night'" in killed[0][1] and "drain deadline" in killed[0][1]
    assert overdue(tasks, frozenset({"h1"}), profile, None, 1e12) == []
    assert overdue(tasks, frozenset({"h1"}), None, 100.0, 1e12) == []


# ------------------------------------------------------------------------------ switching (Hypothesis)
def entry_strategy() -> st.SearchStrategy[dict]:
    minute = st.sampled_from(["0", "30", "*/20", "15,45"])
    hour = st.sampled_from(["*", "8", "20", "6-9", "*/6"])
    weekday = st.sampled_from(["*", "1-5", "0,6", "sat"])
    return st.builds(lambda m, h, w, p: {"at": f"{m} {h} * * {w}", "profile": p},
                     minute, hour, weekday, st.sampled_from(["a", "b", "c"]))


@settings(max_examples=150, deadline=None)
@given(st.lists(entry_strategy(), min_size=1, max_size=4),
       st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
       st.integers(1_750_000_000, 1_850_000_000).map(float))
def test_switching_follows_the_last_firing_and_holds_until_the_next(entries, zone, now):
    section = {"time_zone": zone, "profiles": {"a": {}, "b": {}, "c": {}}, "schedule": entries}
    profiles = TenantsConfig.of(with_profiles(section)).profiles
    at = profiles.at(now)
    firings = [(entry.cron.last_at_or_before(now, profiles.zone), position)
               for position, entry in enumerate(profiles.schedule)]
    last = max((f for f in firings if f[0] is not None), default=None)
    if last is None:
        assert at.profile is None
    else:
        assert at.since == last[0] <= now
        assert at.profile.name == entries[last[1]]["profile"]
    if at.next_at is not None:
        assert at.next_at > now
        before, there = profiles._at(at.next_at - 1), profiles._at(at.next_at)   # (the memo bypassed)
        assert before.profile == at.profile and before.since == at.since    # nothing switches before it
        assert there.profile.name == at.next_profile and there.since == at.next_at   # it switches there


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1_750_000_000, 1_850_000_000).map(float), min_size=1, max_size=8))
def test_the_memo_answers_as_a_fresh_look_whatever_the_order_of_instants(instants):
    profiles = config().profiles
    for now in instants:
        assert profiles.at(now) == profiles._at(now)
