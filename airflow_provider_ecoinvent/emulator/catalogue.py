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
* Indicators come from ``lcia.py``: ~700 ids, stable across versions; ids ``1..31`` are the original
  ones. Built-in versions lack the methods introduced after them (3.9 lacks ``EF v3.1`` and ``IPCC 2021``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import threading
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

from airflow_provider_ecoinvent.emulator.lcia import INDICATORS, INDICATORS_BY_ID, Indicator

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["INDICATORS", "INDICATORS_BY_ID", "Catalogue", "Indicator", "Version"]

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


#: ~30 real geographies in ecoinvent's display form (the search filter needs exactly this form).
GEOGRAPHIES = (
    "Global (GLO)",
    "Rest-of-World (RoW)",
    "Europe (RER)",
    "Europe without Switzerland (Europe without Switzerland)",
    "Switzerland (CH)",
    "Germany (DE)",
    "France (FR)",
    "Italy (IT)",
    "Spain (ES)",
    "Austria (AT)",
    "Netherlands (NL)",
    "Poland (PL)",
    "Sweden (SE)",
    "Norway (NO)",
    "United Kingdom (GB)",
    "United States (US)",
    "Canada (CA)",
    "Mexico (MX)",
    "Brazil (BR)",
    "Chile (CL)",
    "Peru (PE)",
    "China (CN)",
    "India (IN)",
    "Japan (JP)",
    "South Korea (KR)",
    "Indonesia (ID)",
    "Australia (AU)",
    "South Africa (ZA)",
    "Nigeria (NG)",
    "Egypt (EG)",
    "Quebec, Canada (CA-QC)",
    "Asia (RAS)",
)


@dataclasses.dataclass(frozen=True)
class _Product:
    name: str
    unit: str
    isic_section: str
    isic_class: str
    sectors: tuple[str, ...]
    routes: tuple[str, ...]


_ELEC = ("Electricity",)
_PRODUCTS = (
    _Product(
        "electricity, high voltage",
        "kWh",
        "D - Electricity, gas, steam and air conditioning supply",
        "3510:Electric power generation, transmission and distribution",
        _ELEC,
        (
            "electricity production, hard coal",
            "electricity production, natural gas, combined cycle power plant",
            "electricity production, hydro, run-of-river",
            "electricity production, nuclear, pressure water reactor",
            "electricity production, wind, 1-3MW turbine, onshore",
        ),
    ),
    _Product(
        "electricity, low voltage",
        "kWh",
        "D - Electricity, gas, steam and air conditioning supply",
        "3510:Electric power generation, transmission and distribution",
        _ELEC,
        (
            "electricity production, photovoltaic, 3kWp slanted-roof installation, multi-Si, panel, mounted",
            "electricity voltage transformation from medium to low voltage",
        ),
    ),
    _Product(
        "heat, district or industrial, natural gas",
        "MJ",
        "D - Electricity, gas, steam and air conditioning supply",
        "3530:Steam and air conditioning supply",
        ("Heat",),
        (
            "heat production, natural gas, at industrial furnace >100kW",
            "heat and power co-generation, natural gas, conventional power plant, 100MW electrical",
        ),
    ),
    _Product(
        "cement, Portland",
        "kg",
        "C - Manufacturing",
        "2394:Manufacture of cement, lime and plaster",
        ("Cement & Concrete",),
        ("cement production, Portland",),
    ),
    _Product(
        "concrete, normal strength",
        "m3",
        "C - Manufacturing",
        "2395:Manufacture of articles of concrete, cement and plaster",
        ("Cement & Concrete",),
        (
            "concrete production, for building construction, with cement CEM II/A",
            "concrete production, 30-32MPa, ready-mix, with cement, Portland",
        ),
    ),
    _Product(
        "steel, low-alloyed",
        "kg",
        "C - Manufacturing",
        "2410:Manufacture of basic iron and steel",
        ("Metals",),
        ("steel production, converter, low-alloyed", "steel production, electric, low-alloyed"),
    ),
    _Product(
        "aluminium, primary, ingot",
        "kg",
        "C - Manufacturing",
        "2420:Manufacture of basic precious and other non-ferrous metals",
        ("Metals",),
        ("aluminium production, primary, ingot",),
    ),
    _Product(
        "copper, cathode",
        "kg",
        "C - Manufacturing",
        "2420:Manufacture of basic precious and other non-ferrous metals",
        ("Metals",),
        ("copper production, cathode, solvent extraction and electrowinning process",),
    ),
    _Product(
        "polyethylene, high density, granulate",
        "kg",
        "C - Manufacturing",
        "2013:Manufacture of plastics and synthetic rubber in primary forms",
        ("Plastics", "Chemicals"),
        ("polyethylene production, high density, granulate",),
    ),
    _Product(
        "polyethylene terephthalate, granulate, bottle grade",
        "kg",
        "C - Manufacturing",
        "2013:Manufacture of plastics and synthetic rubber in primary forms",
        ("Plastics", "Chemicals"),
        ("polyethylene terephthalate production, granulate, bottle grade",),
    ),
    _Product(
        "ammonia, anhydrous, liquid",
        "kg",
        "C - Manufacturing",
        "2012:Manufacture of fertilizers and nitrogen compounds",
        ("Chemicals", "Fertilisers"),
        ("ammonia production, steam reforming, liquid", "ammonia production, partial oxidation, liquid"),
    ),
    _Product(
        "nitrogen fertiliser, as N",
        "kg",
        "C - Manufacturing",
        "2012:Manufacture of fertilizers and nitrogen compounds",
        ("Fertilisers", "Agriculture"),
        ("ammonium nitrate production", "urea production"),
    ),
    _Product(
        "sulfuric acid",
        "kg",
        "C - Manufacturing",
        "2011:Manufacture of basic chemicals",
        ("Chemicals",),
        ("sulfuric acid production",),
    ),
    _Product(
        "flat glass, uncoated",
        "kg",
        "C - Manufacturing",
        "2310:Manufacture of glass and glass products",
        ("Glass",),
        ("flat glass production, uncoated",),
    ),
    _Product(
        "paper, woodfree, uncoated",
        "kg",
        "C - Manufacturing",
        "1701:Manufacture of pulp, paper and paperboard",
        ("Pulp & Paper",),
        ("paper production, woodfree, uncoated, at integrated mill",),
    ),
    _Product(
        "sawnwood, softwood, raw, dried (u=20%)",
        "m3",
        "C - Manufacturing",
        "1610:Sawmilling and planing of wood",
        ("Wood",),
        ("sawing and drying, softwood, raw",),
    ),
    _Product(
        "wheat grain",
        "kg",
        "A - Agriculture, forestry and fishing",
        "0111:Growing of cereals (except rice), leguminous crops and oil seeds",
        ("Agriculture",),
        ("wheat production", "wheat grain production, organic"),
    ),
    _Product(
        "maize grain",
        "kg",
        "A - Agriculture, forestry and fishing",
        "0111:Growing of cereals (except rice), leguminous crops and oil seeds",
        ("Agriculture",),
        ("maize grain production", "maize grain production, irrigated"),
    ),
    _Product(
        "rice, non-basmati",
        "kg",
        "A - Agriculture, forestry and fishing",
        "0112:Growing of rice",
        ("Agriculture",),
        ("rice production, non-basmati",),
    ),
    _Product(
        "soybean",
        "kg",
        "A - Agriculture, forestry and fishing",
        "0111:Growing of cereals (except rice), leguminous crops and oil seeds",
        ("Agriculture",),
        ("soybean production",),
    ),
    _Product(
        "cow milk",
        "kg",
        "A - Agriculture, forestry and fishing",
        "0141:Raising of cattle and buffaloes",
        ("Agriculture", "Animal production"),
        ("milk production, from cow",),
    ),
    _Product(
        "natural gas, high pressure",
        "m3",
        "B - Mining and quarrying",
        "0620:Extraction of natural gas",
        ("Fuels",),
        ("natural gas production",),
    ),
    _Product(
        "petrol, unleaded",
        "kg",
        "C - Manufacturing",
        "1920:Manufacture of refined petroleum products",
        ("Fuels",),
        ("petroleum refinery operation",),
    ),
    _Product(
        "diesel, low-sulfur",
        "kg",
        "C - Manufacturing",
        "1920:Manufacture of refined petroleum products",
        ("Fuels",),
        ("diesel production, low-sulfur, petroleum refinery operation",),
    ),
    _Product(
        "hydrogen, gaseous, low pressure",
        "kg",
        "C - Manufacturing",
        "2011:Manufacture of basic chemicals",
        ("Chemicals", "Fuels"),
        ("hydrogen production, gaseous, petroleum refinery operation", "hydrogen production, PEM electrolysis"),
    ),
    _Product(
        "transport, freight, lorry 16-32 metric ton, EURO6",
        "tkm",
        "H - Transportation and storage",
        "4923:Freight transport by road",
        ("Transport",),
        ("transport, freight, lorry 16-32 metric ton, EURO6",),
    ),
    _Product(
        "transport, freight train",
        "tkm",
        "H - Transportation and storage",
        "4912:Freight rail transport",
        ("Transport",),
        ("transport, freight train, electricity", "transport, freight train, diesel"),
    ),
    _Product(
        "transport, freight, sea, container ship",
        "tkm",
        "H - Transportation and storage",
        "5012:Sea and coastal freight water transport",
        ("Transport",),
        ("transport, freight, sea, container ship",),
    ),
    _Product(
        "tap water",
        "kg",
        "E - Water supply; sewerage, waste management and remediation activities",
        "3600:Water collection, treatment and supply",
        ("Water",),
        ("tap water production, conventional treatment", "tap water production, underground water without treatment"),
    ),
    _Product(
        "wastewater, average",
        "m3",
        "E - Water supply; sewerage, waste management and remediation activities",
        "3700:Sewerage",
        ("Waste treatment",),
        ("treatment of wastewater, average, wastewater treatment",),
    ),
    _Product(
        "municipal solid waste",
        "kg",
        "E - Water supply; sewerage, waste management and remediation activities",
        "3821:Treatment and disposal of non-hazardous waste",
        ("Waste treatment",),
        ("treatment of municipal solid waste, incineration", "treatment of municipal solid waste, sanitary landfill"),
    ),
    _Product(
        "lithium-ion battery, rechargeable, prismatic",
        "kg",
        "C - Manufacturing",
        "2720:Manufacture of batteries and accumulators",
        ("Electronics",),
        ("battery production, Li-ion, rechargeable, prismatic",),
    ),
    _Product(
        "photovoltaic panel, multi-Si wafer",
        "m2",
        "C - Manufacturing",
        "2610:Manufacture of electronic components and boards",
        ("Electronics", "Electricity"),
        ("photovoltaic panel production, multi-Si wafer",),
    ),
    _Product(
        "cotton fibre",
        "kg",
        "A - Agriculture, forestry and fishing",
        "0116:Growing of fibre crops",
        ("Textiles", "Agriculture"),
        ("cotton fibre production",),
    ),
)

#: Activity types, weighted by how often each occurs (20 slots in all).
_ACTIVITY_TYPES = (
    ("ordinary transforming activity", 11),
    ("market activity", 6),
    ("market group", 1),
    ("production mix", 1),
    ("import activity", 1),
)
_ACTIVITY_TYPE_SLOTS = tuple(name for name, weight in _ACTIVITY_TYPES for _ in range(weight))
ACTIVITY_TYPES = tuple(name for name, _ in _ACTIVITY_TYPES)

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


def _choices(digest: bytes) -> tuple[int, int, int, int]:
    """Product, activity-type slot, route and geography indexes from a dataset's hash."""
    product_index = int.from_bytes(digest[0:2], "big") % len(_PRODUCTS)
    route_index = digest[3] % len(_PRODUCTS[product_index].routes)
    return product_index, digest[2] % len(_ACTIVITY_TYPE_SLOTS), route_index, digest[4] % len(GEOGRAPHIES)


def _activity_name(product: _Product, activity_type: str, route: str) -> str:
    if activity_type == "market activity":
        return f"market for {product.name}"
    if activity_type == "market group":
        return f"market group for {product.name}"
    if activity_type == "production mix":
        return f"{product.name}, production mix"
    if activity_type == "import activity":
        return f"{product.name}, import from RoW"
    return route


#: Per indicator, the power of ten of the smallest mantissa digit for each of five spreads (-2..+2
#: decades around the indicator's scale).
_SCORE_EXPONENTS = {
    ind.id: tuple(math.floor(math.log10(ind.scale)) + spread - 5 for spread in range(-2, 3)) for ind in INDICATORS
}


#: Indicators per block of score hash bits: a dataset's bits are made per block, so scoring a few
#: indicators does not hash for all ~700. Block 0 (ids 1..32) keeps the original bits of ids 1..31.
SCORE_BLOCK = 32


def _score_from_bits(bits: bytes, indicator: Indicator, negative_allowed: bool) -> float:
    """A score with six significant digits, spread over five decades around the indicator's scale.

    Built as an integer mantissa divided by a power of ten (a correctly rounded division), so the JSON
    shows short numbers such as ``0.0372179``, and cheaply: this runs 1,000 times per 100 x 10 batch page.
    ``consequential`` scores are negative one time in ten, as real consequential results can be.
    """
    offset = 8 * ((indicator.id - 1) % SCORE_BLOCK)
    h = int.from_bytes(bits[offset : offset + 8], "big")
    mantissa = 100_000 + h % 900_000
    exponent = _SCORE_EXPONENTS[indicator.id][(h >> 32) % 5]
    value = mantissa / 10**-exponent if exponent < 0 else float(mantissa * 10**exponent)
    if negative_allowed and (h >> 40) % 10 == 0:
        value = -value
    return value


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
        product_index, type_slot, route_index, geo_index = _choices(digest)
        product = _PRODUCTS[product_index]
        activity_type = _ACTIVITY_TYPE_SLOTS[type_slot]
        geography = GEOGRAPHIES[geo_index]
        return DatasetCore(
            id=dataset_id,
            activity=_activity_name(product, activity_type, product.routes[route_index]),
            product=product.name,
            geography=geography,
            activity_type=activity_type,
            product_index=product_index,
            start_year=2011 + digest[5] % 10,
        )

    def _make_static(self, dataset_id: int) -> dict[str, Any]:
        """The version-independent Dataset fields, in the contract's order (cached by ``static``)."""
        core = self.core(dataset_id)
        product = _PRODUCTS[core.product_index]
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
        link = f"{ECOQUERY_BASE}/{version.name}/{system_model}/dataset/{dataset_id}"
        dataset["sectors"] = list(_PRODUCTS[self.core(dataset_id).product_index].sectors)
        dataset["url"] = f"{link}/documentation"
        dataset["url_history"] = f"{link}/history"
        return dataset

    def _make_score_bits(self, version_name: str, system_model: str, dataset_id: int, block: int) -> bytes:
        """8 hash bytes per indicator of one block (ids ``32 * block + 1 ..``) for one dataset, version and
        system model. Block 0 hashes the original key: SHAKE's output is a prefix-stable stream, so ids
        1..31 keep the scores they always had."""
        key = f"{self.seed}|score|{version_name}|{system_model}|{dataset_id}" + (f"|{block}" if block else "")
        return hashlib.shake_256(key.encode()).digest(8 * SCORE_BLOCK)

    def score(self, version: Version, system_model: str, dataset_id: int, indicator: Indicator) -> float:
        """The deterministic score of a dataset for an indicator in a version and system model."""
        bits = self.score_bits(version.name, system_model, dataset_id, (indicator.id - 1) // SCORE_BLOCK)
        return _score_from_bits(bits, indicator, system_model == "consequential")

    def impact_scores(
        self, version: Version, system_model: str, dataset_id: int, indicators: Iterable[Indicator]
    ) -> list[dict[str, Any]]:
        negative_allowed = system_model == "consequential"

        def bits(ind: Indicator) -> bytes:
            return self.score_bits(version.name, system_model, dataset_id, (ind.id - 1) // SCORE_BLOCK)

        return [
            {
                "id": ind.id,
                "score": _score_from_bits(bits(ind), ind, negative_allowed),
                "unit": ind.unit,
                "method": ind.method,
                "category": ind.category,
                "indicator": ind.indicator,
            }
            for ind in indicators
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
                    by_choice.setdefault(_choices(digest), []).append(dataset_id)
                index: dict[tuple[int, str, str, str], list[int]] = {}
                for (product_index, type_slot, route_index, geo_index), ids in by_choice.items():
                    product = _PRODUCTS[product_index]
                    activity_type = _ACTIVITY_TYPE_SLOTS[type_slot]
                    activity = _activity_name(product, activity_type, product.routes[route_index])
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
            product = _PRODUCTS[product_index]
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
