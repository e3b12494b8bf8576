"""Shared test set-up: a throw-away Airflow home, the emulator, and an ``ecoinvent_default`` connection.

Airflow reads its configuration when first imported, so the environment is prepared here, before any
test module imports ``airflow``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
# The reliability suite's fault table, shared by every pytest-xdist worker: this module is loaded before
# the workers start, so they inherit the controller's path (setdefault keeps it in each worker).
os.environ.setdefault("ECOINVENT_FAULT_TABLE_FILE", str(_HOME / "fault-table.jsonl"))

import pytest  # noqa: E402

from airflow_provider_ecoinvent.emulator import EmulatorServer  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow.sdk import DAG


def pytest_configure(config: pytest.Config) -> None:
    """Under ``make`` (ECOINVENT_SKIP_POLICY set), a skip not listed in tests/skip_policy.py fails the run."""
    spec = importlib.util.spec_from_file_location("ecoinvent_skip_policy", Path(__file__).with_name("skip_policy.py"))
    assert spec is not None
    assert spec.loader is not None
    policy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(policy)
    policy.register(config)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print the reliability suite's fault table once, on the controller, with the rows of every worker.

    It lives here because under pytest-xdist only the workers load tests/reliability/conftest.py.
    """
    if hasattr(config, "workerinput"):
        return
    path = Path(os.environ["ECOINVENT_FAULT_TABLE_FILE"])
    if not path.exists():
        return
    found = [tuple(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]
    path.unlink()
    rows = [("fault", "expected", "observed", "attempts", "elapsed"), *sorted(found)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    terminalreporter.write_sep("=", "ecoinvent reliability: fault table")
    terminalreporter.write_line("\n".join(lines))


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
    from airflow_provider_ecoinvent._client.tokens import TOKEN_CACHE

    TOKEN_CACHE.clear()
    yield
    TOKEN_CACHE.clear()


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the metadata database of the throw-away Airflow home once per test session (~10 s)."""
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, timeout=300)
    return _HOME


def _airflow_older_than(version: str) -> bool:
    from airflow import __version__
    from packaging.version import Version

    return Version(__version__) < Version(version)


# Airflow 3.1's in-process dag.test() runner has three bugs that later versions fixed; the harness works
# around them the way the fixes do, so that the tests themselves are the same on every version.
_AIRFLOW_3_1_DAG_TEST = _airflow_older_than("3.2")


def _serialize_dag_file(path: Path) -> None:
    """Airflow 3.1: dag.test() needs the DAG in the metadata DB (apache/airflow#56657), as the CLI writes it."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.models.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    dagbag = DagBag(dag_folder=path, bundle_path=_DAGS, include_examples=False)
    assert not dagbag.import_errors, dagbag.import_errors
    sync_bag_to_db(dagbag, "dags-folder", None)


def _patch_airflow_3_1_in_process_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    """Airflow 3.1's in-process runner: failure callbacks get no ``exception``, reschedules a text date."""
    from airflow.sdk.api.client import TaskInstanceOperations
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import TaskRescheduleStartDate

    finalize = task_runner.finalize

    def finalize_with_exception(ti: Any, state: Any, context: Any, log: Any, error: Any = None) -> Any:
        context["exception"] = error  # what the real task runner (task_runner.main) does
        return finalize(ti, state, context, log, error)

    def get_reschedule_start_date(self: Any, id: Any, try_number: int = 1) -> Any:
        response = self.client.get(f"task-reschedules/{id}/start_date", params={"try_number": try_number})
        return TaskRescheduleStartDate(start_date=response.json())  # validated: a datetime, not a string

    monkeypatch.setattr(task_runner, "finalize", finalize_with_exception)
    monkeypatch.setattr(TaskInstanceOperations, "get_reschedule_start_date", get_reschedule_start_date)


@pytest.fixture
def write_dag(airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], DAG]:
    """Write a DAG file into the DAGs folder and return its ``dag`` object, ready for ``dag.test()``.

    ``dag.test()`` only runs DAGs that Airflow can find in its DAGs folder, so test DAGs are real files.
    """
    if _AIRFLOW_3_1_DAG_TEST:
        _patch_airflow_3_1_in_process_runner(monkeypatch)

    def write(name: str, source: str) -> DAG:
        path = _DAGS / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        spec = importlib.util.spec_from_file_location(f"test_dag_{name}", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        dag: DAG = module.dag
        if _AIRFLOW_3_1_DAG_TEST:
            _serialize_dag_file(path)
        return dag

    return write
