"""The GPU parts of a job document (pure): `gpus` (whole GPUs, a share, an elastic share), `gpu_memory`,
the job's `isolation` and its `uris`; `validation` mixes them into the job checker.

Rules (docs/sharing.md tells users):

- `gpus`: an integer 0..64 (whole GPUs, exclusive), a share: a multiple of 0.01 in (0, 1) ("0.25"), or an
  elastic share `{"min": m, "max": M}` with 0 < m <= M <= 1, both multiples of 0.01. A multiple of 0.01
  is the number that two decimals write (0.07 is 7/100 exactly as JSON parses it); 0.125 is not one.
- `gpu_memory` (MB, 1..1 TiB): only next to a share's `gpus`.
- `isolation`: omitted -> "exclusive" when no member asks for a share, "capped" when one does. Explicit
  "exclusive" with a share -> an error at each share's `gpus`; a share level (mig, mps, capped, shared)
  when no member asks for a share -> an error at `isolation`; "mig" with an elastic share -> an error at
  that `gpus` (MIG sizes are fixed).
- `uris`: a list of URL strings or objects {"value", "extract", "executable", "output_file", "cache"} (Mesos
  CommandInfo.URI); only what every fetcher here fetches (the local agent's, the share host's): http://,
  https://, file:/// URLs and absolute agent paths (another scheme is refused by name), saved under
  `output_file`, a plain file name in the sandbox (no '/', not '.' or '..').
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mesos_gpu.core import joblimits as limits
from mesos_gpu.core.checker import DocumentChecker, Path, is_json_number
from mesos_gpu.core.model import Isolation, UriSpec

__all__ = ["GpuAsk", "ShareChecker", "hundredths"]


def hundredths(value: object) -> int | None:
    """n when `value` is the JSON number n/100 exactly as two decimals write it (0.25 -> 25), else None."""
    if not is_json_number(value) or abs(value) > limits.SHARES_PER_GPU:
        return None  # (a huge int would not even convert to a float)
    number = float(value)
    count = round(number * limits.SHARES_PER_GPU)
    return count if count / limits.SHARES_PER_GPU == number else None


@dataclass(frozen=True)
class GpuAsk:
    """A member's parsed `gpus`: whole GPUs, or a share (`gpus` its max; `gpus_min` set when elastic)."""

    path: Path  # of the `gpus` field, for errors that involve other fields
    gpus: float
    gpus_min: float | None = None

    @property
    def is_share(self) -> bool:
        return self.gpus_min is not None or 0 < self.gpus < 1


class ShareChecker(DocumentChecker):
    """The checks of `gpus`, `gpu_memory`, `isolation` and `uris`; remembers every member's GpuAsk so
    that `isolation` can be checked against them once the whole document has been read."""

    def __init__(self) -> None:
        super().__init__()
        self.asks: list[GpuAsk] = []
        self.asks_complete = True  # False once some member's gpus could not be read

    # -- gpus ---------------------------------------------------------------------------------------------

    def gpus(self, path: Path, value: object) -> GpuAsk | None:
        """A member's `gpus` at `path` (recorded for the isolation check)."""
        ask = self._elastic(path, value) if isinstance(value, dict) else self._fixed(path, value)
        if ask is None:
            self.asks_complete = False
        else:
            self.asks.append(ask)
        return ask

    def _fixed(self, path: Path, value: object) -> GpuAsk | None:
        if is_json_number(value) and 0 < value < 1:
            count = hundredths(value)
            if count is None:
                self.error(path, limits.SHARE_STEP_MESSAGE)
                return None
            return GpuAsk(path, count / limits.SHARES_PER_GPU)
        low, high, _ = limits.GPUS_RANGE
        if is_json_number(value) and low <= value <= high and float(value).is_integer():
            return GpuAsk(path, int(value))
        self.error(path, limits.GPUS_MESSAGE)
        return None

    def _elastic(self, path: Path, value: object) -> GpuAsk | None:
        raw = self.mapping(path, value, limits.ELASTIC_FIELDS)
        if raw is None:
            return None
        before = len(self.errors)
        bounds: dict[str, float] = {}
        for key in limits.ELASTIC_FIELDS:
            if key not in raw:
                self.error((*path, key), "required")
                continue
            count = hundredths(raw[key])
            if count is None or not 0 < count <= limits.SHARES_PER_GPU:
                self.error((*path, key), limits.ELASTIC_BOUND_MESSAGE)
                continue
            bounds[key] = count / limits.SHARES_PER_GPU
        if len(bounds) == 2 and bounds["min"] > bounds["max"]:
            self.error((*path, "min"), limits.ELASTIC_ORDER_MESSAGE)
        if len(self.errors) > before:
            return None
        return GpuAsk(path, bounds["max"], bounds["min"])

    def gpu_memory(self, path: Path, doc: Mapping[str, Any], ask: GpuAsk | None) -> int | None:
        """`gpu_memory` of the member whose fields are `doc` (None when absent or wrong)."""
        if "gpu_memory" not in doc:
            return None
        memory = self.number((*path, "gpu_memory"), doc["gpu_memory"], limits.GPU_MEMORY_RANGE)
        if memory is not None and ask is not None and not ask.is_share:
            self.error((*path, "gpu_memory"), limits.GPU_MEMORY_SHARES_ONLY)
            return None
        return None if memory is None else int(memory)

    # -- isolation ------------------------------------------------------------------------------------------

    def isolation(self, doc: Mapping[str, Any]) -> Isolation | None:
        """The job's isolation level, resolved and checked against every member's `gpus` read so far."""
        shares = [ask for ask in self.asks if ask.is_share]
        if "isolation" not in doc:
            return Isolation.CAPPED if shares else Isolation.EXCLUSIVE
        level: Isolation | None = self.choice(
            ("isolation",), doc["isolation"], Isolation, limits.ISOLATION_MESSAGE
        )
        if level is Isolation.EXCLUSIVE:
            for ask in shares:
                self.error(ask.path, limits.EXCLUSIVE_SHARE_MESSAGE)
        elif level is not None and not shares and self.asks_complete:
            self.error(("isolation",), limits.SHARE_LEVEL_MESSAGE.format(level=level.value))
        if level is Isolation.MIG:
            for ask in shares:
                if ask.gpus_min is not None:
                    self.error(ask.path, limits.MIG_ELASTIC_MESSAGE)
        return level

    # -- uris -----------------------------------------------------------------------------------------------

    def uris(self, path: Path, value: object) -> tuple[UriSpec, ...] | None:
        if not isinstance(value, list) or len(value) > limits.MAX_URIS:
            self.error(path, limits.URIS_MESSAGE)
            return None
        out = [self.uri((*path, index), item) for index, item in enumerate(value)]
        return tuple(uri for uri in out if uri is not None) if None not in out else None

    def uri(self, path: Path, value: object) -> UriSpec | None:
        if isinstance(value, str):
            url = self.url(path, value)
            return None if url is None else UriSpec(url)
        if not isinstance(value, dict):
            self.error(path, limits.URI_ITEM_MESSAGE)
            return None
        raw = self.mapping(path, value, limits.URI_FIELDS)
        if raw is None:
            return None
        before = len(self.errors)
        url = None
        if "value" not in raw:
            self.error((*path, "value"), "required")
        else:
            url = self.url((*path, "value"), raw["value"])
        extract = self.boolean((*path, "extract"), raw.get("extract", True))
        executable = self.boolean((*path, "executable"), raw.get("executable", False))
        cache = self.boolean((*path, "cache"), raw.get("cache", False))
        output_file = None
        if raw.get("output_file") is not None:
            output_file = self.output_file((*path, "output_file"), raw["output_file"])
        if len(self.errors) > before or url is None or extract is None or executable is None or cache is None:
            return None
        return UriSpec(url, extract=extract, executable=executable, output_file=output_file, cache=cache)

    def url(self, path: Path, value: object) -> str | None:
        """A URI's value: what every fetcher here fetches; another scheme is named in its error."""
        if isinstance(value, str) and len(value) <= limits.MAX_URI_LENGTH and not limits.URI.fullmatch(value):
            other = limits.ANY_SCHEME.fullmatch(value)
            if other is not None and other.group(1).lower() != "file":
                self.error(path, limits.URI_SCHEME_MESSAGE.format(scheme=other.group(1)))
                return None
        return self.text(path, value, limits.URI, limits.MAX_URI_LENGTH, limits.URI_MESSAGE)

    def output_file(self, path: Path, value: object) -> str | None:
        """A file name in the sandbox: both fetchers refuse a '/' in it (no subdirectory, no escape)."""
        name = self.text(
            path, value, limits.OUTPUT_FILE, limits.MAX_OUTPUT_FILE_LENGTH, limits.OUTPUT_FILE_MESSAGE
        )
        if name in limits.NOT_OUTPUT_FILES:
            self.error(path, limits.OUTPUT_FILE_MESSAGE)
            return None
        return name
