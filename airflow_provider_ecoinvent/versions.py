"""ecoinvent database versions: tolerant parsing of ``/versions`` and release-number ordering.

Version names are opaque strings ("3.10", "3.12-sandbox"). Comparing them as strings puts "3.9" after
"3.10" and as floats makes "3.10" equal "3.1", so they are compared as release numbers where they parse.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Iterable

_RELEASE: Final = re.compile(r"^\s*v?(\d+(?:\.\d+)*)(.*)$", re.IGNORECASE)


@dataclass(frozen=True, order=False)
class EcoinventVersion:
    """One database version of the licence and the system models it offers."""

    name: str
    system_models: tuple[str, ...] = ()
    release_date: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for XCom and trigger events."""
        return {"version": self.name, "system_models": list(self.system_models), "release_date": self.release_date}


def release_key(name: str) -> tuple[int, tuple[int, ...], int, str]:
    """Sort key in release-number order: ``3.9 < 3.10 < 3.10.1``; a suffixed name ("3.12-sandbox")
    sorts just below the plain release; names without a number sort below every numbered one."""
    match = _RELEASE.match(name)
    if not match:
        return (0, (), 0, name)
    numbers = tuple(int(part) for part in match.group(1).split("."))
    # Trailing zeros do not make a newer release: "3.10.0" == "3.10".
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers = numbers[:-1]
    suffix = match.group(2).strip()
    return (1, numbers, 0 if suffix else 1, suffix)


def is_newer(candidate: str, than: str) -> bool:
    """Whether ``candidate`` is a later release than ``than`` (release-number order)."""
    return release_key(candidate) > release_key(than)


def newest(versions: Iterable[EcoinventVersion]) -> EcoinventVersion | None:
    """The newest of ``versions`` in release-number order, ``None`` for none."""
    return max(versions, key=lambda version: release_key(version.name), default=None)


def system_model_hint(requested: str, offered: Iterable[str]) -> str:
    """The valid system models and, for a typo ("cut-off"), the closest one, for an error message.

    A user who mistypes a system model needs the names to pick from, not only the list of versions.
    """
    models = sorted(set(offered), key=str.lower)
    if not models:
        return "the API lists no system model for it"
    hint = f"valid system models: {', '.join(models)}"
    by_lower = {model.lower(): model for model in models}
    closest = difflib.get_close_matches(requested.lower(), list(by_lower), n=1, cutoff=0.6)
    if closest:
        hint += f"; did you mean {by_lower[closest[0]]!r}?"
    return hint


def parse_versions(payload: Any) -> list[EcoinventVersion]:
    """Read ``/versions`` in any of the shapes the contract allows (section 4.4).

    A bare list, or an object with ``results`` or ``versions``; items with ``version`` or ``name``;
    system models as names or as objects with ``name``. Items without a name are skipped, unknown keys
    ignored. The result is sorted oldest to newest.
    """
    items: Any = payload
    if isinstance(payload, dict):
        items = next((payload[key] for key in ("results", "versions", "data") if key in payload), [])
    if not isinstance(items, list):
        return []
    versions = [version for item in items if (version := _parse_item(item)) is not None]
    return sorted(versions, key=lambda version: release_key(version.name))


def _parse_item(item: Any) -> EcoinventVersion | None:
    if isinstance(item, str):
        return EcoinventVersion(name=item)
    if not isinstance(item, dict):
        return None
    name = item.get("version") or item.get("name")
    if name is None:
        return None
    models = item.get("system_models") or item.get("systemModels") or []
    names = [_system_model_name(model) for model in models] if isinstance(models, list) else []
    release = item.get("release_date") or item.get("released") or item.get("date")
    known = {"version", "name", "system_models", "systemModels", "release_date", "released", "date"}
    return EcoinventVersion(
        name=str(name),
        system_models=tuple(model for model in names if model),
        release_date=str(release) if release is not None else None,
        extra={key: value for key, value in item.items() if key not in known},
    )


def _system_model_name(model: Any) -> str | None:
    if isinstance(model, str):
        return model
    if isinstance(model, dict):
        name = model.get("name") or model.get("system_model") or model.get("id")
        return str(name) if name is not None else None
    return None


#: What users import from here: the version record the hook returns and the release-number ordering.
__all__ = ["EcoinventVersion", "is_newer", "newest", "parse_versions", "release_key"]
