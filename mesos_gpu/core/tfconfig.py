"""TF_CONFIG in Kubeflow TFJob's format, the ZooKeeper paths of a TF job, and the launcher's contract.

Pure: standard library only, no I/O. The launcher (inside each task) and the scheduler (which builds
the task's command and environment) both use it, so the two sides cannot drift apart.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: TensorFlow task types a job may have, in the order TFJob's JSON shows them (Go sorts map keys).
ROLES = ("chief", "evaluator", "ps", "worker")

#: Roles TFJob leaves out of TF_CONFIG's `cluster` (genClusterSpec: "evaluator is not part of training
#: cluster"); they still take part in the rendezvous, and get TF_CONFIG with their own `task`.
OUTSIDE_TRAINING_CLUSTER = frozenset({"evaluator"})

#: TFJob always sets this; TensorFlow >= 1.4 ignores it, but scripts written for TFJob may read it.
ENVIRONMENT = "cloud"

# The launcher's contract: environment variables the scheduler sets on each TF task.
ENV_ZK = "MESOS_GPU_ZK"  # "zk://host:port[,host:port]/chroot" (the framework's chroot)
ENV_JOB_ID = "MESOS_GPU_JOB_ID"
ENV_ROLE = "MESOS_GPU_TF_ROLE"
ENV_INDEX = "MESOS_GPU_TF_INDEX"
ENV_MEMBERS = "MESOS_GPU_TF_MEMBERS"  # role counts, e.g. "chief:1,ps:1,worker:2"
ENV_HOST = "MESOS_GPU_TF_HOST"  # the agent's hostname from the offer
ENV_PORT = "MESOS_GPU_TF_PORT"  # the first port of the task's `ports` resource
ENV_TIMEOUT = "MESOS_GPU_TF_RENDEZVOUS_TIMEOUT"  # seconds
ENV_TF_CONFIG = "TF_CONFIG"

#: File name of the launcher bundle in the sandbox (a zip application; Mesos does not extract `.pyz`).
BUNDLE_NAME = "launcher.pyz"
DEFAULT_RENDEZVOUS_TIMEOUT = 300.0


class ClusterError(ValueError):
    """A member name, role count, address set or ZooKeeper URL that does not describe a valid job."""


@dataclass(frozen=True, order=True)
class Member:
    """One TF task of a job: its role (`worker`) and index (`1`); its node name is `worker-1`."""

    role: str
    index: int

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ClusterError(f"unknown TensorFlow role {self.role!r}; expected one of {', '.join(ROLES)}")
        if isinstance(self.index, bool) or not isinstance(self.index, int) or self.index < 0:
            raise ClusterError(f"member index must be an integer >= 0, got {self.index!r}")

    @property
    def name(self) -> str:
        return f"{self.role}-{self.index}"

    def __str__(self) -> str:
        return self.name


def parse_member_name(name: str) -> Member:
    """`"worker-1"` -> `Member("worker", 1)`; a `ClusterError` for anything else."""
    role, sep, index = name.rpartition("-")
    if not sep or not index.isdigit() or not index.isascii() or (len(index) > 1 and index[0] == "0"):
        raise ClusterError(f"not a member node name (<role>-<index>): {name!r}")
    return Member(role, int(index))


def expected_members(counts: Mapping[str, int]) -> list[Member]:
    """Every member of a job with `counts` instances per role, in TFJob order (role, then index)."""
    members: list[Member] = []
    for role, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ClusterError(f"instances of {role!r} must be an integer >= 0, got {count!r}")
        members.extend(Member(role, index) for index in range(count))
    return sorted(members, key=_tfjob_order)


def _tfjob_order(member: Member) -> tuple[int, int]:
    return ROLES.index(member.role), member.index


def is_distributed(counts: Mapping[str, int]) -> bool:
    """TFJob's rule: a job with exactly one task in total is local training and gets no TF_CONFIG."""
    return sum(counts.values()) != 1


def parse_role_counts(text: str) -> dict[str, int]:
    """`"chief:1,ps:1,worker:2"` -> `{"chief": 1, "ps": 1, "worker": 2}` (the MESOS_GPU_TF_MEMBERS form)."""
    counts: dict[str, int] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        role, sep, count = item.partition(":")
        role = role.strip()
        if not sep or not count.strip().isdigit():
            raise ClusterError(f"role counts must look like 'chief:1,worker:2', got {text!r}")
        if role not in ROLES:
            raise ClusterError(f"unknown TensorFlow role {role!r} in {text!r}")
        if role in counts:
            raise ClusterError(f"role {role!r} appears twice in {text!r}")
        counts[role] = int(count)
    if not any(counts.values()):
        raise ClusterError(f"role counts name no member: {text!r}")
    return counts


def format_role_counts(counts: Mapping[str, int]) -> str:
    """The inverse of `parse_role_counts`, roles in TFJob order, empty roles left out."""
    return ",".join(f"{role}:{counts[role]}" for role in ROLES if counts.get(role))


def cluster_spec(addresses: Mapping[Member, str]) -> dict[str, list[str]]:
    """The `cluster` part of TF_CONFIG: role -> addresses ordered by index; empty roles omitted.

    Each role's indices must be exactly 0..n-1 (a gap means a member is missing).
    """
    by_role: dict[str, dict[int, str]] = {}
    for member, address in addresses.items():
        _check_address(member, address)
        by_role.setdefault(member.role, {})[member.index] = address
    spec: dict[str, list[str]] = {}
    for role in ROLES:
        indexed = by_role.get(role)
        if not indexed:
            continue
        if sorted(indexed) != list(range(len(indexed))):
            gaps = sorted(set(range(max(indexed) + 1)) - set(indexed))
            raise ClusterError(f"{role} indices are not contiguous: missing {', '.join(map(str, gaps))}")
        spec[role] = [indexed[index] for index in range(len(indexed))]
    return spec


def _check_address(member: Member, address: str) -> None:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f"address of {member} must be host:port, got {address!r}")


def training_cluster(addresses: Mapping[Member, str]) -> dict[str, list[str]]:
    """The `cluster` of TF_CONFIG: `cluster_spec` without the evaluator, as TFJob's genClusterSpec
    writes it (the evaluator is not part of the training cluster: it runs no server, so a
    ParameterServerStrategy chief that had it in its cluster would wait for it forever)."""
    return cluster_spec({m: a for m, a in addresses.items() if m.role not in OUTSIDE_TRAINING_CLUSTER})


def tf_config(addresses: Mapping[Member, str], member: Member) -> dict[str, object] | None:
    """TF_CONFIG for `member` as TFJob writes it, or None when the job has a single task. The evaluator
    gets the training cluster (without itself) and its own task, as under TFJob."""
    if len(addresses) == 1:
        return None
    if member not in addresses:
        raise ClusterError(f"{member} is not a member of the cluster ({', '.join(map(str, addresses))})")
    return {
        "cluster": training_cluster(addresses),
        "task": {"type": member.role, "index": member.index},
        "environment": ENVIRONMENT,
    }


def tf_config_json(addresses: Mapping[Member, str], member: Member) -> str | None:
    """TF_CONFIG as the exact string TFJob sets (compact JSON, keys in TFJob's order), or None."""
    config = tf_config(addresses, member)
    return None if config is None else json.dumps(config, separators=(",", ":"))


def missing_members(expected: Iterable[Member], present: Iterable[Member]) -> list[Member]:
    """Members of `expected` not in `present`, in TFJob order."""
    here = set(present)
    return sorted((m for m in expected if m not in here), key=_tfjob_order)


def timeout_message(timeout: float, missing: Iterable[Member]) -> str:
    """`rendezvous timed out after 60 s: missing worker-1, ps-0`."""
    names = ", ".join(m.name for m in missing) or "none (the cluster changed while it completed)"
    return f"rendezvous timed out after {timeout:g} s: missing {names}"


# ZooKeeper layout (DESIGN section 6): /<chroot>/tf/<job-id>/members/<role>-<index> and .../cluster.


def _check_job_id(job_id: str) -> None:
    if not job_id or "/" in job_id or job_id in (".", "..") or job_id.strip() != job_id:
        raise ClusterError(f"job id must be a non-empty ZooKeeper node name without '/', got {job_id!r}")


def _normalise_chroot(chroot: str) -> str:
    chroot = "/" + chroot.strip("/") if chroot.strip("/") else ""
    if "//" in chroot:
        raise ClusterError(f"chroot has an empty path segment: {chroot!r}")
    return chroot


def tf_root_path(chroot: str = "") -> str:
    """`/<chroot>/tf`: every TF job's nodes live below it."""
    return f"{_normalise_chroot(chroot)}/tf"


def job_path(job_id: str, chroot: str = "") -> str:
    """`/<chroot>/tf/<job-id>`: delete it (recursively) when the job is finished."""
    _check_job_id(job_id)
    return f"{tf_root_path(chroot)}/{job_id}"


def members_path(job_id: str, chroot: str = "") -> str:
    return f"{job_path(job_id, chroot)}/members"


def member_path(job_id: str, member: Member, chroot: str = "") -> str:
    """The ephemeral node of one running member; its data is `host:port` (UTF-8)."""
    return f"{members_path(job_id, chroot)}/{member.name}"


def cluster_path(job_id: str, chroot: str = "") -> str:
    """The job's TF cluster once complete (see `cluster_record`)."""
    return f"{job_path(job_id, chroot)}/cluster"


def parse_zk_url(url: str) -> tuple[str, str]:
    """`zk://h1:2181,h2:2181/mesos-gpu/fw` (scheme optional) -> (`h1:2181,h2:2181`, `/mesos-gpu/fw`).

    Deliberately not `mesos_gpu.core.wire.parse_zk_url`: the launcher bundle carries this module and
    nothing else of mesos_gpu (the `launcher-bundle` import contract), so it keeps its own lenient
    parse of the URL the scheduler itself built; the scheduler checks that URL with the wire module's.
    """
    rest = url.strip()
    for scheme in ("zk://", "zoo://"):
        if rest.startswith(scheme):
            rest = rest[len(scheme) :]
            break
    hosts, sep, chroot = rest.partition("/")
    if not hosts or any(not h.rpartition(":")[2].isdigit() for h in hosts.split(",")):
        raise ClusterError(f"ZooKeeper URL must look like zk://host:port[,host:port][/chroot], got {url!r}")
    return hosts, _normalise_chroot(chroot) if sep else ""


def cluster_record(addresses: Mapping[Member, str], owners: Mapping[Member, int]) -> bytes:
    """Data of the `cluster` node: the TF cluster plus, per member, its address and the ZooKeeper
    session that owned its node (so a member can tell that a completed barrier included *it*)."""
    members = {
        m.name: {"address": addresses[m], "session": owners[m]} for m in sorted(addresses, key=_tfjob_order)
    }
    record = {"cluster": cluster_spec(addresses), "members": members}
    return json.dumps(record, separators=(",", ":"), sort_keys=False).encode("utf-8")


def parse_cluster_record(data: bytes) -> tuple[dict[Member, str], dict[Member, int]]:
    """The inverse of `cluster_record`: (addresses, sessions); a `ClusterError` if it is not one."""
    try:
        record = json.loads(data.decode("utf-8"))
        members = record["members"]
        addresses = {parse_member_name(name): str(v["address"]) for name, v in members.items()}
        owners = {parse_member_name(name): int(v["session"]) for name, v in members.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ClusterError(f"not a cluster record: {data[:200]!r} ({exc})") from exc
    return addresses, owners


def launcher_environment(
    zk_url: str,
    job_id: str,
    member: Member,
    counts: Mapping[str, int],
    *,
    host: str,
    port: int,
    timeout: float = DEFAULT_RENDEZVOUS_TIMEOUT,
) -> dict[str, str]:
    """The environment the scheduler gives a TF task so that its launcher can find the others."""
    parse_zk_url(zk_url)
    _check_job_id(job_id)
    if member not in expected_members(counts):
        raise ClusterError(f"{member} is not a member of a job with {format_role_counts(counts)}")
    _check_address(member, f"{host}:{port}")
    return {
        ENV_ZK: zk_url,
        ENV_JOB_ID: job_id,
        ENV_ROLE: member.role,
        ENV_INDEX: str(member.index),
        ENV_MEMBERS: format_role_counts(counts),
        ENV_HOST: host,
        ENV_PORT: str(port),
        ENV_TIMEOUT: f"{timeout:g}",
    }


def launcher_command(user_command: str, python: str = "python3") -> str:
    """The shell command of a TF task: the launcher bundle (fetched into the sandbox) runs the user's
    command once the cluster is complete. The launcher reads everything else from the environment."""
    bundle = '"${MESOS_SANDBOX:-.}/' + BUNDLE_NAME + '"'
    return f"exec {shlex.quote(python)} {bundle} --shell {shlex.quote(user_command)}"
