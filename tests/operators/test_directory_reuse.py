"""Dataset directories: what a rerun may reuse, and what readers see while a rerun changes parts.

Each test runs the operator for real against the emulator and reads the directory and the emulator's ledger.
They were missing tests: the mutations ``part-key-ignores-version`` and ``success-kept-during-refetch`` in
``tools/mutations.py`` survived the whole suite before them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.exceptions import EcoinventError
from airflow_provider_ecoinvent.operators._partitions import plan_parts
from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_ecoinvent.emulator import EmulatorServer

IDS = list(range(1, 61))
PARTITION_SIZE = 20


def run(out: Path, **arguments: Any) -> dict[str, Any]:
    """One directory-mode run of the whole request, the way a worker runs the operator."""
    options: dict[str, Any] = {
        "version": "3.11",
        "system_model": "cutoff",
        "dataset_ids": IDS,
        "indicator_ids": [1, 2],
        "partition_size": PARTITION_SIZE,
        "layout": "flat",
        "format": "parquet",
        **arguments,
    }
    operator = EcoinventDatasetsOperator(task_id="ingest", output_uri=f"file://{out}/", **options)
    manifest: dict[str, Any] = operator.execute({})  # type: ignore[arg-type]
    return manifest


def scored_ids(emulator: EmulatorServer) -> list[int]:
    """The dataset ids the emulator scored (billed) since its last reset."""
    usage = emulator.stats(include_ids=True)["usage"]
    return sorted({ident for client in usage.values() for ident in client["dataset_ids"]})


def part_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.glob("part-*"))}


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"version": "3.10"}, {"version": "3.11"}),
        ({"system_model": "apos"}, {"system_model": "cutoff"}),
    ],
    ids=["version", "system-model"],
)
def test_parts_of_another_version_or_system_model_are_never_reused(
    ecoinvent_conn: EmulatorServer, tmp_path: Path, before: dict[str, Any], after: dict[str, Any]
) -> None:
    """A 3.10 directory rerun as 3.11 (or apos as cutoff) must hold 3.11's scores, not 3.10's under new names."""
    out, clean = tmp_path / "release", tmp_path / "clean"
    run(out, **before)
    ecoinvent_conn.reset()
    manifest = run(out, **after)
    planned = len(plan_parts(IDS, PARTITION_SIZE))
    assert (manifest["fetched_parts"], manifest["reused_parts"], manifest["skipped"]) == (planned, 0, False)
    assert scored_ids(ecoinvent_conn) == IDS
    run(clean, **after)
    assert part_files(out) == part_files(clean)  # byte for byte what a clean run of the new request writes


def test_a_refetch_withdraws_success_and_the_manifest_before_changing_any_part(
    ecoinvent_conn: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While parts are replaced, readers must not see ``_SUCCESS``: a run that dies mid-way leaves none."""
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", ecoinvent_conn.connection_json(batch_size=10))
    out = tmp_path / "release"
    run(out)
    assert (out / "_SUCCESS").exists()
    before = part_files(out)
    ecoinvent_conn.reset()
    # The rerun replaces every part (indicators changed); its second batch call fails for good.
    ecoinvent_conn.add_fault("status", status=400, detail="refused", path="/datasets/batch", after=1)
    with pytest.raises(EcoinventError):
        run(out, indicator_ids=[1, 2, 3], max_in_flight=1)
    replaced = [name for name, data in part_files(out).items() if before.get(name) != data]
    assert replaced  # the run died after replacing a part: the directory is no longer the first run's
    assert not (out / "_SUCCESS").exists()
    assert not (out / "_manifest.json").exists()
