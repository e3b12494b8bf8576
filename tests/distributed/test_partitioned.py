"""Partitioned output (an ``output_uri`` ending with ``/``) on the distributed deployment, with a crash.

Runs after ``test_cluster.py`` on the same deployment (see ``conftest.py``). Both DAGs of
``dags/dist_partitioned.py`` send one request (200 datasets, 8 parts of 25, flat Parquet, one scored call
per part); a fault-free unsharded run is the reference every other run is compared with, object by object.
Outcomes are read from the emulator's ledger, the object store and the task instances in PostgreSQL.
"""

from __future__ import annotations

import json
import signal
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(900)]

INGEST_DAG = "dist_partitioned_ingest"
FANOUT_DAG = "dist_partitioned_fanout"
#: What both DAGs ask for (``dags/dist_partitioned.py``): ids 1-200 in parts of 25, batches of 25.
DATASETS = list(range(1, 201))
PARTITION_SIZE = 25
PARTS = 8
SHARDS = 4
#: The DAGs' ``max_in_flight``: at most this many scored calls (so parts) are in flight when a worker dies.
MAX_IN_FLIGHT = 2


# -- helpers ----------------------------------------------------------------------------------------


def directory(cluster: Cluster, name: str) -> tuple[str, str]:
    """The ``output_uri`` of a run writing to ``name`` (a directory: trailing ``/``) and its key prefix."""
    return f"{cluster.output_root}/partitioned/{name}/", f"out/partitioned/{name}/"


def relative_keys(cluster: Cluster, prefix: str) -> list[str]:
    return [key[len(prefix) :] for key in cluster.list_keys(prefix)]


def part_names(cluster: Cluster, prefix: str) -> list[str]:
    """The data files of the directory (what pyarrow.dataset, DuckDB and Spark read)."""
    return [name for name in relative_keys(cluster, prefix) if PurePosixPath(name).name.startswith("part-")]


def part_objects(cluster: Cluster, prefix: str) -> dict[str, bytes]:
    return {name: cluster.read_key(prefix + name) for name in part_names(cluster, prefix)}


def manifest(cluster: Cluster, prefix: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(cluster.read_key(prefix + "_manifest.json"))
    return found


def ids_of(parts: list[dict[str, Any]], names: set[str]) -> list[int]:
    """The requested dataset ids that the named parts hold (from the manifest's ids ranges)."""
    ranges = [(p["first_dataset_id"], p["last_dataset_id"]) for p in parts if p["name"] in names]
    return [i for i in DATASETS if any(first <= i <= last for first, last in ranges)]


def names(value: list[Any]) -> set[str]:
    """Part names from a manifest list (of names, or of part entries)."""
    return {item["name"] if isinstance(item, dict) else str(item) for item in value}


def assert_same_dataset(cluster: Cluster, prefix: str, reference: dict[str, Any]) -> dict[str, Any]:
    """The directory holds the reference's parts byte for byte, its manifest (same fingerprint, same part
    entries) and an empty ``_SUCCESS``, and no temporary object; returns the directory's manifest."""
    assert part_objects(cluster, prefix) == reference["parts"], "the parts differ from a fault-free run's"
    found = manifest(cluster, prefix)
    assert found["fingerprint"] == reference["manifest"]["fingerprint"]
    assert found["parts"] == reference["manifest"]["parts"]
    assert (found["record_count"], found["datasets_written"]) == (
        reference["manifest"]["record_count"],
        reference["manifest"]["datasets_written"],
    )
    assert cluster.read_key(prefix + "_SUCCESS") == b""
    assert cluster.partial_keys(prefix) == [], "a temporary object was left behind"
    return found


@pytest.fixture(scope="module")
def clean_dataset(cluster: Cluster) -> dict[str, Any]:
    """A fault-free unsharded run: the reference objects, manifest and billed work."""
    uri, prefix = directory(cluster, "clean")
    cluster.emulator.reset()
    run_id = cluster.trigger(INGEST_DAG, {"output_uri": uri})
    cluster.wait_for_run(INGEST_DAG, run_id)
    reference = {
        "parts": part_objects(cluster, prefix),
        "manifest": manifest(cluster, prefix),
        "scored_calls": cluster.scored_calls(),
        "dataset_ids": cluster.usage()["dataset_ids"],
    }
    assert len(reference["parts"]) == PARTS, sorted(reference["parts"])
    assert names(reference["manifest"]["parts"]) == set(reference["parts"])
    assert reference["scored_calls"] == PARTS  # one call per part: the crash test counts parts by calls
    assert reference["dataset_ids"] == DATASETS
    assert cluster.read_key(prefix + "_SUCCESS") == b""
    return reference


# -- fan-out ----------------------------------------------------------------------------------------


def test_fanned_out_shards_run_on_both_workers_and_the_commit_publishes_the_dataset(
    cluster: Cluster, clean_dataset: dict[str, Any]
) -> None:
    uri, prefix = directory(cluster, "fanout")
    cluster.emulator.reset()
    # Slow batches keep two shards running at once; each worker runs one task at a time.
    cluster.emulator.add_fault("latency", path="/datasets/batch", ms=500, count=None)
    try:
        run_id = cluster.trigger(FANOUT_DAG, {"output_uri": uri})
        cluster.wait_for_run(FANOUT_DAG, run_id)
    finally:
        cluster.emulator.clear_faults()

    rows = cluster.task_states(FANOUT_DAG, run_id)
    shards = [row for row in rows if row[0] == "score_shard"]
    assert [row[1] for row in shards] == list(range(SHARDS)), rows
    assert {row[2] for row in shards} == {"success"}, rows
    assert {row[4] for row in shards} == {"w1", "w2"}, f"the shards did not run on both workers: {rows}"
    (commit,) = [row for row in rows if row[0] == "commit"]
    assert commit[2] == "success", rows

    # Every shard recorded its share; the commit verified them and published the dataset.
    keys = relative_keys(cluster, prefix)
    assert [k for k in keys if k.startswith("_shards/")] == [
        f"_shards/shard-{index:05d}-of-{SHARDS:05d}.json" for index in range(SHARDS)
    ], keys
    assert_same_dataset(cluster, prefix, clean_dataset)
    # The shards together fetched each part once, like one task would.
    assert cluster.scored_calls() == PARTS
    assert cluster.usage()["dataset_ids"] == DATASETS


# -- a worker killed between parts -------------------------------------------------------------------


def test_killed_worker_retry_fetches_only_the_missing_parts(cluster: Cluster, clean_dataset: dict[str, Any]) -> None:
    uri, prefix = directory(cluster, "killed")
    cluster.emulator.reset()
    cluster.emulator.add_fault("latency", path="/datasets/batch", ms=2000, count=None)
    try:
        run_id = cluster.trigger(INGEST_DAG, {"output_uri": uri})
        victim = cluster.wait_for("the task to run", lambda: cluster.running_on(INGEST_DAG, run_id))
        cluster.wait_for(
            "two parts to be committed", lambda: len(part_names(cluster, prefix)) >= 2, timeout=120, every=0.2
        )
        cluster.kill_component(victim, signal.SIGKILL)
    finally:
        cluster.emulator.clear_faults()
    try:
        # What the killed try fetched, once the calls it left in flight at the emulator have ended.
        cluster.wait_for("the killed try's calls to end", lambda: cluster.emulator.stats()["in_flight"] == 0)
        first_try_ids = set(cluster.usage()["dataset_ids"])
        kept = set(part_names(cluster, prefix))
        assert not {"_manifest.json", "_SUCCESS"} & set(relative_keys(cluster, prefix)), "published before done"
        cluster.emulator.reset()  # from here on, the ledger holds the retry's calls only

        cluster.wait_for_run(INGEST_DAG, run_id, timeout=300)
        (row,) = cluster.task_states(INGEST_DAG, run_id)
        survivor = ({"w1", "w2"} - {victim}).pop()
        assert row[2:5] == ("success", 2, survivor), row
        history = cluster.ti_query(
            "SELECT try_number, hostname FROM task_instance_history WHERE dag_id = %s AND run_id = %s",
            INGEST_DAG,
            run_id,
        )
        assert history == [(1, victim)], history

        found = assert_same_dataset(cluster, prefix, clean_dataset)
        parts = clean_dataset["manifest"]["parts"]
        missing = names(parts) - kept
        assert 2 <= len(kept) < PARTS, kept
        # The retry fetched the missing parts' ids, each once (one call per part), and nothing it kept.
        assert cluster.usage()["dataset_ids"] == ids_of(parts, missing)
        assert cluster.scored_calls() == len(missing)
        # Fetched twice: only what the killed try had in flight (at most MAX_IN_FLIGHT parts).
        assert len(first_try_ids & set(ids_of(parts, missing))) <= MAX_IN_FLIGHT * PARTITION_SIZE
        assert names(found["reused_parts"]) == kept
        assert names(found["fetched_parts"]) == missing
        assert found["skipped"] is False
    finally:
        cluster.start_component(victim)
        cluster.wait_for_workers()
