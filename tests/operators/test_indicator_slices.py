"""K > 100 indicators: a dataset that one indicator slice of a batch returns and another does not.

The API scores 100 indicators per call, so a batch takes ceil(K / 100) calls whose scores are merged per
dataset. A dataset missing from one slice must never be written with the other slices' scores only: the
stream asks for it once more (those datasets, those slices), then fails naming the datasets and slices.
Against the emulator's ``omit`` fault, over loopback; the hook, a single-file run and a directory run
(whose rerun must find no part of such a batch to trust).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.emulator.lcia import INDICATORS
from airflow_provider_ecoinvent.exceptions import EcoinventApiError
from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow_provider_ecoinvent.emulator import EmulatorServer

#: 150 indicators: two slices, of 100 and 50.
INDICATOR_IDS = [ind.id for ind in INDICATORS[:150]]
#: An indicator of the second slice: an ``omit`` rule on it drops the dataset from that slice only.
SECOND_SLICE = INDICATOR_IDS[120]
SLICE_TWO = f"indicator slice 2 of 2 (50 indicators, ids {INDICATOR_IDS[100]}..{INDICATOR_IDS[-1]})"


def batch_calls(emulator: EmulatorServer) -> int:
    return int(emulator.stats()["requests"].get("POST /datasets/batch", 0))


def test_a_dataset_missing_from_one_slice_once_is_asked_for_again_and_comes_out_whole(
    ecoinvent_conn: EmulatorServer,
) -> None:
    ecoinvent_conn.add_fault("omit", dataset=2, indicator=SECOND_SLICE, count=1)
    stream = EcoinventHook().get_datasets([1, 2, 3], indicator_ids=INDICATOR_IDS, version="3.11")
    datasets = {dataset["id"]: dataset for dataset in stream}
    assert sorted(datasets) == [1, 2, 3]
    assert stream.missing_ids == []
    assert [score["id"] for score in datasets[2]["impact_scores"]] == INDICATOR_IDS
    assert batch_calls(ecoinvent_conn) == 3  # two slices, and one more call: dataset 2, second slice


def test_a_dataset_missing_from_one_slice_twice_fails_naming_it_and_the_slice(ecoinvent_conn: EmulatorServer) -> None:
    ecoinvent_conn.add_fault("omit", dataset=2, indicator=SECOND_SLICE, count=2)
    stream = EcoinventHook().get_datasets([1, 2, 3], indicator_ids=INDICATOR_IDS, version="3.11")
    with pytest.raises(EcoinventApiError) as caught:
        list(stream)
    message = str(caught.value)
    assert f"dataset 2 missing from {SLICE_TWO}" in message
    assert "none of this batch is written" in message
    assert stream.returned == 0  # nothing of the batch was handed over
    assert batch_calls(ecoinvent_conn) == 3  # asked once more, no more


def ingest(task_id: str, output_uri: str, **arguments: Any) -> str:
    options = {"dataset_ids": [1, 2, 3, 4, 5], "indicator_ids": INDICATOR_IDS, **arguments}
    extra = "".join(f"    {key}={value!r},\n" for key, value in options.items())
    head = f"EcoinventDatasetsOperator(\n    task_id={task_id!r},\n    version='3.11',\n"
    return f"{head}    output_uri={output_uri!r},\n{extra})\n"


def records(path: Path) -> dict[int, list[int]]:
    """Each dataset's scored indicator ids, from a JSON Lines file or a directory of them."""
    files = sorted(path.glob("part-*")) if path.is_dir() else [path] if path.exists() else []
    found: dict[int, list[int]] = {}
    for file in files:
        for line in file.read_text().splitlines():
            record = json.loads(line)
            found[record["id"]] = [score["id"] for score in record["impact_scores"]]
    return found


def test_a_single_file_run_writes_nothing_when_a_slice_keeps_lacking_a_dataset(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    out = tmp_path / "scores.jsonl"
    ecoinvent_conn.add_fault("omit", dataset=4, indicator=SECOND_SLICE, count=2)
    failed = dag_runner(ingest("ingest", f"file://{out}")).run()
    assert failed.states == {"ingest": "failed"}
    assert failed.errors["ingest"]["type"] == "EcoinventApiError"
    assert f"dataset 4 missing from {SLICE_TWO}" in failed.errors["ingest"]["message"]
    assert not out.exists()
    assert list(tmp_path.glob("*.partial")) == []

    ecoinvent_conn.reset()  # the lapse is over: the next try writes every dataset whole
    again = dag_runner(ingest("ingest", f"file://{out}")).run()
    assert again.state == "success", again.errors
    assert records(out) == {ident: INDICATOR_IDS for ident in range(1, 6)}


def test_a_directory_run_never_commits_a_part_with_partial_scores_and_its_rerun_completes_it(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches of 10 ids: the parts before the lacking dataset's batch are committed before it fails.
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", ecoinvent_conn.connection_json(batch_size=10))
    out = tmp_path / "release"
    clean = tmp_path / "clean"
    arguments = {"dataset_ids": list(range(1, 41)), "partition_size": 10, "max_in_flight": 1}
    ecoinvent_conn.add_fault("omit", dataset=25, indicator=SECOND_SLICE, count=2)
    failed = dag_runner(ingest("ingest", f"file://{out}/", **arguments)).run()
    assert failed.states == {"ingest": "failed"}
    assert f"dataset 25 missing from {SLICE_TWO}" in failed.errors["ingest"]["message"]
    # What was committed holds whole records only, and not dataset 25.
    committed = records(out)
    assert committed
    assert 25 not in committed
    assert all(scores == INDICATOR_IDS for scores in committed.values())
    assert not (out / "_SUCCESS").exists()

    ecoinvent_conn.reset()
    rerun = dag_runner(ingest("ingest", f"file://{out}/", **arguments)).run()
    assert rerun.state == "success", rerun.errors
    assert records(out) == {ident: INDICATOR_IDS for ident in range(1, 41)}
    assert rerun.xcom["ingest"]["missing_datasets"] == 0
    assert rerun.xcom["ingest"]["reused_parts"] > 0  # the parts committed before the failure, whole
    assert dag_runner(ingest("ingest", f"file://{clean}/", **arguments)).run().state == "success"
    parts = {path.name: path.read_bytes() for path in sorted(out.glob("part-*"))}
    assert parts == {path.name: path.read_bytes() for path in sorted(clean.glob("part-*"))}
