"""The parsers of the scheduler's settings (`core.config`): each takes a variable's raw string and
returns its typed value or raises ValueError with the reason; also the value types they return and how
the launcher's URL is derived. Pure, standard library only."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Literal, cast, get_args

from mesos_gpu.core import wire

Containerizer = Literal["mesos", "docker"]
# restricted: CPU-only tasks never go to GPU agents (Marathon's default `gpu_scheduling_behavior`);
# fallback: only when no agent without GPUs fits them now; unrestricted: any agent that fits.
CpuTasksOnGpuAgents = Literal["restricted", "fallback", "unrestricted"]
ShareHostPlacement = Literal["pack", "spread"]  # placement.policy.SHARE_HOST_PLACEMENTS
# placement.policy.STRATEGIES: mesos-gpu's own placement, or a published policy it is compared with.
PlacementStrategy = Literal["default", "random", "first-fit", "best-fit", "worst-fit", "tetris",
                            "gpu-packing", "fgd"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["text", "json"]  # core.logformat: plain lines, or one JSON object per line

# Mesos turns failover_timeout into a Duration (int64 nanoseconds); longer values are rejected.
MAX_DURATION_SECONDS = (2**63 - 1) / 1e9
MAX_UPLOAD_MB = 1 << 20  # 1 TiB: far beyond any sensible limit, but keeps byte counts in range


# --- parsers: each takes the raw string and returns the value or raises ValueError ------------------

_SPACE = re.compile(r"\s")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?)$")


def _any(raw: str) -> str:
    return raw


def _no_space(raw: str) -> str:
    value = raw.strip()
    if _SPACE.search(value):
        raise ValueError("must not contain whitespace")
    return value


def _framework_name(raw: str) -> str:
    value = raw.strip()
    if "/" in value or _SPACE.search(value) or value in {".", ".."} or not value.isprintable():
        raise ValueError("must be one ZooKeeper node name: no '/', no whitespace, not '.' or '..'")
    return value


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not _HOST.match(host) or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not host:port")
    return host, int(port)


def _port(raw: str) -> int:
    value = raw.strip()
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise ValueError("must be a port number from 0 to 65535")
    return int(value)


def zookeeper_url(url: str) -> wire.ZooKeeperUrl:
    """`wire.parse_zk_url` plus what the scheduler needs of it: no credentials, a path below the root
    (`zk://h1:2181,h2:2181/mesos-gpu`), host names as `_HOST` allows; ValueError otherwise."""
    parsed = wire.parse_zk_url(url)
    if parsed.auth is not None:
        raise ValueError("credentials in the ZooKeeper URL are not supported")
    if parsed.path == "/":
        raise ValueError("needs a path such as /mesos-gpu")
    for item in parsed.hosts.split(","):
        _host_port(item)
    return parsed


def _zk_url(raw: str) -> str:
    value = raw.strip()
    zookeeper_url(value)
    return value


def _master(raw: str) -> str:
    value = raw.strip()
    if value.startswith("zk://"):
        zookeeper_url(value)
        return value
    if "://" in value or "," in value:
        raise ValueError("must be host:port or zk://host:port[,host:port]/path")
    _host_port(value)
    return value


def _role(raw: str) -> str:
    """Mesos role rules (`src/common/roles.cpp`): `*`, or '/'-separated names without whitespace,
    never '.', '..', or a name starting with '-'."""
    value = raw.strip()
    if value == "*":
        return value
    parts = value.split("/")
    if _SPACE.search(value) or any(p in {"", ".", ".."} or p.startswith("-") or p == "*" for p in parts):
        raise ValueError("is not a valid Mesos role ('*' or names like 'gpu' or 'team/gpu')")
    return value


def _principal(raw: str) -> str:
    value = _no_space(raw)
    if ":" in value:
        raise ValueError("must not contain ':' (it is sent with HTTP Basic authentication)")
    return value


def _number(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("must be a number of seconds") from None
    if not math.isfinite(value):
        raise ValueError("must be a finite number of seconds")
    return value


def _positive_seconds(raw: str) -> float:
    value = _number(raw)
    if value <= 0:
        raise ValueError("must be more than 0 seconds")
    return value


def _non_negative_seconds(raw: str) -> float:
    value = _number(raw)
    if value < 0:
        raise ValueError("must be 0 (never) or more seconds")
    return value


def _session_seconds(raw: str) -> float:
    value = _number(raw)
    if not 1 <= value <= 600:
        raise ValueError("must be from 1 to 600 seconds")
    return value


def _linger_seconds(raw: str) -> float:
    value = _number(raw)
    if value < 0:
        raise ValueError("must be 0 (give the GPU back at once) or more seconds")
    return value


def _command(raw: str) -> str:
    value = raw.strip()
    if not value.isprintable():
        raise ValueError("must be one line of printable text (a shell command)")
    return value


def _megabytes(raw: str) -> int:
    value = raw.strip()
    if not value.isdigit() or not 1 <= int(value) <= MAX_UPLOAD_MB:
        raise ValueError(f"must be a whole number of megabytes from 1 to {MAX_UPLOAD_MB}")
    return int(value)


def _path(raw: str) -> str:
    value = raw.strip()
    if not value.startswith("/") or "\0" in value:
        raise ValueError("must be an absolute path")
    return value


def _failover_timeout(raw: str) -> float:
    value = _positive_seconds(raw)
    if value > MAX_DURATION_SECONDS:
        raise ValueError(f"must be at most {MAX_DURATION_SECONDS:.0f} seconds (a Mesos Duration)")
    return value


def _instances(raw: str) -> int:
    value = raw.strip()
    if not value.isdigit() or int(value) < 1:
        raise ValueError("must be a whole number, 1 or more")
    return int(value)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("must be true or false")


def _tokens(raw: str) -> tuple[str, ...]:
    tokens = tuple(t.strip() for t in raw.split(",") if t.strip())
    if any(_SPACE.search(t) for t in tokens):
        raise ValueError("tokens are separated by commas and must not contain whitespace")
    return tokens


def _choice(raw: str, allowed: tuple[str, ...], normalise: Callable[[str], str]) -> str:
    value = normalise(raw.strip())
    if value not in allowed:
        raise ValueError(f"must be one of {', '.join(allowed)}")
    return value


def _log_level(raw: str) -> LogLevel:
    value = raw.strip().upper()
    return cast(LogLevel, _choice("WARNING" if value == "WARN" else value, get_args(LogLevel), str.upper))


def _log_format(raw: str) -> LogFormat:
    return cast(LogFormat, _choice(raw, get_args(LogFormat), str.lower))


def _containerizer(raw: str) -> Containerizer:
    return cast(Containerizer, _choice(raw, get_args(Containerizer), str.lower))


def _cpu_policy(raw: str) -> CpuTasksOnGpuAgents:
    return cast(CpuTasksOnGpuAgents, _choice(raw, get_args(CpuTasksOnGpuAgents), str.lower))


def _share_hosts(raw: str) -> ShareHostPlacement:
    return cast(ShareHostPlacement, _choice(raw, get_args(ShareHostPlacement), str.lower))


def _strategy(raw: str) -> PlacementStrategy:
    return cast(PlacementStrategy, _choice(raw, get_args(PlacementStrategy), str.lower))


def _http_url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in {"http", "https"} or not rest or _SPACE.search(value):
        raise ValueError("must be an http:// or https:// URL")
    return value


_WILDCARD_HOSTS = {"0.0.0.0", "::", "[::]", ""}


def _derived_launcher_base(advertised: str | None, api_host: str, api_port: int) -> str | None:
    """`http://<host>:<api port>` from the advertised host (or a specific API bind address); None when
    neither names a reachable host or the port is not known yet (0)."""
    host = advertised or (api_host if api_host not in _WILDCARD_HOSTS else None)
    if host is None or api_port == 0:
        return None
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{api_port}"
