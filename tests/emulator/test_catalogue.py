"""The synthetic catalogue is a pure, documented function of (seed, id): tests may rely on it."""

from __future__ import annotations

import hashlib
import math
import uuid

from airflow_provider_ecoinvent.emulator.catalogue import (
    GEOGRAPHIES,
    INDICATORS,
    INDICATORS_BY_ID,
    VERSION_GAPS,
    Catalogue,
)


def test_same_seed_same_catalogue_other_seed_other_catalogue():
    first, second, other = Catalogue(100, 0), Catalogue(100, 0), Catalogue(100, 1)
    version = first.latest
    ids = range(1, 101)
    assert [first.dataset(version, "cutoff", i) for i in ids] == [second.dataset(version, "cutoff", i) for i in ids]
    assert [first.dataset(version, "cutoff", i) for i in ids] != [other.dataset(version, "cutoff", i) for i in ids]
    scores = [first.impact_scores(version, "apos", i, INDICATORS) for i in ids]
    assert scores == [second.impact_scores(version, "apos", i, INDICATORS) for i in ids]


def reference_score(seed: int, version: str, system_model: str, dataset_id: int, indicator_id: int) -> float:
    """The score formula as first written (a frozen copy): the emulator may compute it faster, not differently."""
    indicator = INDICATORS_BY_ID[indicator_id]
    block = (indicator_id - 1) // 32
    key = f"{seed}|score|{version}|{system_model}|{dataset_id}" + (f"|{block}" if block else "")
    bits = hashlib.shake_256(key.encode()).digest(8 * 32)
    offset = 8 * ((indicator_id - 1) % 32)
    h = int.from_bytes(bits[offset : offset + 8], "big")
    mantissa = 100_000 + h % 900_000
    exponent = math.floor(math.log10(indicator.scale)) + (h >> 32) % 5 - 2 - 5
    value = mantissa / 10**-exponent if exponent < 0 else float(mantissa * 10**exponent)
    if system_model == "consequential" and (h >> 40) % 10 == 0:
        value = -value
    return value


def test_every_indicators_scores_follow_the_documented_formula():
    catalogue = Catalogue(500, 3)
    versions = {v.name: v for v in catalogue.versions_for_display()}
    for name, system_model in [("3.11", "cutoff"), ("3.10", "consequential"), ("3.9", "apos")]:
        version = versions[name]
        indicators = list(INDICATORS)
        for dataset_id in (1, 2, 499):
            expected = [reference_score(3, name, system_model, dataset_id, i.id) for i in indicators]
            scores = catalogue.impact_scores(version, system_model, dataset_id, indicators)
            assert [s["score"] for s in scores] == expected
            assert [s["id"] for s in scores] == [i.id for i in indicators]
            assert catalogue.score(version, system_model, dataset_id, indicators[-1]) == expected[-1]
    # Both branches of the scale: negative exponents (divided) and exponents >= 0 (multiplied).
    exponents = {math.floor(math.log10(i.scale)) - 7 for i in INDICATORS} | {
        math.floor(math.log10(i.scale)) - 3 for i in INDICATORS
    }
    assert min(exponents) < 0 <= max(exponents)


def test_version_gaps_are_the_documented_rule():
    catalogue = Catalogue(100, 0)
    assert VERSION_GAPS == {"3.9": 7, "3.10": 13}
    v39, v310, v311 = (catalogue.find_version(name) for name in ("3.9", "3.10", "3.11"))
    assert v39 is not None
    assert v310 is not None
    assert v311 is not None
    assert [i for i in range(1, 101) if not catalogue.has_dataset(v39, i)] == list(range(7, 101, 7))
    assert [i for i in range(1, 101) if not catalogue.has_dataset(v310, i)] == list(range(13, 101, 13))
    assert all(catalogue.has_dataset(v311, i) for i in range(1, 101))
    assert not catalogue.has_dataset(v311, 0)
    assert not catalogue.has_dataset(v311, 101)
    assert catalogue.find_version("latest") == catalogue.find_version(None) == v311


def test_dataset_fields_are_well_formed():
    catalogue = Catalogue(500, 0)
    version = catalogue.latest
    for dataset_id in range(1, 501):
        dataset = catalogue.dataset(version, "cutoff", dataset_id)
        assert dataset["geography"] in GEOGRAPHIES
        for key in ("activity_spold_uuid", "geography_spold_uuid", "product_spold_uuid"):
            assert uuid.UUID(dataset[key]).version == 5
        assert dataset["url"].startswith(f"https://ecoquery.ecoinvent.org/3.11/cutoff/dataset/{dataset_id}/")
        assert dataset["sectors"]
        start, end = dataset["time_period"].split("-")
        assert int(start) < int(end)


def test_scores_are_short_finite_floats_and_consequential_can_be_negative():
    catalogue = Catalogue(300, 0)
    version = catalogue.latest
    cutoff = [s["score"] for i in range(1, 301) for s in catalogue.impact_scores(version, "cutoff", i, INDICATORS)]
    assert all(isinstance(s, float) and s > 0 for s in cutoff)
    assert all(len(repr(s)) <= 12 for s in cutoff)  # six significant digits
    consequential = [
        s["score"] for i in range(1, 301) for s in catalogue.impact_scores(version, "consequential", i, INDICATORS)
    ]
    assert 0.05 < sum(s < 0 for s in consequential) / len(consequential) < 0.15
    assert catalogue.score(version, "cutoff", 1, INDICATORS_BY_ID[1]) == cutoff[0]


def test_search_index_agrees_with_the_datasets():
    catalogue = Catalogue(2000, 3)
    version = catalogue.latest
    everything, facets = catalogue.search(version, None, None, None)
    assert everything == list(range(1, 2001))
    assert sum(facets["activity_type"].values()) == 2000
    for dataset_id in range(1, 2001, 37):
        core = catalogue.core(dataset_id)
        found, _ = catalogue.search(version, core.activity.upper(), core.geography, core.activity_type)
        assert dataset_id in found


def test_a_large_catalogue_is_lazy():
    import tracemalloc

    # Measured in bytes allocated and datasets built, not in seconds: both are exact on a loaded machine.
    tracemalloc.start()
    try:
        catalogue = Catalogue(200_000, 0)
        catalogue.dataset(catalogue.latest, "cutoff", 199_999)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # ~6 kB: nothing of the 200,000 datasets but the one asked for
    assert catalogue.core.cache_info().currsize == 1


def test_publish_makes_the_newest_version_and_lists_it_first():
    catalogue = Catalogue(10, 0)
    catalogue.publish("3.12", None, "2026-01-01")
    assert catalogue.latest.name == "3.12"
    assert [v.name for v in catalogue.versions_for_display()] == ["3.12", "3.10", "3.9", "3.11"]
    assert catalogue.has_dataset(catalogue.latest, 7)
