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

from typing import TYPE_CHECKING, Any, Final

from airflow_provider_ecoinvent._client.codec import json_line as json_line
from airflow_provider_ecoinvent.exceptions import EcoinventConfigError
from airflow_provider_ecoinvent.records import FLAT_COLUMNS, flat_rows, nested_record

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


__all__ = ["PARQUET_INSTALL_HINT", "LineBatch", "ParquetRowWriter", "json_line", "require_pyarrow", "write_dataset"]
