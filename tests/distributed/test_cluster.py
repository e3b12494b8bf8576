"""The provider on a production-shaped deployment, with the faults such a deployment has.

CeleryExecutor with two workers (``w1``, ``w2``), PostgreSQL, Redis and an S3 store (see ``conftest.py``).
The tests share one deployment and run in this file's order; each leaves it as it found it (both workers
up, the pool at its size, no emulator fault installed). Outcomes are read from the emulator's ledger, the
object store (boto3 against the S3 server) and the task instances in PostgreSQL, not from logs.
"""

from __future__ import annotations

import itertools
import json
import signal
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(900)]

INGEST_DAG = "ecoinvent_ingest_datasets"
SYSTEM_MODELS_DAG = "ecoinvent_system_models"
WAREHOUSE_DAG = "ecoinvent_to_postgres"
SLOW_DAG = "dist_slow_ingest"
SENSOR_DAG = "dist_versions_sensor"
POOL_DAG = "dist_pool_fanout"
POOL_DAG_MAX_IN_FLIGHT = 2
#: What ``dist_slow_ingest`` asks for: 200 datasets, batches of 25, indicators 1 and 2.
SLOW_DATASETS = list(range(1, 201))
SLOW_BATCHES = 8
#: The ``ecoinvent_api`` pool's size for the suite (``conftest.POOL_SLOTS``), restored after the pool test.
POOL_SLOTS = 2


# -- helpers ----------------------------------------------------------------------------------------


def workers_of(cluster: Cluster, dag_id: str, run_id: str, task_id: str) -> list[str]:
    return [row[4] for row in cluster.task_states(dag_id, run_id) if row[0] == task_id]


def run_key(run_id: str) -> str:
    """The ingestion example's file name for a run (its template replaces ``:`` and ``+``)."""
    return run_id.replace(":", "_").replace("+", "_") + ".jsonl"


def warehouse_rows(cluster: Cluster) -> list[tuple[Any, ...]]:
    with cluster.servers.pg_connect("warehouse") as connection, connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('ecoinvent_scores')")
        if cursor.fetchone()[0] is None:
            return []
        cursor.execute("SELECT * FROM ecoinvent_scores ORDER BY version, system_model, dataset_id, indicator_id")
        return list(cursor.fetchall())


def versions_polls(cluster: Cluster) -> int:
    requests: dict[str, int] = cluster.emulator.stats()["requests"]
    return sum(count for endpoint, count in requests.items() if endpoint.endswith("/versions"))


def load_after(cluster: Cluster, started: datetime) -> bool:
    """Whether a warehouse run queued after ``started`` succeeded and none is still to come (fails at once if
    one failed). Unpausing may first start a run for events of earlier ingestions: that one does not count
    as done while the one for this ingestion is queued or running."""
    runs = cluster.dag_runs_api(WAREHOUSE_DAG)
    assert not [r for r in runs if r["state"] == "failed"], runs
    if any(r["state"] in ("queued", "running") for r in runs):
        return False
    return any(r["state"] == "success" and datetime.fromisoformat(r["queued_at"]) >= started for r in runs)


def ingest_and_load(cluster: Cluster) -> tuple[str, list[dict[str, Any]]]:
    """One ingestion example run, then the warehouse run its asset event triggers; returns the records.

    The asset event comes with the ingestion task, before the ingestion run ends: the load may start first.
    """
    started = datetime.now(tz=UTC)
    run_id = cluster.trigger(INGEST_DAG)
    cluster.wait_for_run(INGEST_DAG, run_id)
    cluster.wait_for("the warehouse load the ingestion triggered", lambda: load_after(cluster, started))
    (key,) = [k for k in cluster.list_keys("out/scored/") if k.endswith(run_key(run_id))]
    return run_id, [json.loads(line) for line in cluster.read_key(key).splitlines() if line.strip()]


@pytest.fixture(scope="module")
def clean_slow_run(cluster: Cluster) -> dict[str, Any]:
    """A fault-free ``dist_slow_ingest`` run: its bytes and its billed work, the faults' reference."""
    cluster.emulator.reset()
    run_id = cluster.trigger(SLOW_DAG, {"output_uri": f"{cluster.output_root}/faults/clean.jsonl"})
    cluster.wait_for_run(SLOW_DAG, run_id)
    return {
        "bytes": cluster.read_key("out/faults/clean.jsonl"),
        "scored_calls": cluster.scored_calls(),
        "dataset_ids": cluster.usage()["dataset_ids"],
    }


# -- the example DAGs ---------------------------------------------------------------------------------


def test_ingestion_example_writes_to_s3_what_was_billed(cluster: Cluster) -> None:
    cluster.emulator.reset()
    run_id = cluster.trigger(INGEST_DAG)
    cluster.wait_for_run(INGEST_DAG, run_id)

    keys = [k for k in cluster.list_keys("out/scored/") if k.endswith(run_key(run_id))]
    assert len(keys) == 1, cluster.list_keys()
    records = [json.loads(line) for line in cluster.read_key(keys[0]).splitlines() if line.strip()]
    billed = cluster.usage()
    assert records, "the ingestion wrote an empty file"
    assert sorted(r["id"] for r in records) == billed["dataset_ids"]
    # The example selects its indicators by name; they resolve to these ids in the emulator's catalogue.
    assert billed["indicator_ids"] == [1, 22, 28]
    assert all([s["id"] for s in r["impact_scores"]] == [1, 22, 28] for r in records)
    assert cluster.partial_keys() == []
    hosts = {row[4] for row in cluster.task_states(INGEST_DAG, run_id)}
    assert hosts <= {"w1", "w2"}, hosts


def test_system_models_fan_out_runs_on_both_workers(cluster: Cluster) -> None:
    # Slow batches keep two mapped tasks running at once; each worker runs one task at a time.
    cluster.emulator.add_fault("latency", path="/datasets/batch", ms=400, count=None)
    try:
        run_id = cluster.trigger(SYSTEM_MODELS_DAG)
        cluster.wait_for_run(SYSTEM_MODELS_DAG, run_id)
    finally:
        cluster.emulator.clear_faults()

    mapped = [row for row in cluster.task_states(SYSTEM_MODELS_DAG, run_id) if row[0] == "score_per_system_model"]
    assert len(mapped) >= 2, mapped
    assert {row[2] for row in mapped} == {"success"}, mapped
    assert {row[4] for row in mapped} == {"w1", "w2"}, f"the mapped tasks did not use both workers: {mapped}"
    # One file per system model, under this run's day (unpausing also started a scheduled run: other days).
    day = cluster.api(f"/api/v2/dags/{SYSTEM_MODELS_DAG}/dagRuns/{run_id}")["run_after"][:10]
    latest = cluster.emulator.stats()["latest"]
    files = cluster.list_keys(f"out/system_models/{day}/{latest}/")
    assert len(files) == len(mapped), files
    assert all(cluster.read_key(key) for key in files), "an empty output file"
    assert cluster.partial_keys("out/system_models/") == []


# -- warehouse hand-off -----------------------------------------------------------------------------


def test_warehouse_load_is_idempotent_and_adds_new_versions(cluster: Cluster) -> None:
    cluster.api(f"/api/v2/dags/{WAREHOUSE_DAG}", method="PATCH", body={"is_paused": False})
    version = cluster.emulator.stats()["latest"]
    _, records = ingest_and_load(cluster)
    first = warehouse_rows(cluster)
    expected = {(version, "cutoff", r["id"], s["id"]) for r in records for s in r["impact_scores"]}
    assert {row[:4] for row in first} == expected
    assert len(first) == len(expected), "a (version, system model, dataset, indicator) appears twice"

    # The same release ingested again: a new file, the same rows; the table does not change at all.
    ingest_and_load(cluster)
    assert warehouse_rows(cluster) == first

    # A new release: its rows are added, the old ones stay as they were.
    new_version = "3.14"
    cluster.emulator.publish_version(new_version)
    _, new_records = ingest_and_load(cluster)
    after = warehouse_rows(cluster)
    added = [row for row in after if row[0] == new_version]
    assert [row for row in after if row[0] != new_version] == first
    assert {row[:4] for row in added} == {
        (new_version, "cutoff", r["id"], s["id"]) for r in new_records for s in r["impact_scores"]
    }


# -- faults -----------------------------------------------------------------------------------------


def test_deferred_sensor_survives_a_triggerer_restart(cluster: Cluster) -> None:
    version = "3.15"
    run_id = cluster.trigger(SENSOR_DAG, {"version": version})
    cluster.wait_for(
        "the sensor to defer", lambda: any(r[2] == "deferred" for r in cluster.task_states(SENSOR_DAG, run_id))
    )

    cluster.restart_component("triggerer")
    polls = versions_polls(cluster)
    cluster.wait_for("the restarted triggerer to poll /versions again", lambda: versions_polls(cluster) >= polls + 2)
    assert cluster.run_state(SENSOR_DAG, run_id) == "running"

    cluster.emulator.publish_version(version)
    cluster.wait_for_run(SENSOR_DAG, run_id)
    (row,) = cluster.task_states(SENSOR_DAG, run_id)
    assert row[2:4] == ("success", 1), row  # resumed, not failed and retried
    xcom = cluster.ti_query(
        "SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND key = 'return_value'", SENSOR_DAG, run_id
    )
    value = xcom[0][0]
    assert (json.loads(value) if isinstance(value, str) else value)["version"] == version


def test_pool_caps_api_concurrency_across_both_workers(cluster: Cluster) -> None:
    slots = 1  # fewer slots than the workers have: only the pool can hold the second worker back
    cluster.set_pool(slots)
    cluster.emulator.reset()  # restarts the max_in_flight high-water mark (and removes every fault)
    cluster.emulator.add_fault("latency", path="/datasets/batch", ms=300, count=None)
    try:
        run_id = cluster.trigger(POOL_DAG, {"output_root": f"{cluster.output_root}/pool"})
        cluster.wait_for_run(POOL_DAG, run_id)
        observed = cluster.emulator.stats()["max_in_flight"]
    finally:
        cluster.emulator.clear_faults()
        cluster.set_pool(POOL_SLOTS)

    assert observed <= slots * POOL_DAG_MAX_IN_FLIGHT, observed
    assert observed == POOL_DAG_MAX_IN_FLIGHT, f"one task alone should reach its own limit; saw {observed}"
    spans = cluster.ti_query(
        "SELECT start_date, end_date, hostname FROM task_instance WHERE dag_id = %s AND run_id = %s"
        " ORDER BY start_date",
        POOL_DAG,
        run_id,
    )
    assert len(spans) == 4, spans
    for earlier, later in itertools.pairwise(spans):
        assert earlier[1] <= later[0], f"two tasks of a 1-slot pool overlapped: {spans}"
    assert len(cluster.list_keys("out/pool/")) == 4


def test_failed_task_leaves_nothing_on_s3(cluster: Cluster) -> None:
    """Every try fails mid-write (the API refuses the 4th batch on): no object at the key, no temporary one."""
    cluster.emulator.reset()
    cluster.emulator.add_fault("status", status=403, path="/datasets/batch", after=3, count=None)
    try:
        run_id = cluster.trigger(SLOW_DAG, {"output_uri": f"{cluster.output_root}/faults/failed.jsonl"})
        cluster.wait_for("the run to fail", lambda: cluster.run_state(SLOW_DAG, run_id) == "failed", timeout=300)
    finally:
        cluster.emulator.clear_faults()
    (row,) = cluster.task_states(SLOW_DAG, run_id)
    assert row[2:4] == ("failed", 3), row  # the first try and both retries
    assert cluster.scored_calls() >= 3, "the tries never reached the write"
    assert "out/faults/failed.jsonl" not in cluster.list_keys("out/faults/")
    assert cluster.partial_keys("out/faults/") == []


def test_killed_worker_task_is_retried_on_the_other_worker(cluster: Cluster, clean_slow_run: dict[str, Any]) -> None:
    key = "out/faults/killed.jsonl"
    cluster.emulator.reset()
    cluster.emulator.add_fault("latency", path="/datasets/batch", ms=1500, count=None)
    try:
        run_id = cluster.trigger(SLOW_DAG, {"output_uri": f"{cluster.output_root}/faults/killed.jsonl"})
        victim = cluster.wait_for("the task to run", lambda: cluster.running_on(SLOW_DAG, run_id))
        cluster.wait_for("the task to be mid-write", lambda: cluster.scored_calls() >= 2, every=0.3)
        cluster.kill_component(victim, signal.SIGKILL)
        assert key not in cluster.list_keys("out/faults/"), "a killed task's output is visible"
    finally:
        cluster.emulator.clear_faults()
    try:
        cluster.wait_for_run(SLOW_DAG, run_id, timeout=300)
        (row,) = cluster.task_states(SLOW_DAG, run_id)
        survivor = ({"w1", "w2"} - {victim}).pop()
        assert row[2:5] == ("success", 2, survivor), row
        history = cluster.ti_query(
            "SELECT try_number, hostname, state FROM task_instance_history WHERE dag_id = %s AND run_id = %s",
            SLOW_DAG,
            run_id,
        )
        assert [(h[0], h[1]) for h in history] == [(1, victim)], history
        assert cluster.read_key(key) == clean_slow_run["bytes"], "the retried output differs from a clean run's"
        assert cluster.partial_keys("out/faults/") == [], "a temporary object was left behind"
    finally:
        cluster.start_component(victim)
        cluster.wait_for_workers()


def test_scheduler_restart_mid_run_bills_nothing_twice(cluster: Cluster, clean_slow_run: dict[str, Any]) -> None:
    key = "out/faults/scheduler.jsonl"
    cluster.emulator.reset()
    cluster.emulator.add_fault("latency", path="/datasets/batch", ms=800, count=None)
    try:
        run_id = cluster.trigger(SLOW_DAG, {"output_uri": f"{cluster.output_root}/faults/scheduler.jsonl"})
        cluster.wait_for("the task to run", lambda: cluster.running_on(SLOW_DAG, run_id))
        cluster.wait_for("the task to be mid-write", lambda: cluster.scored_calls() >= 1, every=0.3)
        cluster.restart_component("scheduler", signal.SIGKILL)
    finally:
        cluster.emulator.clear_faults()
    cluster.wait_for_run(SLOW_DAG, run_id)

    (row,) = cluster.task_states(SLOW_DAG, run_id)
    assert row[2:4] == ("success", 1), row  # the running task was adopted, not run again
    assert cluster.scored_calls() == clean_slow_run["scored_calls"] == SLOW_BATCHES
    assert cluster.usage()["dataset_ids"] == clean_slow_run["dataset_ids"] == SLOW_DATASETS
    assert cluster.read_key(key) == clean_slow_run["bytes"]


def test_secrets_stay_masked_in_both_workers_task_logs(cluster: Cluster) -> None:
    for worker, folder in cluster.worker_logs.items():
        assert list(folder.rglob("*.log")), f"{worker} wrote no task log: the scan below would prove nothing"
    task_text = "\n".join(p.read_text(errors="replace") for p in cluster.task_logs(INGEST_DAG))
    assert "Obtained an ecoinvent access token" in task_text  # tokens were obtained, so there was one to leak

    found = cluster.leaks()
    assert not found, "credentials in the logs:\n" + "\n".join(found)
