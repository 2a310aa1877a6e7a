"""Time-based GPU profiles (pure): the `profiles` section of the tenants document, validated with JSON
paths, and which profile is in force at an instant.

    "profiles": {
      "time_zone": "Europe/Berlin",
      "drain_seconds": 3600,
      "profiles": {
        "day":   {"groups": [{"selector": {"gpu_model": "A100"}, "share_gpus": 4,
                              "isolation": ["capped", "mps"], "share_sizes": [0.25, 0.5]}],
                  "tenants": {"teaching": {"quota": 8, "limit": 12}}},
        "night": {"groups": [{"selector": {}, "share_gpus": 0}], "drain_seconds": 600}
      },
      "schedule": [{"at": "0 8 * * 1-5", "profile": "day"}, {"at": "0 20 * * *", "profile": "night"}]
    }

- A profile's `groups` are agent groups, each chosen by a `selector` (agent attributes that must all be
  equal, as Mesos reports them as text; `{}`: every agent). An agent belongs to the FIRST group whose
  selector it matches; an agent in no group has no profile limit (as without profiles). Per group:
  `share_gpus`, the GPUs of each agent kept for share hosts and the most that may hold them (null: no cap,
  nothing kept; `mesos_gpu.core.placement.sharekeep`); `isolation`, the share levels offered (default:
  every one); `share_sizes`, the fractions offered (null: any).
- `tenants`: per-tenant terms (as in the tenants document's `tenants`) that replace that tenant's terms
  while the profile is in force (`mesos_gpu.core.profilesapply.effective_tenants`).
- `schedule`: 5-field cron expressions (`mesos_gpu.core.profilescron`) in `time_zone` (default "UTC");
  at each firing, the named profile comes into force. In force at an instant is the entry that fired
  last at or before it (two at the same instant: the later entry in the list). None has fired (within
  `profilescron.SEARCH_DAYS`): no profile is in force.
- `drain_seconds` (a profile's own, else the section's; null: none): after a switch INTO a profile,
  share tasks still running on share hosts that leave the share set are killed this long after the
  switch, with a note in their state. Until then (and without a deadline) they run to their end.

`ProfilesConfig.parse(document, path, errors, parse_terms)` appends every problem (`FieldError`, JSON
Pointer) to `errors`; `parse_terms` reads a tenant's terms (the tenants module's, so this module does not
import it). `to_dict()` gives the canonical section back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mesos_gpu.core import joblimits as limits
from mesos_gpu.core.errors import FieldError, json_pointer
from mesos_gpu.core.model import Isolation
from mesos_gpu.core.profilescron import Cron, CronError

if TYPE_CHECKING:
    from mesos_gpu.core.tenancy import TenantQuota

__all__ = [
    "MAX_DRAIN_SECONDS", "MAX_PROFILES", "SHARE_LEVELS", "AgentGroup", "Profile", "ProfileAt",
    "ProfilesConfig", "ScheduleEntry",
]

MAX_PROFILES = 64
MAX_GROUPS = 64
MAX_SCHEDULE = 256
MAX_SHARE_GPUS = 64
MAX_DRAIN_SECONDS = 7 * 24 * 3600
SHARE_LEVELS = (Isolation.MIG, Isolation.MPS, Isolation.CAPPED, Isolation.SHARED)

Path = tuple[str | int, ...]
TermsParser = Callable[[object, Path, list[FieldError]], "TenantQuota | None"]

_SECTION_KEYS = ("time_zone", "drain_seconds", "profiles", "schedule")
_PROFILE_KEYS = ("groups", "tenants", "drain_seconds")
_GROUP_KEYS = ("selector", "share_gpus", "isolation", "share_sizes")
_ENTRY_KEYS = ("at", "profile")


@dataclass(frozen=True)
class AgentGroup:
    """Agents whose attributes include `selector`, and what their GPUs offer shares under a profile.
    `share_gpus` None: no cap (and nothing kept for share hosts); `share_sizes` (thousandths) empty: any
    size."""

    selector: Mapping[str, str] = field(default_factory=dict)
    share_gpus: int | None = None
    isolation: frozenset[Isolation] = frozenset(SHARE_LEVELS)
    share_sizes: frozenset[int] = frozenset()

    def matches(self, attributes: Mapping[str, str]) -> bool:
        return all(attributes.get(key) == value for key, value in self.selector.items())

    def offers(self, isolation: Isolation, gpus_min: int, gpus_max: int) -> bool:
        """Whether a share of level `isolation` and size in [gpus_min, gpus_max] (thousandths) may go to
        this group's GPUs: its level is offered, and one offered size (any, when none are listed) lies in
        the range. (An elastic share placed here may still be granted a size between the listed ones.)"""
        if isolation not in self.isolation:
            return False
        return not self.share_sizes or any(gpus_min <= size <= gpus_max for size in self.share_sizes)

    def to_dict(self) -> dict[str, Any]:
        return {"selector": dict(sorted(self.selector.items())), "share_gpus": self.share_gpus,
                "isolation": [level.value for level in SHARE_LEVELS if level in self.isolation],
                "share_sizes": [size / 1000 for size in sorted(self.share_sizes)] or None}


@dataclass(frozen=True)
class Profile:
    """A named profile: its agent groups, tenant terms it overrides, and its own drain deadline
    (None: the section's; see `ProfilesConfig.drain_of`)."""

    name: str
    groups: tuple[AgentGroup, ...] = ()
    tenants: Mapping[str, TenantQuota] = field(default_factory=dict)
    drain_seconds: float | None = None
    drain_set: bool = False     # whether the profile states `drain_seconds` itself (null included)

    def group_of(self, attributes: Mapping[str, str]) -> AgentGroup | None:
        """The first group whose selector `attributes` match (None: no limit for that agent)."""
        for group in self.groups:
            if group.matches(attributes):
                return group
        return None

    def to_dict(self) -> dict[str, Any]:
        tenants = {name: self.tenants[name].to_dict() for name in sorted(self.tenants)}
        out: dict[str, Any] = {"groups": [group.to_dict() for group in self.groups], "tenants": tenants}
        if self.drain_set:
            out["drain_seconds"] = _number_json(self.drain_seconds)
        return out


@dataclass(frozen=True)
class ScheduleEntry:
    cron: Cron
    profile: str


class ProfileAt(NamedTuple):
    """What is in force at an instant: the profile (None: none) since when (None: no switch found), the
    next switch (instant and profile; None: none found) and the drain deadline of the current one."""

    profile: Profile | None
    since: float | None
    next_at: float | None
    next_profile: str | None
    drain_deadline: float | None


@dataclass(frozen=True)
class ProfilesConfig:
    """The `profiles` section (see the module docstring)."""

    time_zone: str = "UTC"
    drain_seconds: float | None = None
    profiles: Mapping[str, Profile] = field(default_factory=dict)
    schedule: tuple[ScheduleEntry, ...] = ()
    # The last answer of `at`: it holds from its `since` until its next switch (None: none within the
    # search window, `profilescron.SEARCH_DAYS`, of the instant it was asked for).
    _memo: dict[str, ProfileAt] = field(default_factory=dict, compare=False, repr=False)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def drain_of(self, profile: Profile) -> float | None:
        return profile.drain_seconds if profile.drain_set else self.drain_seconds

    def at(self, now: float) -> ProfileAt:
        """The profile in force at `now`, since when, and the next switch (to a different profile or not:
        the next firing of any entry; the entry last in the list wins a tie)."""
        memo = self._memo.get("at")
        if memo is not None and (memo.since is None or memo.since <= now) \
                and (memo.next_at is None or now < memo.next_at):
            return memo
        found = self._at(now)
        self._memo["at"] = found
        return found

    def _at(self, now: float) -> ProfileAt:
        zone = self.zone
        best: tuple[float, int] | None = None
        upcoming: tuple[float, int] | None = None
        for position, entry in enumerate(self.schedule):
            last = entry.cron.last_at_or_before(now, zone)
            if last is not None and (best is None or (last, position) >= best):
                best = (last, position)
            following = entry.cron.next_after(now, zone)
            if following is not None and (upcoming is None or (following, -position) < upcoming):
                upcoming = (following, -position)
        profile = since = deadline = None
        if best is not None:
            since = best[0]
            profile = self.profiles[self.schedule[best[1]].profile]
            drain = self.drain_of(profile)
            deadline = None if drain is None else since + drain
        next_at = next_profile = None
        if upcoming is not None:
            next_at, next_profile = upcoming[0], self.schedule[-upcoming[1]].profile
        return ProfileAt(profile, since, next_at, next_profile, deadline)

    def to_dict(self) -> dict[str, Any]:
        return {"time_zone": self.time_zone, "drain_seconds": _number_json(self.drain_seconds),
                "profiles": {name: self.profiles[name].to_dict() for name in sorted(self.profiles)},
                "schedule": [{"at": entry.cron.text, "profile": entry.profile} for entry in self.schedule]}

    @classmethod
    def parse(cls, document: object, path: Path, errors: list[FieldError],
              parse_terms: TermsParser) -> ProfilesConfig | None:
        """The section at `path` of a document; every problem appended to `errors` (None when any)."""
        before = len(errors)
        if not isinstance(document, dict):
            _error(errors, path, "must be an object (" + ", ".join(_SECTION_KEYS) + ")")
            return None
        _unknown(document, _SECTION_KEYS, path, errors)
        zone = document.get("time_zone", "UTC")
        if not isinstance(zone, str) or not _zone_ok(zone):
            _error(errors, (*path, "time_zone"), "must be an IANA time zone name (e.g. \"Europe/Berlin\")")
        drain = _drain(document.get("drain_seconds"), (*path, "drain_seconds"), errors)
        profiles = _profiles(document.get("profiles", {}), (*path, "profiles"), errors, parse_terms)
        schedule = _schedule(document.get("schedule", []), (*path, "schedule"), profiles, errors)
        if len(errors) > before:
            return None
        return cls(str(zone), drain, profiles, schedule)


# ------------------------------------------------------------------------------------------ parsing
def _number_json(value: float | None) -> int | float | None:
    return None if value is None else int(value) if float(value).is_integer() else value


def _error(errors: list[FieldError], path: Path, message: str) -> None:
    errors.append(FieldError(json_pointer(path), message))


def _unknown(doc: Mapping[str, Any], known: tuple[str, ...], path: Path, errors: list[FieldError]) -> None:
    for key in doc:
        if key not in known:
            _error(errors, (*path, str(key)), f"unknown field (known: {', '.join(known)})")


def _zone_ok(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _drain(value: object, path: Path, errors: list[FieldError]) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 <= value <= MAX_DRAIN_SECONDS:
        _error(errors, path, f"must be null or a number of seconds from 0 to {MAX_DRAIN_SECONDS}")
        return None
    return float(value)


def _profiles(listed: object, path: Path, errors: list[FieldError],
              parse_terms: TermsParser) -> dict[str, Profile]:
    if not isinstance(listed, dict):
        _error(errors, path, "must be an object: profile name -> its groups and tenants")
        return {}
    if len(listed) > MAX_PROFILES:
        _error(errors, path, f"lists {len(listed)} profiles, at most {MAX_PROFILES} allowed")
        return {}
    out: dict[str, Profile] = {}
    for name, body in listed.items():
        where = (*path, name)
        if not isinstance(name, str) or not limits.DNS_LABEL.fullmatch(name):
            _error(errors, where, f"profile name: {limits.DNS_LABEL_MESSAGE}")
            continue
        if not isinstance(body, dict):
            _error(errors, where, "must be an object (" + ", ".join(_PROFILE_KEYS) + ")")
            continue
        _unknown(body, _PROFILE_KEYS, where, errors)
        groups = _groups(body.get("groups", []), (*where, "groups"), errors)
        tenants = _tenants(body.get("tenants", {}), (*where, "tenants"), errors, parse_terms)
        drain = _drain(body.get("drain_seconds"), (*where, "drain_seconds"), errors)
        out[name] = Profile(name, groups, tenants, drain, "drain_seconds" in body)
    return out


def _tenants(listed: object, path: Path, errors: list[FieldError],
             parse_terms: TermsParser) -> dict[str, TenantQuota]:
    if not isinstance(listed, dict):
        _error(errors, path, "must be an object: tenant name -> its terms while the profile is in force")
        return {}
    out: dict[str, TenantQuota] = {}
    for name, terms in listed.items():
        where = (*path, name)
        if not isinstance(name, str) or not limits.DNS_LABEL.fullmatch(name):
            _error(errors, where, f"tenant name: {limits.DNS_LABEL_MESSAGE}")
            continue
        quota = parse_terms(terms, where, errors)
        if quota is not None:
            out[name] = quota
    return out


def _groups(listed: object, path: Path, errors: list[FieldError]) -> tuple[AgentGroup, ...]:
    if not isinstance(listed, list):
        _error(errors, path, "must be a list of agent groups")
        return ()
    if len(listed) > MAX_GROUPS:
        _error(errors, path, f"lists {len(listed)} groups, at most {MAX_GROUPS} allowed")
        return ()
    groups = []
    for index, body in enumerate(listed):
        group = _group(body, (*path, index), errors)
        if group is not None:
            groups.append(group)
    return tuple(groups)


def _group(body: object, path: Path, errors: list[FieldError]) -> AgentGroup | None:
    if not isinstance(body, dict):
        _error(errors, path, "must be an object (" + ", ".join(_GROUP_KEYS) + ")")
        return None
    before = len(errors)
    _unknown(body, _GROUP_KEYS, path, errors)
    selector = body.get("selector", {})
    if not isinstance(selector, dict) or not all(isinstance(v, str) and v for v in selector.values()):
        _error(errors, (*path, "selector"), "must be an object: agent attribute -> its value (text)")
        selector = {}
    cap = body.get("share_gpus")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int)
                            or not 0 <= cap <= MAX_SHARE_GPUS):
        _error(errors, (*path, "share_gpus"),
               f"must be null or a whole number of GPUs from 0 to {MAX_SHARE_GPUS}")
    levels = body.get("isolation", [level.value for level in SHARE_LEVELS])
    names = [level.value for level in SHARE_LEVELS]
    if not isinstance(levels, list) or not all(isinstance(v, str) and v in names for v in levels):
        _error(errors, (*path, "isolation"), f"must be a list of share levels ({', '.join(names)})")
        levels = []
    sizes = body.get("share_sizes")
    milli_sizes: set[int] = set()
    if sizes is not None:
        if not isinstance(sizes, list) or not sizes:
            _error(errors, (*path, "share_sizes"), "must be null or a non-empty list of GPU fractions")
        else:
            for index, size in enumerate(sizes):
                hundredths = _hundredths(size)
                if hundredths is None:
                    _error(errors, (*path, "share_sizes", index),
                           "must be a GPU share: a multiple of 0.01 above 0 and below 1")
                else:
                    milli_sizes.add(hundredths * 10)
    if len(errors) > before:
        return None
    return AgentGroup(dict(selector), cap, frozenset(Isolation(v) for v in levels), frozenset(milli_sizes))


def _hundredths(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    hundredths = round(value * 100)
    return hundredths if hundredths / 100 == value and 0 < hundredths < 100 else None


def _schedule(listed: object, path: Path, profiles: Mapping[str, Profile],
              errors: list[FieldError]) -> tuple[ScheduleEntry, ...]:
    if not isinstance(listed, list):
        _error(errors, path, "must be a list of {\"at\": \"<cron>\", \"profile\": \"<name>\"}")
        return ()
    if len(listed) > MAX_SCHEDULE:
        _error(errors, path, f"lists {len(listed)} entries, at most {MAX_SCHEDULE} allowed")
        return ()
    entries = []
    for index, body in enumerate(listed):
        where = (*path, index)
        if not isinstance(body, dict):
            _error(errors, where, "must be an object (at, profile)")
            continue
        _unknown(body, _ENTRY_KEYS, where, errors)
        cron = None
        try:
            cron = Cron.parse(body.get("at"))  # type: ignore[arg-type]  # parse checks the type
        except CronError as exc:
            _error(errors, (*where, "at"), f"not a cron schedule: {exc}")
        name = body.get("profile")
        if not isinstance(name, str) or name not in profiles:
            known = ", ".join(sorted(profiles)) or "none listed"
            _error(errors, (*where, "profile"), f"must name a profile of the section (known: {known})")
            continue
        if cron is not None:
            entries.append(ScheduleEntry(cron, name))
    return tuple(entries)
