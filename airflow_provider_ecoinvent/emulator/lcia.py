"""The emulator's LCIA indicator catalogue, modelled on ecoinvent's LCIA implementation (3.9 to 3.11).

Method, category and indicator names follow the ones ecoinvent publishes with its mapped LCIA methods
(github.com/ecoinvent/lcia, ``methods_mapped/metadata.json`` of 3.9.1, 3.10 and 3.11), e.g.
``("EF v3.1", "climate change", "global warming potential (GWP100)")``, plus the ``no LT`` (no long-term
emissions) variant ecoinvent ships of most methods. Units and the typical magnitudes (``scale``) are made
up but plausible: they only shape the synthetic scores.

The catalogue is generated from small tables, deterministically, so that ids are stable:

* ids ``1..31`` are a fixed core (:data:`~.lcia_tables.CORE_ROWS`): the climate change indicators of
  ``IPCC 2021`` and the midpoints of ``EF v3.1`` and ``ReCiPe 2016 (H)`` that tests, docs and example DAGs
  name by id, listed first with names and units of their own so that no table change can move them;
* every other (method, category, indicator) gets the next id, in table order, from 32 on;
* an id never changes between versions; a version only *lacks* the methods introduced after it
  (:data:`METHOD_SINCE`): 3.9 lacks ``EF v3.1``, ``IPCC 2021``, ``USEtox v2.13``...; 3.10 lacks the
  3.11 additions (``IPCC 2021 (incl. biogenic CO2)``, the ``EN15804+A2`` sets). Versions published at
  run time have every method.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from airflow_provider_ecoinvent.emulator.lcia_tables import CORE_ROWS, METHODS

#: Built-in release order; a method introduced in one is present in every later one.
RELEASE_ORDER: Final = ("3.9", "3.10", "3.11")


@dataclasses.dataclass(frozen=True)
class Indicator:
    id: int
    method: str
    category: str
    indicator: str
    unit: str
    #: Typical magnitude of a score per reference unit of product; shapes the synthetic values.
    scale: float
    #: The first built-in release that has this indicator's method.
    since: str = "3.9"

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "method": self.method,
            "category": self.category,
            "indicator": self.indicator,
            "unit": self.unit,
        }


#: The release that introduced each method (``no LT`` variants included).
METHOD_SINCE: Final[dict[str, str]] = {
    name: since for method, _, since, no_lt in METHODS for name in ((method, f"{method} no LT") if no_lt else (method,))
}


def _build() -> tuple[Indicator, ...]:
    """Ids 1..31 for the core indicators, then one id per further (method, category, indicator)."""
    built = [
        Indicator(i, method, category, name, unit, scale, METHOD_SINCE[method])
        for i, (method, category, name, unit, scale) in enumerate(CORE_ROWS, start=1)
    ]
    seen = {(ind.method, ind.category, ind.indicator) for ind in built}
    for method, rows, since, no_lt in METHODS:
        for name, factor in ((method, 1.0), (f"{method} no LT", 0.8)) if no_lt else ((method, 1.0),):
            for category, indicator, unit, scale in rows:
                if (name, category, indicator) in seen:
                    continue
                seen.add((name, category, indicator))
                built.append(Indicator(len(built) + 1, name, category, indicator, unit, scale * factor, since))
    return tuple(built)


INDICATORS: Final[tuple[Indicator, ...]] = _build()
INDICATORS_BY_ID: Final[dict[int, Indicator]] = {ind.id: ind for ind in INDICATORS}


def in_version(indicator: Indicator, version_name: str) -> bool:
    """Whether a version has this indicator: a built-in release lacks the methods introduced after it;
    a release published at run time (not built in) has every method."""
    if version_name not in RELEASE_ORDER:
        return True
    return RELEASE_ORDER.index(version_name) >= RELEASE_ORDER.index(indicator.since)


def indicators_for(version_name: str) -> tuple[Indicator, ...]:
    """The indicators ``GET /indicators`` lists for a version, by id."""
    return _BY_VERSION.get(version_name) or INDICATORS


_BY_VERSION: Final[dict[str, tuple[Indicator, ...]]] = {
    name: tuple(ind for ind in INDICATORS if in_version(ind, name)) for name in RELEASE_ORDER
}
