"""Tell TensorFlow the GPU memory of its share before the user's code runs (capped GPU shares).

A share task gets MESOS_GPU_MEMORY_LIMIT_MB (the memory its share host granted; the watchdog kills it
above that). The launcher writes this module and a `sitecustomize.py` that calls `install()` into a
private directory at the front of PYTHONPATH, so every Python program the task starts runs `install()`
at start-up. `install()` imports nothing heavy: it puts an import hook in `sys.meta_path` that waits
for `import tensorflow`; right after TensorFlow's own import it gives each GPU TensorFlow lists one
logical device with `memory_limit` = the limit (`tf.config.set_logical_device_configuration`), before
the program can touch a GPU. A program that never imports TensorFlow never loads it. Whatever
sitecustomize the interpreter had (e.g. a distribution's) still runs after it.

Stdlib only, Python 3.8+ (it runs in the user's interpreter); bundled with the launcher and never
imported by it (the launcher copies its source: `mesos_gpu.tf.launcher.install_memory_hook`).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

ENV_GPU_MEMORY_LIMIT = "MESOS_GPU_MEMORY_LIMIT_MB"  # literal: core.sharing.ENV_GPU_MEMORY_LIMIT
MODULE_NAME = "mesos_gpu_tfmemory"  # the name this file has in the hook directory
SITECUSTOMIZE = f"import {MODULE_NAME}\n{MODULE_NAME}.install(__file__)\n"
PREFIX = "mesos-gpu"


def memory_limit(environ: Mapping[str, str]) -> int | None:
    """The limit in MB from the environment; None when unset, not a positive integer, or 0."""
    text = environ.get(ENV_GPU_MEMORY_LIMIT, "").strip()
    if not text.isdigit() or int(text) <= 0:
        return None
    return int(text)


def say(message: str) -> None:
    print(f"{PREFIX}: {message}", file=sys.stderr, flush=True)


def configure(tf: Any, limit_mb: int) -> list:
    """Give every GPU TensorFlow lists one logical device of `limit_mb` MB; the GPUs' names (empty
    when TensorFlow sees none, e.g. a CPU build or no visible device)."""
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        config = tf.config.LogicalDeviceConfiguration(memory_limit=limit_mb)
        tf.config.set_logical_device_configuration(gpu, [config])
    return [getattr(gpu, "name", str(gpu)) for gpu in gpus]


def apply_limit(tf: Any, limit_mb: int) -> None:
    """`configure`, saying what it did on stderr; a failure is reported, never raised (the program
    runs on, unlimited, and the watchdog still enforces the share)."""
    try:
        names = configure(tf, limit_mb)
    except Exception as exc:
        say(f"could not set TensorFlow's GPU memory limit of {limit_mb} MB: {exc}")
        return
    if names:
        say(f"TensorFlow GPU memory limited to {limit_mb} MB on {', '.join(names)}")
    else:
        say(f"{ENV_GPU_MEMORY_LIMIT}={limit_mb} but TensorFlow lists no GPU: no limit to set")


class _Loader(importlib.abc.Loader):
    """The real loader of `tensorflow`, then `after(module)`; it hands the module back to the real
    loader first, so nothing of it stays visible afterwards."""

    def __init__(self, loader: Any, after: Callable[[Any], None]) -> None:
        self.loader = loader
        self.after = after

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        module.__loader__ = self.loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        self.after(module)


class TensorFlowHook(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as the other finders do and runs `after(tf)` once it is imported."""

    def __init__(self, after: Callable[[Any], None], name: str = "tensorflow") -> None:
        self.after = after
        self.name = name
        self.done = False

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name or self.done:
            return None
        self.done = True  # once: a failed import is not retried through the hook
        spec = None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader, self.after)
        return spec


def install(site_file: str | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """From sitecustomize: hook `import tensorflow` when a limit is set (True when hooked), then run
    the interpreter's own sitecustomize, if any, that `site_file`'s directory hides."""
    environ = os.environ if environ is None else environ
    hooked = False
    limit = memory_limit(environ)
    if limit is not None and "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, TensorFlowHook(lambda tf: apply_limit(tf, limit)))
        hooked = True
    elif limit is not None:
        apply_limit(sys.modules["tensorflow"], limit)
    if site_file is not None:
        chain_sitecustomize(os.path.dirname(os.path.abspath(site_file)))
    return hooked


def chain_sitecustomize(own_dir: str) -> None:
    """Run the first `sitecustomize` on sys.path outside `own_dir` (ours hides it)."""
    others = [p for p in sys.path if os.path.abspath(p or os.curdir) != own_dir]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", others)
    if spec is None or spec.loader is None:
        return
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as exc:
        say(f"the interpreter's sitecustomize ({spec.origin}) failed: {exc!r}")
