"""The dependency arrangement that lets the wheel install from the index alone: pymesos 0.3.15 shipped
unmodified from third_party/pymesos, the compat http_parser it imports, and setup.cfg's package list and
requirements saying exactly that (third_party/pymesos/README.md explains why)."""

from __future__ import annotations

import configparser
import hashlib
import re
from pathlib import Path

import pymesos

REPO = Path(__file__).resolve().parents[2]
VENDORED = REPO / "third_party" / "pymesos"
# pymesos 0.3.15's own requirements (its setup.py on Python 3), less http-parser, which we replace.
PYMESOS_NEEDS = {"six", "addict", "kazoo"}


def setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read(REPO / "setup.cfg", encoding="utf-8")
    return config


def listed(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip() and not line.strip().startswith("#")]


def recorded_sums() -> dict[str, str]:
    sums = {}
    for line in (VENDORED / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split("  ", 1)
        sums[name] = digest
    return sums


def file_sums(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*.py"))
    }


def packages_on_disk(top: str) -> set[str]:
    return {
        ".".join(init.parent.relative_to(REPO).parts) for init in (REPO / top).rglob("__init__.py")
    }


def test_the_shipped_pymesos_is_the_unmodified_release():
    sums = recorded_sums()
    assert len(sums) == 13 and "process.py" in sums
    assert file_sums(VENDORED / "pymesos") == sums


def test_the_pymesos_this_environment_imports_has_the_same_sources():
    # Whether it comes from the editable install (third_party) or an older separate install, the code
    # the tests run is the code the wheel ships.
    assert pymesos.__VERSION__ == "0.3.15"
    assert file_sums(Path(pymesos.__file__).parent) == recorded_sums()


def test_a_changed_file_would_be_caught(tmp_path):
    copy = tmp_path / "pymesos"
    copy.mkdir()
    (copy / "utils.py").write_bytes((VENDORED / "pymesos" / "utils.py").read_bytes() + b"\n")
    assert file_sums(copy)["utils.py"] != recorded_sums()["utils.py"]


def test_the_package_list_names_every_package_of_ours_and_the_two_shipped_ones():
    options = setup_cfg()["options"]
    packages = listed(options["packages"])
    assert len(packages) == len(set(packages))
    ours = packages_on_disk("mesos_gpu") | packages_on_disk("isolator")
    assert set(packages) == ours | {"pymesos", "pymesos.subprocess", "http_parser"}
    pairs = (line.split("=") for line in listed(options["package_dir"]))
    package_dir = {name.strip(): path.strip() for name, path in pairs}
    assert package_dir == {
        "pymesos": "third_party/pymesos/pymesos",
        "http_parser": "compat/http-parser/http_parser",
    }
    for path in package_dir.values():
        assert (REPO / path / "__init__.py").is_file(), path
    assert (REPO / "third_party/pymesos/pymesos/LICENSE").read_text(encoding="utf-8").startswith("Copyright")


def test_the_licence_is_the_unmodified_apache_2_0_text():
    # sha256 of https://www.apache.org/licenses/LICENSE-2.0.txt (tornado and absl-py ship the same bytes)
    digest = hashlib.sha256((REPO / "LICENSE").read_bytes()).hexdigest()
    assert digest == "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


def requirement_names() -> dict[str, str]:
    requirements = listed(setup_cfg()["options"]["install_requires"])
    return {re.split(r"[<>=!~ ;\[]", req, maxsplit=1)[0].lower(): req for req in requirements}


def test_every_requirement_is_one_an_index_can_serve():
    for name, requirement in requirement_names().items():
        assert "@" not in requirement, requirement  # no direct URL or path
        assert "+" not in requirement, requirement  # no local version label, which no index serves
        assert name not in {"pymesos", "http-parser", "http_parser"}, requirement


def test_the_shipped_packages_requirements_are_declared():
    names = requirement_names()
    assert names.keys() >= PYMESOS_NEEDS | {"httptools"}
