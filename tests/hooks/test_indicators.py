"""The hook's indicators by name (``resolve_indicators``) and any number of them (``get_datasets``)."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.emulator.lcia import INDICATORS, indicators_for
from airflow_provider_ecoinvent.exceptions import EcoinventConfigError, EcoinventIndicatorError
from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_ecoinvent.emulator import EmulatorServer

RECIPE_MH = [ind.id for ind in INDICATORS if ind.method == "ReCiPe 2016 v1.03, midpoint (H)"]


def requests(emulator: EmulatorServer) -> dict[str, int]:
    return dict(emulator.stats()["requests"])


def test_selectors_of_every_form_resolve_once_unique_and_by_id(ecoinvent_conn: EmulatorServer) -> None:
    resolved = EcoinventHook().resolve_indicators(
        [
            {"method": "ReCiPe 2016 v1.03, midpoint (H)"},
            "  ef V3.1 |Climate   change| global warming potential (GWP100) ",  # case and spaces do not matter
            7,  # the same indicator by id: listed once
            {"method": "EF v3.1", "category": "land use"},
        ],
        version="3.11",
    )
    assert [r["id"] for r in resolved] == sorted({7, 17, *RECIPE_MH})  # 17: EF v3.1 land use
    assert resolved[0] == {
        "id": 7,
        "method": "EF v3.1",
        "category": "climate change",
        "indicator": "global warming potential (GWP100)",
        "unit": "kg CO2-Eq",
    }
    # One listing of /indicators, all its pages; nothing scored.
    assert requests(ecoinvent_conn) == {"GET /indicators": math.ceil(len(INDICATORS) / 100), "POST /token": 1}
    assert ecoinvent_conn.stats()["scored_calls"] == 0


@pytest.mark.parametrize(
    ("selector", "version", "message"),
    [
        (
            {"method": "EF v3.2"},
            "3.11",
            "matches nothing in version 3.11 (cutoff): no method 'ef v3.2'. Closest method names: 'EF v3.1', 'EF v3.0'",
        ),
        (
            "EF v3.1 | climate change | global warming potential (GWP10)",
            "3.11",
            "no indicator 'global warming potential (gwp10)' within method 'EF v3.1' and category 'climate change'. "
            "Closest indicator names: 'global warming potential (GWP100)'",
        ),
        (
            {"method": "EF v3.1"},
            "3.9",
            "matches nothing in version 3.9 (cutoff): no method 'ef v3.1'. Closest method names: 'EF v3.0'",
        ),
        (9999, "3.11", "Indicator id 9999 is not in version 3.11 (cutoff)"),
        (
            "IPCC 2021 | global warming potential (GWP100)",
            "3.11",
            "Indicator 'IPCC 2021 | global warming potential (GWP100)' is ambiguous in version 3.11 (cutoff): "
            "it names 15 indicators: 1: IPCC 2021 | climate change | global warming potential (GWP100); "
            "4: IPCC 2021 | climate change: fossil | global warming potential (GWP100)",
        ),
        (
            "EF v3.1 | climate change",
            "3.11",
            "no indicator 'climate change' within method 'EF v3.1'. Closest indicator names: none similar. "
            "But 'climate change' is a category of method 'EF v3.1' ('method | name' reads the name as an "
            "indicator): to take every indicator of that category write {'method': 'EF v3.1', 'category': "
            "'climate change'}; to take one, write 'EF v3.1 | climate change | <indicator>'.",
        ),
    ],
    ids=["unknown-method", "unknown-indicator", "not-in-this-version", "unknown-id", "ambiguous", "category-as-name"],
)
def test_a_bad_selector_fails_naming_the_closest_names(
    ecoinvent_conn: EmulatorServer, selector: Any, version: str, message: str
) -> None:
    with pytest.raises(EcoinventIndicatorError) as raised:
        EcoinventHook().resolve_indicators([selector], version=version)
    assert message in str(raised.value)
    assert ecoinvent_conn.stats()["scored_calls"] == 0


@pytest.mark.parametrize(
    ("selectors", "message"),
    [
        ([], "indicators is empty"),
        (["EF v3.1"], "must read 'method | category | indicator'"),
        ([{"methods": "EF v3.1"}], "a dict selector takes the keys method, category, indicator"),
        ([{"method": " "}], "must be a non-empty name"),
        ([0], "indicator ids are positive integers"),
        ([1.5], "each selector is an id"),
        ("[1, {", "is neither a JSON list nor a Python list literal"),
        ('[7, {"method": "EF v3.1", "category": null}]', "'category' of .* must be a non-empty name"),
    ],
    ids=["empty", "one-part-name", "unknown-key", "blank-name", "zero-id", "float", "unreadable-text", "json-null"],
)
def test_bad_selector_forms_fail_before_any_call(ecoinvent_conn: EmulatorServer, selectors: Any, message: str) -> None:
    with pytest.raises(EcoinventConfigError, match=message):
        EcoinventHook().resolve_indicators(selectors)
    assert ecoinvent_conn.stats()["api_calls"] == 0


@pytest.mark.parametrize(
    "rendered",
    [
        '[7, {"method": "ReCiPe 2016 v1.03, midpoint (H)"}]',  # JSON, as ``tojson`` renders it
        "[7, {'method': 'ReCiPe 2016 v1.03, midpoint (H)'}]",  # a Python literal, as str(list) renders it
    ],
    ids=["json", "python-literal"],
)
def test_selectors_rendered_as_text_are_read_as_json_or_python(ecoinvent_conn: EmulatorServer, rendered: str) -> None:
    resolved = EcoinventHook().resolve_indicators(rendered, version="3.11")
    assert [r["id"] for r in resolved] == sorted({7, *RECIPE_MH})


@pytest.mark.parametrize(
    "rendered",
    [
        '{"method": "ReCiPe 2016 v1.03, midpoint (H)"}',  # JSON, as ``tojson`` renders one dict
        "{'method': 'ReCiPe 2016 v1.03, midpoint (H)'}",  # a Python literal: what "{{ params.selector }}" renders
        '  [{"method": "ReCiPe 2016 v1.03, midpoint (H)"}] ',  # a JSON list of it
    ],
    ids=["json-dict", "python-dict", "json-list"],
)
def test_one_dict_selector_rendered_as_text_is_read_as_that_dict(ecoinvent_conn: EmulatorServer, rendered: str) -> None:
    resolved = EcoinventHook().resolve_indicators(rendered, version="3.11")
    assert [r["id"] for r in resolved] == RECIPE_MH


def test_an_unreadable_rendered_dict_says_what_to_write(ecoinvent_conn: EmulatorServer) -> None:
    with pytest.raises(EcoinventConfigError) as raised:
        EcoinventHook().resolve_indicators('{"method": EF}', version="3.11")
    assert str(raised.value).startswith(
        "indicators could not be read as a dict selector: '{\"method\": EF}' is neither a JSON dict nor a Python "
        "dict literal"
    )
    assert ecoinvent_conn.stats()["api_calls"] == 0


#: Methods whose categories "ecosystem quality", "human health" and "natural resources" hold several
#: indicators, one of them (the category's total) named like the category: 6 methods x 3 names = the 18
#: "method | name" selectors of 3.11 that read two ways.
ENDPOINTS = [f"ReCiPe 2016 v1.03, endpoint ({p}){lt}" for p in "EHI" for lt in ("", " no LT")]


@pytest.mark.parametrize("method", ENDPOINTS)
@pytest.mark.parametrize("name", ["ecosystem quality", "human health", "natural resources"])
def test_method_and_a_name_that_is_also_a_category_names_both_readings(
    ecoinvent_conn: EmulatorServer, method: str, name: str
) -> None:
    catalogue = indicators_for("3.11")
    total = next(i for i in catalogue if i.method == method and i.indicator == name)
    members = [i for i in catalogue if i.method == method and i.category == name]
    with pytest.raises(EcoinventIndicatorError) as raised:
        EcoinventHook().resolve_indicators([f"{method} | {name}"], version="3.11")
    assert str(raised.value) == (
        f"Indicator '{method} | {name}' reads two ways in version 3.11 (cutoff): as the indicator {total.id}: "
        f"{method} | {total.category} | {name}, or as the category '{name}' of method '{method}', which holds "
        f"{len(members)} indicators. Write '{method} | {total.category} | {name}' for the indicator, or "
        f"{{'method': '{method}', 'category': '{name}'}} for every indicator of the category."
    )
    assert ecoinvent_conn.stats()["scored_calls"] == 0
    # Each reading, written unambiguously, resolves to what it says.
    hook = EcoinventHook()
    assert [r["id"] for r in hook.resolve_indicators([f"{method} | {total.category} | {name}"], version="3.11")] == [
        total.id
    ]
    as_category = hook.resolve_indicators([{"method": method, "category": name}], version="3.11")
    assert [r["id"] for r in as_category] == sorted(i.id for i in members)


def test_a_category_holding_only_the_indicator_of_its_name_reads_one_way(ecoinvent_conn: EmulatorServer) -> None:
    [only] = [i for i in indicators_for("3.11") if i.method == "EDIP 2003" and i.category == "acidification"]
    assert only.indicator == "acidification"
    resolved = EcoinventHook().resolve_indicators(["EDIP 2003 | acidification"], version="3.11")
    assert [r["id"] for r in resolved] == [only.id]


def test_json_true_in_rendered_selectors_is_named_not_unreadable(ecoinvent_conn: EmulatorServer) -> None:
    with pytest.raises(EcoinventConfigError, match=r"^indicators: True is not a selector\.$"):
        EcoinventHook().resolve_indicators("[1, true]", version="3.11")
    assert ecoinvent_conn.stats()["api_calls"] == 0


@pytest.mark.parametrize("max_in_flight", [1, 3])
def test_any_number_of_indicators_merged_per_dataset(ecoinvent_conn: EmulatorServer, max_in_flight: int) -> None:
    indicators = [ind.id for ind in indicators_for("3.11")][:250]
    datasets = list(
        EcoinventHook().get_datasets(
            range(1, 251), indicator_ids=indicators, version="3.11", max_in_flight=max_in_flight
        )
    )
    assert [d["id"] for d in datasets] == list(range(1, 251))
    assert all([s["id"] for s in d["impact_scores"]] == indicators for d in datasets)
    # ceil(250 / 100) dataset batches x ceil(250 / 100) indicator slices; the licence counts each once.
    assert requests(ecoinvent_conn)["POST /datasets/batch"] == 3 * 3
    usage = ecoinvent_conn.stats()["usage"][ecoinvent_conn.client_id]
    assert (usage["datasets"], usage["indicators"]) == (250, 250)
    assert ecoinvent_conn.stats()["max_in_flight"] <= max_in_flight  # slices count as calls in flight


def test_merged_scores_equal_the_scores_of_separate_calls(ecoinvent_conn: EmulatorServer) -> None:
    hook = EcoinventHook()
    indicators = [ind.id for ind in INDICATORS[:150]]
    merged = next(hook.get_datasets([5], indicator_ids=indicators, version="3.11"))
    first = next(hook.get_datasets([5], indicator_ids=indicators[:100], version="3.11"))
    second = next(hook.get_datasets([5], indicator_ids=indicators[100:], version="3.11"))
    assert merged["impact_scores"] == first["impact_scores"] + second["impact_scores"]


def test_a_single_dataset_call_still_takes_at_most_100_indicators(ecoinvent_conn: EmulatorServer) -> None:
    with pytest.raises(EcoinventConfigError, match="101 indicator ids given"):
        EcoinventHook().get_dataset(1, indicator_ids=range(1, 102))
    assert ecoinvent_conn.stats()["api_calls"] == 0


def test_compacted_answers_keep_odd_scores_and_unknown_fields() -> None:
    from airflow_provider_ecoinvent.indicators import compact_scores, expand, merge_compact

    meta: dict[int, dict[str, Any]] = {}
    first = compact_scores(
        [{"id": 2, "impact_scores": [{"id": 7, "score": 1.5, "unit": "kg", "extra": [1]}, {"id": 8, "score": 3}]}],
        meta,
    )
    second = compact_scores([{"id": 2, "impact_scores": [{"id": 9, "score": None}, "not a score"]}], meta)
    merged = merge_compact([1, 2], [first, second])
    assert [dataset["id"] for dataset, _ in merged] == [2]
    dataset, parts = merged[0]
    assert expand(dataset, parts)["impact_scores"] == [
        {"id": 7, "score": 1.5, "unit": "kg", "extra": [1]},
        {"id": 8, "score": 3},  # an int score is kept as it came, not turned into 3.0
        {"id": 9, "score": None},
        "not a score",
    ]


class PerDatasetFields(BaseHTTPRequestHandler):
    """An API whose scores carry fields that vary per dataset (an uncertainty, a data quality, a unit)."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/token"):
            self._send({"access_token": "per-dataset-fields-token", "expires_in": 3600})
            return
        body = json.loads(raw)
        datasets = [
            {"id": d, "impact_scores": [self._score(d, i) for i in body["indicator_ids"]]} for d in body["dataset_ids"]
        ]
        self._send({"total": len(datasets), "datasets": datasets})

    @staticmethod
    def _score(dataset: int, indicator: int) -> dict[str, Any]:
        return {
            "id": indicator,
            "score": dataset * 1000.0 + indicator,
            "unit": f"kg-{dataset % 2}",
            "uncertainty": {"sd": dataset},
            "data_quality": f"dq-{dataset}",
        }

    def _send(self, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def per_dataset_fields(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), PerDatasetFields)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    connection = {"conn_type": "ecoinvent", "host": base, "login": "cid", "password": "per-dataset-secret"}
    connection["extra"] = {"token_url": f"{base}/token", "max_retries": 0}  # type: ignore[assignment]
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", json.dumps(connection))
    yield
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("max_in_flight", [1, 4])
def test_scores_keep_their_per_dataset_fields_beyond_100_indicators(
    per_dataset_fields: None, max_in_flight: int
) -> None:
    """Merging K > 100 indicators must not give every dataset the first dataset's fields of a score."""
    ids = list(range(1, 9))

    def scores(k: int) -> dict[int, list[Any]]:
        stream = EcoinventHook().get_datasets(
            ids, indicator_ids=range(1, k + 1), version="3.11", max_in_flight=max_in_flight
        )
        return {d["id"]: [s for s in d["impact_scores"] if s["id"] <= 100] for d in stream}

    within_one_call, merged = scores(100), scores(101)
    assert merged == within_one_call
    assert merged[2][0] == PerDatasetFields._score(2, 1)  # as the API sent it, in order, fields and all
