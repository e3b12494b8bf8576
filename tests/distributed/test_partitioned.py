"""Partitioned output (an ``output_uri`` ending with ``/``) on the distributed deployment, with a crash.

Runs after ``test_cluster.py`` on the same deployment (see ``conftest.py``). Both DAGs of
``dags/dist_partitioned.py`` send one request (200 datasets in parts of at most 25, flat Parquet, batches
of 25 ids). The fault-free fanned-out run is the reference: the crash test's resumed single task must write
exactly its objects. Outcomes are read from the emulator's ledger, the object store and the task instances in
PostgreSQL. The ledger holds unions of ids; a run fetched each id once when it billed exactly the ids
asked for in exactly the number of full batches they need.
"""

from __future__ import annotations

import json
import math
import signal
import time
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(900)]

INGEST_DAG = "dist_partitioned_ingest"
FANOUT_DAG = "dist_partitioned_fanout"
#: What both DAGs ask for (``dags/dist_partitioned.py``): ids 1-200 in parts of at most 25, 4 shards.
DATASETS = list(range(1, 201))
PARTITION_SIZE = 25
SHARDS = 4
#: The DAGs' ``max_in_flight`` and their connection's ``batch_size`` (``conftest.SMALL_BATCH``).
MAX_IN_FLIGHT = 2
#: Batch calls started or answered ahead of the one being written (``hooks._stream.look_ahead``: a quarter more).
LOOK_AHEAD = MAX_IN_FLIGHT + MAX_IN_FLIGHT // 4
BATCH = 25
#: Bookkeeping that differs between runs of one request: the manifest (timings, counts of reused and
#: fetched parts, the directory's URI) and the shard records. Every other object must be identical.
RUN_SPECIFIC = ("_manifest.json", "_shards/")


# -- helpers ----------------------------------------------------------------------------------------


def directory(cluster: Cluster, name: str) -> tuple[str, str]:
    """The ``output_uri`` of a run writing to ``name`` (a directory: trailing ``/``) and its key prefix."""
    return f"{cluster.output_root}/partitioned/{name}/", f"out/partitioned/{name}/"


def relative_keys(cluster: Cluster, prefix: str) -> list[str]:
    return [key[len(prefix) :] for key in cluster.list_keys(prefix)]


def dataset_objects(cluster: Cluster, prefix: str) -> dict[str, Any]:
    """The directory's objects that any run of the request writes identically: parts (bytes), _SUCCESS, and
    part records read without ``run``, the mark of the DAG run that wrote the part (an ``overwrite=True``
    run's next try resumes only its own run's parts), which differs between runs by design."""
    objects: dict[str, Any] = {}
    for name in relative_keys(cluster, prefix):
        if name.startswith(RUN_SPECIFIC):
            continue
        data = cluster.read_key(prefix + name)
        if name.startswith("_parts/") and name.endswith(".json"):
            record = json.loads(data)
            record.pop("run", None)
            objects[name] = record
        else:
            objects[name] = data
    return objects


def stored_parts(cluster: Cluster, prefix: str) -> tuple[set[str], set[str]]:
    """From one listing: the parts committed (file in place and its ``_parts/<name>.json`` record), which a retry
    may trust and keep, and the records without their file (a kill between writing a record and moving its part).

    Temporary objects (``.<name>.<owner>.<uuid>.partial``) count as neither: s3fs moves by copy then delete, so a
    listing may show a record and its temporary object at once.
    """
    keys = set(relative_keys(cluster, prefix))
    records = {key.removeprefix("_parts/").removesuffix(".json") for key in keys if key.startswith("_parts/part-")}
    return records & keys, records - keys


def manifest(cluster: Cluster, prefix: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(cluster.read_key(prefix + "_manifest.json"))
    return found


def ids_of(parts: list[dict[str, Any]]) -> list[int]:
    """The requested dataset ids the given manifest parts hold (parts cover contiguous runs of the sorted ids)."""
    return [i for i in DATASETS if any(p["first_dataset_id"] <= i <= p["last_dataset_id"] for p in parts)]


def calls_for(ids: list[int]) -> int:
    """Scored calls that fetching ``ids`` once costs: one batch per ``BATCH`` ids."""
    return math.ceil(len(ids) / BATCH)


def report(cluster: Cluster, dag_id: str, run_id: str, what: str) -> None:
    """Print the run's figures for docs/running-at-scale.md (shown with ``PYTEST_ARGS=-s``)."""
    rows = cluster.ti_query(
        "SELECT task_id, map_index, try_number, hostname, EXTRACT(EPOCH FROM start_date - queued_dttm),"
        " EXTRACT(EPOCH FROM end_date - start_date) FROM task_instance WHERE dag_id = %s AND run_id = %s"
        " ORDER BY task_id, map_index",
        dag_id,
        run_id,
    )
    for task_id, map_index, try_number, host, waited, ran in rows:
        print(
            f"[distributed] {what}: {task_id}[{map_index}] try {try_number} on {host}: "
            f"queued {float(waited or 0):.1f} s, ran {float(ran or 0):.1f} s"
        )


def assert_same_dataset(cluster: Cluster, prefix: str, reference: dict[str, Any]) -> dict[str, Any]:
    """The directory holds the reference's parts byte for byte and its part records, an empty ``_SUCCESS``, the
    same manifest entries (fingerprint, parts, counts) and no temporary object; returns its manifest."""
    assert dataset_objects(cluster, prefix) == reference["objects"], "the objects differ from a fault-free run's"
    assert cluster.read_key(prefix + "_SUCCESS") == b""
    found = manifest(cluster, prefix)
    for key in ("fingerprint", "parts", "record_count", "datasets_written", "missing_datasets"):
        assert found[key] == reference["manifest"][key], key
    assert cluster.partial_keys(prefix) == [], "a temporary object was left behind"
    return found


@pytest.fixture(scope="module")
def fanned_out(cluster: Cluster) -> dict[str, Any]:
    """The request dealt to ``SHARDS`` mapped tasks, then committed, without faults: the run, its objects and
    manifest (the crash test's reference: a resumed single task must write exactly these), its billed work."""
    uri, prefix = directory(cluster, "fanout")
    cluster.emulator.reset()
    # Slow batches keep two shards running at once; each worker runs one task at a time.
    cluster.emulator.add_fault("latency", path="/datasets/batch", ms=500, count=None)
    try:
        run_id = cluster.trigger(FANOUT_DAG, {"output_uri": uri})
        cluster.wait_for_run(FANOUT_DAG, run_id)
    finally:
        cluster.emulator.clear_faults()
    report(cluster, FANOUT_DAG, run_id, "fan-out")
    return {
        "run_id": run_id,
        "prefix": prefix,
        "objects": dataset_objects(cluster, prefix),
        "manifest": manifest(cluster, prefix),
        "dataset_ids": cluster.usage()["dataset_ids"],
        "scored_calls": cluster.scored_calls(),
    }


# -- fan-out ----------------------------------------------------------------------------------------


def test_fanned_out_shards_run_on_both_workers_and_the_commit_publishes_the_dataset(
    cluster: Cluster, fanned_out: dict[str, Any]
) -> None:
    rows = cluster.task_states(FANOUT_DAG, fanned_out["run_id"])
    shards = [row for row in rows if row[0] == "score_shard"]
    assert [row[1] for row in shards] == list(range(SHARDS)), rows
    assert {row[2] for row in shards} == {"success"}, rows
    assert {row[4] for row in shards} == {"w1", "w2"}, f"the shards did not run on both workers: {rows}"
    (commit,) = [row for row in rows if row[0] == "commit"]
    assert commit[2] == "success", rows

    # Every shard recorded its share; the commit verified them and published the whole request.
    prefix, found = fanned_out["prefix"], fanned_out["manifest"]
    assert [k for k in relative_keys(cluster, prefix) if k.startswith("_shards/")] == [
        f"_shards/shard-{index:05d}-of-{SHARDS:05d}.json" for index in range(SHARDS)
    ]
    parts = found["parts"]
    assert len(parts) > SHARDS, parts  # every shard had parts to write
    assert ids_of(parts) == DATASETS
    assert (found["datasets_written"], found["missing_datasets"]) == (len(DATASETS), 0)
    assert set(fanned_out["objects"]) == {p["name"] for p in parts} | {f"_parts/{p['name']}.json" for p in parts} | {
        "_SUCCESS"
    }
    assert fanned_out["objects"]["_SUCCESS"] == b""
    assert cluster.partial_keys(prefix) == []
    # Each id was fetched once: every shard streamed its own parts (numbers index, index + SHARDS, ...).
    assert fanned_out["dataset_ids"] == DATASETS
    assert fanned_out["scored_calls"] == sum(calls_for(ids_of(parts[index::SHARDS])) for index in range(SHARDS))
    print(
        f"\n[distributed] fan-out: {len(parts)} parts, {found['record_count']} rows,"
        f" {sum(p['bytes'] for p in parts)} bytes of Parquet, {fanned_out['scored_calls']} scored calls"
    )


# -- a worker killed between parts -------------------------------------------------------------------


def test_killed_worker_retry_fetches_only_the_missing_parts(cluster: Cluster, fanned_out: dict[str, Any]) -> None:
    uri, prefix = directory(cluster, "killed")
    cluster.emulator.reset()
    cluster.emulator.add_fault("latency", path="/datasets/batch", ms=2000, count=None)
    try:
        run_id = cluster.trigger(INGEST_DAG, {"output_uri": uri})
        victim = cluster.wait_for("the task to run", lambda: cluster.running_on(INGEST_DAG, run_id))
        cluster.wait_for("two parts to be committed", lambda: len(stored_parts(cluster, prefix)[0]) >= 2, every=0.2)
        cluster.kill_component(victim, signal.SIGKILL)
        killed_at = time.monotonic()
    finally:
        cluster.emulator.clear_faults()
    try:
        # What the killed try fetched and kept, once the calls it left in flight at the emulator have ended.
        cluster.wait_for("the killed try's calls to end", lambda: cluster.emulator.stats()["in_flight"] == 0)
        first_try_ids = set(cluster.usage()["dataset_ids"])
        kept, orphaned = stored_parts(cluster, prefix)
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

        found = assert_same_dataset(cluster, prefix, fanned_out)
        parts = fanned_out["manifest"]["parts"]
        missing = [p for p in parts if p["name"] not in kept]
        assert len(kept) >= 2, kept
        assert kept <= {p["name"] for p in parts}, kept
        assert set(ids_of([p for p in parts if p["name"] in kept])) <= first_try_ids
        assert missing, "the kill came after the last part: nothing was left to resume"
        # One part is written at a time: a kill after its record and before its move leaves at most one record
        # that no file matches. The retry refetches that part and says so; it trusts no part unchecked.
        assert len(orphaned) <= 1, (kept, orphaned)
        assert (found["reused_parts"], found["fetched_parts"], found["refetched_parts"]) == (
            len(kept),
            len(missing),
            sorted(orphaned),
        )
        # The retry fetched the missing parts' ids only, each once (in full batches), none of the kept ones.
        assert cluster.usage()["dataset_ids"] == ids_of(missing)
        assert cluster.scored_calls() == calls_for(ids_of(missing))
        # Fetched by both tries: only what the killed one had not committed yet, the part it was writing and
        # the batches it had in flight or answered ahead.
        twice = first_try_ids & set(ids_of(missing))
        assert len(twice) <= PARTITION_SIZE + LOOK_AHEAD * BATCH, sorted(twice)
        print(
            f"\n[distributed] resume: {len(kept)} parts kept, {len(missing)} fetched in"
            f" {cluster.scored_calls()} calls (a clean run: {calls_for(DATASETS)}), {len(twice)} ids fetched by"
            f" both tries; success {time.monotonic() - killed_at:.0f} s after the kill"
        )
        report(cluster, INGEST_DAG, run_id, "resume")
    finally:
        cluster.start_component(victim)
        cluster.wait_for_workers()
