"""The comparison rules, case by case, on parsed JSON (no server needed: these are pure functions)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_ecoinvent.probe.compare import compare_items, compare_list_answer
from airflow_provider_ecoinvent.probe.expected import BATCH, SEARCH, TOKEN, VERSIONS


def lines(differences: Any) -> list[str]:
    return [difference.line() for difference in differences]


def dataset(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {key.name: "x" for key in SEARCH.item.keys}
    base.update(id=1, sectors=["Electricity"])
    base.update(changes)
    return {key: value for key, value in base.items() if value is not ...}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"access_token": "t", "expires_in": 300, "token_type": "Bearer"}, []),
        (
            {"access_token": "t", "expires_in": 300.5, "token_type": "Bearer"},
            ["wrong type      expires_in: expected integer, got number"],
        ),
        (
            {"access_token": "t", "expires_in": True, "token_type": "Bearer"},
            ["wrong type      expires_in: expected integer, got boolean"],
        ),
        ({"access_token": "t", "expires_in": 300}, ["missing key     token_type: required, absent"]),
        (
            {"access_token": "t", "expires_in": 300, "token_type": "Bearer", "id_token": None},
            ["extra key       id_token: not in the contract (null)"],
        ),
    ],
    ids=["keycloak", "float-lifetime", "boolean-is-not-integer", "no-token-type", "extra-key"],
)
def test_token_answers(payload: dict[str, Any], expected: list[str]) -> None:
    assert lines(compare_items(TOKEN, [payload])) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ([{"name": "3.11", "system_models": ["cutoff"]}], []),
        ({"versions": [{"version": "3.11", "system_models": [{"name": "cutoff"}]}]}, []),
        (
            {"data": [{"version": "3.11", "system_models": ["cutoff"]}]},
            [
                "list elsewhere  data: the list is under 'data', expected under 'results' or 'versions' or a bare "
                "list; the provider reads it"
            ],
        ),
        (
            {"count": 1},
            [
                "no list         (answer): no list of items in the answer (its keys: count)",
                "extra key       count: not in the contract (integer)",
            ],
        ),
        ("3.11", ["wrong type      (answer): expected object or array, got string"]),
        (
            [{"release": "3.11", "system_models": [1]}],
            [
                "missing key     [].version: required, absent",
                "wrong type      [].system_models[]: expected string or object, got integer",
                "extra key       [].release: not in the contract (string)",
                "not read        []: the provider reads 0 of 1 items",
            ],
        ),
        (
            [{"version": "3.11", "system_models": [{"id": "cutoff"}]}],
            [
                "missing key     [].system_models[].name: required, absent",
                "extra key       [].system_models[].id: not in the contract (string)",
            ],
        ),
        (["3.11"], ["wrong type      []: expected object, got string"]),
    ],
    ids=["bare-list", "versions-key", "data-key", "no-list", "not-a-container", "unreadable", "models", "strings"],
)
def test_versions_answers(payload: Any, expected: list[str]) -> None:
    assert lines(compare_list_answer(VERSIONS, payload).differences) == expected


def test_documented_keys_may_be_absent_from_some_items_but_not_from_all() -> None:
    page = {"total": 3, "results": [dataset(), dataset(id=2, activity=...), dataset(id=3, url=None)]}
    assert lines(compare_list_answer(SEARCH, page).differences) == []
    page = {"total": 2, "results": [dataset(activity=...), dataset(id=2, activity=...)]}
    assert lines(compare_list_answer(SEARCH, page).differences) == [
        "missing key     results[].activity: documented, absent from all 2 items"
    ]


def test_required_keys_are_counted_per_item() -> None:
    page = {"total": 3, "results": [dataset(), dataset(id=...), dataset(id="3")]}
    assert lines(compare_list_answer(SEARCH, page).differences) == [
        "missing key     results[].id: required, absent from 1 of 3 items",
        "wrong type      results[].id: expected integer, got string",
    ]


def test_a_bare_list_where_an_object_with_total_is_expected() -> None:
    findings = compare_list_answer(SEARCH, [dataset()])
    assert lines(findings.differences) == [
        "list elsewhere  (answer): the list is a bare list, expected under 'results'; the provider reads it",
        "paging field    total: required, absent; the provider pages on until a page comes back empty "
        "(one more call per listing)",
    ]
    assert findings.provider_reads == 1


def test_scores_accept_integers_as_numbers() -> None:
    scored = dataset(
        impact_scores=[{"id": 1, "score": 2, "unit": "kg", "method": "m", "category": "c", "indicator": "i"}]
    )
    assert lines(compare_list_answer(BATCH, {"total": 1, "datasets": [scored]}).differences) == []
