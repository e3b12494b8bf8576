"""Reading one search answer: its items and total, and the geographies it names (free calls of the hook)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_ecoinvent._paging import read_page
from airflow_provider_ecoinvent.exceptions import EcoinventConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

#: ecoinvent's display form of a geography, "Name (CODE)": the only form the search filter matches.
#: How many known geographies an error message lists before "... and N more".
_GEOGRAPHIES_SHOWN: Final = 40
GEOGRAPHY_DISPLAY_FORM: Final = re.compile(r"^(?P<name>.*?)\s*\((?P<code>[^()]+)\)\s*$")


def items_and_total(payload: Any, keys: Sequence[str]) -> tuple[list[dict[str, Any]], int | None]:
    """The dict items and ``total`` of one answer (:func:`read_page`), for a caller that reads a single page."""
    page = read_page(payload, keys)
    return [item for item in page.items or () if isinstance(item, dict)], page.total


def match_geography(given: str, known: Iterable[str]) -> str | None:
    """The display form among ``known`` whose code or name is ``given`` ("DE", "de", "Germany" ->
    "Germany (DE)"); an exact code wins over a case-insensitive match. ``None`` when nothing matches."""
    wanted = given.strip()
    loose: str | None = None
    for display in known:
        match = GEOGRAPHY_DISPLAY_FORM.match(display)
        if match is None:
            continue
        if match["code"] == wanted:
            return display
        if loose is None and wanted.casefold() in (match["code"].casefold(), match["name"].casefold()):
            loose = display
    return loose


def facet_values(payload: Any, facet: str) -> list[str]:
    """The values of one search facet, in any shape: ``{"geography": {"Germany (DE)": 12}}``, a list of
    names, or a list of objects with ``name``/``value``. Absent or unreadable facets give ``[]``."""
    facets = payload.get("facets") if isinstance(payload, dict) else None
    values = facets.get(facet) if isinstance(facets, dict) else None
    if isinstance(values, dict):
        return [str(name) for name in values]
    if not isinstance(values, list):
        return []
    names = [item.get("name") or item.get("value") if isinstance(item, dict) else item for item in values]
    return [name for name in names if isinstance(name, str)]


def unknown_geography_error(given: str, known: list[str], version: str, system_model: str) -> EcoinventConfigError:
    """The error for a geography filter the catalogue does not list: what the API matches, and what it knows."""
    shown = ", ".join(repr(name) for name in known[:_GEOGRAPHIES_SHOWN]) or "none"
    more = f" and {len(known) - _GEOGRAPHIES_SHOWN} more" if len(known) > _GEOGRAPHIES_SHOWN else ""
    return EcoinventConfigError(
        f"search filter geography {given!r} is not a geography of ecoinvent {version}/{system_model}. "
        "The API matches the display form 'Name (CODE)', e.g. 'Switzerland (CH)'; a bare code or name "
        f"is mapped to it when the catalogue lists it. Known: {shown}{more}. "
        "List them with EcoinventHook().get_geographies(version, system_model)."
    )


__all__ = ["GEOGRAPHY_DISPLAY_FORM", "facet_values", "items_and_total", "match_geography", "unknown_geography_error"]
