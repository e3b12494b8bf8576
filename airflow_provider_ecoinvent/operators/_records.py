"""How the datasets operator writes records: the one writing rule both output modes share.

* :func:`write_dataset` writes one dataset in its layout (the records and rows of
  :mod:`airflow_provider_ecoinvent.records`), so a part of a dataset directory holds the bytes a single
  file would for the same datasets.
* :func:`json_line` (from :mod:`.._client.codec`) is the one serialisation of a record (sorted keys,
  compact, UTF-8), so two runs over the same data produce byte-identical files; :class:`LineBatch` hands
  the lines to the output a batch at a time.
* :class:`ParquetRowWriter` streams flat rows into row groups; pyarrow is imported only when it is used.
"""

from __future__ import annotations

from itertools import chain, repeat
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_ecoinvent._client.codec import json_line as json_line
from airflow_provider_ecoinvent.exceptions import EcoinventConfigError
from airflow_provider_ecoinvent.records import FLAT_COLUMNS, flat_rows, nested_record
from airflow_provider_ecoinvent.records import _in_id_order as in_id_order

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

PARQUET_INSTALL_HINT: Final = "pip install 'airflow-provider-ecoinvent[parquet]'"

#: JSON lines joined into one write to the output (each write takes a lock and checks for an abort), and about
#: the most bytes collected for one write (a dataset scored for 600 indicators is a ~100 KB line).
LINES_PER_WRITE: Final = 256
WRITE_BYTES: Final = 256 * 1024


class LineBatch:
    """Hands JSON lines to an output ``LINES_PER_WRITE`` (or about ``WRITE_BYTES``) at a time: one locked,
    abort-checked write per batch instead of per line, and little held for huge lines. :meth:`flush` before
    the output is committed."""

    def __init__(self, output: Any, size: int = LINES_PER_WRITE, max_bytes: int = WRITE_BYTES) -> None:
        self._output = output
        self._size = size
        self._max_bytes = max_bytes
        self._lines: list[bytes] = []
        self._bytes = 0

    def write(self, line: bytes) -> None:
        self._lines.append(line)
        self._bytes += len(line)
        if len(self._lines) >= self._size or self._bytes >= self._max_bytes:
            self.flush()

    def flush(self) -> None:
        if self._lines:
            self._output.write(b"".join(self._lines))
            self._lines.clear()
            self._bytes = 0


def write_dataset(
    output: Any,
    parquet: ParquetRowWriter | None,
    dataset: Mapping[str, Any],
    layout: str,
    scope: Sequence[str],
) -> int:
    """Write one dataset in ``layout`` to ``output`` (``scope``: version, system model); returns the records
    written. The one writing rule of both output modes, so a part holds the bytes a single file would."""
    if layout == "nested":
        output.write(json_line(nested_record(dataset)))
        return 1
    if parquet is not None:
        return parquet.write_dataset(dataset, scope[0], scope[1])
    records = 0
    for row in flat_rows(dataset, scope[0], scope[1]):
        output.write(json_line(row))
        records += 1
    return records


#: The flat columns taken from each score, and the key each comes from (``flat_rows`` maps them alike); the
#: other columns are the dataset's, the same on all its rows.
_SCORE_KEYS: Final = {
    "indicator_id": "id",
    "method": "method",
    "category": "category",
    "indicator": "indicator",
    "score": "score",
    "score_unit": "unit",
}
_DATASET_COLUMNS: Final = tuple(name for name, _ in FLAT_COLUMNS if name not in _SCORE_KEYS)


def in_plain_shape(dataset: Mapping[str, Any]) -> bool:
    """Whether the columnar path may take ``dataset``: scores that are objects with integer ids in ascending
    order (as the API answers), so they are its rows as they come; anything else goes row by row."""
    scores = dataset.get("impact_scores")
    return type(scores) is list and bool(scores) and in_id_order(scores)


def plain_columns(datasets: Sequence[tuple[Mapping[str, Any], str, str]]) -> tuple[dict[str, list[Any]], list[int]]:
    """The flat columns of datasets in the plain shape (:func:`in_plain_shape`), one list per column, built a
    column at a time (no dict per row), and the rows of each dataset. The dataset's columns hold one value per
    dataset, from ``flat_rows`` (the one rule), for Arrow to repeat; the score columns hold the fields as they
    are, for :func:`plain_table` to type-check as a whole."""
    columns: dict[str, list[Any]] = {name: [] for name in _DATASET_COLUMNS}
    scores: list[Any] = []
    counts: list[int] = []
    for dataset, version, system_model in datasets:
        part = dataset["impact_scores"]
        scores.extend(part)
        counts.append(len(part))
        unscored = {key: value for key, value in dataset.items() if key != "impact_scores"}
        base = next(iter(flat_rows(unscored, version, system_model)))
        for name in _DATASET_COLUMNS:
            columns[name].append(base[name])
    for name, key in _SCORE_KEYS.items():
        columns[name] = [score.get(key) for score in scores]
    return columns, counts


# -- Parquet -------------------------------------------------------------------------------------


def plain_table(pa: Any, schema: Any, columns: dict[str, list[Any]], counts: list[int]) -> Any:
    """``columns`` and ``counts`` (from :func:`plain_columns`) as a table of ``schema`` holding the values
    ``flat_rows`` gives, or ``None`` when a value is not of the type that makes them equal: a string column
    holding other than text, a score other than a number (a bool, which Arrow would take as 1.0), an id out of
    range. Scores that are not finite become nulls, as ``flat_rows`` makes them; each dataset's values are
    converted once and repeated over its rows by Arrow."""
    import pyarrow.compute as pc

    if not set(map(type, columns["score"])) <= {float, int, type(None)}:
        return None
    rows_of = pa.array(list(chain.from_iterable(map(repeat, range(len(counts)), counts))), type=pa.int32())
    arrays = []
    try:
        for field in schema:
            values = columns[field.name]
            if field.name == "score":
                score = pa.array(values, type=pa.float64())
                arrays.append(pc.if_else(pc.is_finite(score), score, pa.scalar(None, pa.float64())))
            elif field.name in _SCORE_KEYS:
                arrays.append(pa.array(values, type=field.type))
            else:
                arrays.append(pa.array(values, type=field.type).take(rows_of))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
        return None
    return pa.Table.from_arrays(arrays, schema=schema)


def require_pyarrow() -> Any:
    """Import pyarrow.parquet, or fail with the install command."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise EcoinventConfigError(
            f"format='parquet' needs pyarrow, which is not installed: {PARQUET_INSTALL_HINT}"
        ) from None
    return pq


#: Columns written dictionary-encoded: all but the scores, which hardly repeat (their dictionary overflows and
#: is written for nothing). The names, units and ids repeat per indicator or dataset: 18% smaller files than
#: dictionary-encoding every column (N = 2,000, K = 250, 50,000-row groups: 5.22 MB -> about 4.3 MB).
DICTIONARY_COLUMNS: Final = tuple(name for name, _ in FLAT_COLUMNS if name != "score")

#: Rows of plain-shape datasets gathered before they are turned into Arrow arrays (bounds what is held).
COLUMNAR_CHUNK_ROWS: Final = 8192


class ParquetRowWriter:
    """Rows with the :data:`FLAT_COLUMNS` to a Parquet stream, a row group at a time (``row_group_size`` rows
    or, for whole datasets, the first dataset boundary past it).

    :meth:`write_dataset` is the columnar path: datasets in the API's shape become Arrow arrays a column at a
    time (about a sixth of the CPU of a dict per row at K = 250); :meth:`write` takes one row (the reference
    path, which also takes every dataset of another shape, and a chunk whose values Arrow would not type as
    ``flat_rows`` does)."""

    def __init__(self, sink: Any, *, row_group_size: int = 50_000) -> None:
        import pyarrow as pa

        pq = require_pyarrow()
        self._pa = pa
        self.schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in FLAT_COLUMNS])
        self._writer = pq.ParquetWriter(sink, self.schema, use_dictionary=list(DICTIONARY_COLUMNS))
        self._row_group_size = row_group_size
        self._columns: dict[str, list[Any]] = {name: [] for name, _ in FLAT_COLUMNS}
        self._pending = 0
        #: Plain-shape datasets (with their version and system model) not yet made arrays, and their rows.
        self._datasets: list[tuple[Mapping[str, Any], str, str]] = []
        self._dataset_rows = 0
        #: Tables made of the rows above, waiting for the row group to fill.
        self._tables: list[Any] = []
        self._table_rows = 0
        self.rows = 0

    def write(self, row: Mapping[str, Any]) -> None:
        """One row (a dict with the :data:`FLAT_COLUMNS`), after the datasets written before it."""
        self._stage_datasets()
        for name, values in self._columns.items():
            values.append(row.get(name))
        self._pending += 1
        self.rows += 1
        if self._held() >= self._row_group_size:
            self._flush()

    def write_dataset(self, dataset: Mapping[str, Any], version: str, system_model: str) -> int:
        """The flat rows of one dataset (as :func:`flat_rows` makes them); returns how many."""
        if not in_plain_shape(dataset):
            records = 0
            for row in flat_rows(dataset, version, system_model):
                self.write(row)
                records += 1
            return records
        self._stage_rows()
        records = len(dataset["impact_scores"])
        self._datasets.append((dataset, version, system_model))
        self._dataset_rows += records
        self.rows += records
        if self._held() >= self._row_group_size:
            self._flush()
        elif self._dataset_rows >= COLUMNAR_CHUNK_ROWS:
            self._stage_datasets()
        return records

    def _held(self) -> int:
        return self._pending + self._dataset_rows + self._table_rows

    def _stage_rows(self) -> None:
        """The single rows gathered so far, as a table (so that rows and datasets keep their order)."""
        if self._pending:
            self._stage(self._pa.Table.from_pydict(self._columns, schema=self.schema))
            self._columns = {name: [] for name, _ in FLAT_COLUMNS}
            self._pending = 0

    def _stage_datasets(self) -> None:
        """The plain-shape datasets gathered so far, as a table built column by column; if Arrow cannot type
        a score field as ``flat_rows`` would (a number as text, a bool as score...), row by row instead."""
        if not self._datasets:
            return
        datasets, self._datasets, self._dataset_rows = self._datasets, [], 0
        table = plain_table(self._pa, self.schema, *plain_columns(datasets))
        if table is None:
            rows = [row for dataset, *scope in datasets for row in flat_rows(dataset, *scope)]
            table = self._pa.Table.from_pylist(rows, schema=self.schema)
        self._stage(table)

    def _stage(self, table: Any) -> None:
        self._tables.append(table)
        self._table_rows += table.num_rows

    def _flush(self) -> None:
        self._stage_rows()
        self._stage_datasets()
        if not self._tables:
            return
        table = self._pa.concat_tables(self._tables)
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self._tables, self._table_rows = [], 0

    def close(self) -> None:
        self._flush()
        self._writer.close()

    def abandon(self) -> None:
        """Close without writing the pending rows, for a try that failed (its temporary output is discarded).

        Call it while the sink is still open: a writer left open writes its footer when it is collected, into
        a sink closed by then, and that ``OSError`` surfaces as an exception nobody can catch. Never raises.
        """
        self._columns = {name: [] for name, _ in FLAT_COLUMNS}
        self._pending = 0
        self._datasets, self._dataset_rows, self._tables, self._table_rows = [], 0, [], 0
        try:
            self._writer.close()
        except Exception:  # the sink may be broken already: the point is only that nothing happens later
            pass
        finally:
            self._writer.is_open = False

    def __enter__(self) -> ParquetRowWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        """Abandoned when the block fails (BaseException too: a kill); :meth:`close` is called explicitly."""
        if kind is not None:
            self.abandon()


__all__ = ["PARQUET_INSTALL_HINT", "LineBatch", "ParquetRowWriter", "json_line", "require_pyarrow", "write_dataset"]
