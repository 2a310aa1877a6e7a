"""The store's contract: versioned job records, idempotent submits, the framework id, leader election.

Two implementations keep exactly these semantics: `memory.MemoryStore` (tests, single process) and
`zk.ZooKeeperStore` (kazoo, production: its client in `zkclient`, its election in `zkelection`). One
contract test suite runs against both.

Errors: all subclasses of `StoreError` (a `mesos_gpu.core.errors.MesosGpuError`), each also a subclass of
the project-wide error the API maps to an HTTP status::

    StoreError                                     (MesosGpuError)
    +-- NotFound          404 (NotFoundError)      the job does not exist
    +-- Conflict          409 (ConflictError)      the job id (or idempotency key) is taken, or...
    |   +-- VersionConflict   (VersionConflictError) ...its version is not the expected one (CAS lost)
    +-- InvalidRecord     400 (also ValueError)    a bad job id / idempotency key, data not JSON-ready or
    |   |                                          not valid Unicode text (a lone surrogate: no UTF-8),
    |   +-- TooLarge      413 (TooLargeError)      or encoded data over MAX_RECORD_BYTES (ZooKeeper 1 MB)
    +-- StoreUnavailable  503 (UnavailableError)   the backend did not answer within the retry policy;
    |                                              a write that raises it may or may not have happened:
    |                                              re-read before trying again
    +-- NotLeader   307/503 (NotLeaderError)       a fenced write of a deposed leader: nothing stored

Example::

    record = store.create("job-1", {"name": "mnist", "state": "PENDING"})   # version 0
    record = store.compare_and_set("job-1", {**record.data, "state": "RUNNING"}, record.version)
    store.compare_and_set("job-1", {...}, 0)       # raises Conflict: the version is now 1
"""

from __future__ import annotations

import builtins
import enum
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from mesos_gpu.core.errors import (
    ConflictError,
    MesosGpuError,
    NotFoundError,
    NotLeaderError,
    TooLargeError,
    UnavailableError,
    VersionConflictError,
    json_pointer,
)
from mesos_gpu.core.joblimits import unicode_problem, unicode_problems

T = TypeVar("T")

JsonDict = dict[str, Any]
"""A JSON object: str keys; values str, int, float, bool, None, lists and dicts of those."""

MAX_RECORD_BYTES = 1_000_000
"""The largest encoded job record (UTF-8 JSON) accepted by every store.

ZooKeeper refuses packets over `jute.maxbuffer` (1 MiB by default) and drops the connection when it
gets one; the margin under 1 MiB leaves room for the path, the idempotency node and the packet header.
"""

MAX_ID_LENGTH = 200
"""Longest job id accepted (a ZooKeeper node name; also used in URLs and Mesos task ids)."""


class StoreError(MesosGpuError):
    """Base class of every error raised by a store. It names no `code` or `http_status` of its own:
    each subclass answers with those of the project error it also is (NotFound: "not_found", 404)."""


class NotFound(StoreError, NotFoundError):  # noqa: N818 - the store's name for NotFoundError
    """The job (or node) does not exist."""


class Conflict(StoreError, ConflictError):  # noqa: N818 - the store's name for ConflictError
    """The job id already exists (or another write won a race); re-read and decide again."""


class VersionConflict(Conflict, VersionConflictError):  # noqa: N818 - the store's VersionConflictError
    """A compare-and-set or delete expected version `expected`; the record is at `actual` (None if
    unknown). Re-read, re-apply the change, write again."""

    def __init__(self, key: str, expected: int | None, actual: int | None) -> None:
        VersionConflictError.__init__(self, key, expected, actual)


class InvalidRecord(StoreError, ValueError):  # noqa: N818 - an invalid record, like ValueError
    """A job id or idempotency key that cannot be stored, or data that is not a JSON object."""

    code = "invalid"
    http_status = 400


class TooLarge(InvalidRecord, TooLargeError):  # noqa: N818 - the store's TooLargeError
    """The encoded record is larger than MAX_RECORD_BYTES."""

    code = "too_large"
    http_status = 413


class StoreUnavailable(StoreError, UnavailableError):  # noqa: N818 - the store's UnavailableError
    """The backend did not answer within the retry policy (e.g. ZooKeeper unreachable)."""


class NotLeader(StoreError, NotLeaderError):  # noqa: N818 - the store's NotLeaderError
    """A write of a fenced store (`FrameworkStore.fence`) whose election does not lead (any more):
    nothing was written (a create retried after a lost answer checks what the lost attempt stored).
    `leader_url` is None: the caller asks the election who leads."""

    def __init__(self, message: str = "") -> None:
        NotLeaderError.__init__(self, None, message or "not the leader (any more): the write was refused")


@dataclass(frozen=True)
class Versioned(Generic[T]):
    """A stored value with its version.

    `id` is the job id; `version` is 0 when created and grows by exactly 1 at every successful
    compare-and-set (for ZooKeeper it is the znode's data version). `data` is a fresh copy: mutating
    it never changes what is stored.
    """

    id: str
    data: T
    version: int


CreateResult = Versioned[JsonDict] | StoreError
"""One item's answer from `JobStore.create_many`: its record at version 0, or why it was not created."""


@dataclass(frozen=True)
class Submitted:
    """The result of `JobStore.submit`.

    `created` is False when an earlier submit with the same idempotency key had already created the
    job: then `record.id` is that earlier job's id (it may differ from the id asked for) and `record`
    its current state. The API answers 201 when created, 200 with the existing job otherwise.
    """

    record: Versioned[JsonDict]
    created: bool


class ConnectionState(enum.Enum):
    """The store's connection to its backend, as seen by `FrameworkStore.add_connection_listener`.

    SUSPENDED: the connection dropped; the session may still be alive but nothing is certain, so a
    leader must stop acting now. LOST: the session expired (ephemeral nodes, and any leadership, are
    gone) or the store was closed. CONNECTED: connected again (a new session after LOST).
    """

    CONNECTED = "CONNECTED"
    SUSPENDED = "SUSPENDED"
    LOST = "LOST"


class JobStore(Protocol):
    """Versioned job records with compare-and-set, and idempotent submits.

    Every method is thread-safe. Every write is durable once it returns (ZooKeeper: acknowledged by
    a quorum), so "persist before acknowledge" (DESIGN section 4) holds by calling these first.
    Job ids: 1 to MAX_ID_LENGTH characters, no "/", not "." or "..", no control characters, and
    not starting with "zookeeper".
    """

    def create(self, job_id: str, data: JsonDict) -> Versioned[JsonDict]:
        """Store a new job at version 0. Raises Conflict if `job_id` exists, TooLarge, InvalidRecord."""
        ...

    def create_many(self, items: Sequence[tuple[str, JsonDict]]) -> builtins.list[CreateResult]:
        """`create` for each `(job_id, data)`, in as few writes as the backend allows (ZooKeeper: one
        transaction for all): a group commit. Each item gets its own answer, in order: its record at
        version 0, or the StoreError `create` would have raised for it alone (Conflict, TooLarge,
        InvalidRecord, StoreUnavailable). Items that fail do not stop the others, whatever one raises
        (an unforeseen error is that item's InvalidRecord)."""
        ...

    def submit(self, job_id: str, data: JsonDict, idempotency_key: str | None) -> Submitted:
        """Create a job at most once per idempotency key.

        Atomically (one ZooKeeper multi-op transaction) records `idempotency_key -> job_id` and
        creates the job. If the key is already recorded, nothing is written and the job it points to
        is returned with `created=False`: a client that retries a submit after a dropped response
        gets the first job, never a second one, even when both requests race. With
        `idempotency_key=None` this is `create` (`created=True`). Deleting the job frees its key.
        Raises Conflict if `job_id` exists (and the key is new), TooLarge, InvalidRecord; NotFound
        only if the job recorded for the key is being deleted at this very moment.
        """
        ...

    def job_for_idempotency_key(self, idempotency_key: str) -> str | None:
        """The id of the job created with this key, or None."""
        ...

    def get(self, job_id: str) -> Versioned[JsonDict]:
        """The job's current record. Raises NotFound."""
        ...

    def ids(self) -> list[str]:
        """All job ids, sorted (cheap: no record is read)."""
        ...

    def list(self) -> list[Versioned[JsonDict]]:
        """All job records, sorted by id. Not a snapshot: each record is read at some moment during
        the call; a job deleted meanwhile is left out."""
        ...

    def compare_and_set(self, job_id: str, data: JsonDict, expected_version: int) -> Versioned[JsonDict]:
        """Replace the job's data if its version is still `expected_version`; returns the new record
        (version + 1). Raises NotFound, VersionConflict (someone else wrote first: re-read and
        retry), TooLarge, InvalidRecord."""
        ...

    def compare_and_set_many(self, items: Sequence[tuple[str, JsonDict, int]]) -> builtins.list[int]:
        """`compare_and_set` of each `(job_id, data, expected_version)` (each job once) in as few writes as
        the backend allows (ZooKeeper: one transaction per packet's worth of records, each all or nothing;
        in order);
        returns each job's new version, in order. Raises what `compare_and_set` would for the first item
        refused: the items before it, in earlier writes, may be stored (the caller stops acting, as a
        leader whose write was refused does), the rest of its write is not. (One offer cycle persists
        thousands of jobs: one write each would take seconds.)"""
        ...

    def delete(self, job_id: str, expected_version: int | None) -> None:
        """Remove the job (and free its idempotency key) if its version is `expected_version`;
        None deletes whatever the version. Raises NotFound, VersionConflict."""
        ...


class FrameworkIdStore(Protocol):
    """The Mesos framework id, kept across scheduler restarts and failovers."""

    def get_framework_id(self) -> str | None:
        """The stored framework id, or None before the first registration."""
        ...

    def set_framework_id(self, value: str) -> None:
        """Store (create or overwrite) the framework id."""
        ...

    def clear_framework_id(self) -> None:
        """Forget the framework id (e.g. Mesos says the framework was removed); no error if absent."""
        ...


class LeaderElection(Protocol):
    """Leader election among scheduler processes: at most one leader at a time.

    Usage::

        election = store.leader_election()
        election.campaign("10.0.0.5:8080", on_elected=start_driver,
                          on_lost=lambda reason: driver.stop(failover=True))
        ...
        election.leader_identifier()   # "10.0.0.5:8080" -> where a standby's API redirects (307)
        election.resign()

    Callbacks run on one dedicated thread, in order, never concurrently with each other; an
    exception in a callback is logged and ignored. Every `on_elected` is followed by exactly one
    `on_lost(reason)` when leadership ends for any reason: the connection is SUSPENDED (the leader
    must stop acting at once, it cannot know whether its session survives), the session is LOST,
    the store is closed, or `resign()` (reason "resigned"). `is_leader` turns False before
    `on_lost` is queued. After an involuntary loss the contender keeps campaigning and may be
    elected again (a new `on_elected`) once connected; call `resign()` to stop.
    """

    def campaign(
        self, identifier: str, on_elected: Callable[[], None], on_lost: Callable[[str], None]
    ) -> None:
        """Join the election (returns at once). `identifier` is published for `leader_identifier`
        (use the API's `host:port`). Raises RuntimeError if already campaigning."""
        ...

    def resign(self) -> None:
        """Leave the election (and leadership, firing `on_lost("resigned")`). Returns once this
        contender's entry is removed and `on_lost` has run, or after 10 s while the backend is
        unreachable (the removal then goes on in the background). Idempotent; `campaign` may be
        called again afterwards."""
        ...

    @property
    def is_leader(self) -> bool:
        """True between `on_elected` and the loss of leadership (set before the callbacks run)."""
        ...

    def verify_leadership(self) -> bool:
        """Ask the backend, now, whether this contender leads (False when it cannot tell): the check a
        woken leader makes before it subscribes to Mesos again. Blocks for at most a few seconds."""
        ...

    def leader_identifier(self) -> str | None:
        """The identifier of the current leader (the first contender), or None if there is none."""
        ...

    def contenders(self) -> list[str]:
        """Identifiers of all contenders, the leader first."""
        ...


class FrameworkStore(JobStore, FrameworkIdStore, Protocol):
    """Everything the scheduler and the API keep: jobs, the framework id, leader election."""

    def leader_election(self) -> LeaderElection:
        """A new contender for this framework's leadership, bound to this store's session."""
        ...

    def add_connection_listener(self, listener: Callable[[ConnectionState], None]) -> None:
        """Call `listener(state)` on every connection change. It runs on the connection thread:
        it must return quickly and not call the store."""
        ...

    def fence(self, election: LeaderElection) -> None:
        """Make every later write of this store (jobs and the framework id; reads never) conditional on
        `election` leading: a write takes the election's term when it starts (ZooKeeper: the path of
        its own election node, `leader_node`) and commits only if that term still holds (ZooKeeper:
        a `check` of that node in the same transaction, so a write carried out after the session
        expired, e.g. by a paused process, fails). A refused write raises NotLeader (in
        `create_many`: each item is NotLeader) and stores nothing. A create or submit retried after a
        lost answer and then refused is answered from what the lost attempt left: created when it
        stored the job, NotLeader when not, StoreUnavailable when that cannot be told. Without a
        fence, writes are unconditional (tools, tests). `election` must come from this store's
        `leader_election()`."""
        ...

    def close(self) -> None:
        """End the session: leadership is lost (on_lost fires), ephemeral state is gone."""
        ...


# -- helpers shared by the implementations (pure) -------------------------------------------------


def check_job_id(job_id: str) -> str:
    """Return `job_id` if it is a valid job id (see JobStore), else raise InvalidRecord."""
    if not isinstance(job_id, str) or not job_id:
        raise InvalidRecord(f"job id must be a non-empty string, got {job_id!r}")
    _check_text("job id", job_id)
    if len(job_id) > MAX_ID_LENGTH:
        raise InvalidRecord(f"job id is {len(job_id)} characters long, at most {MAX_ID_LENGTH} allowed")
    if job_id in (".", "..") or job_id.startswith("zookeeper"):
        raise InvalidRecord(f"job id {job_id!r} is reserved")
    if "/" in job_id or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in job_id):
        raise InvalidRecord(f"job id {job_id!r} must not contain '/' or control characters")
    return job_id


def check_idempotency_key(key: str) -> str:
    """Return `key` if it is a usable idempotency key (1 to 255 characters), else raise InvalidRecord."""
    if not isinstance(key, str) or not key or len(key) > 255:
        raise InvalidRecord(f"idempotency key must be a string of 1 to 255 characters, got {key!r:.80}")
    _check_text("idempotency key", key)
    return key


def _check_text(what: str, text: str) -> None:
    """InvalidRecord when `text` cannot be encoded as UTF-8 (a lone surrogate)."""
    problem = unicode_problem(text)
    if problem is not None:
        raise InvalidRecord(f"{what} must be valid Unicode text: {problem}")


def idempotency_key_name(key: str) -> str:
    """A node-name-safe, fixed-length name for an idempotency key (its SHA-256, hex)."""
    return hashlib.sha256(check_idempotency_key(key).encode("utf-8")).hexdigest()


def encode_record(data: JsonDict) -> bytes:
    """Stable UTF-8 JSON (sorted keys, compact). Raises InvalidRecord / TooLarge, and nothing else:
    data that is not JSON-ready (a set, NaN, a cycle, nesting too deep) or not valid Unicode text (a
    lone surrogate: UTF-8 cannot encode it) is an InvalidRecord naming the problem."""
    if not isinstance(data, dict):
        raise InvalidRecord(f"job data must be a JSON object (dict), got {type(data).__name__}")
    try:
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        encoded = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        path, problem = next(unicode_problems(data), ((), f"must be valid Unicode text ({exc.reason})"))
        raise InvalidRecord(f"job data at {json_pointer(path) or '/'}: {problem}") from None
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidRecord(f"job data is not JSON-ready: {exc}") from exc
    if len(encoded) > MAX_RECORD_BYTES:
        raise TooLarge(
            f"job record is {len(encoded)} bytes encoded, more than the {MAX_RECORD_BYTES} allowed "
            "(ZooKeeper's 1 MB limit); keep large payloads out of the job (e.g. in the image or a URI)"
        )
    return encoded


def item_error(job_id: str, exc: Exception) -> StoreError:
    """One `create_many` item's answer when creating it raised `exc`: `exc` itself when a StoreError,
    else an InvalidRecord naming it: an item that fails in an unforeseen way fails alone."""
    if isinstance(exc, StoreError):
        return exc
    text = str(exc).encode("utf-8", "backslashreplace").decode("utf-8")
    error = InvalidRecord(f"job {job_id!r} could not be stored: {type(exc).__name__}: {text}")
    error.__cause__ = exc
    return error


def decode_record(raw: bytes) -> JsonDict:
    """The inverse of encode_record (a fresh dict every call)."""
    value = json.loads(raw.decode("utf-8"))
    if not isinstance(value, dict):
        raise InvalidRecord(f"stored record is not a JSON object: {raw[:80]!r}")
    return value
