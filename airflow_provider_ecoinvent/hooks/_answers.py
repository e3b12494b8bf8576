"""Reading the answers of the hook's free calls: a search page's geographies, and the version to pin.

Pure functions over parsed JSON, apart from the hook's I/O, so that the tolerant reading of the API's
shapes (facets in several forms, geographies by code, name or display form) is tested on its own.
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_ecoinvent._client.paging import items_and_total
from airflow_provider_ecoinvent.exceptions import EcoinventConfigError
from airflow_provider_ecoinvent.versions import newest, system_model_hint

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_provider_ecoinvent.versions import EcoinventVersion

#: How many known geographies an error message lists before "... and N more".
_GEOGRAPHIES_SHOWN: Final = 40
#: Suggestions for a misspelt geography, and how alike (0..1, difflib's ratio) a suggestion must be.
_SUGGESTIONS: Final = 3
_SUGGESTION_CUTOFF: Final = 0.6
#: ecoinvent's display form of a geography, "Name (CODE)": the only form the search filter matches.
GEOGRAPHY_DISPLAY_FORM: Final = re.compile(r"^(?P<name>.*?)\s*\((?P<code>[^()]+)\)\s*$")


def match_geography(given: str, known: Iterable[str]) -> str | None:
    """The display form among ``known`` that ``given`` names: the display form itself, its code or its name,
    case-insensitively and whitespace-normalised ("DE", "de", "Germany", "germany  (de)" -> "Germany (DE)").
    The exact display form or code wins over a loose match. ``None`` when nothing matches."""
    wanted = given.strip()
    loose_wanted = _loose(wanted)
    loose: str | None = None
    for display in known:
        if display == wanted:
            return display
        match = GEOGRAPHY_DISPLAY_FORM.match(display)
        if match is None:
            if loose is None and _loose(display) == loose_wanted:
                loose = display
            continue
        if match["code"] == wanted:
            return display
        if loose is None and loose_wanted in (_loose(display), _loose(match["code"]), _loose(match["name"])):
            loose = display
    return loose


def _loose(text: str) -> str:
    """``text`` compared loosely: case folded, runs of whitespace as one space, none inside parentheses."""
    return " ".join(text.split()).replace("( ", "(").replace(" )", ")").casefold()


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


def geographies_of(payload: Any) -> tuple[list[str], bool]:
    """The geographies one search answer names, sorted, and whether the list is complete (it has ``facets``,
    counted over the whole catalogue; without them, only the geographies of the page's results are known)."""
    items, _ = items_and_total(payload, ("results", "datasets", "data"))
    facets = facet_values(payload, "geography")
    found = set(facets)
    found.update(item["geography"] for item in items if isinstance(item.get("geography"), str))
    return sorted(found, key=str.casefold), bool(facets)


def display_geography(given: str, known: list[str], *, complete: bool, scope: tuple[str, str], log: Any) -> str:
    """The catalogue's spelling of a geography given as code, name or display form (any case).

    Unknown to the catalogue: a clear error before any search, except for a value in display form when
    the list is not ``complete`` (the API sent no ``facets``: only the first page's geographies are known):
    passed through, with a warning, since the catalogue may well hold it.

    :param scope: version and system model, for the error message.
    :raises EcoinventConfigError: the catalogue does not list the geography.
    """
    display = match_geography(given, known)
    if display is None and not complete and GEOGRAPHY_DISPLAY_FORM.match(given):
        log.warning(
            "Search filter geography %r is not among the %d geographies known: the API sent no facets, so "
            "only the first page's are known. Passing it through as given; check its spelling if the "
            "search finds nothing.",
            given,
            len(known),
        )
        return given.strip()
    if display is None:
        raise unknown_geography_error(given, known, *scope)
    log.info("Search filter geography %r means %r.", given, display)
    return display


def choose_version(versions: list[EcoinventVersion], version: str | None, system_model: str, *, where: str) -> str:
    """The concrete version name to pin among the licensed ``versions`` (``EcoinventHook.resolve_version``).

    ``"latest"`` (or empty) is the newest, in release-number order, that offers ``system_model``; a named
    version must be among them and offer it.

    :param where: whose licence, for the messages (``"connection 'ecoinvent_default'"``).
    :raises EcoinventConfigError: the version or system model is not available.
    """
    available = ", ".join(v.name for v in versions) or "none"
    if not version or version == "latest":
        found = newest(v for v in versions if not v.system_models or system_model in v.system_models)
        if found is None:
            offered = (model for v in versions for model in v.system_models)
            raise EcoinventConfigError(
                f"No version available to {where} offers system model {system_model!r} "
                f"(versions: {available}); {system_model_hint(system_model, offered)}"
            )
        return found.name
    match = next((v for v in versions if v.name == version), None)
    if match is None:
        raise EcoinventConfigError(f"Version {version!r} is not available to {where}; available: {available}.")
    if match.system_models and system_model not in match.system_models:
        raise EcoinventConfigError(
            f"Version {version!r} has no system model {system_model!r} for {where}; "
            f"{system_model_hint(system_model, match.system_models)}"
        )
    return match.name


def close_geographies(given: str, known: Iterable[str]) -> list[str]:
    """The display forms among ``known`` whose display form, name or code is spelt most like ``given``
    (case-insensitively), best first: ``"Germnay"`` -> ``["Germany (DE)"]``."""
    forms: dict[str, str] = {}
    for display in known:
        match = GEOGRAPHY_DISPLAY_FORM.match(display)
        for form in (display, match["name"], match["code"]) if match else (display,):
            forms.setdefault(_loose(form), display)
    close = difflib.get_close_matches(_loose(given), list(forms), n=len(forms), cutoff=_SUGGESTION_CUTOFF)
    return list(dict.fromkeys(forms[form] for form in close))[:_SUGGESTIONS]


def unknown_geography_error(given: str, known: list[str], version: str, system_model: str) -> EcoinventConfigError:
    """The error for a geography filter the catalogue does not list: the closest spellings, what the API
    matches, and what it knows."""
    shown = ", ".join(repr(name) for name in known[:_GEOGRAPHIES_SHOWN]) or "none"
    more = f" and {len(known) - _GEOGRAPHIES_SHOWN} more" if len(known) > _GEOGRAPHIES_SHOWN else ""
    close = close_geographies(given, known)
    hint = f"; did you mean {' or '.join(repr(name) for name in close)}?" if close else "."
    return EcoinventConfigError(
        f"search filter geography {given!r} is not a geography of ecoinvent {version}/{system_model}{hint} "
        "The API matches the display form 'Name (CODE)', e.g. 'Switzerland (CH)'; a bare code or name "
        f"is mapped to it when the catalogue lists it. Known: {shown}{more}. "
        "List them with EcoinventHook().get_geographies(version, system_model)."
    )


__all__ = [
    "GEOGRAPHY_DISPLAY_FORM",
    "choose_version",
    "close_geographies",
    "display_geography",
    "facet_values",
    "geographies_of",
    "match_geography",
    "unknown_geography_error",
]
