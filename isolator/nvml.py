"""The real NVML backend (pynvml's only home): `PynvmlBackend` answers `isolator.discovery.NvmlBackend`
and `isolator.sharenvml.ShareNvml` through nvidia-ml-py, turning pynvml's exceptions into
`NvmlUnavailable` / `NvmlCallError`.

    host = discover(real_backend())    # discover: isolator.discovery (also importable from here)
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from isolator.discovery import (
    FUNCTION_NOT_FOUND,
    INVALID_ARGUMENT,
    LIBRARY_NOT_FOUND,
    NO_PERMISSION,
    NOT_FOUND,
    NOT_SUPPORTED,
    TIMEOUT,
    NvmlBackend,
    NvmlCallError,
    RawDevice,
    RawHealth,
    discover,
    normalise_bus_id,
    unavailable,
)
from isolator.sharenvml import MPS_CONTROL, MigInstance, RunningProcess, profile_from_name

__all__ = ["PynvmlBackend", "discover", "real_backend"]  # discover: mesos_gpu.local.agent.gpus finds it here

T = TypeVar("T")


class PynvmlBackend:
    """NVML through nvidia-ml-py (`pynvml`)."""

    def __init__(self) -> None:
        import pynvml

        self._nvml: Any = pynvml
        self._handles: dict[int, Any] = {}

    def _call(self, name: str, *args: Any) -> Any:
        nvml = self._nvml
        try:
            return getattr(nvml, name)(*args)
        except nvml.NVMLError as exc:
            raise NvmlCallError(name, int(exc.value), _text(str(exc))) from exc

    def init(self) -> None:
        nvml = self._nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            raise unavailable(int(exc.value), _text(str(exc))) from exc
        except OSError as exc:  # a broken libnvidia-ml.so (wrong architecture, truncated)
            raise unavailable(LIBRARY_NOT_FOUND, str(exc)) from exc

    def shutdown(self) -> None:
        self._handles.clear()
        self._call("nvmlShutdown")

    def _handle(self, index: int) -> Any:
        if index not in self._handles:
            self._handles[index] = self._call("nvmlDeviceGetHandleByIndex", index)
        return self._handles[index]

    def driver_version(self) -> str:
        return _text(self._call("nvmlSystemGetDriverVersion"))

    def cuda_driver_version(self) -> int:
        return int(self._call("nvmlSystemGetCudaDriverVersion"))

    def device_count(self) -> int:
        return int(self._call("nvmlDeviceGetCount"))

    def device(self, index: int) -> RawDevice:
        handle = self._handle(index)
        return RawDevice(
            index=index,
            uuid=_text(self._call("nvmlDeviceGetUUID", handle)),
            minor=int(self._call("nvmlDeviceGetMinorNumber", handle)),
            name=_text(self._call("nvmlDeviceGetName", handle)),
            memory_total_bytes=int(self._call("nvmlDeviceGetMemoryInfo", handle).total),
            pci_bus_id=_text(self._call("nvmlDeviceGetPciInfo", handle).busId),
        )

    def _optional(self, fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except NvmlCallError as exc:
            if exc.nvml_code in (NOT_SUPPORTED, FUNCTION_NOT_FOUND, NO_PERMISSION):
                return None
            raise

    def health(self, index: int) -> RawHealth:
        nvml = self._nvml
        handle = self._handle(index)

        def ecc(kind: int) -> int:
            return int(self._call("nvmlDeviceGetTotalEccErrors", handle, kind, nvml.NVML_VOLATILE_ECC))

        def retired(cause: int) -> int:
            return len(self._call("nvmlDeviceGetRetiredPages", handle, cause))

        remapped = self._optional(lambda: self._call("nvmlDeviceGetRemappedRows", handle))
        return RawHealth(
            ecc_uncorrected_volatile=self._optional(lambda: ecc(nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED)),
            ecc_corrected_volatile=self._optional(lambda: ecc(nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED)),
            retired_pages_double_bit=self._optional(
                lambda: retired(nvml.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR)
            ),
            retired_pages_single_bit=self._optional(
                lambda: retired(nvml.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS)
            ),
            retired_pages_pending=self._optional(
                lambda: (
                    self._call("nvmlDeviceGetRetiredPagesPendingStatus", handle) == nvml.NVML_FEATURE_ENABLED
                )
            ),
            remapped_rows_pending=bool(remapped[2]) if remapped is not None else None,
            remapped_rows_failure=bool(remapped[3]) if remapped is not None else None,
        )

    def nvlink_peers(self, index: int) -> Mapping[str, int]:
        nvml = self._nvml
        handle = self._handle(index)
        peers: dict[str, int] = {}
        for link in range(nvml.NVML_NVLINK_MAX_LINKS):
            try:
                state = self._call("nvmlDeviceGetNvLinkState", handle, link)
            except NvmlCallError as exc:
                if link == 0 and exc.nvml_code == NOT_SUPPORTED:
                    raise
                continue  # links beyond this GPU's count answer NOT_SUPPORTED or INVALID_ARGUMENT
            if state != nvml.NVML_FEATURE_ENABLED:
                continue
            bus_id = normalise_bus_id(
                _text(self._call("nvmlDeviceGetNvLinkRemotePciInfo", handle, link).busId)
            )
            peers[bus_id] = peers.get(bus_id, 0) + 1
        return peers

    def common_ancestor(self, index_a: int, index_b: int) -> int:
        return int(
            self._call("nvmlDeviceGetTopologyCommonAncestor", self._handle(index_a), self._handle(index_b))
        )

    def xid_events(self, timeout_ms: int) -> Sequence[tuple[int, int]]:
        nvml = self._nvml
        event_set = self._call("nvmlEventSetCreate")
        try:
            registered = False
            for index in range(self.device_count()):
                try:
                    self._call(
                        "nvmlDeviceRegisterEvents",
                        self._handle(index),
                        nvml.nvmlEventTypeXidCriticalError,
                        event_set,
                    )
                    registered = True
                except NvmlCallError as exc:
                    if exc.nvml_code != NOT_SUPPORTED:
                        raise
            if not registered:
                raise NvmlCallError("nvmlDeviceRegisterEvents", NOT_SUPPORTED, "Not Supported")
            events: list[tuple[int, int]] = []
            while True:
                try:
                    data = self._call("nvmlEventSetWait", event_set, timeout_ms)
                except NvmlCallError as exc:
                    if exc.nvml_code == TIMEOUT:
                        return events
                    raise
                events.append((int(self._call("nvmlDeviceGetIndex", data.device)), int(data.eventData)))
                timeout_ms = 0
        finally:
            self._optional(lambda: self._call("nvmlEventSetFree", event_set))

    # ---- sharing (isolator.sharenvml.ShareNvml) ----

    def mig_enabled(self, index: int) -> bool | None:
        mode = self._optional(lambda: self._call("nvmlDeviceGetMigMode", self._handle(index)))
        return None if mode is None else bool(mode[0] == self._nvml.NVML_DEVICE_MIG_ENABLE)

    def mig_instances(self, index: int) -> Sequence[MigInstance]:
        handle = self._handle(index)
        instances = []
        for slot in range(int(self._call("nvmlDeviceGetMaxMigDeviceCount", handle))):
            try:
                mig = self._call("nvmlDeviceGetMigDeviceHandleByIndex", handle, slot)
            except NvmlCallError as exc:
                if exc.nvml_code in (NOT_FOUND, INVALID_ARGUMENT):  # an empty slot
                    continue
                raise
            memory = int(self._call("nvmlDeviceGetMemoryInfo", mig).total) // (1024 * 1024)
            attributes = self._optional(lambda: self._call("nvmlDeviceGetAttributes", mig))  # noqa: B023
            slices = int(attributes.gpuInstanceSliceCount) if attributes is not None else None
            name = _text(self._call("nvmlDeviceGetName", mig))
            instances.append(
                MigInstance(
                    _text(self._call("nvmlDeviceGetUUID", mig)),
                    profile_from_name(name, memory, slices),
                    memory,
                )
            )
        return instances

    def running_processes(self, index: int) -> Sequence[RunningProcess]:
        handles = [self._handle(index)]
        if self.mig_enabled(index):
            handle = handles[0]
            for slot in range(int(self._call("nvmlDeviceGetMaxMigDeviceCount", handle))):
                try:
                    handles.append(self._call("nvmlDeviceGetMigDeviceHandleByIndex", handle, slot))
                except NvmlCallError:
                    continue
        out: dict[int, RunningProcess] = {}
        for handle in handles:
            for proc in self._call("nvmlDeviceGetComputeRunningProcesses", handle):
                used = proc.usedGpuMemory
                out[int(proc.pid)] = RunningProcess(int(proc.pid), int(used) if used is not None else None)
        return list(out.values())

    def mps_control(self) -> str | None:
        return shutil.which(MPS_CONTROL)


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def real_backend() -> NvmlBackend:
    """The pynvml backend (construction never touches the driver; `init` does)."""
    return PynvmlBackend()
