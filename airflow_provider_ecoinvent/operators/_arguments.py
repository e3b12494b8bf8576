"""Checks of operator arguments, shared by both operators: templated or not, id lists, texts, numbers.

Standard library and the package's exceptions only: DAG files import the operators at parse time."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_ecoinvent._client.ids import MAX_RENDERED_LIST_CHARS
from airflow_provider_ecoinvent.exceptions import EcoinventConfigError


def is_templated(value: Any) -> bool:
    """Whether ``value`` is only known once rendered: a Jinja string, an ``XComArg``, or holds one."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if hasattr(value, "resolve") and hasattr(value, "iter_references"):  # XComArg and friends
        return True
    if isinstance(value, Mapping):
        return any(is_templated(key) or is_templated(item) for key, item in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        # Plain ids are skipped without a call: a list of 100,000 ids is checked at every DAG parse.
        return any(is_templated(item) for item in value if type(item) is not int)
    return False


def reusable(value: Any) -> Any:
    """``value`` as something validation may read twice: a one-shot iterable (a generator) becomes a list.

    Lists, texts, mappings, templated values and non-iterables are kept as given.
    """
    if value is None or isinstance(value, str | bytes | list | Mapping) or is_templated(value):
        return value
    return list(value) if isinstance(value, Iterable) else value


def parse_id_list(value: Any, argument: str) -> list[Any]:
    """A list of ids given as a list (or any iterable), or as the string rendering of one (``"[1, 2]"``).

    Jinja renders a list pulled from XCom as text unless the DAG renders native objects; both reach here.
    Text is read as JSON (C speed, no syntax tree), else as a Python literal (``"(1, 2)"``, ``"[1, 2,]"``);
    text longer than :data:`MAX_RENDERED_LIST_CHARS` is refused. The items are not checked:
    :func:`validate_dataset_ids` does that.

    :raises EcoinventConfigError: the text is too long or not a list.
    """
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        value = _read_list_text(value.strip(), argument)
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise EcoinventConfigError(
            f"{argument} must be a list of integers, got {type(value).__name__}: {short(value)}."
        )
    return list(value)


def _read_list_text(text: str, argument: str) -> Any:
    """The value a rendered list's text holds: JSON first, then a Python literal.

    :raises EcoinventConfigError: the text is longer than :data:`MAX_RENDERED_LIST_CHARS` or unreadable.
    """
    if len(text) > MAX_RENDERED_LIST_CHARS:
        raise EcoinventConfigError(
            f"{argument} rendered to {len(text):,} characters of text, more than the {MAX_RENDERED_LIST_CHARS:,} "
            "read from a template (about 100,000 ids). Pass the list itself, not its text: an XComArg such as "
            f"{argument}=pick.output, or render_template_as_native_obj=True on the DAG; or select the datasets "
            "with query / search_filters. Starts: " + short(text) + "."
        )
    if not text:
        return []
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass  # not JSON: a Python literal such as "(1, 2)" or "[1, 2,]"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise EcoinventConfigError(
            f"{argument} must be a list of integers; could not read {short(text)} as a list."
        ) from None


def listed(value: Any) -> Any:
    """A one-shot iterable (a generator) as a list, which validation would otherwise consume."""
    if value is None or isinstance(value, str | bytes | list | Mapping) or is_templated(value):
        return value
    return list(value) if isinstance(value, Iterable) else value


def short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def optional_text(value: Any, argument: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise EcoinventConfigError(f"{argument} must be a string, got {type(value).__name__}.")
    text = str(value).strip()
    return text or None


def required_text(value: Any, argument: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise EcoinventConfigError(f"{argument} must be a non-empty string, got {short(value)}.")
    return value.strip()


def positive_int(value: Any, argument: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise EcoinventConfigError(f"{argument} must be a whole number >= {minimum}, got {short(value)}.")
    return value


__all__ = [
    "MAX_RENDERED_LIST_CHARS",
    "check_flag",
    "is_templated",
    "listed",
    "optional_text",
    "parse_id_list",
    "positive_int",
    "required_text",
    "reusable",
    "short",
]


def check_flag(name: str, value: Any) -> bool:
    """A boolean argument, checked at construction (a string such as ``"false"`` would read as true)."""
    if not isinstance(value, bool):
        raise EcoinventConfigError(f"{name} must be True or False, got {value!r}.")
    return value
