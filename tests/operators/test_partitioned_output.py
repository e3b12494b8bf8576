"""Partitioned output (issue 14): a dataset directory that survives crashes, resumes, skips and fans out.

Real task execution (``dag.test()``, and a real subprocess SIGKILLed mid-run) against the emulator over
loopback; outcomes are read from the directory (bytes, records), the manifest and the emulator's ledger.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pendulum
import pytest

from airflow_provider_ecoinvent.exceptions import EcoinventConfigError
from airflow_provider_ecoinvent.operators._partitions import parse_shard, plan_parts, segments
from airflow_provider_ecoinvent.operators.ecoinvent import (
    EcoinventDatasetsCommitOperator,
    EcoinventDatasetsOperator,
    shards,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow_provider_ecoinvent.emulator import EmulatorServer

IMPORTS = "from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsCommitOperator, shards\n"


def ingest(task_id: str, out: Path | str, ids: list[int] | str, **arguments: Any) -> str:
    """The source of one directory-mode ingestion task (flat Parquet, pinned version) for a test DAG."""
    options = {"indicator_ids": [1, 2], "partition_size": 20, "layout": "flat", "format": "parquet", **arguments}
    extra = "".join(f"    {key}={value!r},\n" for key, value in options.items())
    return (
        f"EcoinventDatasetsOperator(\n    task_id={task_id!r},\n    version='3.11',\n    system_model='cutoff',\n"
        f"    dataset_ids={ids!r},\n    output_uri={f'file://{out}/'!r},\n{extra})\n"
    )


def part_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.glob("part-*"))}


def partials(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*.partial"))


def scored_ids(emulator: EmulatorServer) -> list[int]:
    """The dataset ids the emulator scored (billed) since its last reset."""
    usage = emulator.stats(include_ids=True)["usage"]
    return sorted({ident for client in usage.values() for ident in client["dataset_ids"]})


def manifest_of(folder: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((folder / "_manifest.json").read_text())
    return manifest


# -- the plan --------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 7, 20, 1000])
def test_parts_hold_at_most_partition_size_sorted_ids_and_the_plan_is_deterministic(size: int) -> None:
    rng = random.Random(size)
    ids = rng.sample(range(1, 200_000), 3000)
    parts = plan_parts(ids, size)
    assert [ident for part in parts for ident in part] == sorted(ids)
    assert max(len(part) for part in parts) <= size
    assert plan_parts(list(reversed(ids)) + ids[:10], size) == parts
    if size >= 20:  # content-defined cuts aim at half the size: parts are not tiny on average
        assert len(ids) / len(parts) >= size / 4


@pytest.mark.parametrize("size", [2, 20, 100])
def test_a_grown_selection_changes_only_the_segments_its_new_ids_land_in(size: int) -> None:
    rng = random.Random(size)
    pool = rng.sample(range(1, 100_000), 5000)
    before, added = pool[:4000], set(pool[4000:4040])
    old = {tuple(part) for part in plan_parts(before, size)}
    grown = [*before, *added]
    new = [tuple(part) for part in plan_parts(grown, size)]
    # A new id lands in the first segment (a run between two content-defined cuts) that ends at or after it.
    runs = segments(before, size)
    landed = {next((i for i, run in enumerate(runs) if run[-1] >= ident), len(runs) - 1) for ident in added}
    touched = added | {ident for i in landed for ident in runs[i]}
    changed = [part for part in new if part not in old]
    # A part differs only within a segment that gained ids...
    assert all(set(part) <= touched for part in changed)
    # ...and few parts change: about one per new id, not a cascade through the rest of the selection.
    assert len(changed) <= 2 * len(added)
    assert len(new) - len(changed) >= len(new) - 2 * len(added)


def test_shards_helper_and_shard_values() -> None:
    assert shards(3) == [[0, 3], [1, 3], [2, 3]]
    assert parse_shard([2, 3]) == (2, 3)
    assert parse_shard("[1, 4]") == (1, 4)
    assert parse_shard(None) is None
    with pytest.raises(EcoinventConfigError, match=r"shards\(count\) needs a whole number >= 1, got 0"):
        shards(0)


# -- one task, the whole request -------------------------------------------------------------------


def test_a_directory_holds_parts_a_manifest_and_success_and_reads_as_one_table(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    out = tmp_path / "release"
    ids = list(range(1, 161))
    planned = plan_parts(ids, 20)
    one = planned[3]
    single = tmp_path / "single.parquet"
    body = ingest("ingest", out, ids, outlets=["ASSET"]).replace("'ASSET'", 'Asset("ecoinvent://emulator/release")')
    body += (
        "EcoinventDatasetsOperator(task_id='single', version='3.11', system_model='cutoff', "
        f"dataset_ids={one!r}, indicator_ids=[1, 2], layout='flat', format='parquet', output_uri='file://{single}')\n"
    )
    result = dag_runner(body).run()
    assert result.state == "success", result.errors
    manifest = result.xcom["ingest"]

    names = [entry["name"] for entry in manifest["parts"]]
    assert names == [f"part-{part[0]:012d}-{part[-1]:012d}.parquet" for part in planned]
    assert sorted(os.listdir(out)) == sorted([*names, "_SUCCESS", "_manifest.json", "_parts"])
    assert (out / "_SUCCESS").read_bytes() == b""
    assert manifest_of(out) == manifest
    assert result.asset_events == [("ecoinvent://emulator/release", manifest)]
    # A part holds exactly the bytes single-file mode writes for its datasets.
    assert (out / names[3]).read_bytes() == single.read_bytes()
    for entry, part in zip(manifest["parts"], planned, strict=True):
        data = (out / entry["name"]).read_bytes()
        assert (entry["bytes"], entry["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
        assert (entry["first_dataset_id"], entry["last_dataset_id"], entry["datasets"]) == (
            part[0],
            part[-1],
            len(part),
        )
        assert entry["records"] == pq.read_metadata(out / entry["name"]).num_rows == 2 * len(part)
    assert {key: manifest[key] for key in ("record_count", "datasets_written", "missing_datasets", "skipped")} == {
        "record_count": 320,
        "datasets_written": 160,
        "missing_datasets": 0,
        "skipped": False,
    }
    assert (manifest["fetched_parts"], manifest["reused_parts"], manifest["refetched_parts"]) == (len(planned), 0, [])
    assert manifest["request"] == {
        "version": "3.11",
        "system_model": "cutoff",
        "indicator_ids": [1, 2],
        "layout": "flat",
        "format": "parquet",
        "partition_size": 20,
        "selection": {"kind": "dataset_ids", "query": None, "search_filters": {}, "datasets": 160},
    }
    table = ds.dataset(str(out), format="parquet").to_table()
    assert table.num_rows == 320
    assert sorted(set(table.column("dataset_id").to_pylist())) == ids
    assert partials(out) == []


def test_a_complete_rerun_makes_no_scored_call_and_overwrite_refetches_everything(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    out = tmp_path / "release"
    ids = list(range(1, 121))
    first = dag_runner(ingest("ingest", out, ids)).run()
    assert first.state == "success", first.errors
    written = part_files(out)

    ecoinvent_conn.reset()
    again = dag_runner(ingest("ingest", out, ids)).run()
    assert again.state == "success", again.errors
    manifest = again.xcom["ingest"]
    stats = ecoinvent_conn.stats()
    assert stats["scored_calls"] == 0
    assert "POST /datasets/batch" not in stats["requests"]
    assert (manifest["skipped"], manifest["fetched_parts"], manifest["reused_parts"]) == (True, 0, len(written))
    assert manifest["parts"] == first.xcom["ingest"]["parts"]
    assert part_files(out) == written

    ecoinvent_conn.reset()
    forced = dag_runner(ingest("ingest", out, ids, overwrite=True)).run()
    assert forced.state == "success", forced.errors
    manifest = forced.xcom["ingest"]
    assert (manifest["skipped"], manifest["fetched_parts"], manifest["reused_parts"]) == (False, len(written), 0)
    assert scored_ids(ecoinvent_conn) == ids
    assert part_files(out) == written


def test_a_grown_selection_fetches_only_the_parts_its_new_ids_land_in(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    out = tmp_path / "release"
    before = list(range(1, 301, 2))  # odd ids
    grown = sorted([*before, 40, 200, 202])
    assert dag_runner(ingest("ingest", out, before)).run().state == "success"
    old = {tuple(part) for part in plan_parts(before, 20)}
    new = [tuple(part) for part in plan_parts(grown, 20)]
    changed = [part for part in new if part not in old]
    assert 0 < len(changed) < len(new) / 2

    ecoinvent_conn.reset()
    result = dag_runner(ingest("ingest", out, grown)).run()
    assert result.state == "success", result.errors
    manifest = result.xcom["ingest"]
    assert scored_ids(ecoinvent_conn) == sorted(ident for part in changed for ident in part)
    assert (manifest["fetched_parts"], manifest["reused_parts"]) == (len(changed), len(new) - len(changed))
    # Parts of the older plan that the grown one replaced are gone: the directory is one table.
    assert sorted(part_files(out)) == sorted(entry["name"] for entry in manifest["parts"])
    assert sorted(path.stem for path in (out / "_parts").glob("*.json")) == sorted(part_files(out))
    clean = tmp_path / "clean"
    assert dag_runner(ingest("ingest", clean, grown)).run().state == "success"
    assert part_files(out) == part_files(clean)


def test_a_corrupted_part_and_a_part_of_another_request_are_refetched_and_named(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    out, other = tmp_path / "release", tmp_path / "other"
    ids = list(range(1, 121))
    assert dag_runner(ingest("ingest", out, ids)).run().state == "success"
    assert dag_runner(ingest("ingest", other, ids, indicator_ids=[1])).run().state == "success"
    written = part_files(out)
    planned = plan_parts(ids, 20)
    corrupted, foreign = sorted(written)[1], sorted(written)[4]
    data = bytearray(written[corrupted])
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    (out / corrupted).write_bytes(bytes(data))
    # A part written for another request (other indicators), with its own, self-consistent record.
    (out / foreign).write_bytes((other / foreign).read_bytes())
    (out / "_parts" / f"{foreign}.json").write_bytes((other / "_parts" / f"{foreign}.json").read_bytes())

    ecoinvent_conn.reset()
    result = dag_runner(ingest("ingest", out, ids)).run()
    assert result.state == "success", result.errors
    manifest = result.xcom["ingest"]
    assert manifest["refetched_parts"] == [corrupted, foreign]
    assert (manifest["fetched_parts"], manifest["skipped"]) == (2, False)
    assert scored_ids(ecoinvent_conn) == sorted([*planned[1], *planned[4]])
    assert part_files(out) == written


def test_missing_datasets_are_counted_and_reported_again_by_a_skipped_rerun(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    out = tmp_path / "release"
    ids = [*range(991, 1001), 5001, 5002]  # the emulator has datasets 1 to 1000
    first = dag_runner(ingest("ingest", out, ids, partition_size=4)).run()
    again = dag_runner(ingest("ingest", out, ids, partition_size=4)).run()
    for manifest in (first.xcom["ingest"], again.xcom["ingest"]):
        assert (manifest["datasets_written"], manifest["missing_datasets"]) == (10, 2)
        assert manifest["missing_dataset_ids"] == [5001, 5002]
    assert again.xcom["ingest"]["skipped"] is True
    failing = dag_runner(ingest("ingest", out, ids, partition_size=4, fail_on_missing=True)).run()
    assert failing.errors["ingest"]["message"] == (
        "2 requested datasets are not in version 3.11 (cutoff), e.g. [5001, 5002]; fail_on_missing=True, so the "
        "task fails and writes no manifest."
    )


def test_nested_json_lines_parts_read_as_one_table_and_a_part_of_missing_ids_has_no_file(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    """An empty JSON Lines file breaks pyarrow.dataset: a part whose ids are all missing is recorded, not written."""
    import pyarrow.dataset as ds

    out = tmp_path / "release"
    ids = [*range(1, 31), *range(5001, 5031)]  # the emulator has datasets 1 to 1000
    planned = plan_parts(ids, 6)
    empty = [f"part-{part[0]:012d}-{part[-1]:012d}.jsonl" for part in planned if part[0] > 1000]
    assert empty
    body = ingest("ingest", out, ids, partition_size=6, layout="nested", format="jsonl")
    first = dag_runner(body).run()
    assert first.state == "success", first.errors
    manifest = first.xcom["ingest"]
    assert sorted(part_files(out)) == sorted(entry["name"] for entry in manifest["parts"])
    assert not set(empty) & set(part_files(out))
    assert {path.stem for path in (out / "_parts").glob("*.json")} >= set(empty)  # recorded all the same
    assert (manifest["datasets_written"], manifest["missing_datasets"]) == (30, 30)
    table = ds.dataset(str(out), format="json").to_table()
    assert sorted(table.column("id").to_pylist()) == list(range(1, 31))

    ecoinvent_conn.reset()
    again = dag_runner(body).run()
    assert (again.xcom["ingest"]["skipped"], ecoinvent_conn.stats()["scored_calls"]) == (True, 0)


def test_temporary_files_of_other_writers_are_left_while_fresh_and_removed_once_expired(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    """Only a try's own dead predecessors are removed at once; anyone else's partial waits for the lease."""
    out = tmp_path / "release"
    out.mkdir()
    live = out / f".part-000000000001-000000000007.parquet.{'a' * 16}-t1.{'b' * 32}.partial"  # another task instance
    dead = out / f".part-000000000008-000000000009.parquet.{'c' * 32}.partial"  # no owner, untouched for 2 h
    for path in (live, dead):
        path.write_bytes(b"half a part")
    two_hours_ago = time.time() - 2 * 3600
    os.utime(dead, (two_hours_ago, two_hours_ago))
    result = dag_runner(ingest("ingest", out, list(range(1, 41)))).run()
    assert result.state == "success", result.errors
    assert partials(out) == [live.name]


def test_an_empty_selection_never_empties_a_directory_of_parts_unless_overwrite(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    """A search that comes back empty is refused rather than deleting every part; overwrite=True empties."""
    out = tmp_path / "release"
    ids = list(range(1, 41))
    assert dag_runner(ingest("ingest", out, ids)).run().state == "success"
    before = part_files(out)
    assert before

    def searching(**arguments: Any) -> str:
        return ingest("ingest", out, ids, **arguments).replace(f"dataset_ids={ids!r}", "query='no-such-dataset-xyz'")

    refused = dag_runner(searching()).run()
    assert refused.errors["ingest"] == {
        "type": "EcoinventOutputError",
        "message": f"The selection is empty and file://{out}/ holds {len(before)} parts of an earlier request: "
        "nothing was changed. Pass overwrite=True to empty the dataset directory.",
    }
    assert part_files(out) == before
    assert (out / "_SUCCESS").exists()

    emptied = dag_runner(searching(overwrite=True)).run()
    assert emptied.state == "success", emptied.errors
    assert part_files(out) == {}
    assert (emptied.xcom["ingest"]["part_count"], emptied.xcom["ingest"]["selection"]) == (0, "search")


# -- fan-out: mapped shards, then the commit step ---------------------------------------------------


def sharded(out: Path, ids: list[int], shard_values: str = "shards(3)", **arguments: Any) -> str:
    """A mapped ingestion over ``shard_values`` into ``out``, then the commit step (task ``commit``)."""
    mapped = ingest("ingest", out, ids, **arguments).replace(
        "EcoinventDatasetsOperator(\n    task_id='ingest',", "EcoinventDatasetsOperator.partial(\n    task_id='ingest',"
    )
    return (
        IMPORTS
        + f"ingest = {mapped.rstrip()}.expand(shard={shard_values})\n"
        + f"commit = EcoinventDatasetsCommitOperator(task_id='commit', output_uri='file://{out}/', outlets=[ASSET])\n"
        + "ingest >> commit\n"
    ).replace("[ASSET]", '[Asset("ecoinvent://emulator/fan-out")]')


def commit_only(out: Path, **arguments: Any) -> str:
    extra = "".join(f", {key}={value!r}" for key, value in arguments.items())
    return IMPORTS + f"EcoinventDatasetsCommitOperator(task_id='commit', output_uri='file://{out}/'{extra})\n"


def test_a_sharded_run_writes_the_same_parts_as_one_task_and_the_commit_step_completes_it(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    whole, fanned = tmp_path / "whole", tmp_path / "fanned"
    ids = list(range(1, 201))
    assert dag_runner(ingest("ingest", whole, ids)).run().state == "success"

    ecoinvent_conn.reset()
    result = dag_runner(sharded(fanned, ids)).run()
    assert result.state == "success", result.errors
    assert result.states == {"ingest": "success", "commit": "success"}
    assert scored_ids(ecoinvent_conn) == ids  # each dataset fetched by exactly one shard...
    assert ecoinvent_conn.stats()["usage"][ecoinvent_conn.client_id]["datasets"] == len(ids)
    assert part_files(fanned) == part_files(whole)  # ...into the very files one task writes
    manifest = result.xcom["commit"]
    assert manifest == manifest_of(fanned)
    assert manifest["parts"] == manifest_of(whole)["parts"]
    assert manifest["fingerprint"] == manifest_of(whole)["fingerprint"]
    assert (manifest["record_count"], manifest["shards"], manifest["fetched_parts"]) == (400, 3, len(manifest["parts"]))
    assert result.asset_events == [("ecoinvent://emulator/fan-out", manifest)]
    assert sorted(os.listdir(fanned / "_shards")) == [f"shard-0000{i}-of-00003.json" for i in range(3)]
    # _SUCCESS comes last, after the manifest and every part.
    stamps = {path.name: path.stat().st_mtime_ns for path in fanned.iterdir() if path.is_file()}
    assert stamps["_SUCCESS"] == max(stamps.values())
    assert stamps["_manifest.json"] >= max(stamp for name, stamp in stamps.items() if name.startswith("part-"))
    assert partials(fanned) == []

    ecoinvent_conn.reset()
    again = dag_runner(sharded(fanned, ids)).run()
    assert again.state == "success", again.errors
    assert ecoinvent_conn.stats()["scored_calls"] == 0
    assert (again.xcom["commit"]["skipped"], again.xcom["commit"]["reused_parts"]) == (True, len(manifest["parts"]))


def test_the_commit_step_fails_naming_a_missing_or_stale_shard_or_a_bad_part(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    out = tmp_path / "fanned"
    ids = list(range(1, 121))
    assert dag_runner(sharded(out, ids, indicator_ids=[1])).run().state == "success"

    # Shards 0 and 1 re-run for another request (indicators 1 and 2); shard 2 did not: it is stale.
    stale = dag_runner(sharded(out, ids, "[[0, 3], [1, 3]]")).run()
    assert stale.states == {"ingest": "success", "commit": "failed"}
    assert stale.errors["commit"] == {
        "type": "EcoinventOutputError",
        "message": "Shard(s) [2] of 3 are stale: written for another request (fingerprint differs from the newest "
        f"shard's, {manifest_of_shard(out, 0)['fingerprint'][:12]}...). Clear (re-run) the mapped ingestion task "
        "instance(s) with map index [2], then this step.",
    }
    assert not (out / "_SUCCESS").exists()
    assert not (out / "_manifest.json").exists()

    (out / "_shards" / "shard-00001-of-00003.json").unlink()
    missing = dag_runner(commit_only(out)).run()
    assert missing.errors["commit"] == {
        "type": "EcoinventOutputError",
        "message": f"Shard(s) [1] of 3 are missing in file://{out}/ (no _shards/shard-00001-of-00003.json): clear "
        "(re-run) the mapped ingestion task instance(s) with map index [1], then this step.",
    }

    assert dag_runner(sharded(out, ids)).run().state == "success"
    victim = sorted(part_files(out))[1]  # part number 1: dealt to shard 1
    (out / victim).write_bytes((out / victim).read_bytes()[:-3])
    bad = dag_runner(commit_only(out)).run()
    assert bad.errors["commit"] == {
        "type": "EcoinventOutputError",
        "message": f"Part {victim} of shard 1 of 3 has {(out / victim).stat().st_size} bytes, not the "
        f"{(out / victim).stat().st_size + 3} recorded: clear (re-run) the mapped ingestion task instance with map "
        "index 1 (it refetches the part), then this step.",
    }
    assert not (out / "_SUCCESS").exists()


def test_a_committed_fan_out_with_parts_of_missing_ids_is_skipped_by_a_rerun_sharded_or_not(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    """The commit keeps the records of parts without a file: a rerun trusts them and makes no scored call."""
    out = tmp_path / "fanned"
    ids = [*range(1, 31), *range(5001, 5031)]  # the emulator has datasets 1 to 1000
    empty = [part for part in plan_parts(ids, 6) if part[0] > 1000]
    assert empty
    body = sharded(out, ids, "shards(2)", partition_size=6)
    first = dag_runner(body).run()
    assert first.state == "success", first.errors
    recorded = {path.stem for path in (out / "_parts").glob("*.json")}
    assert len(recorded) == len(plan_parts(ids, 6))  # the commit removed none, file-less parts included

    ecoinvent_conn.reset()
    again = dag_runner(body).run()
    assert again.state == "success", again.errors
    assert ecoinvent_conn.stats()["scored_calls"] == 0
    assert [manifest_of_shard(out, index, 2)["skipped"] for index in range(2)] == [True, True]
    assert (again.xcom["commit"]["skipped"], again.xcom["commit"]["unchanged"]) == (True, True)
    assert manifest_of(out) == first.xcom["commit"]  # left untouched: the manifest of the run that wrote it
    assert again.xcom["commit"]["missing_datasets"] == 30

    ecoinvent_conn.reset()
    alone = dag_runner(ingest("ingest", out, ids, partition_size=6)).run()
    assert alone.state == "success", alone.errors
    assert (alone.xcom["ingest"]["skipped"], ecoinvent_conn.stats()["scored_calls"]) == (True, 0)


def manifest_of_shard(out: Path, index: int, count: int = 3) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((out / "_shards" / f"shard-{index:05d}-of-{count:05d}.json").read_text())
    return record


# -- arguments -------------------------------------------------------------------------------------

DIRECTORY = "file:///data/ecoinvent/"
BAD_ARGUMENTS: list[tuple[str, dict[str, Any], str]] = [
    (
        "partition-size-0",
        {"partition_size": 0},
        "partition_size must be a whole number >= 1 (datasets per part), got 0",
    ),
    ("partition-size-text", {"partition_size": "100"}, "partition_size must be a whole number >= 1"),
    ("overwrite-text", {"overwrite": "yes"}, "overwrite must be True or False, got 'yes'"),
    ("shard-index-too-high", {"shard": (3, 3)}, "shard=(3, 3): the index must be from 0 to count - 1"),
    ("shard-negative", {"shard": [-1, 3]}, "shard=(-1, 3): the index must be from 0 to count - 1"),
    ("shard-count-0", {"shard": [0, 0]}, "shard=(0, 0): the index must be from 0 to count - 1 and count at least 1"),
    ("shard-not-a-pair", {"shard": [1]}, "shard must be (index, count) with whole numbers"),
    ("shard-text", {"shard": "first"}, "shard must be (index, count) with whole numbers"),
    (
        "shard-with-a-file",
        {"shard": [0, 2], "output_uri": "file:///data/out.parquet"},
        "shard=[0, 2] needs a dataset directory: end output_uri with '/'",
    ),
    ("root-folder", {"output_uri": "s3://"}, "output_uri 's3://' names no folder: a dataset directory needs its"),
    ("bucket-root", {"output_uri": "s3://bucket/"}, "output_uri 's3://bucket/' names no folder: a dataset"),
    (
        "bucket-root-with-conn",
        {"output_uri": "s3://aws_default@bucket/"},
        "output_uri 's3://aws_default@bucket/' names no folder: a dataset directory needs its own folder, such as "
        "'s3://bucket/ecoinvent/3.11/cutoff/', not a bucket or filesystem root",
    ),
    ("bucket-root-in-path", {"output_uri": "s3:///bucket/"}, "output_uri 's3:///bucket/' names no folder"),
    ("bucket-dot", {"output_uri": "s3://bucket/./"}, "output_uri 's3://bucket/./' names no folder"),
    ("filesystem-root", {"output_uri": "file:///"}, "output_uri 'file:///' names no folder"),
    (
        "climbing-out",
        {"output_uri": "file:///tmp/../"},
        "output_uri 'file:///tmp/../' has a '..' segment: name the dataset directory without climbing out",
    ),
    ("climbing-out-s3", {"output_uri": "s3://bucket/a/../b/"}, "output_uri 's3://bucket/a/../b/' has a '..' segment"),
    ("no-scheme", {"output_uri": "/data/ecoinvent/"}, "must be a URI with a scheme"),
]


@pytest.mark.parametrize(("kwargs", "message"), [pytest.param(k, m, id=i) for i, k, m in BAD_ARGUMENTS])
def test_bad_partitioned_arguments_fail_at_construction_before_any_call(
    ecoinvent_conn: EmulatorServer, kwargs: dict[str, Any], message: str
) -> None:
    arguments = {"dataset_ids": [1], "indicator_ids": [1], "output_uri": DIRECTORY, **kwargs}
    with pytest.raises(EcoinventConfigError, match=re.escape(message)):
        EcoinventDatasetsOperator(task_id="bad", **arguments)
    assert ecoinvent_conn.stats()["api_calls"] == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"output_uri": "file:///data/out.parquet"}, "output_uri must name the dataset directory the mapped tasks"),
        ({"output_uri": DIRECTORY, "shard_count": 0}, "shard_count must be a whole number >= 1 or None, got 0"),
        ({"output_uri": "s3://aws_default@bucket/"}, "output_uri 's3://aws_default@bucket/' names no folder"),
        ({"output_uri": "file:///tmp/../"}, "output_uri 'file:///tmp/../' has a '..' segment"),
    ],
    ids=["file", "count-0", "bucket-root", "climbing-out"],
)
def test_bad_commit_arguments_fail_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(EcoinventConfigError, match=re.escape(message)):
        EcoinventDatasetsCommitOperator(task_id="commit", **kwargs)


def test_a_templated_shard_is_checked_once_rendered_before_any_call(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    body = ingest("ingest", tmp_path / "out", [1, 2, 3], shard="{{ params.shard }}")
    result = dag_runner(body, params={"shard": [5, 2]}).run()
    assert result.errors["ingest"] == {
        "type": "EcoinventConfigError",
        "message": "shard=(5, 2): the index must be from 0 to count - 1 and count at least 1, e.g. [1, 2].",
    }
    assert ecoinvent_conn.stats()["api_calls"] == 0
    assert not (tmp_path / "out").exists()


def test_a_templated_output_uri_naming_a_root_fails_once_rendered_before_any_call(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    body = ingest("ingest", out, [1, 2, 3]).replace(repr(f"file://{out}/"), "'{{ params.out }}'")
    assert "params.out" in body
    result = dag_runner(body, params={"out": f"file://{tmp_path}/../"}).run()
    assert result.errors["ingest"] == {
        "type": "EcoinventConfigError",
        "message": f"output_uri 'file://{tmp_path}/../' has a '..' segment: name the dataset directory without "
        "climbing out of a folder (its part files and bookkeeping are replaced on each run).",
    }
    assert ecoinvent_conn.stats()["api_calls"] == 0


# -- crash and resume --------------------------------------------------------------------------------

LOGICAL_DATE = "2026-03-01T00:00:00+00:00"


def test_a_sigkilled_task_process_is_resumed_by_its_retry_which_fetches_only_the_missing_parts(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Done-when test: SIGKILL (no on_kill, no finally) after some parts, then the task's retry."""
    out, clean = tmp_path / "release", tmp_path / "clean"
    ids = list(range(1, 241))
    assert dag_runner(ingest("ingest", clean, ids, partition_size=40)).run().state == "success"
    # Small, slow batches: a part spans several calls, so the task spends its time inside an open part.
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", ecoinvent_conn.connection_json(batch_size=10))
    ecoinvent_conn.add_fault("latency", ms=150, path="/datasets/batch", count=-1)
    runner = dag_runner(ingest("ingest", out, ids, partition_size=40, max_in_flight=1))
    code = (
        "import importlib.util, pendulum\n"
        f"spec = importlib.util.spec_from_file_location('killed_dag', {runner.dag.fileloc!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        f"when = pendulum.parse({LOGICAL_DATE!r})\n"
        "module.dag.test(logical_date=when, run_after=when)\n"
    )
    log = (tmp_path / "killed.log").open("wb")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180  # a hang detector only
        while not (len(list((out / "_parts").glob("*.json"))) >= 2 and partials(out)):
            assert process.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the task never committed two parts"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(30)
        log.close()
    assert process.returncode == -signal.SIGKILL
    # A part counts as committed once moved into place (its record is written just before the move).
    committed = {path.stem for path in (out / "_parts").glob("*.json") if (out / path.stem).exists()}
    assert partials(out)  # the killed try's temporary file, which no clean-up removed
    planned = plan_parts(ids, 40)
    names = [f"part-{part[0]:012d}-{part[-1]:012d}.parquet" for part in planned]
    missing = [part for part, name in zip(planned, names, strict=True) if name not in committed]
    assert 0 < len(missing) < len(planned)

    ecoinvent_conn.clear_faults()
    ecoinvent_conn.reset()
    when = pendulum.parse(LOGICAL_DATE)
    retry = runner.run(logical_date=when, run_after=when)  # the same run (run id): the task's next try
    assert retry.state == "success", retry.errors
    manifest = retry.xcom["ingest"]
    assert scored_ids(ecoinvent_conn) == sorted(ident for part in missing for ident in part)
    assert (manifest["reused_parts"], manifest["fetched_parts"]) == (len(committed), len(missing))
    assert set(manifest["refetched_parts"]) <= {names[planned.index(part)] for part in missing}
    assert partials(out) == []
    assert part_files(out) == part_files(clean)
    assert manifest["parts"] == manifest_of(clean)["parts"]
    assert manifest["fingerprint"] == manifest_of(clean)["fingerprint"]


def kill_after_first_part_moved(runner: Any, tmp_path: Path) -> None:
    """Run the runner's DAG in a process of its own that the filesystem (fsspec, not this package) SIGKILLs as
    soon as the first part is moved into place: a worker dying between two parts."""
    code = (
        "import importlib.util, os, signal, pendulum\n"
        "from fsspec.implementations.local import LocalFileSystem\n"
        "moving = LocalFileSystem.mv\n"
        "def mv(self, path1, path2, *args, **kwargs):\n"
        "    moving(self, path1, path2, *args, **kwargs)\n"
        "    if os.path.basename(str(path2)).startswith('part-') and '_parts' not in str(path2):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "LocalFileSystem.mv = mv\n"
        f"spec = importlib.util.spec_from_file_location('killed_dag', {runner.dag.fileloc!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        f"when = pendulum.parse({LOGICAL_DATE!r})\n"
        "module.dag.test(logical_date=when, run_after=when)\n"
    )
    with (tmp_path / "killed.log").open("wb") as log:
        process = subprocess.run([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT, timeout=180)
    assert process.returncode == -signal.SIGKILL, (tmp_path / "killed.log").read_text()[-3000:]


def test_a_task_killed_right_after_moving_a_part_into_place_keeps_that_part_on_retry(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    """The record is written before the move: a SIGKILL just after the move costs no refetch of the part."""
    out, clean = tmp_path / "release", tmp_path / "clean"
    ids = list(range(1, 121))
    assert dag_runner(ingest("ingest", clean, ids, partition_size=40)).run().state == "success"
    runner = dag_runner(ingest("ingest", out, ids, partition_size=40))
    kill_after_first_part_moved(runner, tmp_path)
    moved = sorted(part_files(out))
    assert len(moved) == 1
    planned = plan_parts(ids, 40)
    first = next(part for part in planned if f"part-{part[0]:012d}-{part[-1]:012d}.parquet" == moved[0])

    ecoinvent_conn.reset()
    when = pendulum.parse(LOGICAL_DATE)
    retry = runner.run(logical_date=when, run_after=when)
    assert retry.state == "success", retry.errors
    assert scored_ids(ecoinvent_conn) == sorted(set(ids) - set(first))  # the moved part is not billed again
    assert (retry.xcom["ingest"]["reused_parts"], retry.xcom["ingest"]["refetched_parts"]) == (1, [])
    assert part_files(out) == part_files(clean)
