"""The built wheel, installed into a fresh virtualenv, works the way users run it.

Every command runs from a directory outside the repository with that virtualenv's interpreter and no
``PYTHONPATH``, so a module missing from the wheel, an import that only works from the repo root, or a
wrong entry point fails here. The example DAG runs under ``airflow dags test`` against an emulator started
from the installed package, and its output is checked for Airflow's short-secret masking warning.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.emulator.control import EmulatorControl, parse_startup_line

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .conftest import Dist, InstalledWheel

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DAG = REPO / "example_dags" / "ecoinvent_ingest_datasets.py"
SHORT_SECRET_WARNING = "Skipping masking for a secret as it's too short"


def json_document(output: str) -> Any:
    """The JSON in an ``airflow ... -o json`` output (Airflow may print warnings before it)."""
    starts = [i for i in (output.find("["), output.find("{")) if i >= 0]
    return json.loads(output[min(starts) :])


def test_the_package_is_imported_from_the_new_virtualenv(installed_wheel: InstalledWheel, dist: Dist) -> None:
    script = "import airflow_provider_ecoinvent as p, sys; print(p.__file__); print(p.__version__); print(sys.path)"
    lines = installed_wheel.run([installed_wheel.python, "-c", script]).stdout.splitlines()
    module_file = Path(lines[0]).resolve()
    assert module_file.is_relative_to(installed_wheel.venv.resolve()), module_file
    assert "site-packages" in module_file.parts
    assert lines[1] == dist.version
    assert str(REPO) not in lines[2], "the source tree is on sys.path"


def test_airflow_lists_the_provider_with_its_version(installed_wheel: InstalledWheel, dist: Dist) -> None:
    output = installed_wheel.run([installed_wheel.airflow, "providers", "list", "-o", "json"]).stdout
    ours = [p for p in json_document(output) if p["package_name"] == "airflow-provider-ecoinvent"]
    assert [p["version"] for p in ours] == [dist.version]


def test_airflow_shows_the_connection_type(installed_wheel: InstalledWheel) -> None:
    command = [installed_wheel.airflow, "providers", "get", "--full", "-o", "json", "airflow-provider-ecoinvent"]
    (info,) = json_document(installed_wheel.run(command).stdout)
    (connection_type,) = info["connection-types"]
    assert connection_type["connection-type"] == "ecoinvent"
    assert connection_type["hook-class-name"] == "airflow_provider_ecoinvent.hooks.ecoinvent.EcoinventHook"
    assert connection_type["ui-field-behaviour"]["relabeling"]["password"] == "Client secret"


def test_the_emulator_module_runs(installed_wheel: InstalledWheel) -> None:
    result = installed_wheel.run([installed_wheel.python, "-m", "airflow_provider_ecoinvent.emulator", "--help"])
    assert result.stdout.startswith("usage: ")
    assert "--port" in result.stdout


@contextlib.contextmanager
def emulator_from(installed_wheel: InstalledWheel, log_dir: Path) -> Iterator[dict[str, str]]:
    """Start ``python -m airflow_provider_ecoinvent.emulator`` from the installed package; yield the
    environment lines it prints (base URL, connection), and stop it afterwards."""
    out, err = log_dir / "emulator.out", log_dir / "emulator.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [installed_wheel.python, "-m", "airflow_provider_ecoinvent.emulator", "--port", "0", "--datasets", "5000"],
            cwd=installed_wheel.workdir,
            env=installed_wheel.env(),
            stdout=stdout,
            stderr=stderr,
        )
    try:
        lines: dict[str, str] = {}
        deadline = time.monotonic() + 240  # a hang detector, not a speed claim: CI machines are busy
        while "AIRFLOW_CONN_ECOINVENT_DEFAULT" not in lines:
            assert process.poll() is None, f"the emulator exited: {err.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"the emulator did not start: {err.read_text()[-2000:]}"
            time.sleep(0.1)
            # The `export KEY='value'` lines a user pastes into a shell, read the way the emulator's own tools do.
            lines = dict(filter(None, map(parse_startup_line, out.read_text().splitlines())))
        yield lines
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def dag_run(installed_wheel: InstalledWheel, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the ingestion example DAG with ``airflow dags test``, once, against an installed emulator."""
    work = tmp_path_factory.mktemp("dag-runs")
    output = work / "output"
    shutil.copy(EXAMPLE_DAG, installed_wheel.dags / EXAMPLE_DAG.name)
    with emulator_from(installed_wheel, work) as emulator:
        env = {
            "AIRFLOW_CONN_ECOINVENT_DEFAULT": emulator["AIRFLOW_CONN_ECOINVENT_DEFAULT"],
            "ECOINVENT_OUTPUT_ROOT": f"file://{output}",
        }
        airflow = installed_wheel.airflow
        installed_wheel.run([airflow, "db", "migrate"], extra_env=env)
        installed_wheel.run([airflow, "pools", "set", "ecoinvent_api", "4", "ecoinvent API calls"], extra_env=env)
        run = installed_wheel.run([airflow, "dags", "test", "ecoinvent_ingest_datasets"], extra_env=env)
        stats = EmulatorControl(emulator["ECOINVENT_EMULATOR_BASE_URL"]).stats()
    return {"log": run.stdout + run.stderr, "output": output, "stats": stats}


def test_the_example_dag_runs_to_success_with_the_installed_package(dag_run: dict[str, Any]) -> None:
    log = dag_run["log"]
    assert "state=success" in log
    assert "state=failed" not in log
    (written,) = (dag_run["output"] / "scored").rglob("*.jsonl")
    records = [json.loads(line) for line in written.read_text().splitlines()]
    assert len(records) == 250
    assert all(len(record["impact_scores"]) == 3 for record in records)
    # The emulator's own ledger: exactly the 250 datasets written were billed, for the 3 indicators.
    usage = dag_run["stats"]["usage"]["emulator-client"]
    assert (usage["datasets"], usage["indicators"]) == (250, 3)
    assert any(agent.startswith("airflow-provider-ecoinvent/") for agent in dag_run["stats"]["user_agents"])


def test_the_run_logs_no_masking_warning(dag_run: dict[str, Any]) -> None:
    """Reading our connection does not make Airflow's masker warn about a short "secret" (it did for
    ``api_prefix = "/v0"``). That the secret is still masked in real task logs is the stack suite's
    test_task_log_masks_secret_and_token (``airflow dags test`` prints task logs unredacted)."""
    assert "Obtained an ecoinvent access token" in dag_run["log"]  # the task log is in this output
    assert SHORT_SECRET_WARNING not in dag_run["log"]
