"""`mesos-gpu-agent config` writes the sharing attributes (gpu_memory_mb, gpu_mps, gpu_mig) from NVML
(here the fake) and `doctor` checks them against the host; plus the share host's small fetcher."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import zipfile

import pytest

from isolator.agentconfig import agent_config, parse_attributes, parse_flags
from isolator.cli import main
from isolator.discovery import discover
from isolator.doctor import FAIL, PASS, SKIP, WARN, HostPaths, check_sharing, run_doctor
from isolator.fakenvml import parse_fake_spec
from isolator.fetcher import FetchError, fetch_uris
from isolator.sharenvml import sharing_facts

MIG = "3g.40gb/2g.20gb/1g.10gb/1g.10gb"


def attributes_of(spec: str) -> dict[str, str]:
    fake = parse_fake_spec(spec)
    config = agent_config(discover(fake), sharing=sharing_facts(fake))
    return parse_attributes(config.flags["attributes"])


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("2xT4@16G", {"gpu_memory_mb": "16384", "gpu_mps": "false"}),
        ("2xT4@16G;mps", {"gpu_memory_mb": "16384", "gpu_mps": "true"}),
        (f"2xA100-SXM4-80GB;mps;mig={MIG}", {"gpu_memory_mb": "81920", "gpu_mps": "false", "gpu_mig": MIG}),
        ("1xA100-SXM4-80GB,1xA100-SXM4-40GB", {"gpu_memory_mb": "40960", "gpu_mps": "false"}),
    ],
)
def test_config_writes_the_sharing_attributes(spec, expected):
    attributes = attributes_of(spec)
    assert {k: attributes.get(k) for k in expected} == expected
    assert "gpu_mig" in attributes or "gpu_mig" not in expected


def test_config_notes_gpus_that_differ_and_mig_layouts_that_differ():
    fake = parse_fake_spec(f"2xA100-SXM4-80GB;mig={MIG}")
    fake.gpus[1].mig = ("7g.80gb",)
    config = agent_config(discover(fake), sharing=sharing_facts(fake))
    assert "gpu_mig" not in parse_attributes(config.flags["attributes"])
    assert any("GPUs have different MIG layouts" in note for note in config.notes)
    mixed = parse_fake_spec("1xA100-SXM4-80GB,1xA100-SXM4-40GB")
    notes = agent_config(discover(mixed), sharing=sharing_facts(mixed)).notes
    assert any("GPUs differ in memory (40960, 81920 MB)" in note for note in notes)


def test_cli_config_prints_them(capsys):
    assert main(["config", "--fake-gpus", "2xT4@16G;mps"]) == 0
    assert "gpu_memory_mb:16384;gpu_mps:true" in capsys.readouterr().out


FLAGS = (
    "--isolation=filesystem/linux,docker/runtime,cgroups/devices,gpu/nvidia --image_providers=docker "
    "--resources=gpus:2 --nvidia_gpu_devices=0,1 --attributes={}"
)


def doctor(spec: str, attributes: str):
    return check_sharing(parse_flags(FLAGS.format(attributes)), sharing_facts(parse_fake_spec(spec)))


def test_doctor_passes_matching_attributes():
    checks = doctor(f"2xA100-SXM4-80GB;mig={MIG}", f"gpu_memory_mb:81920;gpu_mps:false;gpu_mig:{MIG}")
    assert [(c.name, c.status) for c in checks] == [
        ("attribute gpu_memory_mb", PASS),
        ("attribute gpu_mps", PASS),
        ("attribute gpu_mig", PASS),
    ]


def test_doctor_fails_attributes_the_host_cannot_honour():
    checks = doctor("2xT4@16G", "gpu_memory_mb:32768;gpu_mps:true;gpu_mig:1g.10gb")
    assert [(c.status, c.detail) for c in checks] == [
        (FAIL, "gpu_memory_mb:32768 but this host has gpu_memory_mb:16384"),
        (
            FAIL,
            "gpu_mps:true but this host cannot run MPS: nvidia-cuda-mps-control is not on PATH: no mps "
            "shares (install the driver's compute utilities)",
        ),
        (FAIL, "gpu_mig:1g.10gb but MIG mode is off: placement would send mig shares here"),
    ]
    assert checks[0].fix == "set gpu_memory_mb:16384;gpu_mps:false in --attributes (mesos-gpu-agent config)"
    layout = doctor(f"2xA100-SXM4-80GB;mig={MIG}", "gpu_memory_mb:81920;gpu_mps:false;gpu_mig:7g.80gb")
    assert layout[2].detail == f"gpu_mig:7g.80gb but the GPUs' MIG instances are {MIG}"


def test_doctor_warns_about_missing_attributes_and_skips_without_flags(tmp_path):
    checks = doctor("2xT4@16G;mps", "gpu_model:T4")
    assert [(c.status, c.detail) for c in checks][:2] == [
        (WARN, "not set; this host has gpu_memory_mb:16384"),
        (WARN, "not set; this host has gpu_mps:true"),
    ]
    assert checks[2].status == PASS  # no MIG, no gpu_mig: consistent
    paths = HostPaths(dev=str(tmp_path), driver_version_file=str(tmp_path / "v"))
    everything = run_doctor(parse_fake_spec("2xT4@16G"), None, paths, None, fake=True)
    assert ("gpu sharing", SKIP) in [(c.name, c.status) for c in everything]


# ---- the share host's fetcher --------------------------------------------------------------------


def test_fetch_file_and_archives(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "run.sh").write_text("echo hi\n")
    with tarfile.open(source / "job.tgz", "w:gz") as tar:
        tar.add(source / "run.sh", arcname="job/run.sh")
    with zipfile.ZipFile(source / "data.zip", "w") as archive:
        archive.writestr("data/x.txt", "x")
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    notes: list[str] = []
    fetch_uris(
        [
            {"value": f"file://{source}/job.tgz"},
            {"value": str(source / "data.zip")},
            {"value": str(source / "run.sh"), "executable": True, "output_file": "go"},
            {"value": str(source / "job.tgz"), "extract": False, "output_file": "kept.tgz"},
        ],
        str(sandbox),
        notes.append,
    )
    assert (sandbox / "job/run.sh").read_text() == "echo hi\n"
    assert (sandbox / "data/x.txt").read_text() == "x"
    assert os.access(sandbox / "go", os.X_OK) and (sandbox / "kept.tgz").exists()
    assert not (sandbox / "kept").exists() and len(notes) == 4


def test_fetch_refuses_what_it_cannot_do(tmp_path):
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(FetchError, match=r"Failed to extract 'evil\.tar'"):
        fetch_uris([{"value": str(evil)}], str(tmp_path / "sb"))
    assert not (tmp_path / "escape.txt").exists()
    with pytest.raises(FetchError, match="Unsupported URI scheme 'ftp'"):
        fetch_uris([{"value": "ftp://x/y"}], str(tmp_path))
    with pytest.raises(FetchError, match="Failed to fetch '/no/such/file'"):
        fetch_uris([{"value": "/no/such/file"}], str(tmp_path))
    with pytest.raises(FetchError, match="Invalid output file"):
        fetch_uris([{"value": "/etc/hostname", "output_file": "../x"}], str(tmp_path))
    shutil.rmtree(tmp_path / "sb", ignore_errors=True)
