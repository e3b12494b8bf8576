"""FastAPI/pydantic-shaped request validation.

The real API looks like FastAPI (contract section 6), so a 422 carries
``{"detail": [{"type", "loc", "msg", "input", ...}]}`` with pydantic v2's types and messages, and all
errors of a request are reported together. The coercion rules copy pydantic's lax mode (numeric strings,
integral floats and booleans are accepted as integers) so the emulator rejects no request the real
server would accept.
"""

from __future__ import annotations

import email.message
import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

Loc = tuple[str | int, ...]
_INT_RE = re.compile(r"^\s*[+-]?\d+\s*$")
_MISSING = object()


class ValidationErrors:
    """Collects pydantic-style error items; ``detail`` is the 422 body's value."""

    def __init__(self) -> None:
        self.detail: list[dict[str, Any]] = []

    def __bool__(self) -> bool:
        return bool(self.detail)

    def add(self, type_: str, loc: Loc, msg: str, input_: Any, ctx: Mapping[str, Any] | None = None) -> None:
        item: dict[str, Any] = {"type": type_, "loc": list(loc), "msg": msg, "input": input_}
        if ctx:
            item["ctx"] = dict(ctx)
        self.detail.append(item)

    def coerce_int(self, value: Any, loc: Loc) -> int | None:
        """Pydantic's lax int: the value as an int, or ``None`` after recording why not."""
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            if value.is_integer():
                return int(value)
            self.add(
                "int_from_float", loc, "Input should be a valid integer, got a number with a fractional part", value
            )
            return None
        if isinstance(value, str):
            if _INT_RE.match(value):
                return int(value)
            self.add("int_parsing", loc, "Input should be a valid integer, unable to parse string as an integer", value)
            return None
        self.add("int_type", loc, "Input should be a valid integer", value)
        return None

    def bounded_int(self, raw: Any, loc: Loc, ge: int | None = None, le: int | None = None) -> int | None:
        number = self.coerce_int(raw, loc)
        if number is None:
            return None
        if ge is not None and number < ge:
            self.add("greater_than_equal", loc, f"Input should be greater than or equal to {ge}", raw, {"ge": ge})
            return None
        if le is not None and number > le:
            self.add("less_than_equal", loc, f"Input should be less than or equal to {le}", raw, {"le": le})
            return None
        return number

    def int_list(
        self, raw: Any, loc: Loc, min_length: int | None = None, max_length: int | None = None
    ) -> list[int] | None:
        """A list of ints with pydantic's ``too_short`` / ``too_long`` checks."""
        if not isinstance(raw, list):
            self.add("list_type", loc, "Input should be a valid list", raw)
            return None
        values: list[int] = []
        ok = True
        if set(map(type, raw)) <= {int}:  # the usual case, checked at C speed: nothing to coerce
            values = list(raw)
        else:
            for index, item in enumerate(raw):
                number = self.coerce_int(item, (*loc, index))
                if number is None:
                    ok = False
                else:
                    values.append(number)
        if min_length is not None and len(raw) < min_length:
            noun = "item" if min_length == 1 else "items"
            self.add(
                "too_short",
                loc,
                f"List should have at least {min_length} {noun} after validation, not {len(raw)}",
                raw,
                {"field_type": "List", "min_length": min_length, "actual_length": len(raw)},
            )
            return None
        if max_length is not None and len(raw) > max_length:
            self.add(
                "too_long",
                loc,
                f"List should have at most {max_length} items after validation, not {len(raw)}",
                raw if len(raw) <= 1000 else f"[{len(raw)} items]",
                {"field_type": "List", "max_length": max_length, "actual_length": len(raw)},
            )
            return None
        return values if ok else None


def query_value(query: Mapping[str, Sequence[str]], name: str) -> str | None:
    """A single query parameter; like Starlette, the last one wins when repeated."""
    values = query.get(name)
    return values[-1] if values else None


def parse_json_body(body: bytes, content_type: str | None, errors: ValidationErrors) -> Any:
    """FastAPI's body handling: JSON when the content type says so (or is absent), else raw text.

    Returns the decoded value, or ``_MISSING`` when the body was absent or undecodable (errors recorded).
    """
    if not body:
        errors.add("missing", ("body",), "Field required", None)
        return _MISSING
    is_json = not content_type
    if content_type:
        message = email.message.Message()
        message["content-type"] = content_type
        subtype = message.get_content_subtype()
        is_json = message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))
    if not is_json:
        return body.decode("utf-8", "replace")
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        pos = exc.pos if isinstance(exc, json.JSONDecodeError) else exc.start
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "invalid utf-8"
        errors.add("json_invalid", ("body", pos), "JSON decode error", {}, {"error": reason})
        return _MISSING


def is_missing(value: Any) -> bool:
    return value is _MISSING
