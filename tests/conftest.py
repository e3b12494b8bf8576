"""Shared test set-up: a throw-away Airflow home, the emulator, and an ``ecoinvent_default`` connection.

Airflow reads its configuration when first imported, so the environment is prepared here, before any
test module imports ``airflow``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

_HOME = Path(tempfile.mkdtemp(prefix="ecoinvent-airflow-home-"))
_DAGS = _HOME / "dags"
_DAGS.mkdir()
os.environ.update(
    AIRFLOW_HOME=str(_HOME),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__CORE__DAGS_FOLDER=str(_DAGS),
    AIRFLOW__CORE__UNIT_TEST_MODE="False",
)
os.environ.pop("AIRFLOW_CONN_ECOINVENT_DEFAULT", None)

import pytest  # noqa: E402

from airflow_provider_ecoinvent.emulator import EmulatorServer  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow.sdk import DAG


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    """A fresh emulator on a free loopback port, in this process (fast to start, ~ms)."""
    with EmulatorServer() as server:
        yield server


@pytest.fixture
def ecoinvent_conn(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    """``ecoinvent_default`` pointing at the emulator, the way users configure it (env var, JSON form)."""
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", emulator.connection_json())
    return emulator


@pytest.fixture(autouse=True)
def _fresh_token_cache() -> Iterator[None]:
    """Tokens are cached per process; every test starts without one so that token counts are exact."""
    from airflow_provider_ecoinvent._tokens import TOKEN_CACHE

    TOKEN_CACHE.clear()
    yield
    TOKEN_CACHE.clear()


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the metadata database of the throw-away Airflow home once per test session (~10 s)."""
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, timeout=300)
    return _HOME


@pytest.fixture
def write_dag(airflow_db: Path) -> Callable[[str, str], DAG]:
    """Write a DAG file into the DAGs folder and return its ``dag`` object, ready for ``dag.test()``.

    ``dag.test()`` only runs DAGs that Airflow can find in its DAGs folder, so test DAGs are real files.
    """

    def write(name: str, source: str) -> DAG:
        path = _DAGS / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        spec = importlib.util.spec_from_file_location(f"test_dag_{name}", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        dag: DAG = module.dag
        return dag

    return write
