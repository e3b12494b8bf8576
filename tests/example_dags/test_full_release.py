"""The full-release example end to end: 25,000 datasets x every EF v3.1 indicator, four mapped shards, one
commit step, then the weekly rerun that must not score anything.

Its own file so that pytest-xdist (``--dist loadfile``) runs it next to the other example DAGs, not after
them. About 40 s on a shared 2-core machine; the bound in ``pytest.mark.timeout`` only detects a hang.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.emulator import EmulatorServer
from airflow_provider_ecoinvent.emulator.lcia import indicators_for

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

DATASETS = 25_000
RELEASE = "3.11"
#: What the example DAG scores: every indicator of EF v3.1 in the emulator's 3.11 catalogue (25).
EF31_IDS = sorted(i.id for i in indicators_for(RELEASE) if i.method == "EF v3.1")
PARTITION_SIZE = 1000
SHARDS = 4


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _commit_xcom_and_asset_extras(run: Any) -> tuple[Any, list[dict[str, Any]]]:
    """The commit task's return value and the ``extra`` of the run's asset events, from the metadata DB."""
    from airflow.models.asset import AssetEvent
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        value = session.scalars(
            select(XComModel.value).where(
                XComModel.run_id == run.run_id,
                XComModel.dag_id == run.dag_id,
                XComModel.task_id == "commit",
                XComModel.key == "return_value",
            )
        ).one()
        extras = [
            dict(event.extra or {})
            for event in session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == run.run_id))
        ]
        shard_states = sorted(
            str(ti.state) for ti in run.get_task_instances(session=session) if ti.task_id == "ingest_shard"
        )
    assert shard_states == ["success"] * SHARDS
    return (json.loads(value) if isinstance(value, str) else value), extras


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_full_release_example_writes_one_parquet_dataset_and_a_rerun_scores_nothing(
    run_example: Callable[..., Any], tmp_path: Path
) -> None:
    directory = tmp_path / "full_release" / RELEASE / "cutoff" / "ef_v3.1"
    with EmulatorServer(datasets=DATASETS) as emulator:  # no latency: the emulator's default
        run = run_example("ecoinvent_full_release", emulator, tmp_path)
        first = emulator.stats()
        manifest = json.loads((directory / "_manifest.json").read_text())
        assert (directory / "_SUCCESS").read_bytes() == b""
        emulator.reset()
        rerun = run_example("ecoinvent_full_release", emulator, tmp_path)
        second = emulator.stats()

    assert manifest["record_count"] == DATASETS * len(EF31_IDS) == 625_000
    assert manifest["datasets_written"] == DATASETS
    assert manifest["missing_datasets"] == 0
    assert manifest["request"]["version"] == RELEASE
    assert manifest["request"]["indicator_ids"] == EF31_IDS
    assert (manifest["request"]["layout"], manifest["request"]["format"]) == ("flat", "parquet")
    # The parts cover ids 1..25,000 in order, without gap or overlap, none over partition_size.
    parts = manifest["parts"]
    assert len(parts) >= DATASETS // PARTITION_SIZE
    assert [p["first_dataset_id"] for p in parts] == [1] + [p["last_dataset_id"] + 1 for p in parts[:-1]]
    assert parts[-1]["last_dataset_id"] == DATASETS
    assert all(p["datasets"] == p["last_dataset_id"] - p["first_dataset_id"] + 1 <= PARTITION_SIZE for p in parts)
    assert all(p["records"] == p["datasets"] * len(EF31_IDS) for p in parts)
    # Exactly the manifest's parts are in the directory, each with its recorded size and hash; nothing partial.
    assert sorted(path.name for path in directory.glob("part-*")) == sorted(p["name"] for p in parts)
    for part in parts:
        assert (directory / part["name"]).stat().st_size == part["bytes"]
        assert _sha256(directory / part["name"]) == part["sha256"]
    assert [path for path in directory.rglob("*") if path.name.endswith(".partial")] == []

    # The directory reads as one table: the bookkeeping (_manifest.json, _parts/, _shards/, _SUCCESS) is ignored.
    # [START howto_read_dataset_directory]
    import pyarrow.dataset as ds

    # Names starting with "_" or "." are skipped: only the part files are read, as one table.
    scores = ds.dataset(directory, format="parquet")  # a local path; for object storage add filesystem=...
    table = scores.to_table(columns=["dataset_id", "indicator_id", "score"])
    # [END howto_read_dataset_directory]
    assert table.num_rows == 625_000
    assert len(set(table.column("dataset_id").to_pylist())) == DATASETS
    assert sorted(set(table.column("indicator_id").to_pylist())) == EF31_IDS

    # The ledger: every dataset and indicator scored once, in the fewest calls each shard can make: it takes
    # the parts number % 4 == index (in id order) and fetches their datasets 100 a call, 25 indicators each.
    shard_datasets = [sum(p["datasets"] for p in parts[index::SHARDS]) for index in range(SHARDS)]
    calls = sum(-(-datasets // 100) for datasets in shard_datasets)
    assert DATASETS // 100 <= calls <= DATASETS // 100 + SHARDS - 1
    assert first["requests"]["POST /datasets/batch"] == first["scored_calls"] == calls
    assert first["usage"][emulator.client_id]["datasets"] == DATASETS
    assert first["usage"][emulator.client_id]["indicators"] == len(EF31_IDS)

    xcom, extras = _commit_xcom_and_asset_extras(run)
    assert xcom == manifest
    assert [extra.get("fingerprint") for extra in extras] == [manifest["fingerprint"]]

    # The weekly rerun of the unchanged release: every part already there and verified, no scored call.
    assert second["scored_calls"] == 0
    assert "POST /datasets/batch" not in second["requests"]
    print(f"\n[full release] complete rerun of 4 shards: {second['api_calls']} API calls, all free look-ups")
    again, _ = _commit_xcom_and_asset_extras(rerun)
    # Unchanged: _manifest.json is left as the first run wrote it; the commit returns it with this run's counts.
    assert json.loads((directory / "_manifest.json").read_text()) == manifest
    assert again["unchanged"] is True
    assert again["skipped"] is True
    assert again["fingerprint"] == manifest["fingerprint"]
    assert (again["fetched_parts"], again["reused_parts"], again["refetched_parts"]) == (0, len(parts), [])
    assert [p["sha256"] for p in again["parts"]] == [p["sha256"] for p in parts]
