"""The emulator's synthetic, deterministic ecoinvent catalogue.

Everything here is a pure function of the seed and an id, so two emulators with the same seed agree on
every byte, tests can assert exact values, and a catalogue of 200,000 datasets costs nothing at start:
datasets are generated on demand (with a small LRU cache), and the search index is built on the first
search only.

Rules a test may rely on:

* Dataset ids are ``1..N`` (``N`` = ``EmulatorConfig.datasets``) in the newest built-in version (3.11)
  and in every version published at run time.
* Older versions lack some ids, so "id unknown in this version" cases exist: **3.9 lacks every id
  divisible by 7, 3.10 lacks every id divisible by 13** (see ``VERSION_GAPS``).
* Dataset fields do not depend on version or system model, except ``url`` and ``url_history``.
* A score is a pure function of (seed, version, system model, dataset id, indicator id); scores of the
  ``consequential`` system model are sometimes negative, as real consequential results are.
* Indicators come from ``lcia.py``: ~700 ids, stable across versions; ids ``1..31`` are a fixed core
  (climate change and common midpoints) whose ids and scores never move. Built-in versions lack the
  methods introduced after them (3.9 lacks ``EF v3.1`` and ``IPCC 2021``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import struct
import threading
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

from airflow_provider_ecoinvent.emulator.lcia import INDICATORS, INDICATORS_BY_ID, Indicator
from airflow_provider_ecoinvent.emulator.products import (
    ACTIVITY_TYPE_SLOTS,
    GEOGRAPHIES,
    PRODUCTS,
    activity_name,
    choices,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["GEOGRAPHIES", "INDICATORS", "INDICATORS_BY_ID", "Catalogue", "Indicator", "Version"]

SYSTEM_MODELS_ALL = ("cutoff", "apos", "consequential", "EN15804")


@dataclasses.dataclass(frozen=True)
class Version:
    """A database release and the system models the (emulated) licence covers."""

    name: str
    system_models: tuple[str, ...]
    release_date: str
    #: Ids divisible by this number are missing from the version (0: none missing).
    gap_modulus: int = 0


#: Built-in releases, oldest first. The newest one holds every id 1..N.
BUILTIN_VERSIONS = (
    Version("3.9", ("cutoff", "apos", "consequential"), "2022-09-13", gap_modulus=7),
    Version("3.10", SYSTEM_MODELS_ALL, "2023-11-30", gap_modulus=13),
    Version("3.11", SYSTEM_MODELS_ALL, "2024-12-10"),
)
VERSION_GAPS = {v.name: v.gap_modulus for v in BUILTIN_VERSIONS if v.gap_modulus}
#: ``GET /versions`` lists the built-ins in this order: neither ascending nor descending, and "3.10"
#: sorts before "3.9" as a string, so a client has to compare release numbers properly.
VERSIONS_DISPLAY_ORDER = ("3.10", "3.9", "3.11")


_UUID_NAMESPACE = uuid.UUID("5b0fcb5e-2f1b-4b8c-9c1e-6f0e0c0ec0a1")
ECOQUERY_BASE = "https://ecoquery.ecoinvent.org"


@dataclasses.dataclass(frozen=True)
class DatasetCore:
    """The version-independent part of a dataset (what search matches against)."""

    id: int
    activity: str
    product: str
    geography: str
    activity_type: str
    product_index: int
    start_year: int


#: Per indicator, the power of ten of the smallest mantissa digit for each of five spreads (-2..+2
#: decades around the indicator's scale).
_SCORE_EXPONENTS = {
    ind.id: tuple(math.floor(math.log10(ind.scale)) + spread - 5 for spread in range(-2, 3)) for ind in INDICATORS
}


#: Indicators per block of score hash bits: a dataset's bits are made per block, so scoring a few
#: indicators does not hash for all ~700. Block 0 (ids 1..32) holds the core ids 1..31.
SCORE_BLOCK = 32


@dataclasses.dataclass(frozen=True)
class _ScoreRule:
    """Where an indicator's score bits are, and its five scales: worked out once, not per score."""

    block: int
    offset: int
    #: Per spread: ``(10 ** -exponent, 0)`` for a negative exponent, else ``(0, 10 ** exponent)``.
    scales: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, indicator_id: int) -> _ScoreRule:
        return cls(
            block=(indicator_id - 1) // SCORE_BLOCK,
            offset=8 * ((indicator_id - 1) % SCORE_BLOCK),
            scales=tuple((10**-e, 0) if e < 0 else (0, 10**e) for e in _SCORE_EXPONENTS[indicator_id]),
        )


_SCORE_RULES = {ind.id: _ScoreRule.of(ind.id) for ind in INDICATORS}
#: One block of score bits as its 32 words: a page's scores unpack each block once, not once per score.
_BLOCK_WORDS = struct.Struct(f">{SCORE_BLOCK}Q")


@functools.lru_cache(maxsize=64)
def _score_plan(
    indicator_ids: tuple[int, ...],
) -> tuple[tuple[int, tuple[tuple[int, tuple[tuple[int, int], ...]], ...]], ...]:
    """Where each score of a slice is: runs of consecutive indicators sharing a block of score bits, each
    as (block, ((word index, scales), ...)); the order of ``indicator_ids`` is kept (a block may recur)."""
    runs: list[tuple[int, list[tuple[int, tuple[tuple[int, int], ...]]]]] = []
    for indicator_id in indicator_ids:
        rule = _SCORE_RULES[indicator_id]
        if not runs or runs[-1][0] != rule.block:
            runs.append((rule.block, []))
        runs[-1][1].append((rule.offset // 8, rule.scales))
    return tuple((block, tuple(entries)) for block, entries in runs)


@functools.lru_cache(maxsize=1024)
def _name_uuid(name: str) -> str:
    return str(uuid.uuid5(_UUID_NAMESPACE, name))


class Catalogue:
    """The dataset and indicator universe of one emulator, plus the versions published so far."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self._lock = threading.Lock()
        self._versions: list[Version] = list(BUILTIN_VERSIONS)
        self._display_order: list[str] = list(VERSIONS_DISPLAY_ORDER)
        self._index: dict[tuple[int, str, str, str], list[int]] | None = None
        self._index_lock = threading.Lock()  # not ``_lock``: a first search must not stall other calls
        # Per-instance caches (not decorators on methods, which would keep every instance alive).
        self.core = functools.lru_cache(maxsize=65536)(self._make_core)
        self.static = functools.lru_cache(maxsize=65536)(self._make_static)
        self.score_bits = functools.lru_cache(maxsize=65536)(self._make_score_bits)

    # -- versions -------------------------------------------------------------------------------------

    @property
    def latest(self) -> Version:
        """The newest release: the most recently published one (built-ins: 3.11)."""
        with self._lock:
            return self._versions[-1]

    def versions_for_display(self) -> list[Version]:
        """Versions in the deliberately unsorted order ``GET /versions`` returns them."""
        with self._lock:
            by_name = {v.name: v for v in self._versions}
            return [by_name[name] for name in self._display_order]

    def find_version(self, name: str | None) -> Version | None:
        """Resolve a ``version`` query parameter: omitted or ``latest`` mean the newest release."""
        if name is None or name == "latest":
            return self.latest
        with self._lock:
            for version in self._versions:
                if version.name == name:
                    return version
        return None

    def publish(self, name: str, system_models: Sequence[str] | None, release_date: str) -> Version:
        """Add a release that becomes ``latest``; it holds every dataset id 1..N.

        Published versions are listed first by ``GET /versions`` (so neither the first nor the last
        item is reliably the newest). Raises ``ValueError`` if the name exists.
        """
        models = tuple(system_models) if system_models else SYSTEM_MODELS_ALL
        version = Version(name, models, release_date)
        with self._lock:
            if name == "latest" or any(v.name == name for v in self._versions):
                raise ValueError(f"version {name!r} already exists")
            self._versions.append(version)
            self._display_order.insert(0, name)
        return version

    def has_dataset(self, version: Version, dataset_id: int) -> bool:
        if not 1 <= dataset_id <= self.size:
            return False
        return not (version.gap_modulus and dataset_id % version.gap_modulus == 0)

    # -- datasets -------------------------------------------------------------------------------------

    def _digest(self, *parts: object) -> bytes:
        text = "|".join(str(p) for p in (self.seed, *parts))
        return hashlib.blake2b(text.encode(), digest_size=16).digest()

    def _make_core(self, dataset_id: int) -> DatasetCore:
        digest = self._digest("dataset", dataset_id)
        product_index, type_slot, route_index, geo_index = choices(digest)
        product = PRODUCTS[product_index]
        activity_type = ACTIVITY_TYPE_SLOTS[type_slot]
        geography = GEOGRAPHIES[geo_index]
        return DatasetCore(
            id=dataset_id,
            activity=activity_name(product, activity_type, product.routes[route_index]),
            product=product.name,
            geography=geography,
            activity_type=activity_type,
            product_index=product_index,
            start_year=2011 + digest[5] % 10,
        )

    def _make_static(self, dataset_id: int) -> dict[str, Any]:
        """The version-independent Dataset fields, in the contract's order (cached by ``static``)."""
        core = self.core(dataset_id)
        product = PRODUCTS[core.product_index]
        return {
            "id": dataset_id,
            "activity": core.activity,
            "product": core.product,
            "description": (
                f"{core.activity}, {core.geography}. Synthetic dataset from the ecoinvent API emulator "
                f"(seed {self.seed}); the values are made up."
            ),
            "geography": core.geography,
            "unit": product.unit,
            "time_period": f"{core.start_year}-2023",
            "activity_type": core.activity_type,
            "isic_section": product.isic_section,
            "isic_class": product.isic_class,
            # Version 5 (name-based) like uuid5, but from the dataset's own hash: one hash less per dataset.
            "activity_spold_uuid": str(uuid.UUID(bytes=self._digest("activity", dataset_id), version=5)),
            "geography_spold_uuid": _name_uuid(f"geography:{core.geography}"),
            "product_spold_uuid": _name_uuid(f"product:{core.product}"),
        }

    def dataset(self, version: Version, system_model: str, dataset_id: int) -> dict[str, Any]:
        """The contract's Dataset object (without ``impact_scores``); a fresh dict the caller may extend."""
        dataset = dict(self.static(dataset_id))
        link = self.link(version, system_model, dataset_id)
        dataset["sectors"] = self.sectors(dataset_id)
        dataset["url"] = f"{link}/documentation"
        dataset["url_history"] = f"{link}/history"
        return dataset

    def sectors(self, dataset_id: int) -> list[str]:
        """A dataset's ``sectors``: its product's (version-independent, like the ``static`` fields)."""
        return list(PRODUCTS[self.core(dataset_id).product_index].sectors)

    @staticmethod
    def link(version: Version, system_model: str, dataset_id: int) -> str:
        """The ecoQuery page of a dataset, the stem of ``url`` and ``url_history``."""
        return f"{ECOQUERY_BASE}/{version.name}/{system_model}/dataset/{dataset_id}"

    def _make_score_bits(self, version_name: str, system_model: str, dataset_id: int, block: int) -> bytes:
        """8 hash bytes per indicator of one block (ids ``32 * block + 1 ..``) for one dataset, version and
        system model. Block 0's key has no block suffix and stays so: it scores the core ids 1..31, whose
        scores must never move (SHAKE's output is a prefix-stable stream, so the block size does not
        change them either)."""
        key = f"{self.seed}|score|{version_name}|{system_model}|{dataset_id}" + (f"|{block}" if block else "")
        return hashlib.shake_256(key.encode()).digest(8 * SCORE_BLOCK)

    def score(self, version: Version, system_model: str, dataset_id: int, indicator: Indicator) -> float:
        """The deterministic score of a dataset for an indicator in a version and system model."""
        return self.page_scores(version, system_model, [dataset_id], [indicator.id])[0]

    def page_scores(
        self, version: Version, system_model: str, dataset_ids: Sequence[int], indicator_ids: Sequence[int]
    ) -> list[float]:
        """The scores of a page, dataset by dataset, each in ``indicator_ids`` order: the one score rule, which
        :meth:`score` and :meth:`impact_scores` use too.

        A score has six significant digits, spread over five decades around the indicator's scale: an integer
        mantissa divided by a power of ten (a correctly rounded division), so the JSON shows short numbers such
        as ``0.0372179``. ``consequential`` scores are negative one time in ten, as real consequential results
        can be. Written inline, without a dict or a call per score: this loop runs 10,000 times per 100 x 100
        batch page, and its cost queues behind concurrent calls in the emulator's one process.
        """
        plan = _score_plan(tuple(indicator_ids))
        negative_allowed = system_model == "consequential"
        bits = self.score_bits
        values: list[float] = []
        append = values.append
        for dataset_id in dataset_ids:
            for block, entries in plan:
                words = _BLOCK_WORDS.unpack(bits(version.name, system_model, dataset_id, block))
                for index, scales in entries:
                    h = words[index]
                    divisor, multiplier = scales[(h >> 32) % 5]
                    mantissa = 100_000 + h % 900_000
                    value = mantissa / divisor if divisor else float(mantissa * multiplier)
                    append(-value if negative_allowed and (h >> 40) % 10 == 0 else value)
        return values

    def impact_scores(
        self, version: Version, system_model: str, dataset_id: int, indicators: Iterable[Indicator]
    ) -> list[dict[str, Any]]:
        chosen = list(indicators)
        values = self.page_scores(version, system_model, [dataset_id], [ind.id for ind in chosen])
        return [
            {
                "id": ind.id,
                "score": value,
                "unit": ind.unit,
                "method": ind.method,
                "category": ind.category,
                "indicator": ind.indicator,
            }
            for ind, value in zip(chosen, values, strict=True)
        ]

    # -- search ---------------------------------------------------------------------------------------

    def _search_index(self) -> dict[tuple[int, str, str, str], list[int]]:
        """Ids grouped by (product, activity, geography, activity type), built once on first use.

        Grouping keeps the text matching to a few thousand distinct groups, whatever the catalogue size.
        """
        with self._index_lock:
            if self._index is None:
                by_choice: dict[tuple[int, int, int, int], list[int]] = {}
                blake2b = hashlib.blake2b
                prefix = f"{self.seed}|dataset|"  # what _digest("dataset", id) hashes
                for dataset_id in range(1, self.size + 1):
                    digest = blake2b(f"{prefix}{dataset_id}".encode(), digest_size=16).digest()
                    by_choice.setdefault(choices(digest), []).append(dataset_id)
                index: dict[tuple[int, str, str, str], list[int]] = {}
                for (product_index, type_slot, route_index, geo_index), ids in by_choice.items():
                    product = PRODUCTS[product_index]
                    activity_type = ACTIVITY_TYPE_SLOTS[type_slot]
                    activity = activity_name(product, activity_type, product.routes[route_index])
                    key = (product_index, activity, GEOGRAPHIES[geo_index], activity_type)
                    index.setdefault(key, []).extend(ids)
                self._index = index
            return self._index

    def search(
        self,
        version: Version,
        query: str | None,
        geography: str | None,
        activity_type: str | None,
    ) -> tuple[list[int], dict[str, dict[str, int]]]:
        """Ids matching a case-insensitive substring over activity, product and geography (ascending),
        and facet counts (geography, activity type, sectors) over all of them, not just one page."""
        needle = (query or "").strip().lower()
        matched: list[int] = []
        geographies: Counter[str] = Counter()
        types: Counter[str] = Counter()
        sectors: Counter[str] = Counter()
        gap = version.gap_modulus
        for (product_index, activity, geo, atype), ids in self._search_index().items():
            if geography is not None and geo != geography:
                continue
            if activity_type is not None and atype != activity_type:
                continue
            product = PRODUCTS[product_index]
            if needle and needle not in f"{activity}\n{product.name}\n{geo}".lower():
                continue
            present = [i for i in ids if i % gap] if gap else ids
            if not present:
                continue
            matched.extend(present)
            geographies[geo] += len(present)
            types[atype] += len(present)
            for sector in product.sectors:
                sectors[sector] += len(present)
        matched.sort()
        facets = {
            "geography": dict(geographies.most_common()),
            "activity_type": dict(types.most_common()),
            "sectors": dict(sectors.most_common()),
        }
        return matched, facets
