"""Reading what the datasets operator writes: the nested records and the flat rows, as the files hold them.

A file of the nested layout holds one JSON object per line, a dataset as the API returns it with its
``impact_scores`` ordered by indicator id (:func:`nested_record`). The flat layout (JSON Lines or Parquet)
holds one row per dataset and indicator with the :data:`FLAT_COLUMNS`; :func:`flat_rows` turns a nested
record into those rows. The operators write through these same functions, so a DAG that reads a nested
file and flattens it downstream (``example_dags/ecoinvent_to_postgres.py``) gets exactly the rows a
``layout="flat"`` run would have written. No I/O and nothing heavy: safe to import in a DAG file.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

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


__all__ = ["FLAT_COLUMNS", "flat_rows", "nested_record", "sorted_scores"]
