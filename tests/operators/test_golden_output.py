"""The bytes the operators write are pinned: golden files under ``tests/data/golden/``.

The files were written by the provider before its JSON codec changed (``json.dumps`` with sorted keys); any
codec must reproduce them byte for byte, so a file written today and one written by an older release of
the same data have the same sha256. The data come from the emulator over HTTP, with a few datasets
replaced by awkward ones: floats that print in exponent form (``1e-05``, ``1e+300``, ``5e-324``), ``-0.0``,
``0.1 + 0.2``, integers beyond 64 bits, non-ASCII text, every JSON escape, nested objects whose keys sort
in code-point order, missing fields, scores that are missing, null, text, booleans or not objects, and a
dataset the API answers with ``NaN`` and ``Infinity`` (not JSON, but ``json.loads`` accepts them).

Regenerate (only when the output format is meant to change, and say so in the commit):
``ECOINVENT_REGENERATE_GOLDEN=1 pytest tests/operators/test_golden_output.py``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_ecoinvent.emulator import EmulatorServer

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
REGENERATE = os.environ.get("ECOINVENT_REGENERATE_GOLDEN") == "1"

#: Ordinary emulator datasets, scored for indicators whose scores print as 0.0372179 or as 3.72179e-07.
PLAIN_IDS = [1, 2, 3, 4, 5]
INDICATORS = [1, 14, 19]


def _score(ident: Any, value: Any, **fields: Any) -> dict[str, Any]:
    base = {"id": ident, "score": value, "unit": "kg CO2-Eq", "method": "EF v3.1", "category": "climate change"}
    base["indicator"] = "global warming potential (GWP100)"
    return {**base, **fields}


#: id -> (the dataset as the API answers it, without scores; its impact_scores, or None for no key at all).
AWKWARD: dict[int, tuple[dict[str, Any], list[Any] | None]] = {
    11: (
        {
            "id": 11,
            "activity": "Zürich café \u2013 北京 😀 \u2028 done",
            "product": 'quote " backslash \\ newline \n tab \t cr \r ctrl \x01\x1f del \x7f slash / </script>',
            "geography": "Côte d'Ivoire (CI)",
            "unit": "m³",
            "mass": 1e-05,
            "neg_zero": -0.0,
            "huge": 1e300,
            "sum": 0.1 + 0.2,
            "subnormal": 5e-324,
            "big16": 1e16,
            "small_exp": -1.2345e-07,
            "whole": 2.0,
            "bigint": 2**70,
            "neg_bigint": -(2**64),
            "meta": {"z": [1, {"b": None, "a": True, "é": False}], "a": {}, "A": [], "é": "e-acute", "10": 10, "9": 9},
        },
        [
            _score(3, 1e-05, indicator="ozone"),
            _score(1, -0.0),
            _score(2, 1e300, unit="µg/m³"),
            _score(4, 0.1 + 0.2),
        ],
    ),
    12: (
        {"id": 12, "product": "missing activity, geography and unit", "description": ""},
        [
            {"id": 1, "unit": "kg", "method": "m", "category": "c", "indicator": "no score key"},
            _score(2, None),
            _score("3", "0.30000000000000004", method=None),
            {"id": 4, "score": 12.5},
        ],
    ),
    13: ({"id": 13, "activity": "no impact_scores key", "product": "p", "geography": "GLO", "unit": "kg"}, None),
    14: (
        {"id": 14, "activity": "empty scores", "Ä": 1, "a": 2, "Z": 3, "_": 4, "~": 5, "sectors": [], "\U0001f600": 6},
        [],
    ),
    15: (
        {"id": 15, "activity": "odd scores", "product": "p", "geography": "RER", "unit": "unit"},
        [
            _score("x", 1.0),
            7,
            "text",
            None,
            _score(2, True),
            _score(1, 10**20),
            _score(3, 1e16),
            _score(5, 100.0),
            _score(4, 1.5e-10),
        ],
    ),
    # Alone in its batch (batch_size 2 below): the one answer that is not JSON, read as json.loads reads it.
    40: (
        {"id": 40, "activity": "not-a-number", "uncertainty": float("nan"), "product": "p", "unit": "kg"},
        [_score(1, float("inf")), _score(2, float("-inf")), _score(3, float("nan")), _score(4, 3.5)],
    ),
}
AWKWARD_IDS = sorted(AWKWARD)
#: Every dataset the tasks ask for, in the order given (the output is in ascending id order), and one
#: id the emulator does not know.
ALL_IDS = [40, *PLAIN_IDS, 15, 14, 13, 12, 11, 99_999]


def serve_awkward_datasets(emulator: EmulatorServer) -> None:
    """Make the running in-process emulator answer the :data:`AWKWARD` datasets for their ids."""
    server = emulator._server
    assert server is not None
    catalogue = server.app.catalogue
    for ident in AWKWARD_IDS:
        assert catalogue.has_dataset(catalogue.latest, ident)
    plain_dataset, plain_scores = catalogue.dataset, catalogue.impact_scores

    def dataset(version: Any, system_model: str, dataset_id: int) -> dict[str, Any]:
        if dataset_id in AWKWARD:
            return copy.deepcopy(AWKWARD[dataset_id][0])
        return plain_dataset(version, system_model, dataset_id)

    def impact_scores(version: Any, system_model: str, dataset_id: int, indicators: Any) -> Any:
        if dataset_id in AWKWARD:
            return copy.deepcopy(AWKWARD[dataset_id][1])
        return plain_scores(version, system_model, dataset_id, indicators)

    catalogue.dataset = dataset  # type: ignore[method-assign]
    catalogue.impact_scores = impact_scores  # type: ignore[method-assign]


def _endpoint_without_scores_key(emulator: EmulatorServer) -> None:
    """Dataset 13 answers without ``impact_scores`` even when scored: the emulator adds the key after
    ``impact_scores()`` returns, so None there must drop it again."""
    server = emulator._server
    assert server is not None
    api = server.app.api
    plain_scored = api._scored

    def scored(version: Any, system_model: str, dataset_id: int, indicators: list[Any]) -> dict[str, Any]:
        dataset = plain_scored(version, system_model, dataset_id, indicators)
        if dataset_id in AWKWARD and AWKWARD[dataset_id][1] is None:
            dataset.pop("impact_scores", None)
        return dataset

    api._scored = scored  # type: ignore[method-assign]


def parquet_as_text(path: Path) -> str:
    """A Parquet file's schema and rows as JSON text (``-0.0`` and ``1e-05`` kept as written)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    schema = [[field.name, str(field.type)] for field in table.schema]
    rows = [[row[name] for name, _ in schema] for row in table.to_pylist()]
    return json.dumps({"schema": schema, "rows": rows}, ensure_ascii=False, indent=0) + "\n"


def check_golden(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if REGENERATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    expected = path.read_bytes()
    if data != expected:
        mismatched = [
            f"line {number}:\n  expected {want!r}\n  written  {got!r}"
            for number, (want, got) in enumerate(zip(expected.splitlines(), data.splitlines(), strict=False), 1)
            if want != got
        ]
        sizes = f"{len(data)} vs {len(expected)} bytes"
        pytest.fail(f"{name} differs from the golden file ({sizes}); " + "\n".join(mismatched[:5]))


@pytest.fixture
def awkward_emulator(ecoinvent_conn: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    serve_awkward_datasets(ecoinvent_conn)
    _endpoint_without_scores_key(ecoinvent_conn)
    # Two ids per batch call: the NaN answer (id 40) stays alone in its batch, the others are plain JSON.
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", ecoinvent_conn.connection_json(batch_size=2))
    return ecoinvent_conn


def test_the_written_bytes_match_the_golden_files(
    dag_runner: Callable[..., Any], awkward_emulator: EmulatorServer, tmp_path: Path
) -> None:
    outputs = {name: tmp_path / name for name in ("nested.jsonl", "nested_8.jsonl", "flat.jsonl", "flat.parquet")}
    generic = tmp_path / "generic.jsonl"
    runner = dag_runner(
        f"""
        common = dict(dataset_ids={ALL_IDS!r}, indicator_ids={INDICATORS!r}, version="3.11", max_in_flight=1)
        EcoinventDatasetsOperator(task_id="nested", output_uri="file://{outputs["nested.jsonl"]}", **common)
        EcoinventDatasetsOperator(
            task_id="nested_8", output_uri="file://{outputs["nested_8.jsonl"]}", **{{**common, "max_in_flight": 8}}
        )
        EcoinventDatasetsOperator(
            task_id="flat", output_uri="file://{outputs["flat.jsonl"]}", layout="flat", **common
        )
        EcoinventDatasetsOperator(
            task_id="parquet", output_uri="file://{outputs["flat.parquet"]}", layout="flat", format="parquet", **common
        )
        EcoinventOperator(
            task_id="generic",
            endpoint="datasets/batch",
            method="POST",
            query={{"version": "3.11", "system_model": "cutoff"}},
            body={{"dataset_ids": {[i for i in AWKWARD_IDS if i != 40]!r}, "indicator_ids": [1, 2]}},
            output_uri="file://{generic}",
        )
        """
    )
    result = runner.run()
    assert result.state == "success", result.errors

    nested = outputs["nested.jsonl"].read_bytes()
    check_golden("nested.jsonl", nested)
    # The same bytes whatever the concurrency: the order is the ids', not the answers'.
    assert outputs["nested_8.jsonl"].read_bytes() == nested
    check_golden("flat.jsonl", outputs["flat.jsonl"].read_bytes())
    check_golden("flat.parquet.json", parquet_as_text(outputs["flat.parquet"]).encode())
    check_golden("generic.jsonl", generic.read_bytes())

    for task, path in [("nested", "nested.jsonl"), ("flat", "flat.jsonl"), ("parquet", "flat.parquet")]:
        data = outputs[path].read_bytes()
        manifest = result.xcom[task]
        assert (manifest["bytes"], manifest["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
        assert manifest["missing_dataset_ids"] == [99_999]
    assert result.xcom["generic"]["sha256"] == hashlib.sha256(generic.read_bytes()).hexdigest()
    assert not REGENERATE, "golden files regenerated: unset ECOINVENT_REGENERATE_GOLDEN and run again"
