"""The distributions as users get them: built once per test process, installed into a fresh virtualenv.

Building runs ``uv build`` (the sdist, then the wheel from the unpacked sdist, as ``make dist`` does);
installing uses the uv that ``make`` puts in ``.venv``, constrained to the versions already in this
environment so that every dependency comes from uv's cache, offline: the new environment differs from this
one only in how our package got there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Mapping

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "airflow_provider_ecoinvent"


def uv() -> str:
    """The uv ``make`` installs: next to this interpreter, else in the main ``.venv`` (``make test-lowest``
    runs from ``.venv-lowest``, which ``make`` builds with the main venv's uv), else one on ``PATH``."""
    for candidate in (Path(sys.executable).with_name("uv"), REPO / ".venv" / "bin" / "uv"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("uv")
    if found is None:
        pytest.fail("uv is needed to build and install the distributions: run `make test`, which installs it")
    return found


def run(
    args: list[str], *, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure, fail the test with its output (not a bare CalledProcessError)."""
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


@dataclass(frozen=True)
class Dist:
    """The built sdist and wheel."""

    sdist: Path
    wheel: Path

    @property
    def version(self) -> str:
        with zipfile.ZipFile(self.wheel) as wheel:
            metadata = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
            lines = wheel.read(metadata).decode().splitlines()
        return next(line.split(": ", 1)[1] for line in lines if line.startswith("Version: "))


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    out = tmp_path_factory.mktemp("dist")
    run([uv(), "build", "--quiet", "--out-dir", str(out), str(REPO)], cwd=out)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return Dist(sdist=sdist, wheel=wheel)


@dataclass(frozen=True)
class InstalledWheel:
    """A virtualenv with only the wheel (and its dependencies) installed, and a work directory outside
    the repository to run commands from, so nothing can import the source tree."""

    venv: Path
    workdir: Path
    airflow_home: Path
    dags: Path

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    @property
    def airflow(self) -> str:
        return str(self.venv / "bin" / "airflow")

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A clean environment: this venv first on PATH, no PYTHONPATH, a throw-away Airflow home."""
        keep = ("HOME", "LANG", "LC_ALL", "TMPDIR", "UV_CACHE_DIR", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL")
        env = {name: os.environ[name] for name in keep if name in os.environ}
        env.update(
            PATH=os.pathsep.join([str(self.venv / "bin"), "/usr/local/bin", "/usr/bin", "/bin"]),
            VIRTUAL_ENV=str(self.venv),
            AIRFLOW_HOME=str(self.airflow_home),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_FOLDER=str(self.dags),
            PYTHONUNBUFFERED="1",
        )
        env.update(extra or {})
        return env

    def run(
        self, args: list[str], *, extra_env: Mapping[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return run(args, cwd=self.workdir, env=self.env(extra_env), timeout=timeout)


@pytest.fixture(scope="session")
def installed_wheel(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> InstalledWheel:
    root = tmp_path_factory.mktemp("installed-wheel")
    installed = InstalledWheel(
        venv=root / "venv", workdir=root / "work", airflow_home=root / "airflow", dags=root / "dags"
    )
    for folder in (installed.workdir, installed.airflow_home, installed.dags):
        folder.mkdir()
    run([uv(), "venv", "--quiet", "--python", sys.executable, str(installed.venv)], cwd=root)
    frozen = run([uv(), "pip", "freeze", "--exclude-editable", "--python", sys.executable], cwd=root).stdout
    constraints = root / "constraints.txt"
    constraints.write_text(frozen)
    install = [uv(), "pip", "install", "--quiet", "--python", installed.python, "--constraint", str(constraints)]
    # uv's cache holds every pinned version (uv installed them into this environment), so no network is
    # needed; a machine whose cache was cleared since falls back to the package index.
    offline = subprocess.run([*install, "--offline", str(dist.wheel)], cwd=root, capture_output=True, check=False)
    if offline.returncode != 0:
        run([*install, str(dist.wheel)], cwd=root)
    return installed
