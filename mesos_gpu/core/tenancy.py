"""Tenants and their GPU quotas (pure): the configuration document, validated with JSON paths.

The document (a JSON file named by `MESOS_GPU_TENANTS_FILE`, or `PUT /v1/tenants`)::

    {
      "tenants": {
        "team-a": {"quota": 12, "limit": 16, "may_borrow": true, "weight": 2},
        "team-b": {"quota": 8, "may_borrow": false}
      },
      "default": {"limit": 4, "may_borrow": true, "weight": 1},
      "unassigned_gpus": 0
    }

- `quota`: GPUs guaranteed to the tenant (whole GPUs and GPU shares both count in GPUs: a 0.25 share is
  0.25); a multiple of 0.01, 0 or more. `limit`: the most it may use in all, guarantee and borrowing
  together (absent or null: no limit of its own); never below `quota`. `may_borrow`: whether it may run
  beyond its quota on GPUs others are guaranteed but leave idle (default true). `weight`: its share of
  what is borrowable when several tenants borrow (default 1; a weight-2 tenant gets twice as much).
- `default`: what a tenant that is not listed gets (its own copy each); it has no `quota` (an unlisted
  tenant is not known in advance, so no GPUs can be kept for it): it runs on borrowed GPUs only, up to
  its `limit`. Absent: `{"limit": null, "may_borrow": true, "weight": 1}`.
- `unassigned_gpus`: GPUs of the cluster that no tenant is guaranteed, borrowable by every tenant that
  may borrow (default 0: only idle guarantees are borrowable).
- `profiles` (optional): time-based GPU profiles and their schedule (`mesos_gpu.core.profiles`).

`TenantsConfig.of(document)` validates (raises `ValidationError` listing every problem with its JSON
Pointer) and `to_dict()` gives the canonical document back (`of(c.to_dict()) == c`). With no config at
all (None), the scheduler applies no quota: every job is offered to placement, as before tenants existed.
Amounts are kept as thousandths of a GPU (int) so sums stay exact; `gpus_text` writes them back.
Admission (who may be placed now, and why not) is `mesos_gpu.core.tenancyadmit`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mesos_gpu.core import joblimits as limits
from mesos_gpu.core.errors import FieldError, ValidationError, json_pointer
from mesos_gpu.core.profiles import ProfilesConfig

__all__ = ["MAX_GPUS", "MAX_TENANTS", "TenantQuota", "TenantsConfig", "gpus_text", "milli_gpus"]

MAX_TENANTS = 1000
"""The most tenants one document may list (the record is kept in one ZooKeeper node)."""

MAX_GPUS = 1_000_000
"""The largest quota, limit or pool accepted, in GPUs."""

MAX_WEIGHT = 1000.0

_TENANT_KEYS = ("quota", "limit", "may_borrow", "weight")
_DEFAULT_KEYS = ("limit", "may_borrow", "weight")
_TOP_KEYS = ("tenants", "default", "unassigned_gpus", "profiles")


def milli_gpus(gpus: float) -> int:
    """GPUs as thousandths (0.25 -> 250), rounded to the nearest."""
    return round(gpus * 1000)


def gpus_text(milli: int) -> str:
    """Thousandths of a GPU in words' digits: 12000 -> "12", 250 -> "0.25", 1500 -> "1.5"."""
    return f"{milli / 1000:.3f}".rstrip("0").rstrip(".")


def _gpus_json(milli: int) -> int | float:
    return milli // 1000 if milli % 1000 == 0 else milli / 1000


@dataclass(frozen=True)
class TenantQuota:
    """One tenant's terms, in thousandths of a GPU. `limit` None: no limit of its own."""

    quota: int = 0
    limit: int | None = None
    may_borrow: bool = True
    weight: float = 1.0

    @property
    def ceiling(self) -> int | None:
        """The most it may use in all: its limit, or its quota when it may not borrow (None: no bound)."""
        if not self.may_borrow:
            return self.quota if self.limit is None else min(self.quota, self.limit)
        return self.limit

    def to_dict(self, with_quota: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"quota": _gpus_json(self.quota)} if with_quota else {}
        out["limit"] = None if self.limit is None else _gpus_json(self.limit)
        out["may_borrow"] = self.may_borrow
        out["weight"] = int(self.weight) if float(self.weight).is_integer() else self.weight
        return out


@dataclass(frozen=True)
class TenantsConfig:
    """The tenants, what an unlisted tenant gets, and the unassigned GPUs (see the module docstring)."""

    tenants: Mapping[str, TenantQuota] = field(default_factory=dict)
    default: TenantQuota = field(default_factory=TenantQuota)
    unassigned: int = 0  # thousandths of a GPU
    # Time-based GPU profiles (`mesos_gpu.core.profiles`; None: none, the document has no "profiles").
    profiles: ProfilesConfig | None = None

    def of_tenant(self, name: str) -> TenantQuota:
        """`name`'s terms: its own when listed, else the default's."""
        return self.tenants.get(name, self.default)

    @property
    def guaranteed(self) -> int:
        """Thousandths of a GPU guaranteed to the listed tenants in all."""
        return sum(quota.quota for quota in self.tenants.values())

    def to_dict(self) -> dict[str, Any]:
        """The canonical document (every default written out, tenants sorted by name)."""
        out: dict[str, Any] = {
            "tenants": {name: self.tenants[name].to_dict() for name in sorted(self.tenants)},
            "default": self.default.to_dict(with_quota=False),
            "unassigned_gpus": _gpus_json(self.unassigned),
        }
        if self.profiles is not None:
            out["profiles"] = self.profiles.to_dict()
        return out

    @classmethod
    def of(cls, document: object) -> TenantsConfig:
        """Validate a tenants document; `ValidationError` lists every problem with its JSON Pointer."""
        errors: list[FieldError] = []
        config = _parse(document, errors)
        if errors or config is None:
            raise ValidationError(errors or [FieldError("", "invalid tenants document")],
                                  "the tenants document is not valid")
        return config


# ------------------------------------------------------------------------------------------ parsing
def _error(errors: list[FieldError], path: tuple[str | int, ...], message: str) -> None:
    errors.append(FieldError(json_pointer(path), message))


def _unknown(doc: Mapping[str, Any], known: tuple[str, ...], path: tuple[str | int, ...],
             errors: list[FieldError]) -> None:
    for key in doc:
        if key not in known:
            _error(errors, (*path, str(key)), f"unknown field (known: {', '.join(known)})")


def _parse(document: object, errors: list[FieldError]) -> TenantsConfig | None:
    if not isinstance(document, dict):
        _error(errors, (), "must be a JSON object with \"tenants\"")
        return None
    _unknown(document, _TOP_KEYS, (), errors)
    tenants: dict[str, TenantQuota] = {}
    listed = document.get("tenants", {})
    if not isinstance(listed, dict):
        _error(errors, ("tenants",), "must be an object: tenant name -> its quota")
        listed = {}
    if len(listed) > MAX_TENANTS:
        _error(errors, ("tenants",), f"lists {len(listed)} tenants, at most {MAX_TENANTS} allowed")
        listed = {}
    for name, terms in listed.items():
        path = ("tenants", name)
        if not isinstance(name, str) or not limits.DNS_LABEL.fullmatch(name):
            _error(errors, path, f"tenant name: {limits.DNS_LABEL_MESSAGE}")
            continue
        quota = _terms(terms, path, _TENANT_KEYS, errors)
        if quota is not None:
            tenants[name] = quota
    default = TenantQuota()
    if "default" in document:
        parsed = _terms(document["default"], ("default",), _DEFAULT_KEYS, errors)
        default = parsed if parsed is not None else default
    unassigned = _amount(document.get("unassigned_gpus", 0), ("unassigned_gpus",), errors)
    profiles = None
    if "profiles" in document:
        profiles = ProfilesConfig.parse(document["profiles"], ("profiles",), errors, _profile_terms)
    return TenantsConfig(tenants, default, 0 if unassigned is None else unassigned, profiles)


def _profile_terms(terms: object, path: tuple[str | int, ...],
                   errors: list[FieldError]) -> TenantQuota | None:
    """A tenant's terms while a profile is in force (as in `tenants`)."""
    return _terms(terms, path, _TENANT_KEYS, errors)


def _terms(terms: object, path: tuple[str | int, ...], known: tuple[str, ...],
           errors: list[FieldError]) -> TenantQuota | None:
    if not isinstance(terms, dict):
        _error(errors, path, "must be an object (" + ", ".join(known) + ")")
        return None
    before = len(errors)
    _unknown(terms, known, path, errors)
    quota = _amount(terms.get("quota", 0), (*path, "quota"), errors) if "quota" in known else 0
    limit = terms.get("limit")
    limit_milli = None if limit is None else _amount(limit, (*path, "limit"), errors)
    may_borrow = terms.get("may_borrow", True)
    if not isinstance(may_borrow, bool):
        _error(errors, (*path, "may_borrow"), "must be true or false")
    weight = terms.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) \
            or not 0 < weight <= MAX_WEIGHT:
        _error(errors, (*path, "weight"), f"must be a number above 0, at most {MAX_WEIGHT:g}")
    if quota is not None and limit_milli is not None and limit_milli < quota:
        _error(errors, (*path, "limit"),
               f"must not be below the quota ({gpus_text(limit_milli)} < {gpus_text(quota)} GPUs)")
    if len(errors) > before or quota is None:
        return None
    return TenantQuota(quota, limit_milli, bool(may_borrow), float(weight))


def _amount(value: object, path: tuple[str | int, ...], errors: list[FieldError]) -> int | None:
    """GPUs (a number, 0 or more, a multiple of 0.01) as thousandths; None (and an error) otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _error(errors, path, "must be a number of GPUs")
        return None
    if not 0 <= value <= MAX_GPUS:
        _error(errors, path, f"must be from 0 to {MAX_GPUS} GPUs")
        return None
    hundredths = round(value * 100)
    if hundredths / 100 != value:  # exactly the number two decimals write (as job shares are checked)
        _error(errors, path, "must be a multiple of 0.01 GPU (shares count in hundredths of a GPU)")
        return None
    return hundredths * 10
