"""Compare an answer with its expected shape, key by key, and name every difference.

Pure functions over parsed JSON: no I/O, no values copied into the result. A difference names a key path
(``results[].sectors``), a JSON type or a count, never a value, so a report is safe to paste into a bug report.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_ecoinvent.probe.expected import (
    ARRAY,
    BOOLEAN,
    INTEGER,
    NULL,
    NUMBER,
    OBJECT,
    STRING,
    Key,
    ListAnswer,
    Shape,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

#: Every kind of difference, with the label the text report prints.
KIND_LABELS: Final = {
    "missing_key": "missing key",
    "extra_key": "extra key",
    "wrong_type": "wrong type",
    "paging_field_absent": "paging field",
    "list_under_other_key": "list elsewhere",
    "no_list": "no list",
    "not_read": "not read",
    "not_json": "not JSON",
    "missing_item": "missing item",
}
_LABEL_WIDTH: Final = max(len(label) for label in KIND_LABELS.values()) + 2
_TYPE_ORDER: Final = (STRING, INTEGER, NUMBER, BOOLEAN, ARRAY, OBJECT, NULL)
#: Where a difference is about the answer as a whole rather than one key.
WHOLE_ANSWER: Final = "(answer)"


@dataclass(frozen=True)
class Difference:
    """One way an answer differs from what the provider expects."""

    kind: str
    field: str
    message: str

    def line(self) -> str:
        """The report line: ``wrong type      expires_in: expected integer, got string``."""
        return f"{KIND_LABELS[self.kind]:<{_LABEL_WIDTH}}{self.field}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        """JSON form for ``--json``."""
        return {"kind": self.kind, "field": self.field, "message": self.message}


def json_type(value: Any) -> str:
    """The JSON type name of a parsed JSON value."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, float):
        return NUMBER
    if isinstance(value, str):
        return STRING
    if isinstance(value, list):
        return ARRAY
    return OBJECT


def _accepts(types: frozenset[str], found: str) -> bool:
    return found in types or (found == INTEGER and NUMBER in types)


def _names(types: Iterable[str]) -> str:
    ordered = sorted(set(types), key=lambda name: _TYPE_ORDER.index(name) if name in _TYPE_ORDER else 99)
    return " or ".join(ordered)


def _path(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _absent_from(absent: int, total: int) -> str:
    if total == 1:
        return "absent"
    return f"absent from all {total} items" if absent == total else f"absent from {absent} of {total} items"


def compare_items(shape: Shape, items: Sequence[Any], prefix: str = "") -> list[Difference]:
    """Differences between ``shape`` and the objects ``items`` (one answer, or every item of a list).

    Findings are aggregated over the items: one line per key, however many items share the difference.
    """
    objects = [item for item in items if isinstance(item, dict)]
    differences: list[Difference] = []
    others = Counter(json_type(item) for item in items if not isinstance(item, dict))
    if others:
        differences.append(Difference("wrong_type", prefix or WHOLE_ANSWER, f"expected object, got {_names(others)}"))
    if not objects:
        return differences
    for key in shape.keys:
        differences.extend(_compare_key(key, objects, prefix))
    differences.extend(_extra_keys(shape, objects, prefix))
    return differences


def _compare_key(key: Key, objects: Sequence[dict[str, Any]], prefix: str) -> list[Difference]:
    field = _path(prefix, key.name)
    names = (key.name, *key.aliases)
    values = [next(obj[name] for name in names if name in obj) for obj in objects if any(n in obj for n in names)]
    absent = len(objects) - len(values)
    differences = []
    if absent and (key.presence == "required" or (key.presence == "documented" and not values)):
        effect = f"; {key.missing_effect}" if key.missing_effect else ""
        message = f"{key.presence}, {_absent_from(absent, len(objects))}{effect}"
        differences.append(Difference(key.missing_kind, field, message))
    wrong = {json_type(value) for value in values if not _accepts(key.types, json_type(value))}
    if wrong:
        return [*differences, Difference("wrong_type", field, f"expected {_names(key.types)}, got {_names(wrong)}")]
    elements = [element for value in values if isinstance(value, list) for element in value]
    return differences + _compare_elements(key, elements, field)


def _compare_elements(key: Key, elements: Sequence[Any], field: str) -> list[Difference]:
    if not elements or not key.element_types:
        return []
    wrong = {json_type(element) for element in elements if not _accepts(key.element_types, json_type(element))}
    if wrong:
        return [Difference("wrong_type", f"{field}[]", f"expected {_names(key.element_types)}, got {_names(wrong)}")]
    if key.element_shape is None:
        return []
    return compare_items(
        key.element_shape, [element for element in elements if isinstance(element, dict)], f"{field}[]"
    )


def _extra_keys(shape: Shape, objects: Sequence[dict[str, Any]], prefix: str) -> list[Difference]:
    known = shape.names
    extra: dict[str, set[str]] = {}
    for obj in objects:
        for name, value in obj.items():
            if name not in known:
                extra.setdefault(name, set()).add(json_type(value))
    return [
        Difference("extra_key", _path(prefix, name), f"not in the contract ({_names(types)})")
        for name, types in sorted(extra.items())
    ]


@dataclass(frozen=True)
class ListFindings:
    """What :func:`compare_list_answer` found: the differences, the items, and how many the provider reads."""

    differences: list[Difference]
    items: list[Any]
    provider_reads: int


def compare_list_answer(spec: ListAnswer, payload: Any) -> ListFindings:
    """Differences of a list answer: where the list sits, its wrapper (``total``...), then every item."""
    reads = spec.provider_reads(payload)
    differences: list[Difference] = []
    items: list[Any] = []
    prefix = "[]"
    if isinstance(payload, list):
        items = payload
        if not spec.bare_list:
            differences.append(_misplaced(spec, WHOLE_ANSWER, "a bare list", reads, len(items)))
            differences.extend(compare_items(spec.wrapper, [{}]))
    elif isinstance(payload, dict):
        key = _list_key(spec, payload)
        if key is None:
            keys = ", ".join(sorted(payload)) or "none"
            differences.append(
                Difference("no_list", WHOLE_ANSWER, f"no list of items in the answer (its keys: {keys})")
            )
        else:
            items, prefix = payload[key], f"{key}[]"
            if key not in spec.list_keys:
                differences.append(_misplaced(spec, key, f"under '{key}'", reads, len(items)))
        wrapper = {name: value for name, value in payload.items() if name != key}
        differences.extend(compare_items(spec.wrapper, [wrapper]))
    else:
        differences.append(
            Difference("wrong_type", WHOLE_ANSWER, f"expected object or array, got {json_type(payload)}")
        )
    differences.extend(compare_items(spec.item, items, prefix))
    misplaced = any(difference.kind == "list_under_other_key" for difference in differences)
    if reads < len(items) and not misplaced:
        differences.append(Difference("not_read", prefix, f"the provider reads {reads} of {len(items)} items"))
    return ListFindings(differences, list(items), reads)


def _list_key(spec: ListAnswer, payload: dict[str, Any]) -> str | None:
    """The documented key holding the list, else the first key that holds a list."""
    for key in (*spec.list_keys, *payload):
        if isinstance(payload.get(key), list):
            return key
    return None


def _misplaced(spec: ListAnswer, field: str, where: str, reads: int, count: int) -> Difference:
    expected = " or ".join(f"'{key}'" for key in spec.list_keys) + (" or a bare list" if spec.bare_list else "")
    effect = (
        "the provider reads it"
        if reads >= count
        else f"the provider does not look there and reads {reads} of {count} items"
    )
    return Difference("list_under_other_key", field, f"the list is {where}, expected under {expected}; {effect}")
