"""The GPU profile in force as `GET /v1/cluster` shows it (`profile`), from the scheduler's tenants book.

The profiles section lives in the tenants document (`mesos_gpu.core.profiles`); which profile is in force,
since when, the next switch and the drain deadline follow from it and the clock
(`mesos_gpu.core.profilesapply.profile_view`). A scheduler that offers `profile_view(now)` itself (the
leader, which knows the share hosts draining) is asked first; otherwise the book's document is read
(`draining_share_hosts` then empty). None: no profiles configured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mesos_gpu.core.profilesapply import profile_view

__all__ = ["cluster_profile"]


def cluster_profile(service: object, clock: Callable[[], float] = time.time) -> dict[str, Any] | None:
    """The `profile` member of `GET /v1/cluster` (see the module docstring)."""
    now = clock()
    own = getattr(service, "profile_view", None)
    if callable(own):
        shown = own(now)
        if shown is not None:
            return dict(shown)
    book = getattr(service, "tenancy", None)
    current = getattr(book, "current", None)
    config = current() if callable(current) else None
    profiles = getattr(config, "profiles", None)
    return profile_view(profiles, now)
