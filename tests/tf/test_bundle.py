"""The launcher bundle (`launcher.pyz`): what it holds, and that a bare interpreter runs it."""

from __future__ import annotations

import ast
import glob
import io
import json
import os
import subprocess
import sys
import zipfile

import pytest

from mesos_gpu.core import tfconfig as tfc
from mesos_gpu.core.tfconfig import Member
from mesos_gpu.tf.bundle import build_launcher_bundle, bundle_digest, launcher_bundle_bytes


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return build_launcher_bundle(tmp_path_factory.mktemp("sandbox") / tfc.BUNDLE_NAME)


@pytest.fixture
def bare_python(tmp_path):
    """A `python3` on PATH that is this interpreter with no site-packages at all (-I -S): kazoo can only
    come from the bundle."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "python3"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "$@"\n')
    wrapper.chmod(0o755)
    probe = subprocess.run([str(wrapper), "-c", "import kazoo"], capture_output=True, text=True, check=False)
    assert probe.returncode != 0 and "No module named 'kazoo'" in probe.stderr
    return bin_dir


def test_the_bundle_holds_the_launcher_and_kazoo_without_tests(bundle):
    names = set(zipfile.ZipFile(bundle).namelist())
    for name in [
        "__main__.py",
        "mesos_gpu/__init__.py",
        "mesos_gpu/tf/__init__.py",
        "mesos_gpu/tf/launcher.py",
        "mesos_gpu/core/tfconfig.py",
        "mesos_gpu/tf/rendezvous.py",
        "kazoo/client.py",
        "kazoo/handlers/threading.py",
        "kazoo/protocol/connection.py",
    ]:
        assert name in names
    assert not [n for n in names if n.startswith(("kazoo/tests/", "kazoo/testing/"))]
    assert not [n for n in names if not n.endswith(".py")]
    assert bundle.stat().st_size < 300_000
    assert bundle.read_bytes().startswith(b"#!/usr/bin/env python3\n")


def test_the_bundle_is_reproducible(bundle):
    assert launcher_bundle_bytes() == launcher_bundle_bytes() == bundle.read_bytes()
    assert bundle_digest(bundle.read_bytes()) == bundle_digest(launcher_bundle_bytes())


def test_our_bundled_modules_are_python_3_8_syntax(bundle):
    archive = zipfile.ZipFile(io.BytesIO(bundle.read_bytes()))
    for name in archive.namelist():
        if name.startswith("mesos_gpu/") or name == "__main__.py":
            ast.parse(archive.read(name), filename=name, feature_version=(3, 8))


def test_a_bare_interpreter_runs_the_bundle(bundle, bare_python):
    env = {"PATH": f"{bare_python}:/usr/bin:/bin"}
    result = subprocess.run(
        [
            "python3",
            str(bundle),
            "--role",
            "worker",
            "--index",
            "0",
            "--members",
            "worker:1",
            "--",
            "sh",
            "-c",
            "echo ran; exit 5",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (5, "ran\n"), result.stderr


@pytest.mark.zookeeper
def test_the_scheduler_contract_end_to_end_in_a_clean_environment(bundle, bare_python, zk_url):
    """What a Mesos task runs: `sh -c <launcher_command>` with the launcher's environment and the
    bundle in $MESOS_SANDBOX, on an interpreter that has nothing installed."""
    counts = {"ps": 1, "worker": 1}
    members = tfc.expected_members(counts)
    user_command = """python3 -c 'import json, os; print(json.dumps(json.loads(os.environ["TF_CONFIG"])))'"""
    processes = []
    for i, member in enumerate(members):
        env = tfc.launcher_environment(
            zk_url, "job-b", member, counts, host="127.0.0.1", port=31100 + i, timeout=30
        )
        env.update({"PATH": f"{bare_python}:/usr/bin:/bin", "MESOS_SANDBOX": str(bundle.parent)})
        processes.append(
            subprocess.Popen(
                ["/bin/sh", "-c", tfc.launcher_command(user_command)],
                env=env,
                cwd="/",
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    addresses = {m: f"127.0.0.1:{31100 + i}" for i, m in enumerate(members)}
    for member, process in zip(members, processes, strict=True):
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert json.loads(out) == json.loads(tfc.tf_config_json(addresses, member))
    assert members == [Member("ps", 0), Member("worker", 0)]


def interpreters() -> dict[str, str]:
    """Python >= 3.8 interpreters on this machine (version -> path), always including this one."""
    candidates = [
        sys.executable,
        *sorted(glob.glob("/usr/bin/python3.*")),
        *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3"))),
    ]
    found: dict[str, str] = {}
    for path in candidates:
        if not os.access(path, os.X_OK) or path.endswith("-config"):
            continue
        probe = subprocess.run(
            [path, "-I", "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        version = probe.stdout.strip()
        if probe.returncode == 0 and tuple(map(int, version.split("."))) >= (3, 8):
            found.setdefault(version, path)
    return found


@pytest.mark.zookeeper
def test_members_on_every_python_from_3_8_meet_in_one_cluster(bundle, zk_url):
    """One member per interpreter found here (only this one on a bare machine), all in one job."""
    found = interpreters()
    versions = sorted(found, key=lambda v: tuple(map(int, v.split("."))))
    counts = f"worker:{len(versions)}"
    processes = []
    for index, version in enumerate(versions):
        args = [
            "--zk",
            zk_url,
            "--job-id",
            "job-py",
            "--role",
            "worker",
            "--index",
            str(index),
            "--members",
            counts,
            "--host",
            "127.0.0.1",
            "--port",
            str(31200 + index),
            "--timeout",
            "60",
            "--shell",
            'printf "%s\\n" "$TF_CONFIG"',
        ]
        processes.append(
            subprocess.Popen(
                [found[version], "-I", "-S", str(bundle), *args],
                env={"PATH": "/usr/bin:/bin"},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for index, process in enumerate(processes):
        out, err = process.communicate(timeout=90)
        assert process.returncode == 0, f"python {versions[index]}: {err}"
        config = json.loads(out)
        assert config["task"] == {"type": "worker", "index": index}
        assert len(config["cluster"]["worker"]) == len(versions)
    print(f"launcher ran on python {', '.join(versions)}")
