"""The API endpoints (contract sections 3, 4 and 6)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.emulator.catalogue import GEOGRAPHIES, INDICATORS
from airflow_provider_ecoinvent.emulator.lcia import indicators_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_ecoinvent.emulator import EmulatorServer
    from airflow_provider_ecoinvent.emulator.testing import EmulatorFactory

    from .conftest import Api

DATASET_FIELDS = {
    "id",
    "activity",
    "product",
    "description",
    "geography",
    "unit",
    "time_period",
    "activity_type",
    "isic_section",
    "isic_class",
    "activity_spold_uuid",
    "geography_spold_uuid",
    "product_spold_uuid",
    "sectors",
    "url",
    "url_history",
}
SCORE_FIELDS = {"id", "score", "unit", "method", "category", "indicator"}


# -- versions -------------------------------------------------------------------------------------------


def test_versions_object_shape_is_unsorted(api: Api):
    body = api.get("/versions").json()
    names = [item["version"] for item in body["results"]]
    assert names == ["3.10", "3.9", "3.11"]
    assert names != sorted(names)
    by_name = {item["version"]: item for item in body["results"]}
    assert [m["name"] for m in by_name["3.9"]["system_models"]] == ["cutoff", "apos", "consequential"]
    assert {m["name"] for m in by_name["3.11"]["system_models"]} == {"cutoff", "apos", "consequential", "EN15804"}
    assert all(item["release_date"] for item in body["results"])


def test_versions_list_shape(ecoinvent_emulator_factory: EmulatorFactory, make_api: Callable[..., Api]):
    emulator = ecoinvent_emulator_factory(versions_shape="list")
    body = make_api(emulator).get("/versions").json()
    assert isinstance(body, list)
    assert [item["name"] for item in body] == ["3.10", "3.9", "3.11"]
    assert body[2]["system_models"] == ["cutoff", "apos", "consequential", "EN15804"]


def test_omit_total_leaves_total_out_of_every_paged_answer(
    ecoinvent_emulator_factory: EmulatorFactory, make_api: Callable[..., Api]
):
    api = make_api(ecoinvent_emulator_factory(datasets=250, omit_total=True))
    search = api.get("/datasets", params={"limit": 100}).json()
    batch = api.batch(list(range(1, 251)), [1], params={"limit": 100}).json()
    indicators = api.get("/indicators").json()
    assert "total" not in search
    assert "total" not in batch
    assert "total" not in indicators
    assert len(search["results"]) == len(batch["datasets"]) == 100
    assert search["facets"]
    assert indicators["results"]
    assert api.emulator.stats()["config"]["omit_total"] is True


def test_publish_version_becomes_latest(ecoinvent_emulator: EmulatorServer, api: Api):
    ecoinvent_emulator.publish_version("3.12", ["cutoff", "apos"])
    names = [item["version"] for item in api.get("/versions").json()["results"]]
    assert set(names) == {"3.9", "3.10", "3.11", "3.12"}
    dataset = api.get("/datasets/7").json()  # "latest" now means 3.12
    assert "/3.12/cutoff/" in dataset["url"]
    assert api.get("/datasets/7", params={"version": "3.12", "system_model": "consequential"}).status_code == 404
    with pytest.raises(Exception, match="409"):
        ecoinvent_emulator.publish_version("3.12")


def test_unknown_api_path_and_wrong_method(api: Api):
    missing = api.get("/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not Found"}
    wrong = api.session.delete(api.emulator.api_url + "/versions")
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "GET"
    assert api.get("/datasets/batch").status_code == 405


def test_custom_api_prefix(ecoinvent_emulator_factory: EmulatorFactory, make_api: Callable[..., Api]):
    emulator = ecoinvent_emulator_factory(api_prefix="/v3/api1")
    client = make_api(emulator)
    assert emulator.api_url.endswith("/v3/api1")
    assert client.get("/versions").status_code == 200
    assert client.session.get(emulator.base_url + "/v0/versions").status_code == 404
    assert emulator.connection_dict()["extra"]["api_prefix"] == "/v3/api1"


# -- indicators -----------------------------------------------------------------------------------------


def test_indicators(api: Api):
    body = api.get("/indicators", params={"version": "3.10", "system_model": "apos"}).json()
    assert body["total"] == len(body["results"]) == len(indicators_for("3.10")) >= 600
    assert set(body["results"][0]) == {"id", "method", "category", "indicator", "unit"}
    methods = {item["method"] for item in body["results"]}
    assert {"IPCC 2021", "EF v3.1", "ReCiPe 2016 v1.03, midpoint (H)"} <= methods
    gwp = [i for i in body["results"] if i["method"] == "IPCC 2021" and i["indicator"].endswith("(GWP100)")]
    assert len({i["category"] for i in gwp}) == len({i["id"] for i in gwp}) > 1  # same name, two ids


def test_indicators_paging(api: Api):
    page = api.get("/indicators", params={"from": 25, "limit": 10}).json()
    assert page["total"] == len(INDICATORS)
    assert [i["id"] for i in page["results"]] == list(range(26, 36))


# -- search ---------------------------------------------------------------------------------------------


def test_search(api: Api):
    body = api.get("/datasets", params={"query": "CEMENT", "limit": 5}).json()
    assert body["total"] > 5
    assert len(body["results"]) == 5
    for item in body["results"]:
        assert "cement" in (item["activity"] + item["product"]).lower()
        assert set(item) == DATASET_FIELDS  # no impact_scores
    assert sum(body["facets"]["geography"].values()) == body["total"]


def test_search_paging_covers_everything_once(api: Api):
    seen: list[int] = []
    start = 0
    while True:
        page = api.get("/datasets", params={"query": "electricity", "from": start, "limit": 100}).json()
        if not page["results"]:
            break
        seen.extend(item["id"] for item in page["results"])
        start += 100
    assert len(seen) == len(set(seen)) == page["total"]


def test_search_geography_needs_display_form(api: Api):
    full = api.get("/datasets", params={"geography": "Mexico (MX)", "limit": 100}).json()
    assert full["total"] > 0
    assert {item["geography"] for item in full["results"]} == {"Mexico (MX)"}
    bare = api.get("/datasets", params={"geography": "MX"}).json()
    assert bare["total"] == 0
    assert bare["results"] == []


def test_search_activity_type_filter_and_version_gaps(api: Api):
    body = api.get("/datasets", params={"activity_type": "market activity", "version": "3.9", "limit": 100}).json()
    assert body["total"] > 0
    assert all(item["activity_type"] == "market activity" for item in body["results"])
    assert all(item["id"] % 7 for item in body["results"])


def test_catalogue_has_the_listed_geographies(api: Api):
    geographies = api.get("/datasets", params={"limit": 1}).json()["facets"]["geography"]
    assert set(geographies) <= set(GEOGRAPHIES)
    assert {"Global (GLO)", "Rest-of-World (RoW)", "Switzerland (CH)"} <= set(GEOGRAPHIES)


# -- one dataset ----------------------------------------------------------------------------------------


def test_single_dataset_unscored_and_scored(api: Api):
    plain = api.get("/datasets/42").json()
    assert set(plain) == DATASET_FIELDS
    assert plain["id"] == 42
    scored = api.get("/datasets/42", params={"indicator_ids": [3, 1]}).json()
    assert [s["id"] for s in scored["impact_scores"]] == [3, 1]
    assert set(scored["impact_scores"][0]) == SCORE_FIELDS
    assert isinstance(scored["impact_scores"][0]["score"], float)
    assert scored["geography"].endswith(")")
    again = api.get("/datasets/42", params={"indicator_ids": [3, 1]}).json()
    assert again == scored  # deterministic


def test_scores_depend_on_version_and_system_model(api: Api):
    def score(**params: Any) -> float:
        body = api.get("/datasets/8", params={"indicator_ids": 1, **params}).json()
        return float(body["impact_scores"][0]["score"])

    values = {score(), score(version="3.10"), score(system_model="apos")}
    assert len(values) == 3


@pytest.mark.parametrize(
    ("path", "params", "fragment"),
    [
        ("/datasets/7", {"version": "3.9"}, "Dataset 7 not found"),
        ("/datasets/13", {"version": "3.10"}, "Dataset 13 not found"),
        ("/datasets/0", {}, "Dataset 0 not found"),
        ("/datasets/1001", {}, "Dataset 1001 not found"),
        ("/datasets/1", {"version": "2.2"}, "Version '2.2' not found"),
        ("/datasets/1", {"system_model": "nope"}, "System model 'nope'"),
        ("/datasets/1", {"version": "3.9", "system_model": "EN15804"}, "not available in version 3.9"),
        ("/indicators", {"version": "9.9"}, "Version '9.9' not found"),
        ("/datasets", {"system_model": "x"}, "System model 'x'"),
    ],
    ids=[
        "gap-3.9",
        "gap-3.10",
        "id-zero",
        "id-too-big",
        "unknown-version",
        "unknown-system-model",
        "model-not-in-version",
        "indicators-version",
        "search-model",
    ],
)
def test_not_found(api: Api, path: str, params: dict[str, str], fragment: str):
    response = api.get(path, params=params)
    assert response.status_code == 404
    assert fragment in response.json()["detail"]


def test_latest_is_accepted(api: Api):
    assert api.get("/datasets/1", params={"version": "latest"}).json() == api.get("/datasets/1").json()


# -- batch ----------------------------------------------------------------------------------------------


def test_batch_drops_unknown_collapses_duplicates_and_sorts(api: Api):
    # Indicator 23 (ReCiPe 2016 midpoint (H)) is in 3.9; 1..22 (IPCC 2021, EF v3.1) came with 3.10.
    response = api.batch([21, 8, 5, 7, 5, 99999, 14], [23], params={"version": "3.9", "limit": 100})
    body = response.json()
    assert response.status_code == 200
    assert body["total"] == 2  # 7, 14 and 21 are not in 3.9; 99999 is unknown; 5 is repeated
    assert [d["id"] for d in body["datasets"]] == [5, 8]
    # the newest version has them all
    body = api.batch([21, 8, 5, 7, 5, 14], [2], params={"limit": 100}).json()
    assert body["total"] == 5
    assert [d["id"] for d in body["datasets"]] == [5, 7, 8, 14, 21]
    assert all(len(d["impact_scores"]) == 1 for d in body["datasets"])


def test_batch_paging(api: Api):
    ids = list(range(300, 0, -1))
    first = api.batch(ids, params={"limit": 100}).json()
    assert first["total"] == 300
    assert [d["id"] for d in first["datasets"]] == list(range(1, 101))
    last = api.batch(ids, params={"from": 250, "limit": 100}).json()
    assert [d["id"] for d in last["datasets"]] == list(range(251, 301))
    beyond = api.batch(ids, params={"from": 300}).json()
    assert beyond == {"total": 300, "datasets": []}
    default = api.batch(ids).json()
    assert len(default["datasets"]) == 10


def test_batch_without_indicators_has_no_scores(api: Api):
    body = api.batch([1, 2]).json()
    assert all("impact_scores" not in d for d in body["datasets"])


def test_batch_scores_match_single_dataset(api: Api):
    batch = api.batch([10, 11], [1, 5, 9], params={"system_model": "consequential"}).json()
    single = api.get("/datasets/11", params={"indicator_ids": [1, 5, 9], "system_model": "consequential"}).json()
    assert batch["datasets"][1] == single


def _too_many(n: int) -> list[int]:
    return list(range(1, n + 1))


VALIDATION_CASES: list[tuple[str, dict[str, Any], Any, list[Any]]] = [
    ("limit-too-big", {"limit": 101}, {"dataset_ids": [1]}, ["query", "limit"]),
    ("limit-zero", {"limit": 0}, {"dataset_ids": [1]}, ["query", "limit"]),
    ("from-negative", {"from": -1}, {"dataset_ids": [1]}, ["query", "from"]),
    ("limit-not-int", {"limit": "ten"}, {"dataset_ids": [1]}, ["query", "limit"]),
    ("dataset-ids-empty", {}, {"dataset_ids": []}, ["body", "dataset_ids"]),
    ("dataset-ids-missing", {}, {"indicator_ids": [1]}, ["body", "dataset_ids"]),
    ("dataset-ids-not-list", {}, {"dataset_ids": 5}, ["body", "dataset_ids"]),
    ("dataset-id-not-int", {}, {"dataset_ids": [1, "x"]}, ["body", "dataset_ids", 1]),
    ("dataset-id-fraction", {}, {"dataset_ids": [1.5]}, ["body", "dataset_ids", 0]),
    ("too-many-dataset-ids", {}, {"dataset_ids": _too_many(10_001)}, ["body", "dataset_ids"]),
    ("too-many-indicators", {}, {"dataset_ids": [1], "indicator_ids": _too_many(101)}, ["body", "indicator_ids"]),
    ("unknown-indicator", {}, {"dataset_ids": [1], "indicator_ids": [1, 9999]}, ["body", "indicator_ids", 1]),
    ("body-not-object", {}, [1, 2], ["body"]),
]


@pytest.mark.parametrize(
    ("params", "body", "loc"), [c[1:] for c in VALIDATION_CASES], ids=[c[0] for c in VALIDATION_CASES]
)
def test_batch_validation(api: Api, params: dict[str, Any], body: Any, loc: list[Any]):
    response = api.post("/datasets/batch", params=params, json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert loc in [item["loc"] for item in detail]
    assert all({"loc", "msg", "type"} <= set(item) for item in detail)


def test_batch_limit_error_is_fastapi_shaped(api: Api):
    detail = api.batch([1], params={"limit": 101}).json()["detail"]
    assert detail == [
        {
            "type": "less_than_equal",
            "loc": ["query", "limit"],
            "msg": "Input should be less than or equal to 100",
            "input": "101",
            "ctx": {"le": 100},
        }
    ]


@pytest.mark.parametrize(
    ("data", "headers", "loc"),
    [
        (b"{bad json", {"Content-Type": "application/json"}, ["body", 1]),
        (b"", {"Content-Type": "application/json"}, ["body"]),
        (b'{"dataset_ids": [1]}', {"Content-Type": "text/plain"}, ["body"]),
    ],
    ids=["malformed-json", "no-body", "not-json-content-type"],
)
def test_batch_body_errors(api: Api, data: bytes, headers: dict[str, str], loc: list[Any]):
    response = api.post("/datasets/batch", data=data, headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc


def test_batch_accepts_lax_integers_like_pydantic(api: Api):
    body = api.post("/datasets/batch", json={"dataset_ids": ["3", 4.0]}).json()
    assert [d["id"] for d in body["datasets"]] == [3, 4]


@pytest.mark.parametrize(
    ("path", "params", "loc"),
    [
        ("/datasets", {"limit": 101}, ["query", "limit"]),
        ("/datasets", {"limit": 0}, ["query", "limit"]),
        ("/datasets", {"from": -5}, ["query", "from"]),
        ("/datasets", {"from": "x"}, ["query", "from"]),
        ("/datasets/abc", {}, ["path", "dataset_id"]),
        ("/datasets/1", {"indicator_ids": ["x"]}, ["query", "indicator_ids", 0]),
        ("/datasets/1", {"indicator_ids": [1, 5000]}, ["query", "indicator_ids", 1]),
        ("/datasets/1", {"indicator_ids": list(range(1, 102))}, ["query", "indicator_ids"]),
        ("/indicators", {"limit": 1000}, ["query", "limit"]),
    ],
    ids=[
        "search-limit-too-big",
        "search-limit-zero",
        "search-from-negative",
        "search-from-not-int",
        "dataset-id-not-int",
        "indicator-not-int",
        "indicator-unknown",
        "too-many-indicators",
        "indicators-limit",
    ],
)
def test_get_validation(api: Api, path: str, params: dict[str, Any], loc: list[Any]):
    response = api.get(path, params=params)
    assert response.status_code == 422
    assert loc in [item["loc"] for item in response.json()["detail"]]


def test_keep_alive_reuses_one_connection(ecoinvent_emulator: EmulatorServer, api: Api):
    """A pooled client keeps one TCP connection for many calls (Content-Length on every response)."""
    for _ in range(5):
        assert api.get("/versions").status_code == 200
        assert api.get("/nothing").status_code == 404
        assert api.batch([1], params={"limit": 500}).status_code == 422
        assert api.batch([1], [1]).status_code == 200
    assert ecoinvent_emulator.stats()["connections_opened"] == 1
