"""The TF launcher announces a capped share's GPU memory to TensorFlow: MESOS_GPU_MEMORY_LIMIT_MB becomes a
logical device memory limit on every GPU TensorFlow lists, set by an import hook before the user's code
runs; a program that never imports TensorFlow is left alone (and does not load it)."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from mesos_gpu.core.sharing import ENV_GPU_MEMORY_LIMIT
from mesos_gpu.tf import launcher, tfmemory
from mesos_gpu.tf.bundle import build_launcher_bundle, bundle_files

REPO = Path(__file__).resolve().parents[2]
SINGLE = ["--role", "worker", "--index", "0", "--members", "worker:1"]

# A stand-in `tensorflow` package: two GPUs, and every configuration call printed on stdout.
FAKE_TF = '''
import sys
class _Gpu:
    def __init__(self, name): self.name = name
class _Logical:
    def __init__(self, memory_limit=None): self.memory_limit = memory_limit
class config:
    LogicalDeviceConfiguration = _Logical
    calls = []
    @staticmethod
    def list_physical_devices(kind):
        assert kind == "GPU"
        return [_Gpu("/physical_device:GPU:0"), _Gpu("/physical_device:GPU:1")]
    @staticmethod
    def set_logical_device_configuration(device, configs):
        config.calls.append((device.name, [c.memory_limit for c in configs]))
'''


def test_the_variable_is_the_contracts() -> None:
    assert tfmemory.ENV_GPU_MEMORY_LIMIT == ENV_GPU_MEMORY_LIMIT == "MESOS_GPU_MEMORY_LIMIT_MB"
    assert launcher.ENV_GPU_MEMORY_LIMIT == ENV_GPU_MEMORY_LIMIT
    assert launcher.MEMORY_HOOK_MODULE == tfmemory.MODULE_NAME


@pytest.mark.parametrize(
    ("text", "limit"), [("8192", 8192), (" 512 ", 512), ("", None), ("0", None), ("-5", None), ("1.5", None)]
)
def test_memory_limit_parsing(text: str, limit: int | None) -> None:
    assert tfmemory.memory_limit({ENV_GPU_MEMORY_LIMIT: text}) == limit


def _fake_tf(gpus: int) -> Any:
    calls: list[tuple[str, list[int | None]]] = []
    devices = [types.SimpleNamespace(name=f"/physical_device:GPU:{i}") for i in range(gpus)]
    config = types.SimpleNamespace(
        list_physical_devices=lambda kind: devices if kind == "GPU" else [],
        set_logical_device_configuration=lambda d, cs: calls.append((d.name, [c.memory_limit for c in cs])),
        LogicalDeviceConfiguration=lambda memory_limit=None: types.SimpleNamespace(memory_limit=memory_limit),
    )
    return types.SimpleNamespace(config=config, calls=calls)


def test_configure_limits_every_listed_gpu_and_none_on_cpu() -> None:
    tf = _fake_tf(2)
    assert tfmemory.configure(tf, 4096) == ["/physical_device:GPU:0", "/physical_device:GPU:1"]
    assert tf.calls == [("/physical_device:GPU:0", [4096]), ("/physical_device:GPU:1", [4096])]
    cpu = _fake_tf(0)
    assert tfmemory.configure(cpu, 4096) == [] and cpu.calls == []


def test_a_tensorflow_error_is_reported_not_raised(capsys: pytest.CaptureFixture[str]) -> None:
    tf = _fake_tf(1)

    def refuse(device: Any, configs: Any) -> None:
        raise RuntimeError("Virtual devices cannot be modified after being initialized")

    tf.config.set_logical_device_configuration = refuse
    tfmemory.apply_limit(tf, 1024)
    err = capsys.readouterr().err
    assert "could not set TensorFlow's GPU memory limit of 1024 MB: Virtual devices" in err


def test_no_limit_no_hook(tmp_path: Path) -> None:
    env = {"PYTHONPATH": "/somewhere"}
    assert launcher.install_memory_hook(env) is None
    assert env == {"PYTHONPATH": "/somewhere"}


def _run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 60) -> Any:
    return subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def _python(code: str, env: dict[str, str], cwd: Path) -> Any:
    return _run([sys.executable, "-c", code], env, cwd)


def _limit_env(limit: str, pythonpath: Path | str, **extra: str) -> dict[str, str]:
    return {**os.environ, ENV_GPU_MEMORY_LIMIT: limit, "PYTHONPATH": str(pythonpath), **extra}


@pytest.fixture
def fake_tf_path(tmp_path: Path) -> Path:
    package = tmp_path / "fakepkgs" / "tensorflow"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_TF)
    return package.parent


def test_the_hook_configures_tensorflow_when_imported(tmp_path: Path, fake_tf_path: Path) -> None:
    env = _limit_env("8192", fake_tf_path, MESOS_SANDBOX=str(tmp_path))
    hook = launcher.install_memory_hook(env)
    assert hook is not None and Path(hook).parent == tmp_path  # in the sandbox
    assert env["PYTHONPATH"] == f"{hook}{os.pathsep}{fake_tf_path}"
    program = "import tensorflow as tf; print(tf.__loader__.__class__.__name__, tf.config.calls)"
    done = _python(program, env, tmp_path)
    assert done.returncode == 0, done.stderr
    loader, calls = done.stdout.strip().split(" ", 1)
    assert calls == "[('/physical_device:GPU:0', [8192]), ('/physical_device:GPU:1', [8192])]"
    assert loader == "SourceFileLoader"  # the real loader, once imported
    said = "TensorFlow GPU memory limited to 8192 MB on /physical_device:GPU:0, /physical_device:GPU:1"
    assert f"mesos-gpu: {said}" in done.stderr
    untouched = _python("import sys; print('tensorflow' in sys.modules)", env, tmp_path)
    assert untouched.stdout.strip() == "False" and untouched.stderr == ""


def test_the_interpreters_own_sitecustomize_still_runs(tmp_path: Path, fake_tf_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "sitecustomize.py").write_text("import builtins\nbuiltins.THEIRS = 'ran'\n")
    env = _limit_env("100", f"{theirs}{os.pathsep}{fake_tf_path}")
    hook = launcher.install_memory_hook(env)
    assert hook is not None
    try:
        done = _python("import tensorflow as tf; print(THEIRS, tf.config.calls[0][1])", env, tmp_path)
    finally:
        import shutil

        shutil.rmtree(hook)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ran", "[100]"]


def test_the_launcher_runs_the_command_with_the_hook(tmp_path: Path, fake_tf_path: Path) -> None:
    env = _limit_env("2048", f"{REPO}{os.pathsep}{fake_tf_path}", MESOS_SANDBOX=str(tmp_path))
    program = "import tensorflow as tf; print(tf.config.calls)"
    argv = [sys.executable, "-m", "mesos_gpu.tf.launcher", *SINGLE, "--", sys.executable, "-c", program]
    done = _run(argv, env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "('/physical_device:GPU:1', [2048])" in done.stdout
    assert not list(tmp_path.glob(".mesos-gpu-tf-*"))  # removed once the command ended


def test_the_bundle_carries_the_hook(tmp_path: Path, fake_tf_path: Path) -> None:
    assert "mesos_gpu/tf/tfmemory.py" in bundle_files()
    bundle = build_launcher_bundle(tmp_path / "launcher.pyz")
    shell = f"{sys.executable} -c 'import tensorflow as tf; print(tf.config.calls)'"
    argv = [sys.executable, str(bundle), *SINGLE, "--shell", shell]
    done = _run(argv, _limit_env("640", fake_tf_path), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "('/physical_device:GPU:0', [640])" in done.stdout


@pytest.mark.tensorflow
def test_real_tensorflow_on_cpu_runs_unharmed(tmp_path: Path) -> None:
    """Real TensorFlow (CPU build): the hook runs, finds no GPU to limit, and the program works."""
    env = _limit_env("1024", REPO, TF_CPP_MIN_LOG_LEVEL="3")
    program = (
        "import tensorflow as tf; "
        "print(int(tf.reduce_sum(tf.constant([1, 2, 3]))), len(tf.config.list_logical_devices('GPU')))"
    )
    argv = [sys.executable, "-m", "mesos_gpu.tf.launcher", *SINGLE, "--", sys.executable, "-c", program]
    done = _run(argv, env, tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["6", "0"]
    assert "MESOS_GPU_MEMORY_LIMIT_MB=1024 but TensorFlow lists no GPU: no limit to set" in done.stderr
