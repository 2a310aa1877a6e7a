"""Which GPUs a task runs on, as its TASK_RUNNING labels say (pure).

Mesos tells a framework nothing of the devices its `gpu/nvidia` isolator gave a task. Our own executors
say it: a share host names its task's device (`mesos-gpu/device`: a UUID, or MIG-<uuid>), and the local
agent and the docker executor name a whole-GPU task's devices: `mesos-gpu/device` (their UUIDs,
comma-separated) and `mesos-gpu/device-index` (their indices as NVML numbers them, in the same order).
Either may be missing (an executor without an NVML inventory knows the indices only); a status with
neither, or with lists that disagree, names no device: nothing is guessed (a real Mesos agent's command
executor sends no label at all).

    device_labels([(0, "GPU-5f1c..."), (1, "GPU-8d0e...")])   # core.sharing's, re-exported here
        # {"mesos-gpu/device": "GPU-5f1c...,GPU-8d0e...", "mesos-gpu/device-index": "0,1"}
    devices_from_labels(status_labels(task_status))   # [{"index": 0, "uuid": "GPU-5f1c..."}, ...] or None
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mesos_gpu.core.model import TaskState
from mesos_gpu.core.records import MemberRecord
from mesos_gpu.core.sharing import LABEL_DEVICE, LABEL_DEVICE_INDEX, device_labels

__all__ = ["device_labels", "devices_from_labels", "mesos_labels", "note_devices", "status_labels"]

Device = dict[str, Any]  # {"index": int | None, "uuid": str | None}, as the API shows it


def mesos_labels(labels: Mapping[str, str]) -> dict[str, Any]:
    """`labels` as Mesos' Labels JSON ({"labels": [{"key", "value"}, ...]})."""
    return {"labels": [{"key": key, "value": value} for key, value in labels.items()]}


def status_labels(status: Mapping[str, Any]) -> dict[str, str]:
    """A TaskStatus JSON's labels as a dict (the first value of a key repeated; empty values left out)."""
    out: dict[str, str] = {}
    for label in (status.get("labels") or {}).get("labels", ()):
        key, value = label.get("key"), label.get("value")
        if key and value and key not in out:
            out[str(key)] = str(value)
    return out


def devices_from_labels(labels: Mapping[str, str]) -> list[Device] | None:
    """The devices the labels name, in their order; None when they name none, or disagree."""
    uuid_text, index_text = labels.get(LABEL_DEVICE), labels.get(LABEL_DEVICE_INDEX)
    uuids = [part.strip() for part in uuid_text.split(",")] if uuid_text is not None else []
    try:
        indices = [int(part) for part in index_text.split(",")] if index_text else []
    except ValueError:
        return None
    if not all(uuids) or any(index < 0 for index in indices):
        return None
    if uuids and indices and len(uuids) != len(indices):
        return None
    count = max(len(uuids), len(indices))
    if count == 0:
        return None
    return [{"index": indices[i] if indices else None, "uuid": uuids[i] if uuids else None}
            for i in range(count)]


def note_devices(member: MemberRecord, status: Mapping[str, Any]) -> None:
    """Keep the devices a whole-GPU member's TASK_RUNNING names (a share's device is its share record's,
    `sharehosts`); a RUNNING that names none (e.g. a reconciliation answer) keeps what was said."""
    if member.share is not None or member.state is not TaskState.RUNNING:
        return
    devices = devices_from_labels(status_labels(status))
    if devices is not None and devices != member.devices:
        member.devices = devices
