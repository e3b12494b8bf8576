"""The datasets operator under a server's concurrency limit: the manifest's figures agree with the ledger."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from airflow_provider_ecoinvent.emulator import EmulatorServer

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import pytest

N = 1_000
BATCH = 20  # 50 batch calls


def test_a_limit_of_three_against_eight_in_flight_succeeds_and_writes_the_same_bytes_as_one_in_flight(
    dag_runner: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with EmulatorServer(datasets=N, latency_ms=10, max_concurrency=3) as server:
        monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", server.connection_json(batch_size=BATCH))
        runner = dag_runner(
            f"""
            adaptive = EcoinventDatasetsOperator(
                task_id="adaptive", dataset_ids=list(range(1, {N + 1})), indicator_ids=[1, 2, 3],
                output_uri="file://{tmp_path}/adaptive.jsonl", max_in_flight=8,
            )
            one = EcoinventDatasetsOperator(
                task_id="one", dataset_ids=list(range(1, {N + 1})), indicator_ids=[1, 2, 3],
                output_uri="file://{tmp_path}/one.jsonl", max_in_flight=1,
            )
            adaptive >> one
            """
        )
        result = runner.run()
        stats = server.stats()
    assert result.state == "success", result.errors
    adaptive, one = result.xcom["adaptive"], result.xcom["one"]
    # The deterministic output does not depend on the width or the retries.
    raw = (tmp_path / "adaptive.jsonl").read_bytes()
    assert raw == (tmp_path / "one.jsonl").read_bytes()
    assert adaptive["sha256"] == one["sha256"] == hashlib.sha256(raw).hexdigest()
    assert adaptive["datasets_written"] == N
    # The ledger and the manifests agree: every 429 the server sent is one the adaptive task counted.
    refused = adaptive["concurrency"]["rate_limited_calls"]
    assert one["concurrency"] == {
        "max_in_flight": 1,
        "peak_in_flight": 1,
        "final_in_flight": 1,
        "rate_limited_calls": 0,
    }
    assert stats["statuses"]["429"] == stats["concurrency_rejections"] == refused
    assert 1 <= refused <= 2 * N // BATCH // 10  # refused at first, then at most a probe now and then
    assert stats["requests"]["POST /datasets/batch"] == 2 * N // BATCH + refused
    assert stats["max_in_flight"] == 3
    figures = adaptive["concurrency"]
    assert figures["max_in_flight"] == 8
    assert 3 <= figures["peak_in_flight"] <= 8
    assert 1 <= figures["final_in_flight"] <= 4


def test_a_dataset_directory_reports_its_shards_calls_in_flight_and_every_429_in_the_manifest(
    dag_runner: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with EmulatorServer(datasets=N, latency_ms=10, max_concurrency=3) as server:
        monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", server.connection_json(batch_size=BATCH))
        runner = dag_runner(
            f"""
            from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsCommitOperator, shards

            ingest = EcoinventDatasetsOperator.partial(
                task_id="ingest", dataset_ids=list(range(1, {N + 1})), indicator_ids=[1, 2, 3],
                output_uri="file://{tmp_path}/release/", partition_size=100, max_in_flight=8,
            ).expand(shard=shards(2))
            ingest >> EcoinventDatasetsCommitOperator(task_id="commit", output_uri="file://{tmp_path}/release/")
            """
        )
        result = runner.run()
        stats = server.stats()
    assert result.state == "success", result.errors
    manifest = result.xcom["commit"]
    figures = manifest["concurrency"]
    # Both shards' 429s are counted, and the ledger saw exactly those.
    assert figures["rate_limited_calls"] == stats["statuses"]["429"] == stats["concurrency_rejections"] >= 1
    assert figures["max_in_flight"] == 8
    assert 3 <= figures["peak_in_flight"] <= 8
    assert 1 <= figures["final_in_flight"] <= 8
