"""Defects the property suite (tests/property) found beyond issue 22's list, each pinned by an example.

Operators run for real against the emulator over loopback; outcomes are read from storage and the ledger.
"""

from __future__ import annotations

import gc
import sys
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.exceptions import EcoinventConfigError, EcoinventError
from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_ecoinvent.emulator import EmulatorServer


@pytest.mark.parametrize("form", ["slash", "path-object"])
def test_a_dataset_directory_naming_an_existing_file_fails_before_any_call(
    ecoinvent_conn: EmulatorServer, tmp_path: Path, form: str
) -> None:
    """The mirror of the existing-folder refusal: parts cannot go under a file, and the run used to find out
    only after its first scored calls, with a raw FileExistsError."""
    from airflow.sdk import ObjectStoragePath

    existing = tmp_path / "out"
    existing.write_bytes(b"an earlier single-file output\n")
    uri: Any = f"file://{existing}/" if form == "slash" else ObjectStoragePath(f"file://{existing}")
    operator = EcoinventDatasetsOperator(
        task_id="ingest",
        dataset_ids=[1, 2, 3],
        indicator_ids=[1],
        output_uri=uri,
        directory=True if form == "path-object" else None,
    )
    with pytest.raises(EcoinventConfigError) as raised:
        operator.execute({})  # type: ignore[arg-type]
    assert str(raised.value).startswith(
        f"output_uri 'file://{existing}/' names a dataset directory, but 'file://{existing}' is an existing file"
    )
    assert "No call was made to the ecoinvent API." in str(raised.value)
    assert ecoinvent_conn.stats()["api_calls"] == 0
    assert existing.read_bytes() == b"an earlier single-file output\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


def test_a_failed_single_file_parquet_try_leaves_no_writer_to_fail_when_collected(
    ecoinvent_conn: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A try that fails after rows were written (here fail_on_missing) used to leave its pyarrow ParquetWriter
    open: collected later, it wrote its footer into the closed temporary file and raised an OSError nobody
    could catch (an "unraisable" exception, printed in the middle of the task's log)."""
    unraisable: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda hook: unraisable.append(repr(hook.exc_value)))
    out = tmp_path / "scores.parquet"
    operator = EcoinventDatasetsOperator(
        task_id="ingest",
        dataset_ids=[1, 2, 1050],  # 1050 is not in the catalogue
        indicator_ids=[1, 2],
        layout="flat",
        format="parquet",
        fail_on_missing=True,
        output_uri=f"file://{out}",
    )
    with pytest.raises(EcoinventError, match="fail_on_missing=True, so nothing was written"):
        operator.execute({})  # type: ignore[arg-type]
    del operator
    gc.collect()
    assert unraisable == []
    assert sorted(path.name for path in tmp_path.iterdir()) == []  # nothing written, no temporary left
    assert ecoinvent_conn.stats()["scored_calls"] > 0  # the failure came after rows were written


def test_a_shard_refused_by_the_cost_guard_leaves_nothing_in_the_directory(
    ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    """A shard used to store the run's shared selection (``_shards/selection-*.json``, creating the directory)
    before its cost guard refused the run: a refusal must leave storage as it was."""
    from types import SimpleNamespace

    from airflow_provider_ecoinvent.exceptions import EcoinventCostGuardError

    out = tmp_path / "release"
    operator = EcoinventDatasetsOperator(
        task_id="ingest",
        dataset_ids=[1, 2, 3],
        indicator_ids=[1, 2],
        max_unique_indicators=1,
        output_uri=f"file://{out}/",
        shard=[0, 2],
    )
    ti = SimpleNamespace(dag_id="fan_out", run_id="manual__1", task_id="ingest", map_index=0, try_number=1)
    with pytest.raises(EcoinventCostGuardError, match="more than max_unique_indicators=1"):
        operator.execute({"ti": ti})  # type: ignore[arg-type]
    assert ecoinvent_conn.stats()["scored_calls"] == 0
    assert not out.exists()
