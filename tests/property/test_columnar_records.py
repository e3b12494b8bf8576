"""The columnar writing path against the per-row one it replaces, on random selections.

The per-row path (``flat_rows`` into ``ParquetRowWriter.write``, ``json_line(nested_record(...))``) is the
reference: the columnar path must give the same Parquet values and the same JSON Lines bytes for any answer,
including sparse ids, K over 100, datasets the API left out, NaN and odd floats, values of the wrong type and
fields the API may add.
"""

from __future__ import annotations

import io
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_ecoinvent._client.codec import stdlib_json_line
from airflow_provider_ecoinvent.operators._records import ParquetRowWriter, write_dataset
from airflow_provider_ecoinvent.records import FLAT_COLUMNS, flat_rows, nested_record

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

ODD_FLOATS = [math.nan, math.inf, -math.inf, -0.0, 0.0, 1e-7, 1e-5, 1e16, 1.5e20, 5e-324, 1e308, 0.1 + 0.2]
SCORES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(ODD_FLOATS),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.none(),
    st.sampled_from(["1.5", "x", ""]),
)
NAMES = ["EF v3.1", "climate change", "kg CO2-Eq", "GWP100", "ü 北", ""]
TEXTS = st.one_of(st.sampled_from(NAMES), st.text(max_size=8))
EXTRA = st.dictionaries(
    st.sampled_from(["uncertainty", "quality", "note"]), st.one_of(st.floats(), st.text(max_size=4), st.none())
)


#: One way per dataset for its answer to differ from the API's shape, so each is met on its own too.
ODDITIES = {
    "bool": st.booleans(),
    "text number": st.sampled_from(["1.5", "x", ""]),
    "int": st.integers(-(2**70), 2**70),
    "any": SCORES,
}


@st.composite
def scores_of(draw: Any, oddity: str | None) -> list[Any]:
    """A dataset's scores: in the API's shape (int ids ascending, float scores, text names) when ``oddity`` is
    None, else with one kind of odd value, or unsorted and with scores that are not objects with int ids."""
    count = draw(st.sampled_from([0, 1, 3, 101, 150]))
    ids = sorted(draw(st.sets(st.integers(1, 10_000), min_size=count, max_size=count)))
    values = ODDITIES.get(oddity or "", st.sampled_from(ODD_FLOATS))
    scores: list[Any] = []
    for ident in ids:
        score: dict[str, Any] = {"id": ident, "score": draw(st.one_of(st.sampled_from(ODD_FLOATS), values))}
        for key in ("method", "category", "indicator", "unit"):
            if draw(st.integers(0, 9)):
                score[key] = draw(st.one_of(TEXTS, st.integers(0, 9)) if oddity == "names" else TEXTS)
        score.update(draw(EXTRA))
        scores.append(score)
    if oddity == "order" and scores:
        scores.reverse()
        scores.append(draw(st.sampled_from([{"id": "7"}, {"id": True}, 5, {"score": 1.0}])))
    return scores


@st.composite
def datasets(draw: Any) -> list[dict[str, Any]]:
    """Datasets of a stream: sparse ids, some missing fields, some without scores, extra fields."""
    ids = sorted(draw(st.sets(st.integers(1, 10**9), max_size=6)))
    result = []
    for ident in ids:
        dataset: dict[str, Any] = {"id": ident, "activity": draw(TEXTS), "geography": "CH", "unit": "kg"}
        if draw(st.integers(0, 3)):
            dataset["impact_scores"] = draw(scores_of(draw(st.sampled_from([None, None, *ODDITIES, "names", "order"]))))
        dataset.update(draw(EXTRA))
        result.append(dataset)
    return result


def _reference_parquet(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in FLAT_COLUMNS])
    rows = [row for dataset in batch for row in flat_rows(dataset, "3.11", "cutoff")]
    return list(pa.Table.from_pylist(rows, schema=schema).to_pylist())


def _same(left: Any, right: Any) -> bool:
    """Value for value, with -0.0 told from 0.0 (the floats must be the same floats)."""
    return bool(left == right and repr(left) == repr(right))


@given(datasets(), st.integers(1, 400))
def test_columnar_parquet_holds_the_values_of_the_per_row_path(batch: list[dict[str, Any]], group: int) -> None:
    sink = io.BytesIO()
    with ParquetRowWriter(sink, row_group_size=group) as writer:
        written = sum(write_dataset(None, writer, dataset, "flat", ("3.11", "cutoff")) for dataset in batch)
        writer.close()
    expected = _reference_parquet(batch)
    assert written == len(expected) == writer.rows
    assert _same(pq.read_table(io.BytesIO(sink.getvalue())).to_pylist(), expected)


@given(datasets())
def test_nested_lines_are_the_bytes_of_the_standard_library(batch: list[dict[str, Any]]) -> None:
    class Output:
        def __init__(self) -> None:
            self.lines: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.lines.append(data)

    output = Output()
    for dataset in batch:
        write_dataset(output, None, dataset, "nested", ("3.11", "cutoff"))
    assert output.lines == [stdlib_json_line(nested_record(dataset)) for dataset in batch]
