"""The real NVML backend (isolator.nvml): its wiring against the real pynvml module, and the real
(absent here) NVML giving a clear typed error."""

from __future__ import annotations

import ctypes.util
import types

import pynvml
import pytest

from isolator.discovery import GPU_IS_LOST, NvmlCallError, NvmlUnavailable, discover
from isolator.nvml import PynvmlBackend


def test_real_nvml_answers_or_gives_the_clear_typed_error():
    """On this GPU-less host NVML is absent: a typed error with the fix, never a traceback."""
    if ctypes.util.find_library("nvidia-ml") is None:
        with pytest.raises(NvmlUnavailable) as caught:
            discover(PynvmlBackend())
        assert str(caught.value) == (
            "NVML is unavailable: NVML Shared Library Not Found (NVML error 12); libnvidia-ml.so.1 was "
            "not found: install the NVIDIA driver (e.g. apt-get install nvidia-driver) or add its library "
            "directory to the loader path"
        )
        assert isinstance(caught.value.__cause__, pynvml.NVMLError_LibraryNotFound)
    else:  # a host with the NVIDIA driver: real discovery must work
        host = discover(PynvmlBackend())
        assert all(uuid.startswith(("GPU-", "MIG-")) for uuid in host.gpus)


def _stand_in_pynvml(answers):
    """A module with the real pynvml's constants and error classes, whose functions answer from
    `answers` (a value, or an NVML error code to raise)."""
    module = types.SimpleNamespace()
    for name in dir(pynvml):
        if name.startswith(("NVML", "nvmlEventType")) and not callable(getattr(pynvml, name)):
            setattr(module, name, getattr(pynvml, name))
    module.NVMLError = pynvml.NVMLError

    def make(name):
        def fn(*args):
            value = answers[name]
            if callable(value):
                value = value(*args)
            if isinstance(value, pynvml.NVMLError):
                raise value
            return value

        return fn

    for name in answers:
        assert hasattr(pynvml, name), f"pynvml has no {name}"  # the backend calls real names only
        setattr(module, name, make(name))
    return module


def test_pynvml_backend_maps_real_shaped_answers():
    err = pynvml.NVMLError
    handles = {0: "h0", 1: "h1"}

    def nvlink_state(handle, link):
        if link >= 2:
            return err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return pynvml.NVML_FEATURE_ENABLED

    def remote(handle, link):
        return types.SimpleNamespace(busId=b"0000:11:00.0" if handle == "h0" else b"0000:10:00.0")

    answers = {
        "nvmlInit": None,
        "nvmlShutdown": None,
        "nvmlSystemGetDriverVersion": "550.54.15",
        "nvmlSystemGetCudaDriverVersion": 12040,
        "nvmlDeviceGetCount": 2,
        "nvmlDeviceGetHandleByIndex": lambda i: handles[i],
        "nvmlDeviceGetUUID": lambda h: f"GPU-{h}",
        "nvmlDeviceGetMinorNumber": lambda h: 7 if h == "h0" else 6,
        "nvmlDeviceGetName": b"NVIDIA H100 80GB HBM3",
        "nvmlDeviceGetMemoryInfo": types.SimpleNamespace(total=80 * 1024**3),
        "nvmlDeviceGetPciInfo": lambda h: types.SimpleNamespace(
            busId=b"00000000:10:00.0" if h == "h0" else b"00000000:11:00.0"
        ),
        "nvmlDeviceGetTotalEccErrors": lambda h, kind, counter: 3 if (h, kind) == ("h1", 1) else 0,
        "nvmlDeviceGetRetiredPages": err(pynvml.NVML_ERROR_NOT_SUPPORTED),
        "nvmlDeviceGetRetiredPagesPendingStatus": err(pynvml.NVML_ERROR_NOT_SUPPORTED),
        "nvmlDeviceGetRemappedRows": (0, 0, 0, 0),
        "nvmlDeviceGetNvLinkState": nvlink_state,
        "nvmlDeviceGetNvLinkRemotePciInfo": remote,
        "nvmlDeviceGetTopologyCommonAncestor": pynvml.NVML_TOPOLOGY_SINGLE,
        "nvmlEventSetCreate": "set",
        "nvmlDeviceRegisterEvents": None,
        "nvmlEventSetWait": err(pynvml.NVML_ERROR_TIMEOUT),
        "nvmlEventSetFree": None,
        "nvmlDeviceGetIndex": 0,
    }
    backend = PynvmlBackend()
    backend._nvml = _stand_in_pynvml(answers)
    host = discover(backend)
    assert host.driver_version == "550.54.15" and host.cuda_version == "12.4"
    first, second = host.ordered()
    assert (first.uuid, first.minor, first.model, first.memory_mib) == (
        "GPU-h0",
        7,
        "NVIDIA H100 80GB HBM3",
        81920,
    )
    assert first.health.healthy and first.health.retired_pages is None
    assert second.health.reasons == ("3 uncorrectable ECC errors since the driver loaded",)
    [link] = host.links
    assert (link.nvlinks, link.pcie) == (2, "single-switch")


def test_pynvml_backend_wraps_call_errors():
    backend = PynvmlBackend()
    backend._nvml = _stand_in_pynvml(
        {
            "nvmlInit": None,
            "nvmlShutdown": None,
            "nvmlSystemGetDriverVersion": pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST),
        }
    )
    with pytest.raises(NvmlCallError) as caught:
        discover(backend)
    assert caught.value.nvml_code == GPU_IS_LOST
    assert str(caught.value) == "nvmlSystemGetDriverVersion failed: GPU is lost (NVML error 15)"
