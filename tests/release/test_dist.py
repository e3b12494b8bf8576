"""The sdist and wheel a release publishes: what they hold, that PyPI will render them, one version."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_ecoinvent import __version__
from airflow_provider_ecoinvent.get_provider_info import get_provider_info

if TYPE_CHECKING:
    from .conftest import Dist

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "airflow_provider_ecoinvent"


def sdist_files(dist: Dist) -> set[str]:
    """The sdist's paths without its ``name-version/`` top folder."""
    with tarfile.open(dist.sdist) as sdist:
        return {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}


def wheel_files(dist: Dist) -> set[str]:
    with zipfile.ZipFile(dist.wheel) as wheel:
        return set(wheel.namelist())


def test_twine_check_strict_passes(dist: Dist) -> None:
    twine = Path(sys.executable).with_name("twine")
    result = subprocess.run(
        [str(twine), "check", "--strict", str(dist.sdist), str(dist.wheel)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_the_sdist_holds_what_a_packager_needs(dist: Dist) -> None:
    files = sdist_files(dist)
    for required in ("LICENSE", "README.md", "SECURITY.md", "pyproject.toml", "Makefile", "PKG-INFO"):
        assert required in files
    for folder in ("docs/", "tests/", "example_dags/", f"{PACKAGE}/"):
        assert any(name.startswith(folder) for name in files), f"no {folder} in the sdist"
    # Every tracked test module, doc and example DAG is there, not just some of them.
    for pattern in ("tests/**/*.py", "docs/*.md", "example_dags/*"):
        for path in REPO.glob(pattern):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            assert str(path.relative_to(REPO)) in files, f"{path.relative_to(REPO)} is missing from the sdist"
    assert not [name for name in files if "__pycache__" in name or name.startswith((".venv", "output/"))]


def test_the_wheel_holds_only_the_package(dist: Dist) -> None:
    files = wheel_files(dist)
    dist_info = f"{PACKAGE}-{dist.version}.dist-info/"
    assert {name for name in files if not name.startswith((f"{PACKAGE}/", dist_info))} == set()
    assert f"{dist_info}licenses/LICENSE" in files
    # Every module of the source tree, the emulator included, and the typing marker.
    for path in (REPO / PACKAGE).rglob("*.py"):
        assert str(path.relative_to(REPO)) in files, f"{path.relative_to(REPO)} is missing from the wheel"
    assert f"{PACKAGE}/py.typed" in files
    with zipfile.ZipFile(dist.wheel) as wheel:
        entry_points = wheel.read(f"{dist_info}entry_points.txt").decode()
    assert "[apache_airflow_provider]" in entry_points
    assert "provider_info = airflow_provider_ecoinvent.get_provider_info:get_provider_info" in entry_points


def test_the_version_is_defined_once_and_the_changelog_leads_with_it(dist: Dist) -> None:
    assert dist.version == __version__
    assert get_provider_info()["versions"][0] == __version__
    assert 'dynamic = ["version"]' in (REPO / "pyproject.toml").read_text()
    changelog = (REPO / "docs" / "CHANGELOG.md").read_text()
    first_release = re.search(r"^## (\S+)", changelog, flags=re.MULTILINE)
    assert first_release is not None
    assert first_release.group(1) == __version__, "docs/CHANGELOG.md must start with the release being prepared"


def test_the_licence_metadata_is_what_pypi_accepts(dist: Dist) -> None:
    with zipfile.ZipFile(dist.wheel) as wheel:
        metadata = wheel.read(f"{PACKAGE}-{dist.version}.dist-info/METADATA").decode().splitlines()
    assert "License-Expression: Apache-2.0" in metadata
    assert "License-File: LICENSE" in metadata
    # PEP 639: PyPI refuses an upload that also carries a "License ::" classifier.
    assert [line for line in metadata if line.startswith("Classifier: License ::")] == []


def test_the_licence_is_the_full_apache_2_text() -> None:
    text = (REPO / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License\n                           Version 2.0, January 2004")
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert 'license = "Apache-2.0"' in (REPO / "pyproject.toml").read_text()
