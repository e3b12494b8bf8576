"""What operators write: JSON Lines records (nested layout) and flat rows, to JSON Lines or Parquet.

* :func:`json_line` (from :mod:`.._json`) is the one serialisation of a record (sorted keys, compact,
  UTF-8), so two runs over the same data produce byte-identical files.
* :class:`ParquetRowWriter` streams rows into row groups; pyarrow is imported only when it is used.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_ecoinvent._client.codec import json_line as json_line
from airflow_provider_ecoinvent.exceptions import EcoinventConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

PARQUET_INSTALL_HINT: Final = "pip install 'airflow-provider-ecoinvent[parquet]'"

#: Columns of the flat layout, in file order, with their Parquet types.
FLAT_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("dataset_id", "int64"),
    ("activity", "string"),
    ("product", "string"),
    ("geography", "string"),
    ("unit", "string"),
    ("indicator_id", "int64"),
    ("method", "string"),
    ("category", "string"),
    ("indicator", "string"),
    ("score", "float64"),
    ("score_unit", "string"),
    ("version", "string"),
    ("system_model", "string"),
)


# -- records -------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def sorted_scores(dataset: Mapping[str, Any]) -> list[Any]:
    """The dataset's ``impact_scores``, ordered by indicator id (unparseable ids last)."""
    scores = dataset.get("impact_scores")
    if not isinstance(scores, list):
        return []
    if _in_id_order(scores):
        return list(scores)

    def key(score: Any) -> tuple[int, int, str]:
        ident = _int(score.get("id")) if isinstance(score, dict) else None
        return (0, ident, "") if ident is not None else (1, 0, json.dumps(score, sort_keys=True, default=str))

    return sorted(scores, key=key)


def _in_id_order(scores: list[Any]) -> bool:
    """Whether ``scores`` are already what :func:`sorted_scores` returns: objects with integer ids, ascending
    (as the API answers for the sorted ids the hook sends). Checked in one pass, with no key built."""
    last = 0
    for score in scores:
        ident = score.get("id") if type(score) is dict else None
        if type(ident) is not int or ident < last:
            return False
        last = ident
    return True


def nested_record(dataset: Mapping[str, Any]) -> Mapping[str, Any]:
    """One dataset as written in the nested layout: as returned, with its scores by indicator id.

    The dataset itself when its scores are in order already (the usual case: no copy); read it, never change it.
    """
    scores = dataset.get("impact_scores")
    if "impact_scores" not in dataset or (isinstance(scores, list) and _in_id_order(scores)):
        return dataset
    record = dict(dataset)
    record["impact_scores"] = sorted_scores(dataset)
    return record


def flat_rows(dataset: Mapping[str, Any], version: str, system_model: str) -> Iterable[dict[str, Any]]:
    """The flat layout: one row per (dataset, indicator), or one row with empty indicator columns
    for a dataset without scores (none asked for, or none returned)."""
    base = {
        "dataset_id": _int(dataset.get("id")),
        "activity": _text(dataset.get("activity")),
        "product": _text(dataset.get("product")),
        "geography": _text(dataset.get("geography")),
        "unit": _text(dataset.get("unit")),
        "version": version,
        "system_model": system_model,
    }
    scores = [score for score in sorted_scores(dataset) if isinstance(score, dict)]
    if not scores:
        yield {
            **base,
            "indicator_id": None,
            "method": None,
            "category": None,
            "indicator": None,
            "score": None,
            "score_unit": None,
        }
        return
    for score in scores:
        yield {
            **base,
            "indicator_id": _int(score.get("id")),
            "method": _text(score.get("method")),
            "category": _text(score.get("category")),
            "indicator": _text(score.get("indicator")),
            "score": _float(score.get("score")),
            "score_unit": _text(score.get("unit")),
        }


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
    records = 0
    for row in flat_rows(dataset, scope[0], scope[1]):
        if parquet is not None:
            parquet.write(row)
        else:
            output.write(json_line(row))
        records += 1
    return records


# -- Parquet -------------------------------------------------------------------------------------


def require_pyarrow() -> Any:
    """Import pyarrow.parquet, or fail with the install command."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise EcoinventConfigError(
            f"format='parquet' needs pyarrow, which is not installed: {PARQUET_INSTALL_HINT}"
        ) from None
    return pq


class ParquetRowWriter:
    """Rows (dicts with the :data:`FLAT_COLUMNS`) to a Parquet stream, ``row_group_size`` rows at a time."""

    def __init__(self, sink: Any, *, row_group_size: int = 50_000) -> None:
        import pyarrow as pa

        pq = require_pyarrow()
        self._pa = pa
        self.schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in FLAT_COLUMNS])
        self._writer = pq.ParquetWriter(sink, self.schema)
        self._row_group_size = row_group_size
        self._columns: dict[str, list[Any]] = {name: [] for name, _ in FLAT_COLUMNS}
        self._pending = 0
        self.rows = 0

    def write(self, row: Mapping[str, Any]) -> None:
        for name, values in self._columns.items():
            values.append(row.get(name))
        self._pending += 1
        self.rows += 1
        if self._pending >= self._row_group_size:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        table = self._pa.Table.from_pydict(self._columns, schema=self.schema)
        self._writer.write_table(table)
        self._columns = {name: [] for name, _ in FLAT_COLUMNS}
        self._pending = 0

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


__all__ = [
    "FLAT_COLUMNS",
    "PARQUET_INSTALL_HINT",
    "ParquetRowWriter",
    "flat_rows",
    "json_line",
    "nested_record",
    "require_pyarrow",
    "sorted_scores",
]
