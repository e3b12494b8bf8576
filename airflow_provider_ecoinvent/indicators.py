"""Indicators the way LCA practitioners name them, and any number of them per run.

* :func:`parse_selectors` checks selectors without any I/O (operators call it when a DAG file is parsed):
  an ``int`` is an indicator id; a string ``"method | category | indicator"`` names one indicator
  (``"method | indicator"`` too, when that name is unique within the method); a dict with any of the keys
  ``method``, ``category``, ``indicator`` selects every indicator matching all the keys given, e.g.
  ``{"method": "EF v3.1"}``. Names match case-insensitively with whitespace normalised. A list or a dict
  rendered as text by a template (JSON or a Python literal) is read as that list or dict.
* :func:`resolve_selectors` resolves them against the catalogue of one version (the free ``/indicators``
  listing), de-duplicated and sorted by id, and fails naming the closest existing names, the candidates
  of an ambiguous name, or both readings of a ``"method | name"`` whose name is an indicator and also a
  category of other indicators, so the user can fix the DAG before any scored call is made.
* :func:`indicator_slices`, :func:`compact_scores`, :func:`merge_compact` and :func:`expand` score one
  batch of datasets for any number of indicators: the API scores at most 100 per call, so K indicators
  take ceil(K / 100) calls whose scores are merged per dataset, compactly while they wait.

Standard library only: DAG files import the operators, and the operators import this module.
"""

from __future__ import annotations

import ast
import difflib
import json
from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from airflow_provider_ecoinvent._client.ids import MAX_INDICATORS, MAX_RENDERED_LIST_CHARS
from airflow_provider_ecoinvent.exceptions import EcoinventConfigError, EcoinventIndicatorError

#: The keys of a dict selector, in the order a catalogue narrows by them.
SELECTOR_KEYS: Final = ("method", "category", "indicator")
#: Candidates listed for an ambiguous name, and closest names suggested for one that matches nothing.
LISTED_CANDIDATES: Final = 10
CLOSEST_NAMES: Final = 3
_FIELDS: Final = ("id", "method", "category", "indicator", "unit")


def normalise(text: str) -> str:
    """Case-insensitive, whitespace-normalised form of a name (``"EF  v3.1 "`` == ``"ef v3.1"``)."""
    return " ".join(text.split()).casefold()


def parse_selectors(value: Any, argument: str = "indicators") -> list[Any]:
    """The selectors as given, checked: a list (or its string rendering, as Jinja produces from XCom).

    A single string or dict (or a dict's string rendering, e.g. ``"{{ params.selector }}"``) is taken as a
    list of one selector.

    :raises EcoinventConfigError: an empty list, or a selector of the wrong form, with what to write instead.
    """
    if isinstance(value, str) and value.strip().startswith(("[", "{")):
        value = _rendered(value.strip(), argument)
    if isinstance(value, str | Mapping) or (isinstance(value, int) and not isinstance(value, bool)):
        value = [value]
    if isinstance(value, bytes) or not isinstance(value, Iterable):
        raise EcoinventConfigError(
            f"{argument} must be a list of selectors (ids, 'method | category | indicator' names or dicts), "
            f"got {type(value).__name__}."
        )
    selectors = list(value)
    if not selectors:
        raise EcoinventConfigError(
            f"{argument} is empty: give at least one selector, e.g. [{{'method': 'EF v3.1'}}] or "
            "['EF v3.1 | climate change | global warming potential (GWP100)']."
        )
    for selector in selectors:
        _check_selector(selector, argument)
    return selectors


def _rendered(text: str, argument: str) -> Any:
    """A list, or one dict selector, rendered as text by a template: JSON (``tojson``, with ``true``/``null``)
    or a Python literal (``str(list)``, ``str(dict)``: what ``"{{ params.selector }}"`` renders).

    Text longer than :data:`MAX_RENDERED_LIST_CHARS` is refused before it is read, as for ``dataset_ids``.
    """
    if len(text) > MAX_RENDERED_LIST_CHARS:
        raise EcoinventConfigError(
            f"{argument} rendered to {len(text):,} characters of text, more than the {MAX_RENDERED_LIST_CHARS:,} "
            f"read from a template. Pass the list itself, not its text: an XComArg such as {argument}=pick.output, "
            f"or render_template_as_native_obj=True on the DAG. Starts: {text[:80]!r}."
        )
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        what, kind = ("a dict selector", "dict") if text.startswith("{") else ("a list of selectors", "list")
        raise EcoinventConfigError(
            f"{argument} could not be read as {what}: {text[:80]!r} is neither a JSON {kind} nor a Python {kind} "
            "literal (check its quotes and brackets). Write e.g. "
            '[7, "EF v3.1 | climate change | global warming potential (GWP100)", {"method": "EF v3.1"}] '
            'or {"method": "EF v3.1"}, or pass the list or dict itself rather than its text.'
        ) from None


def _check_selector(selector: Any, argument: str) -> None:
    if isinstance(selector, bool):
        raise EcoinventConfigError(f"{argument}: {selector!r} is not a selector.")
    if isinstance(selector, int):
        if selector <= 0:
            raise EcoinventConfigError(f"{argument}: indicator ids are positive integers; got {selector!r}.")
        return
    if isinstance(selector, str):
        _name_parts(selector, argument)
        return
    if isinstance(selector, Mapping):
        _dict_parts(selector, argument)
        return
    raise EcoinventConfigError(
        f"{argument}: each selector is an id, a 'method | category | indicator' string or a dict with keys "
        f"{', '.join(SELECTOR_KEYS)}; got {type(selector).__name__} {selector!r}."
    )


def _name_parts(selector: str, argument: str = "indicators") -> dict[str, str]:
    parts = [normalise(part) for part in selector.split("|")]
    if len(parts) not in (2, 3) or not all(parts):
        raise EcoinventConfigError(
            f"{argument}: {selector!r} must read 'method | category | indicator' (or 'method | indicator'), "
            "e.g. 'EF v3.1 | climate change | global warming potential (GWP100)'; to take every indicator of "
            "a method, write {'method': 'EF v3.1'}."
        )
    keys = SELECTOR_KEYS if len(parts) == 3 else ("method", "indicator")
    return dict(zip(keys, parts, strict=True))


def _dict_parts(selector: Mapping[Any, Any], argument: str = "indicators") -> dict[str, str]:
    unknown = sorted(str(key) for key in selector if key not in SELECTOR_KEYS)
    if unknown or not selector:
        raise EcoinventConfigError(
            f"{argument}: a dict selector takes the keys {', '.join(SELECTOR_KEYS)} (at least one); "
            f"got {dict(selector)!r}."
        )
    parts: dict[str, str] = {}
    for key in SELECTOR_KEYS:
        if key not in selector:
            continue
        text = selector[key]
        if not isinstance(text, str) or not normalise(text):
            raise EcoinventConfigError(f"{argument}: {key!r} of {dict(selector)!r} must be a non-empty name.")
        parts[key] = normalise(text)
    return parts


def _entries(catalogue: Iterable[Any]) -> list[dict[str, Any]]:
    """The catalogue's items with an integer id, as ``{id, method, category, indicator, unit}``."""
    entries = []
    for item in catalogue:
        if not isinstance(item, Mapping):
            continue
        ident = item.get("id")
        if isinstance(ident, bool) or not isinstance(ident, int):
            continue
        entry = {key: item.get(key) for key in _FIELDS}
        entries.append(entry)
    return entries


def resolve_selectors(selectors: Sequence[Any], catalogue: Iterable[Any], *, where: str) -> list[dict[str, Any]]:
    """The indicators the selectors pick from ``catalogue`` (the ``/indicators`` items), unique, by id.

    :param where: names the catalogue in messages, e.g. ``"version 3.11 (cutoff)"``.
    :raises EcoinventIndicatorError: a selector matches nothing (naming the closest names), or a name
        matches several indicators (listing them).
    """
    entries = _entries(catalogue)
    chosen: dict[int, dict[str, Any]] = {}
    for selector in selectors:
        for entry in _match(selector, entries, where):
            chosen[entry["id"]] = entry
    return [chosen[ident] for ident in sorted(chosen)]


def _match(selector: Any, entries: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    if isinstance(selector, int) and not isinstance(selector, bool):
        found = [entry for entry in entries if entry["id"] == selector]
        if not found:
            raise EcoinventIndicatorError(
                f"Indicator id {selector} is not in {where} ({len(entries)} indicators): check it against "
                "GET /indicators for that version, or select the indicator by name."
            )
        return found
    wanted = _name_parts(selector) if isinstance(selector, str) else _dict_parts(selector)
    found = [entry for entry in entries if all(_key(entry, key) == text for key, text in wanted.items())]
    if not found:
        raise EcoinventIndicatorError(_nothing_matched(selector, wanted, entries, where))
    if isinstance(selector, str) and "category" not in wanted:
        _refuse_two_readings(selector, wanted, found, entries, where)
    if isinstance(selector, str) and len(found) > 1:
        listed = "; ".join(f"{entry['id']}: {_label(entry)}" for entry in found[:LISTED_CANDIDATES])
        more = f" (and {len(found) - LISTED_CANDIDATES} more)" if len(found) > LISTED_CANDIDATES else ""
        raise EcoinventIndicatorError(
            f"Indicator {selector!r} is ambiguous in {where}: it names {len(found)} indicators: {listed}{more}. "
            "Name the category too ('method | category | indicator'), or use a dict selector such as "
            "{'method': ..., 'indicator': ...} to take all of them."
        )
    return found


def _refuse_two_readings(
    selector: str, wanted: Mapping[str, str], found: list[dict[str, Any]], entries: list[dict[str, Any]], where: str
) -> None:
    """``"method | name"`` where ``name`` is an indicator of the method and also one of its categories, with
    other indicators (``"ReCiPe 2016 v1.03, endpoint (H) | human health"``: the total, or the 8 indicators of
    the category). Reading it as the indicator would silently drop the others, so both readings are named.
    A category whose only indicator is the one named (``"EDIP 2003 | acidification"``) reads the same both ways.
    """
    in_method = [entry for entry in entries if _key(entry, "method") == wanted["method"]]
    category = [entry for entry in in_method if _key(entry, "category") == wanted["indicator"]]
    if not category or {entry["id"] for entry in category} == {entry["id"] for entry in found}:
        return
    method, name = found[0]["method"], category[0]["category"]
    as_indicator = "; ".join(f"{entry['id']}: {_label(entry)}" for entry in found[:LISTED_CANDIDATES])
    write_indicator = " or ".join(repr(_label(entry)) for entry in found[:LISTED_CANDIDATES])
    raise EcoinventIndicatorError(
        f"Indicator {selector!r} reads two ways in {where}: as the indicator {as_indicator}, or as the "
        f"category {name!r} of method {method!r}, which holds {len(category)} indicators. Write "
        f"{write_indicator} for the indicator, or {{'method': {method!r}, 'category': {name!r}}} for every "
        "indicator of the category."
    )


def _key(entry: Mapping[str, Any], key: str) -> str:
    value = entry.get(key)
    return normalise(value) if isinstance(value, str) else ""


def _label(entry: Mapping[str, Any]) -> str:
    return " | ".join(str(entry.get(key) or "") for key in SELECTOR_KEYS)


def _nothing_matched(selector: Any, wanted: Mapping[str, str], entries: list[dict[str, Any]], where: str) -> str:
    """Which name is unknown, narrowing by method, then category, then indicator, and its closest names."""
    narrowed = entries
    scope = ""
    for key in SELECTOR_KEYS:
        if key not in wanted:
            continue
        names = {_key(entry, key): str(entry.get(key)) for entry in narrowed}
        if wanted[key] not in names:
            close = difflib.get_close_matches(wanted[key], list(names), n=CLOSEST_NAMES, cutoff=0.5)
            hint = ", ".join(repr(names[name]) for name in close) if close else "none similar"
            return (
                f"Indicator selector {selector!r} matches nothing in {where}: no {key} {wanted[key]!r}{scope}. "
                f"Closest {key} names: {hint}.{_category_hint(wanted, key, narrowed)} "
                f"GET /indicators lists the {len(entries)} indicators of that version."
            )
        narrowed = [entry for entry in narrowed if _key(entry, key) == wanted[key]]
        scope = f" within {key} {names[wanted[key]]!r}" if not scope else f"{scope} and {key} {names[wanted[key]]!r}"
    return f"Indicator selector {selector!r} matches nothing in {where}."  # pragma: no cover - narrowing found it


def _category_hint(wanted: Mapping[str, str], key: str, narrowed: list[dict[str, Any]]) -> str:
    """For ``"method | name"`` where ``name`` is a category, not an indicator: how to select that category."""
    if key != "indicator" or "category" in wanted:
        return ""
    category = next((entry["category"] for entry in narrowed if _key(entry, "category") == wanted[key]), None)
    if category is None:
        return ""
    if "method" not in wanted:
        return f" But {category!r} is a category: to take its indicators write {{'category': {category!r}}}."
    method = narrowed[0]["method"]
    return (
        f" But {category!r} is a category of method {method!r} ('method | name' reads the name as an indicator): "
        f"to take every indicator of that category write {{'method': {method!r}, 'category': {category!r}}}; "
        f"to take one, write '{method} | {category} | <indicator>'."
    )


def indicator_slices(indicator_ids: Sequence[int]) -> list[list[int]]:
    """The indicator ids in slices of at most :data:`MAX_INDICATORS`, one batch call each (one empty
    slice when there are none: the datasets are still fetched, unscored)."""
    ids = list(indicator_ids)
    return [ids[start : start + MAX_INDICATORS] for start in range(0, len(ids), MAX_INDICATORS)] or [[]]


#: One dataset of a slice answer, compacted: the dataset without its scores, then its scores as indicator
#: ids and values (8 bytes each) with a reference to their other fields (interned per indicator id while
#: they are equal, see :func:`compact_scores`), and the scores that did not fit that form, kept as they came.
Compact = tuple[dict[str, Any], "array[int]", "array[float]", list[dict[str, Any]], list[Any]]


def compact_scores(datasets: list[dict[str, Any]], meta: dict[int, dict[str, Any]]) -> list[Compact]:
    """A slice answer made small while it waits for the batch's other slices.

    With K > 100 the ceil(K / 100) answers of a batch are held until merged. As decoded JSON, a score costs
    ~700 bytes (a dict and four freshly decoded name strings); here it costs 24, and its other fields
    (``unit``, ``method``, ``category``, ``indicator``, any other) are interned per indicator id in ``meta``,
    shared by the stream's worker threads (``dict.setdefault`` is atomic). So memory stays near flat as K
    grows. A score refers to the shared fields only when its own fields equal them: fields that vary per
    dataset (an uncertainty, a data quality, a unit) stay the score's own, so every score comes out as the
    API sent it, whichever dataset was compacted first. Scores whose id is not an int or whose value is
    not a float stay as they came.
    """
    compact: list[Compact] = []
    for dataset in datasets:
        scores = dataset.pop("impact_scores", None)
        ids, values, fields, odd = array("q"), array("d"), [], []
        for score in scores if isinstance(scores, list) else ():
            ident = score.get("id") if isinstance(score, dict) else None
            value = score.get("score") if isinstance(score, dict) else None
            if type(ident) is int and type(value) is float:
                ids.append(ident)
                values.append(value)
                other = score.copy()  # then two deletions: a third of the CPU of a comprehension over the fields
                del other["id"], other["score"]
                fields.append(_interned(meta, ident, other))
            else:
                odd.append(score)
        compact.append((dataset, ids, values, fields, odd))
    return compact


def _interned(meta: dict[int, dict[str, Any]], ident: int, fields: dict[str, Any]) -> dict[str, Any]:
    """The fields shared for ``ident`` when they equal ``fields`` (the usual case), else ``fields`` itself."""
    shared = meta.setdefault(ident, fields)
    return shared if shared == fields else fields


def merge_compact(
    dataset_ids: Sequence[int], answers: Sequence[list[Compact]]
) -> list[tuple[dict[str, Any], list[Compact]]]:
    """Each dataset of a batch (in the order of ``dataset_ids``) with its compact parts from every slice."""
    merged: dict[int, tuple[dict[str, Any], list[Compact]]] = {}
    for answer in answers:
        for part in answer:
            try:
                ident = int(part[0]["id"])
            except (KeyError, TypeError, ValueError):
                continue
            merged.setdefault(ident, (part[0], []))[1].append(part)
    return [merged[ident] for ident in dataset_ids if ident in merged]


def expand(dataset: dict[str, Any], parts: Sequence[Compact]) -> dict[str, Any]:
    """One dataset with the ``impact_scores`` of all its parts, as the API shaped them (one at a time)."""
    scores: list[Any] = []
    for _, ids, values, fields, odd in parts:
        scores.extend(
            {"id": ident, "score": value, **other} for ident, value, other in zip(ids, values, fields, strict=True)
        )
        scores.extend(odd)
    dataset["impact_scores"] = scores
    return dataset


#: What users import from here: the selector forms and their checking and resolution (the score slicing
#: and compaction below serve the hook's dataset stream).
__all__ = ["SELECTOR_KEYS", "parse_selectors", "resolve_selectors"]
