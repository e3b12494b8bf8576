"""EcoinventDatasetsOperator(indicators=[...]): indicators by name, any number of them, under real Airflow."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.emulator.lcia import indicators_for

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow_provider_ecoinvent.emulator import EmulatorServer

#: Every indicator of ten methods: more than 200, so each batch of datasets takes three scored calls.
METHODS = [
    "EF v3.1",
    "EF v3.0",
    "IPCC 2021",
    "Ecological Scarcity 2021",
    "ReCiPe 2016 v1.03, midpoint (E)",
    "ReCiPe 2016 v1.03, midpoint (H)",
    "ReCiPe 2016 v1.03, midpoint (I)",
    "ReCiPe 2016 v1.03, endpoint (E)",
    "ReCiPe 2016 v1.03, endpoint (H)",
    "ReCiPe 2016 v1.03, endpoint (I)",
]
LISTING_PAGES = math.ceil(len(indicators_for("3.11")) / 100)


def expected(methods: list[str], version: str = "3.11") -> list[dict[str, Any]]:
    return [ind.as_json() for ind in indicators_for(version) if ind.method in methods]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_indicator_of_several_methods_by_name_merged_per_dataset(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    out = tmp_path / "scores.jsonl"
    selectors = [{"method": method} for method in METHODS]
    result = dag_runner(
        f"""
        EcoinventDatasetsOperator(
            task_id="scores", dataset_ids=list(range(1, 251)), indicators={selectors!r},
            output_uri="file://{out}", max_in_flight=2,
        )
        """
    ).run()
    assert result.state == "success", result.errors
    indicators = expected(METHODS)
    ids = [ind["id"] for ind in indicators]
    k = len(ids)
    assert k > 200
    records = read_jsonl(out)
    assert [r["id"] for r in records] == list(range(1, 251))
    assert all([s["id"] for s in r["impact_scores"]] == ids for r in records)  # K scores, merged, in id order
    stats = ecoinvent_conn.stats()
    assert stats["requests"] == {
        "GET /versions": 1,
        "GET /indicators": LISTING_PAGES,  # one listing, its pages once
        "POST /datasets/batch": math.ceil(250 / 100) * math.ceil(k / 100),
        "POST /token": 1,
    }
    usage = stats["usage"][ecoinvent_conn.client_id]
    assert (usage["datasets"], usage["indicators"]) == (250, k)
    manifest = result.xcom["scores"]
    assert manifest["indicator_selectors"] == selectors
    assert manifest["indicators"] == indicators
    assert manifest["indicator_ids"] == ids
    assert manifest["record_count"] == 250


METHODS_OF_FLAT = ("ReCiPe 2016 v1.03, endpoint (H)", "ReCiPe 2016 v1.03, endpoint (I)", "EF v3.0", "EF v3.0 no LT")


def test_names_from_a_template_in_the_flat_layout(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    out = tmp_path / "rows.jsonl"
    selectors = [
        "  ef v3.1 | CLIMATE  change | global warming potential (GWP100)",
        {"method": "ReCiPe 2016 v1.03, endpoint (H)"},
        {"method": "EF v3.0"},
        {"method": "ef v3.0 no lt"},
        {"method": "ReCiPe 2016 v1.03, endpoint (I)"},
        {"method": "IPCC 2021", "category": "climate change: fossil"},
        7,  # the first selector again, by id
    ]
    result = dag_runner(
        f"""
        EcoinventDatasetsOperator(
            task_id="rows", dataset_ids=[3, 1, 2], indicators="{{{{ params.selectors }}}}",
            layout="flat", output_uri="file://{out}",
        )
        """,
        params={"selectors": selectors},
    ).run()
    assert result.state == "success", result.errors
    catalogue = indicators_for("3.11")
    ids = sorted(
        {7}
        | {i.id for i in catalogue if i.method in METHODS_OF_FLAT}
        | {i.id for i in catalogue if i.method == "IPCC 2021" and i.category == "climate change: fossil"}
    )
    assert len(ids) > 100
    rows = read_jsonl(out)
    assert [(r["dataset_id"], r["indicator_id"]) for r in rows] == [(d, i) for d in (1, 2, 3) for i in ids]
    stats = ecoinvent_conn.stats()
    assert stats["requests"]["POST /datasets/batch"] == math.ceil(len(ids) / 100)
    assert stats["requests"]["GET /indicators"] == LISTING_PAGES


@pytest.mark.parametrize("template", ["{{ params.selector }}", "{{ params.selector | tojson }}"], ids=["str", "json"])
def test_one_templated_dict_selector(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path, template: str
) -> None:
    out = tmp_path / "scores.jsonl"
    result = dag_runner(
        f"""
        EcoinventDatasetsOperator(
            task_id="scores", dataset_ids=[1, 2], indicators="{template}", output_uri="file://{out}",
        )
        """,
        params={"selector": {"method": "EF v3.1"}},
    ).run()
    assert result.state == "success", result.errors
    ids = [ind["id"] for ind in expected(["EF v3.1"])]
    assert [[s["id"] for s in record["impact_scores"]] for record in read_jsonl(out)] == [ids, ids]


BAD_SELECTORS: list[tuple[str, str, str, str]] = [
    (
        "unknown-method",
        "indicators=[{'method': 'ReCiPe 2016, midpoint (H)'}]",
        "EcoinventIndicatorError",
        "no method 'recipe 2016, midpoint (h)'. Closest method names: 'ReCiPe 2016 v1.03, midpoint (H)'",
    ),
    (
        "unknown-indicator",
        "indicators=['EF v3.1 | climate change | global warming potential (GWP 100)']",
        "EcoinventIndicatorError",
        "Closest indicator names: 'global warming potential (GWP100)'",
    ),
    (
        "ambiguous",
        "indicators=['EF v3.1 | comparative toxic unit for human (CTUh)']",
        "EcoinventIndicatorError",
        "is ambiguous in version 3.11 (cutoff): it names 6 indicators: 14: EF v3.1 | human toxicity: carcinogenic",
    ),
    (
        "not-in-the-pinned-version",
        "indicators=[{'method': 'IPCC 2021'}], version='3.9'",
        "EcoinventIndicatorError",
        "matches nothing in version 3.9 (cutoff): no method 'ipcc 2021'. Closest method names: 'IPCC 2013'",
    ),
    (
        "category-and-indicator",
        "indicators=['ReCiPe 2016 v1.03, endpoint (H) | human health']",
        "EcoinventIndicatorError",
        "reads two ways in version 3.11 (cutoff): as the indicator 349: ReCiPe 2016 v1.03, endpoint (H) | total: "
        "human health | human health, or as the category 'human health' of method 'ReCiPe 2016 v1.03, endpoint "
        "(H)', which holds 8 indicators.",
    ),
    ("empty-from-a-template", "indicators='{{ params.none }}'", "EcoinventConfigError", "indicators is empty"),
]


def test_bad_selectors_fail_with_a_specific_message_and_no_scored_call(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    tasks = "\n".join(
        f"EcoinventDatasetsOperator(task_id={name!r}, dataset_ids=[1, 2], output_uri='file://{out}/{name}', "
        f"{arguments})"
        for name, arguments, _, _ in BAD_SELECTORS
    )
    result = dag_runner(tasks, params={"none": []}).run()
    assert result.states == {name: "failed" for name, _, _, _ in BAD_SELECTORS}
    for name, _, error_type, message in BAD_SELECTORS:
        assert result.errors[name]["type"] == error_type, name
        assert message in result.errors[name]["message"], (name, result.errors[name]["message"])
    stats = ecoinvent_conn.stats()
    assert stats["scored_calls"] == 0
    assert "POST /datasets/batch" not in stats["requests"]
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("where", ["operator", "connection"])
def test_max_unique_indicators_fails_before_any_scored_call(
    dag_runner: Callable[..., Any],
    ecoinvent_conn: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    guard = ""
    if where == "operator":
        guard = "max_unique_indicators=100,"
    else:
        monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", ecoinvent_conn.connection_json(max_unique_indicators=100))
    out = tmp_path / "scores.jsonl"
    result = dag_runner(
        f"""
        EcoinventDatasetsOperator(
            task_id="scores", dataset_ids=[1, 2], indicators=[{{"method": "EF v3.1"}}, {{"method": "EF v3.0"}},
            {{"method": "ReCiPe 2016 v1.03, endpoint (H)"}}, {{"method": "Ecological Scarcity 2021"}},
            {{"method": "IPCC 2021"}}], {guard}
            output_uri="file://{out}",
        )
        EcoinventDatasetsOperator(
            task_id="count", dataset_ids=[1, 2], indicators=[{{"method": "EF v3.1"}}, {{"method": "EF v3.0"}},
            {{"method": "ReCiPe 2016 v1.03, endpoint (H)"}}, {{"method": "Ecological Scarcity 2021"}},
            {{"method": "IPCC 2021"}}], {guard}
            dry_run=True, max_unique_datasets=5,
        )
        """
    ).run()
    methods = ["EF v3.1", "EF v3.0", "ReCiPe 2016 v1.03, endpoint (H)", "Ecological Scarcity 2021", "IPCC 2021"]
    k = len(expected(methods))
    assert k > 100
    assert result.states == {"scores": "failed", "count": "success"}
    error = result.errors["scores"]
    assert error["type"] == "EcoinventCostGuardError"
    assert f"would score {k} distinct indicators, more than max_unique_indicators=100" in error["message"]
    manifest = result.xcom["count"]
    assert (manifest["unique_datasets"], manifest["max_unique_datasets"]) == (2, 5)
    assert (manifest["unique_indicators"], manifest["max_unique_indicators"]) == (k, 100)
    assert manifest["within_cost_guard"] is False
    stats = ecoinvent_conn.stats()
    assert stats["scored_calls"] == 0
    assert "POST /datasets/batch" not in stats["requests"]
    assert not out.exists()
