"""The emulator's LCIA catalogue: realistic in size and names, ids stable, older versions lacking newer methods."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_provider_ecoinvent.emulator.lcia import INDICATORS, RELEASE_ORDER, indicators_for

if TYPE_CHECKING:
    from tests.emulator.conftest import Api


def listing(api: Api, version: str) -> list[dict[str, object]]:
    """Every indicator of a version, paged the way a client pages: 100 at a time until ``total``."""
    items: list[dict[str, object]] = []
    while True:
        page = api.get("/indicators", params={"version": version, "from": len(items), "limit": 100}).json()
        items.extend(page["results"])
        if len(items) >= page["total"]:
            return items


def test_catalogue_is_the_size_of_a_real_licence(api: Api) -> None:
    items = listing(api, "3.11")
    assert len(items) >= 600
    assert len({item["method"] for item in items}) >= 40
    assert [item["id"] for item in items] == sorted({item["id"] for item in items})  # unique, by id
    triples = {(item["method"], item["category"], item["indicator"]) for item in items}
    assert len(triples) == len(items)  # (method, category, indicator) names one indicator
    for method in (
        "EF v3.1",
        "EF v3.0",
        "IPCC 2021",
        "IPCC 2013",
        "ReCiPe 2016 v1.03, midpoint (H)",
        "ReCiPe 2016 v1.03, endpoint (H)",
        "CML v4.8 2016",
        "EDIP 2003",
        "Cumulative Energy Demand (CED)",
        "ILCD 2.0 2018 midpoint",
        "TRACI v2.1",
        "Ecological Scarcity 2021",
        "EPS 2020d",
    ):
        assert any(item["method"] == method for item in items), method


def test_the_original_31_ids_keep_their_names_and_units(api: Api) -> None:
    items = {item["id"]: item for item in listing(api, "3.11")}
    assert items[1] == {
        "id": 1,
        "method": "IPCC 2021",
        "category": "climate change",
        "indicator": "global warming potential (GWP100)",
        "unit": "kg CO2-Eq",
    }
    assert (items[7]["method"], items[7]["category"]) == ("EF v3.1", "climate change")
    assert (items[31]["method"], items[31]["indicator"]) == (
        "ReCiPe 2016 v1.03, midpoint (H)",
        "particulate matter formation potential (PMFP)",
    )


def test_ids_are_stable_and_older_versions_lack_newer_methods(api: Api) -> None:
    by_version = {version: {item["id"]: item for item in listing(api, version)} for version in RELEASE_ORDER}
    newest = by_version["3.11"]
    for items in by_version.values():
        assert all(newest[ident] == item for ident, item in items.items())  # same id, same indicator
    methods = {version: {item["method"] for item in items.values()} for version, items in by_version.items()}
    assert not {"EF v3.1", "IPCC 2021"} & methods["3.9"]
    assert {"EF v3.1", "IPCC 2021"} <= methods["3.10"]
    assert "IPCC 2021 (incl. biogenic CO2)" in methods["3.11"] - methods["3.10"]
    assert len(by_version["3.9"]) < len(by_version["3.10"]) < len(by_version["3.11"]) == len(INDICATORS)


def test_an_indicator_unknown_in_the_version_is_rejected_there_only(api: Api) -> None:
    ef31 = next(ind.id for ind in indicators_for("3.10") if ind.method == "EF v3.1" and ind.id > 31)
    refused = api.batch([1], [23, ef31], params={"version": "3.9"})
    assert refused.status_code == 422
    assert [item["loc"] for item in refused.json()["detail"]] == [["body", "indicator_ids", 1]]
    assert f"unknown indicator id {ef31} for version 3.9" in refused.json()["detail"][0]["msg"]
    scored = api.batch([1], [23, ef31], params={"version": "3.10"}).json()
    assert [s["id"] for s in scored["datasets"][0]["impact_scores"]] == [23, ef31]


@pytest.mark.parametrize(("count", "status"), [(100, 200), (101, 422)], ids=["100-ok", "101-refused"])
def test_a_call_still_scores_at_most_100_indicators(api: Api, count: int, status: int) -> None:
    ids = [ind.id for ind in INDICATORS[:count]]
    response = api.batch([1, 2], ids)
    assert response.status_code == status
    if status == 200:
        assert all(len(d["impact_scores"]) == 100 for d in response.json()["datasets"])


def test_scores_of_high_ids_are_deterministic_and_distinct(api: Api) -> None:
    high = [ind.id for ind in INDICATORS[-100:]]
    first = api.batch([3], high).json()["datasets"][0]["impact_scores"]
    again = api.batch([3], high).json()["datasets"][0]["impact_scores"]
    assert first == again
    assert len({s["score"] for s in first}) > 90  # not one hash reused for every id
