"""isolator.shares: the payloads the share host reads, the environment of each isolation level (a
table), the MIG instance a mig share gets, and the memory cap."""

from __future__ import annotations

import base64
import json

import pytest

from isolator.sharenvml import MigInstance
from isolator.shares import (
    ShareError,
    ShareTask,
    decode_host_settings,
    decode_share_task,
    memory_cap,
    mig_instance,
    running_data,
    running_report,
    share_environment,
)
from mesos_gpu.core.model import Isolation
from mesos_gpu.core.sharing import ShareGrant

GPU = "GPU-fa4e0000-0000-4000-8000-000000000000"
MIG = (MigInstance("MIG-a", "3g.40gb", 40960), MigInstance("MIG-b", "2g.20gb", 20480))


def b64(doc: object) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def task(isolation: Isolation, gpus: float = 0.25, memory: int = 4096, **kw) -> ShareTask:
    return ShareTask(command="true", image=None, isolation=isolation, gpus=gpus, memory=memory,
                     env={"USER_VAR": "1", "NVIDIA_VISIBLE_DEVICES": "0"}, **kw)  # fmt: skip


LEVELS = [
    (
        Isolation.MIG,
        {"CUDA_VISIBLE_DEVICES": "MIG-b", "NVIDIA_VISIBLE_DEVICES": "MIG-b"},
    ),
    (
        Isolation.MPS,
        {
            "CUDA_VISIBLE_DEVICES": GPU,
            "NVIDIA_VISIBLE_DEVICES": GPU,
            "CUDA_MPS_PIPE_DIRECTORY": "/sb/mps/pipe",
            "CUDA_MPS_LOG_DIRECTORY": "/sb/mps/log",
            "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": "25",
            "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT": "0=4096M",
            "MESOS_GPU_MEMORY_LIMIT_MB": "4096",
        },
    ),
    (
        Isolation.CAPPED,
        {"CUDA_VISIBLE_DEVICES": GPU, "NVIDIA_VISIBLE_DEVICES": GPU, "MESOS_GPU_MEMORY_LIMIT_MB": "4096"},
    ),
    (Isolation.SHARED, {"CUDA_VISIBLE_DEVICES": GPU, "NVIDIA_VISIBLE_DEVICES": GPU}),
]


@pytest.mark.parametrize(("level", "expected"), LEVELS, ids=[level.value for level, _ in LEVELS])
def test_the_environment_of_each_level(level, expected):
    share = task(level)
    env = share_environment(share, GPU, 4096, "MIG-b" if level is Isolation.MIG else None,
                            ("/sb/mps/pipe", "/sb/mps/log") if level is Isolation.MPS else None)  # fmt: skip
    assert env == {"USER_VAR": "1", "MESOS_GPU_ISOLATION": level.value, "MESOS_GPU_SHARE": "0.25", **expected}


def test_mps_thread_percentage_is_the_rounded_fraction_and_no_memory_limit_without_a_cap():
    env = share_environment(task(Isolation.MPS, gpus=0.333), GPU, 0, None, ("/p", "/l"))
    assert env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] == "33"
    assert "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT" not in env and "MESOS_GPU_MEMORY_LIMIT_MB" not in env
    assert (
        share_environment(task(Isolation.MPS, gpus=0.001), GPU, 0, None, ("/p", "/l"))[
            "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"
        ]
        == "1"
    )


def test_mig_instance_is_the_granted_index_and_profile():
    assert mig_instance(MIG, task(Isolation.MIG, mig_index=1, mig_profile="2g.20gb")) == MIG[1]
    with pytest.raises(ShareError, match=r"MIG instance 1 is a 2g\.20gb, not the 3g\.40gb granted"):
        mig_instance(MIG, task(Isolation.MIG, mig_index=1, mig_profile="3g.40gb"))
    with pytest.raises(ShareError, match="MIG instance 5 does not exist: the GPU has 2"):
        mig_instance(MIG, task(Isolation.MIG, mig_index=5))
    with pytest.raises(ShareError, match="has no MIG instances"):
        mig_instance((), task(Isolation.MIG, mig_index=0))


def test_memory_cap_is_the_grant_else_the_fraction_of_the_device():
    assert memory_cap(task(Isolation.CAPPED, memory=8192), 16384) == 8192
    assert memory_cap(task(Isolation.CAPPED, gpus=0.25, memory=0), 16384) == 4096
    assert memory_cap(task(Isolation.CAPPED, memory=0), 0) == 0


def test_payloads_decode_from_what_the_scheduler_writes():
    grant = ShareGrant(
        "sharehost.x", False, Isolation.MIG, 428, 20480, 81920, mig_index=1, mig_profile="2g.20gb"
    )
    data = b64({"command": "python train.py", "image": None, "uris": [{"value": "http://x/a.tgz"}],
                "env": {"A": "1"}, "share": grant.to_dict(), "resources": {"cpus": 1, "mem": 256},
                "kill_grace_seconds": 7})  # fmt: skip
    share = decode_share_task(data)
    assert (share.isolation, share.gpus, share.memory, share.mig_index, share.mig_profile) == (
        Isolation.MIG, 0.428, 20480, 1, "2g.20gb"
    )  # fmt: skip
    assert (share.command, share.cpus, share.mem, share.kill_grace, share.host) == (
        "python train.py", 1.0, 256.0, 7.0, "sharehost.x"
    )  # fmt: skip
    settings = decode_host_settings(b64({"host": "h", "isolation": "mps", "linger_seconds": 12,
                                         "device_memory": 16384, "mig_layout": ""}))  # fmt: skip
    assert (settings.isolation, settings.linger_seconds, settings.device_memory) == (
        Isolation.MPS,
        12.0,
        16384,
    )


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (None, "no share task payload"),
        ("not base64!", "not base64 JSON"),
        ({"command": "x"}, 'no "share" object'),
        ({"command": "x", "share": {"isolation": "exclusive"}}, "exclusive is not a share level"),
        ({"command": "x", "share": {"isolation": "fancy"}}, "unknown isolation level 'fancy'"),
        ({"share": {"isolation": "capped"}}, "neither a command nor an image"),
        ({"command": "x", "uris": "http://x", "share": {"isolation": "capped"}}, "uris must be a list"),
    ],
)
def test_bad_payloads_say_what_is_wrong(doc, message):
    data = doc if doc is None or isinstance(doc, str) else b64(doc)
    with pytest.raises(ShareError, match=message):
        decode_share_task(data)


def test_running_labels_and_data():
    labels = running_report(task(Isolation.CAPPED), GPU, 4096, "sharehost.x")
    assert labels == {"mesos-gpu/device": GPU, "mesos-gpu/share": "0.25", "mesos-gpu/gpu-memory": "4096",
                      "mesos-gpu/isolation": "capped", "mesos-gpu/share-host": "sharehost.x"}  # fmt: skip
    assert json.loads(base64.b64decode(running_data(labels))) == {
        "device": GPU, "share": 0.25, "gpu_memory": 4096, "isolation": "capped", "share_host": "sharehost.x"
    }  # fmt: skip
