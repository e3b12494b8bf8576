"""EcoinventDatasetsOperator inside real task execution (``dag.test()``) against the emulator over HTTP."""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow_provider_ecoinvent.emulator import EmulatorServer

FLAT_COLUMNS = [
    "dataset_id",
    "activity",
    "product",
    "geography",
    "unit",
    "indicator_id",
    "method",
    "category",
    "indicator",
    "score",
    "score_unit",
    "version",
    "system_model",
]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


def test_ids_from_upstream_xcom_scored_nested_manifest_matches_ledger_and_rerun_is_identical(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    out = tmp_path / "data" / "scores.jsonl"
    # A stale partial file of an earlier, killed run of this task (unmodified for longer than the lease that
    # live writers keep fresh) is cleaned up by the next run.
    out.parent.mkdir()
    stale = out.parent / ".scores.jsonl.0123abcd.partial"
    stale.write_text("junk")
    os.utime(stale, (time.time() - 2 * 3600, time.time() - 2 * 3600))
    runner = dag_runner(
        f"""
        @task
        def pick():
            return list(range(250, 0, -1)) + [7, 7]   # unordered, with duplicates

        pick() >> EcoinventDatasetsOperator(
            task_id="scores",
            dataset_ids="{{{{ ti.xcom_pull(task_ids='pick') }}}}",   # renders as the text "[250, 249, ...]"
            indicator_ids=[3, 1, 2],
            output_uri="file://{out}",
            user_id="{{{{ params.user }}}}",
            organization_id="acme",
            max_in_flight=4,
            outlets=[Asset("ecoinvent://emulator/scores")],
        )
        """,
        params={"user": "alice"},
    )
    result = runner.run()
    assert result.state == "success", result.errors
    manifest = result.xcom["scores"]
    stats = ecoinvent_conn.stats()

    records = read_jsonl(out)
    assert [r["id"] for r in records] == list(range(1, 251))
    assert all([s["id"] for s in r["impact_scores"]] == [1, 2, 3] for r in records)
    raw = out.read_bytes()
    assert manifest == {
        "output_uri": f"file://{out}",
        "format": "jsonl",
        "layout": "nested",
        "version": "3.11",
        "requested_version": "latest",
        "system_model": "cutoff",
        "indicator_ids": [1, 2, 3],
        "selection": "dataset_ids",
        "requested_datasets": 250,
        "dry_run": False,
        "record_count": 250,
        "datasets_written": 250,
        "returned_datasets": 250,
        "missing_datasets": 0,
        "missing_dataset_ids": [],
        "bytes": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "api_calls": stats["api_calls"],
        "token_requests": 1,
        "concurrency": {
            "max_in_flight": 4,
            "peak_in_flight": manifest["concurrency"]["peak_in_flight"],
            "final_in_flight": 4,  # no 429: the width never moved
            "rate_limited_calls": 0,
        },
        "elapsed_seconds": manifest["elapsed_seconds"],
    }
    assert 1 <= manifest["concurrency"]["peak_in_flight"] <= 3  # three batch calls at most at once
    # The ledger agrees: one /versions call to pin "latest", ceil(250 / 100) batch calls, one token.
    assert stats["requests"] == {"GET /versions": 1, "POST /datasets/batch": math.ceil(250 / 100), "POST /token": 1}
    assert stats["api_calls"] == 1 + 3
    assert stats["token_requests"] == 1
    usage = stats["usage"][ecoinvent_conn.client_id]
    assert (usage["datasets"], usage["indicators"]) == (250, 3)
    assert (usage["users"], usage["organizations"]) == (["alice"], ["acme"])
    assert stats["max_in_flight"] <= 4
    assert result.asset_events == [("ecoinvent://emulator/scores", manifest)]
    assert leftovers(out.parent) == []

    ecoinvent_conn.reset()
    again = runner.run()
    assert again.state == "success", again.errors
    assert out.read_bytes() == raw
    assert again.xcom["scores"]["sha256"] == manifest["sha256"]
    assert ecoinvent_conn.stats()["requests"]["POST /datasets/batch"] == 3
    assert leftovers(out.parent) == []


@pytest.mark.parametrize("existing", [False, True], ids=["no-previous-file", "previous-file-kept"])
def test_failure_mid_run_leaves_destination_untouched_and_no_partial(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path, existing: bool
) -> None:
    out = tmp_path / "scores.jsonl"
    if existing:
        out.write_bytes(b'{"previous":"run"}\n')
    ecoinvent_conn.add_fault("status", status=403, path="/datasets/batch", after=2, detail="Not licensed")
    result = dag_runner(
        f"""
        EcoinventDatasetsOperator(
            task_id="scores", dataset_ids=list(range(1, 501)), indicator_ids=[1], max_in_flight=1,
            output_uri="file://{out}",
        )
        """
    ).run()
    assert result.states == {"scores": "failed"}
    assert result.errors["scores"]["type"] == "EcoinventApiError"
    assert "403" in result.errors["scores"]["message"]
    assert ecoinvent_conn.stats()["requests"]["POST /datasets/batch"] == 3  # two good batches, then the 403
    if existing:
        assert out.read_bytes() == b'{"previous":"run"}\n'
    else:
        assert not out.exists()
    assert leftovers(tmp_path) == []


def test_dry_run_counts_without_consuming_or_writing(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    out = tmp_path / "scores.jsonl"
    result = dag_runner(
        f"""
        EcoinventDatasetsOperator(
            task_id="count", dataset_ids=list(range(1, 301)), indicator_ids=[1, 2],
            output_uri="file://{out}", dry_run=True, max_unique_datasets=1000,
        )
        """
    ).run()
    assert result.state == "success", result.errors
    manifest = result.xcom["count"]
    assert manifest["dry_run"] is True
    assert (manifest["unique_datasets"], manifest["unique_indicators"]) == (300, 2)
    assert (manifest["version"], manifest["within_cost_guard"]) == ("3.11", True)
    stats = ecoinvent_conn.stats()
    assert stats["scored_calls"] == 0
    assert stats["usage"] == {}
    assert stats["requests"] == {"GET /versions": 1, "POST /token": 1}
    assert list(tmp_path.glob("*.jsonl")) == []
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("where", "indicators", "expect_failure"),
    [
        ("operator", [1, 2], True),
        ("connection", [1, 2], True),
        ("connection", [], False),  # unscored calls are free: the guard does not apply
    ],
    ids=["operator-argument", "connection-extra", "unscored-is-free"],
)
def test_cost_guard_fails_before_any_scored_call(
    dag_runner: Callable[..., Any],
    ecoinvent_conn: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
    indicators: list[int],
    expect_failure: bool,
) -> None:
    out = tmp_path / "scores.jsonl"
    guard = ""
    if where == "operator":
        guard = "max_unique_datasets=100,"
    else:
        monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", ecoinvent_conn.connection_json(max_unique_datasets=100))
    result = dag_runner(
        f"""
        EcoinventDatasetsOperator(
            task_id="scores", dataset_ids=list(range(1, 251)), indicator_ids={indicators!r}, {guard}
            output_uri="file://{out}",
        )
        """
    ).run()
    stats = ecoinvent_conn.stats()
    if not expect_failure:
        assert result.state == "success", result.errors
        assert result.xcom["scores"]["record_count"] == 250
        assert stats["scored_calls"] == 0
        return
    assert result.states == {"scores": "failed"}
    error = result.errors["scores"]
    assert error["type"] == "EcoinventCostGuardError"
    assert "250 distinct datasets" in error["message"]
    assert "max_unique_datasets=100" in error["message"]
    assert stats["scored_calls"] == 0
    assert "POST /datasets/batch" not in stats["requests"]
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_missing_ids_are_reported_or_fail_the_task(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    # Version 3.9 lacks every id divisible by 7 (and indicators 1..22: indicator 23 is in 3.9).
    result = dag_runner(
        f"""
        for name, strict in (("lenient", False), ("strict", True)):
            EcoinventDatasetsOperator(
                task_id=name, dataset_ids=list(range(1, 301)), indicator_ids=[23], version="3.9",
                output_uri="file://{tmp_path}/" + name + ".jsonl", fail_on_missing=strict,
            )
        """
    ).run()
    assert result.states == {"lenient": "success", "strict": "failed"}
    manifest = result.xcom["lenient"]
    missing = [i for i in range(1, 301) if i % 7 == 0]
    assert manifest["version"] == "3.9"
    assert manifest["missing_datasets"] == len(missing) == 42
    assert manifest["missing_dataset_ids"] == missing[:20]
    assert manifest["returned_datasets"] == manifest["record_count"] == 300 - 42
    assert [r["id"] for r in read_jsonl(tmp_path / "lenient.jsonl")] == [i for i in range(1, 301) if i % 7]
    assert result.errors["strict"]["type"] == "EcoinventError"
    assert "42 of 300 requested datasets are not in version 3.9" in result.errors["strict"]["message"]
    assert not (tmp_path / "strict.jsonl").exists()
    assert leftovers(tmp_path) == []


def test_flat_layout_as_parquet_and_jsonl_reads_back_and_is_reproducible(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    runner = dag_runner(
        f"""
        for fmt in ("parquet", "jsonl"):
            EcoinventDatasetsOperator(
                task_id="flat_" + fmt, dataset_ids=list(range(120, 0, -1)), indicator_ids=[2, 1],
                version="3.11", system_model="apos", layout="flat", format=fmt,
                output_uri="file://{tmp_path}/flat." + fmt,
            )
        @task
        def pick():
            return [3, 1, 2]

        EcoinventDatasetsOperator(  # an XComArg: resolved to the list itself at run time
            task_id="unscored", dataset_ids=pick(), layout="flat", output_uri="file://{tmp_path}/unscored.jsonl",
        )
        """
    )
    result = runner.run()
    assert result.state == "success", result.errors
    table = pq.read_table(tmp_path / "flat.parquet")
    assert table.column_names == FLAT_COLUMNS
    rows = table.to_pylist()
    assert len(rows) == result.xcom["flat_parquet"]["record_count"] == 240
    assert [(r["dataset_id"], r["indicator_id"]) for r in rows] == [(d, i) for d in range(1, 121) for i in (1, 2)]
    assert {(r["version"], r["system_model"]) for r in rows} == {("3.11", "apos")}
    assert all(isinstance(r["score"], float) and r["method"] and r["score_unit"] for r in rows)
    assert read_jsonl(tmp_path / "flat.jsonl") == rows
    unscored = read_jsonl(tmp_path / "unscored.jsonl")
    assert [(r["dataset_id"], r["indicator_id"], r["score"]) for r in unscored] == [
        (1, None, None),
        (2, None, None),
        (3, None, None),
    ]

    first = (tmp_path / "flat.parquet").read_bytes()
    again = runner.run()
    assert again.state == "success", again.errors
    assert (tmp_path / "flat.parquet").read_bytes() == first
    assert again.xcom["flat_parquet"]["sha256"] == hashlib.sha256(first).hexdigest()


def test_search_selection_collects_ids_then_scores_them(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

    expected = sorted(d["id"] for d in EcoinventHook().search_datasets("market", version="3.11"))
    assert len(expected) > 300  # several search pages and batch calls
    ecoinvent_conn.reset()
    out = tmp_path / "market.jsonl"
    result = dag_runner(
        f"""
        EcoinventDatasetsOperator(
            task_id="market", query="{{{{ params.q }}}}", indicator_ids=[5], output_uri="file://{out}",
        )
        """,
        params={"q": "market"},
    ).run()
    assert result.state == "success", result.errors
    assert [r["id"] for r in read_jsonl(out)] == expected
    manifest = result.xcom["market"]
    assert (manifest["selection"], manifest["requested_datasets"]) == ("search", len(expected))
    requests = ecoinvent_conn.stats()["requests"]
    pages = math.ceil(len(expected) / 100)
    assert requests["GET /datasets"] == pages
    assert requests["POST /datasets/batch"] == pages
    assert ecoinvent_conn.stats()["usage"][ecoinvent_conn.client_id]["datasets"] == len(expected)


@pytest.mark.parametrize(
    ("geography", "expected"),
    [
        ("DE", "Germany (DE)"),
        ("germany  (de)", "Germany (DE)"),
        ("XY", None),
        ("Atlantis (AT)", None),
        ("Germnay", None),
    ],
    ids=["code", "display-form-any-case", "unknown", "unknown-display-form", "misspelt"],
)
def test_search_by_a_bare_geography_code_scores_that_geography_or_fails_before_billing(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path, geography: str, expected: str | None
) -> None:
    """Issue 12: {"geography": "DE"} used to select nothing and succeed with an empty file; review 3.2: so did a
    display form in the wrong case or one the catalogue lacks."""
    out = tmp_path / "geo.jsonl"
    result = dag_runner(
        f"""
        EcoinventDatasetsOperator(
            task_id="geo", search_filters={{"geography": "{geography}"}}, indicator_ids=[1], output_uri="file://{out}",
        )
        """
    ).run()
    stats = ecoinvent_conn.stats()
    if expected is not None:
        assert result.state == "success", result.errors
        records = read_jsonl(out)
        assert records
        assert {r["geography"] for r in records} == {expected}
        assert stats["usage"][ecoinvent_conn.client_id]["datasets"] == len(records)
        return
    assert result.states == {"geo": "failed"}
    assert result.errors["geo"]["type"] == "EcoinventConfigError"
    assert f"geography {geography!r} is not a geography of ecoinvent 3.11/cutoff" in result.errors["geo"]["message"]
    assert "'Germany (DE)'" in result.errors["geo"]["message"]
    if geography == "Germnay":
        assert "3.11/cutoff; did you mean 'Germany (DE)'? The API matches" in result.errors["geo"]["message"]
    assert stats["scored_calls"] == 0
    assert not out.exists()


def test_answers_without_total_select_and_fetch_everything(
    dag_runner: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 11: a search answering without ``total`` selected only its first page (100 of 250), and batch
    calls of 1000 ids without ``total`` reported every id past the first page as missing."""
    from airflow_provider_ecoinvent.emulator import EmulatorServer

    with EmulatorServer(datasets=250, omit_total=True) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", emulator.connection_json(batch_size=1000))
        result = dag_runner(
            f"""
            EcoinventDatasetsOperator(
                task_id="searched", query="", indicator_ids=[1], output_uri="file://{tmp_path}/searched.jsonl",
            )
            EcoinventDatasetsOperator(
                task_id="by_ids", dataset_ids=list(range(1, 251)), indicator_ids=[1],
                output_uri="file://{tmp_path}/by_ids.jsonl",
            )
            """
        ).run()
        stats = emulator.stats()
    assert result.state == "success", result.errors
    for task in ("searched", "by_ids"):
        manifest = result.xcom[task]
        assert (manifest["requested_datasets"], manifest["datasets_written"]) == (250, 250), task
        assert (manifest["missing_datasets"], manifest["missing_dataset_ids"]) == (0, []), task
        assert [r["id"] for r in read_jsonl(tmp_path / f"{task}.jsonl")] == list(range(1, 251))
    assert result.xcom["searched"]["selection"] == "search"
    assert stats["requests"]["GET /datasets"] == 3  # 100 + 100 + a short page of 50
    assert stats["requests"]["POST /datasets/batch"] == 2 * 3  # one batch of 250 ids, three pages, per task
    assert stats["usage"][emulator.client_id]["datasets"] == 250


def test_a_mapped_instance_with_an_empty_chunk_writes_an_empty_file(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    """Issue 11: MappedOperator re-runs the constructor with the resolved chunk, and an empty one failed
    there as if it were a literal [] in the DAG file; an empty chunk is data."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    runner = dag_runner(
        f"""
        EcoinventDatasetsOperator.partial(
            task_id="chunks", indicator_ids=[1], output_uri="file://{tmp_path}/chunk-{{{{ ti.map_index }}}}.jsonl",
        ).expand(dataset_ids=[[1, 2, 3], []])
        """
    )
    result = runner.run()
    assert result.state == "success", result.errors
    with create_session() as session:
        rows = session.execute(
            select(XComModel.map_index, XComModel.value).where(
                XComModel.dag_id == runner.dag_id, XComModel.task_id == "chunks", XComModel.key == "return_value"
            )
        ).all()
    manifests = {index: value for index, value in rows}
    assert sorted(manifests) == [0, 1]
    assert (manifests[0]["requested_datasets"], manifests[0]["datasets_written"]) == (3, 3)
    empty = manifests[1]
    assert (empty["requested_datasets"], empty["datasets_written"], empty["record_count"]) == (0, 0, 0)
    assert (empty["missing_datasets"], empty["bytes"]) == (0, 0)
    assert (tmp_path / "chunk-1.jsonl").read_bytes() == b""
    stats = ecoinvent_conn.stats()
    assert stats["requests"]["POST /datasets/batch"] == 1  # the first chunk's; the empty one made no billed call
    assert stats["scored_calls"] == 1
