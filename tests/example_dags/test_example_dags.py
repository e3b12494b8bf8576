"""The example DAGs load cleanly and run to success under ``airflow dags test`` against the emulator."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.emulator import EmulatorServer

if TYPE_CHECKING:
    from collections.abc import Callable

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "example_dags"
AIRFLOW = Path(sys.executable).with_name("airflow")
EXAMPLE_DAG_IDS = [
    "ecoinvent_full_release",
    "ecoinvent_ingest_datasets",
    "ecoinvent_list_indicators",
    "ecoinvent_new_release",
    "ecoinvent_release_watcher",
    "ecoinvent_system_models",
    "ecoinvent_to_postgres",
]


def test_dagbag_loads_examples_without_errors_or_warnings() -> None:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=str(EXAMPLES))  # examples off: AIRFLOW__CORE__LOAD_EXAMPLES=False
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == EXAMPLE_DAG_IDS
    ours = [str(w.message) for w in caught if "example_dags" in str(w.filename) or "ecoinvent" in str(w.filename)]
    assert ours == []


def jsonl_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.integration
def test_ingest_datasets_example(run_example: Callable[..., Any], tmp_path: Path) -> None:
    with EmulatorServer(datasets=5000) as emulator:
        run_example("ecoinvent_ingest_datasets", emulator, tmp_path)
        stats = emulator.stats()
    files = list((tmp_path / "scored").rglob("*.jsonl"))
    assert len(files) == 1
    records = jsonl_records(files[0])
    assert 0 < len(records) <= 250
    assert [r["id"] for r in records] == sorted(r["id"] for r in records)
    assert all(len(r["impact_scores"]) == 3 for r in records)
    # Selected by name: IPCC 2021 GWP100, EF v3.1 water use, ReCiPe midpoint (H) land use.
    assert all([s["id"] for s in r["impact_scores"]] == [1, 22, 28] for r in records)
    assert stats["usage"][emulator.client_id]["datasets"] == len(records)
    assert stats["requests"]["POST /datasets/batch"] == -(-len(records) // 100)
    assert stats["token_requests"] == 1, "one token for the whole run: the tasks share this process"


@pytest.mark.integration
def test_list_indicators_example_writes_every_indicator(run_example: Callable[..., Any], tmp_path: Path) -> None:
    with EmulatorServer() as emulator:
        run_example("ecoinvent_list_indicators", emulator, tmp_path)
        stats = emulator.stats()
        # run_example pointed ecoinvent_default at this emulator, for the rest of the test.
        from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

        expected = EcoinventHook().get_indicators()
    files = list((tmp_path / "indicators").glob("*.jsonl"))
    assert len(files) == 1
    assert jsonl_records(files[0]) == expected
    assert stats["usage"].get(emulator.client_id, {}).get("datasets", 0) == 0, "listing indicators is free"


@pytest.mark.integration
def test_new_release_example_waits_for_a_release(run_example: Callable[..., Any], tmp_path: Path) -> None:
    """The deferrable sensor waits (its trigger runs inline) until the emulator publishes 3.12."""
    with EmulatorServer() as emulator:
        # Published once the sensor has looked twice and missed: counting polls, not seconds, keeps the test
        # independent of how long Airflow takes to parse the DAG and start the task.
        done = threading.Event()

        def publish_after_two_polls() -> None:
            while not done.wait(0.05):
                if emulator.stats()["requests"].get("GET /versions", 0) >= 2:
                    emulator.publish_version("3.12")
                    return

        publisher = threading.Thread(target=publish_after_two_polls, daemon=True)
        publisher.start()
        try:
            run_example(
                "ecoinvent_new_release",
                emulator,
                tmp_path,
                AIRFLOW_VAR_ECOINVENT_KNOWN_VERSION="3.11",
                ECOINVENT_WATCH_INTERVAL="1",
            )
        finally:
            done.set()
            publisher.join()
        polls = emulator.stats()["requests"]["GET /versions"]
    assert polls >= 3, "the sensor must have waited for the release, not found it at once"
    records = jsonl_records(tmp_path / "releases" / "3.12" / "steel.jsonl")
    assert records
    assert all("steel" in json.dumps(r).lower() for r in records)


@pytest.mark.integration
def test_release_watcher_example_manual_run(run_example: Callable[..., Any], tmp_path: Path) -> None:
    with EmulatorServer() as emulator:
        run_example("ecoinvent_release_watcher", emulator, tmp_path)
    assert jsonl_records(tmp_path / "releases" / "3.11" / "cement.jsonl")


@pytest.mark.integration
def test_system_models_example_maps_one_task_per_model(run_example: Callable[..., Any], tmp_path: Path) -> None:
    with EmulatorServer() as emulator:
        run_example("ecoinvent_system_models", emulator, tmp_path)
    files = sorted(path.stem for path in (tmp_path / "system_models").rglob("*.jsonl"))
    assert files == sorted(["cutoff", "apos", "consequential", "EN15804"])
    for path in (tmp_path / "system_models").rglob("*.jsonl"):
        assert len(jsonl_records(path)) == 100


@pytest.mark.integration
def test_make_demo_script(tmp_path: Path) -> None:
    """The README's main command, end to end under the real ``airflow dags test`` CLI: it must succeed,
    show the output and the DAG's summary, and leave no emulator running."""
    env = {**os.environ, "VENV": str(Path(sys.executable).parents[1]), "OUTPUT_DIR": str(tmp_path / "out")}
    env.pop("AIRFLOW_HOME", None)
    result = subprocess.run(
        ["bash", str(EXAMPLES / "demo.sh")], env=env, capture_output=True, text=True, timeout=600, cwd=REPO
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "demo: success" in result.stdout
    files = list((tmp_path / "out").rglob("*.jsonl"))
    assert len(files) == 1
    records = jsonl_records(files[0])
    assert records
    assert f"Wrote {len(records)} datasets" in result.stdout
    # The summary: an aligned table of the first records' scores, then the manifest's key figures.
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("dataset  activity"))
    assert lines[header].split() == ["dataset", "activity", "geography", "method", "indicator", "score", "unit"]
    first = records[0]
    score = first["impact_scores"][0]
    row = lines[header + 2]
    assert row.split()[0] == str(first["id"])
    assert first["activity"] in row
    assert score["method"] in row  # "land use" alone would not say which method's
    assert score["unit"] in row
    # Every indicator of the manifest, with its method and category.
    scored = {(s["id"], s["method"], s["category"], s["indicator"]) for r in records for s in r["impact_scores"]}
    assert len(scored) > 1
    for ident, method, category, indicator in scored:
        assert any(
            re.fullmatch(rf" +{ident} +{re.escape(f'{method} | {category} | {indicator}')}", line)
            or re.fullmatch(rf"  indicators +{ident} +{re.escape(f'{method} | {category} | {indicator}')}", line)
            for line in lines
        ), (ident, method)
    assert len({len(line) for line in lines[header + 1 : header + 4]}) <= 2  # aligned columns
    assert f"  records     {len(records)} ({len(records)} datasets, 0 requested ids missing)" in lines
    assert f"  file        file://{files[0]}" in lines
    # No warning from the tasks, and in particular not Airflow's short-secret masking warning.
    assert "Skipping masking" not in result.stdout + result.stderr
    assert "demo: the tasks logged these warnings" not in result.stdout
    # This demo's own emulator (other demos may run on the machine at the same time) is gone.
    started = re.search(r"^demo: emulator at \S+ \(pid (\d+)\)$", result.stdout, re.MULTILINE)
    assert started, result.stdout
    with pytest.raises(ProcessLookupError):
        os.kill(int(started.group(1)), 0)


def _load_examples(known_pools: set[str]) -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    return DagBag(dag_folder=str(EXAMPLES), known_pools=known_pools)


def _scheduler_pools() -> set[str]:
    """The pools the scheduler sees: a task whose pool is not among them is never scheduled (Airflow 3.1-3.3)."""
    from airflow.models.pool import Pool

    return set(Pool.slots_stats())


def test_examples_are_schedulable_where_the_ecoinvent_pool_does_not_exist(
    airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12: every example used the pool `ecoinvent_api`, which only the demo created; under a real
    scheduler their tasks waited for ever. Without ECOINVENT_POOL they use Airflow's `default_pool`."""
    monkeypatch.delenv("ECOINVENT_POOL", raising=False)
    pools = _scheduler_pools()
    assert "ecoinvent_api" not in pools
    bag = _load_examples(known_pools=pools)
    assert bag.import_errors == {}
    used = {task.pool for dag in bag.dags.values() for task in dag.tasks}
    assert used <= pools, f"tasks the scheduler would never run: pools {sorted(used - pools)}"
    assert bag.dag_warnings == set()


def test_examples_share_the_pool_named_by_ecoinvent_pool(airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.models.pool import Pool

    monkeypatch.setenv("ECOINVENT_POOL", "ecoinvent_api_test")
    Pool.create_or_update_pool("ecoinvent_api_test", 2, "ecoinvent API calls", include_deferred=False)
    try:
        bag = _load_examples(known_pools=_scheduler_pools())
        # Every task that calls the ecoinvent API; the warehouse load only talks to PostgreSQL.
        api_dags = [dag for dag_id, dag in bag.dags.items() if dag_id != "ecoinvent_to_postgres"]
        assert {task.pool for dag in api_dags for task in dag.tasks} == {"ecoinvent_api_test"}
        assert bag.dag_warnings == set()
    finally:
        Pool.delete_pool("ecoinvent_api_test")
