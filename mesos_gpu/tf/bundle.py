"""The launcher bundle: one zip application (`launcher.pyz`) holding the launcher and kazoo.

The scheduler's HTTP server serves it and each TF task fetches it as a Mesos URI, so the user's image
needs nothing but Python 3: `python3 launcher.pyz --shell 'python train.py'`. Stdlib only; kazoo's
files are copied from where it is installed, never imported here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import zipfile
from pathlib import Path

#: Modules of this package that the launcher needs, relative to `mesos_gpu/` (an import-linter
#: contract in setup.cfg keeps them from importing anything else of mesos_gpu).
LAUNCHER_MODULES = ("core/tfconfig.py", "tf/rendezvous.py", "tf/launcher.py", "tf/tfmemory.py")

MAIN = """\
# mesos-gpu launcher bundle: python3 launcher.pyz --help
import sys

from mesos_gpu.tf.launcher import main

sys.exit(main())
"""

# The real package __init__ files may grow imports; the bundle carries inert ones.
PACKAGE_INIT = '"""mesos-gpu (launcher bundle: only mesos_gpu.tf.launcher and what it needs)."""\n'
TF_INIT = '"""Distributed TensorFlow: the in-task launcher."""\n'
CORE_INIT = '"""The pure core (launcher bundle: only the TF_CONFIG builder)."""\n'

# Fixed timestamps make the bundle byte-for-byte reproducible (a stable digest for Mesos' URI cache).
_DATE = (2020, 1, 1, 0, 0, 0)


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the launcher bundle needs the {name!r} package, which is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _kazoo_files() -> list[tuple[str, Path]]:
    root = _package_dir("kazoo")
    files = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] in ("tests", "testing"):
            continue
        files.append((f"kazoo/{relative.as_posix()}", path))
    return files


def bundle_files() -> dict[str, bytes]:
    """Archive name -> content of every file in the bundle."""
    package_dir = Path(__file__).resolve().parent.parent
    files = {
        "__main__.py": MAIN.encode(),
        "mesos_gpu/__init__.py": PACKAGE_INIT.encode(),
        "mesos_gpu/core/__init__.py": CORE_INIT.encode(),
        "mesos_gpu/tf/__init__.py": TF_INIT.encode(),
    }
    for name in LAUNCHER_MODULES:
        files[f"mesos_gpu/{name}"] = (package_dir / name).read_bytes()
    for name, path in _kazoo_files():
        files[name] = path.read_bytes()
    return files


def launcher_bundle_bytes() -> bytes:
    """The bundle as bytes (what the HTTP server sends); identical for identical sources."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in sorted(bundle_files().items()):
            info = zipfile.ZipInfo(name, date_time=_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    return b"#!/usr/bin/env python3\n" + buffer.getvalue()


def build_launcher_bundle(path: str | Path) -> Path:
    """Write the bundle to `path` (e.g. `.../launcher.pyz`), executable; return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(launcher_bundle_bytes())
    target.chmod(0o755)
    return target


def bundle_digest(data: bytes) -> str:
    """A short content digest, e.g. for a cache-busting URI `/v1/launcher/<digest>/launcher.pyz`."""
    return hashlib.sha256(data).hexdigest()[:16]
