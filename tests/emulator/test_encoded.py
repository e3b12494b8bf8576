"""Batch answers from cached byte fragments (``emulator/encoded.py``) are the plain path's, byte for byte.

Two emulators with the same configuration answer the same requests, one from the fragments and one
building dicts (``encode_from_cache = False``, the path the emulator had before); every answer (status,
headers, body) must be identical. The requests spread over sparse and unknown ids, versions with gaps, a
version published at run time, every system model (``consequential`` scores are sometimes negative),
indicator slices (none, empty, out of order, duplicated, across score blocks, 100 at once), paging, and
the options that alter bodies: ``shapes="variant"``, ``omit_total``, ``page_cap`` and an ``omit`` fault.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from airflow_provider_ecoinvent.emulator.app import EmulatorApp
from airflow_provider_ecoinvent.emulator.catalogue import Catalogue
from airflow_provider_ecoinvent.emulator.config import EmulatorConfig
from airflow_provider_ecoinvent.emulator.encoded import EncodedAnswers
from airflow_provider_ecoinvent.emulator.lcia import INDICATORS, INDICATORS_BY_ID, in_version
from airflow_provider_ecoinvent.emulator.messages import Request, Response

CATALOGUE_SIZE = 3_000


def _app(config: EmulatorConfig, *, cached: bool) -> tuple[EmulatorApp, str]:
    app = EmulatorApp(config)
    app.api.encode_from_cache = cached
    return app, app.tokens.issue(config.client_id)


def _batch(app: EmulatorApp, token: str, body: dict[str, Any], **query: str) -> Response:
    request = Request(
        "POST",
        app.config.api_prefix + "/datasets/batch",
        {key: [value] for key, value in query.items()},
        {"authorization": f"Bearer {token}", "content-type": "application/json"},
        json.dumps(body).encode(),
    )
    return app.handle(request)


def _slices(rng: random.Random, version: str) -> list[list[int] | None]:
    """Indicator selections: absent, empty, the core, out of order with duplicates, across blocks, 100."""
    known = [ind.id for ind in INDICATORS if in_version(ind, version)]
    return [
        None,
        [],
        list(range(1, 32)),
        [7, 3, 3, 1, 31, 7],
        sorted(rng.sample(known, 40)),
        rng.sample(known, 100),
        [known[-1], 1, known[len(known) // 2]],
    ]


def _ids(rng: random.Random) -> list[list[int]]:
    """Dataset selections: sparse, with unknown ids, gaps of older versions, duplicates, over 100."""
    return [
        [1],
        [7, 13, 14, 26, 91],  # absent from 3.9 (multiples of 7) or 3.10 (of 13)
        rng.sample(range(1, CATALOGUE_SIZE + 1), 100),
        [5, 5, 0, -3, CATALOGUE_SIZE, CATALOGUE_SIZE + 1, 10**9],
        rng.sample(range(1, CATALOGUE_SIZE + 1), 250),
        [CATALOGUE_SIZE + 5],  # none known: an empty page
    ]


def _requests(seed: int) -> list[tuple[dict[str, Any], dict[str, str]]]:
    rng = random.Random(seed)
    cases: list[tuple[dict[str, Any], dict[str, str]]] = []
    for version, system_model in (
        ("3.9", "consequential"),
        ("3.10", "EN15804"),
        ("3.11", "apos"),
        ("latest", "cutoff"),
        ("4.0", "consequential"),
    ):
        for indicator_ids in _slices(rng, "4.0" if version == "latest" else version):
            for dataset_ids in _ids(rng):
                body: dict[str, Any] = {"dataset_ids": dataset_ids}
                if indicator_ids is not None:
                    body["indicator_ids"] = indicator_ids
                query = {"version": version, "system_model": system_model, "limit": str(rng.choice([1, 10, 100]))}
                if rng.random() < 0.3:
                    query["from"] = str(rng.choice([0, 3, 99, 400]))
                cases.append((body, query))
    return cases


CONFIGS = {
    "contract": {},
    "variant shapes": {"shapes": "variant"},
    "omit_total and page_cap": {"omit_total": True, "page_cap": 7},
    "omit fault": {"faults": ({"kind": "omit", "dataset": 91, "count": "inf"},)},
    "seed 5": {"seed": 5},
}


@pytest.mark.parametrize("name", CONFIGS)
def test_cached_answers_are_the_plain_answers_byte_for_byte(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    config = EmulatorConfig(datasets=CATALOGUE_SIZE, **CONFIGS[name])
    (cached, cached_token), (plain, plain_token) = _app(config, cached=True), _app(config, cached=False)
    fell_back: list[int] = []
    plain_page = cached.api._batch_plain

    def counted(*args: Any) -> Response:
        fell_back.append(1)
        return plain_page(*args)

    monkeypatch.setattr(cached.api, "_batch_plain", counted)
    for app in (cached, plain):
        app.catalogue.publish("4.0", None, "2026-01-01")  # every method, every id: a run-time release
    compared = 0
    for body, query in _requests(seed=len(name)):
        ours, reference = _batch(cached, cached_token, body, **query), _batch(plain, plain_token, body, **query)
        assert (ours.status, ours.headers, ours.body) == (reference.status, reference.headers, reference.body), (
            body,
            query,
        )
        compared += ours.status == 200
    assert compared > 150
    assert not fell_back  # the fragments answered every page: the comparison is not of the plain path twice
    assert cached.stats() == plain.stats()  # the same ledger: usage, statuses, faults


def test_a_body_that_would_spell_null_is_left_to_the_plain_path() -> None:
    """``encode_json`` re-encodes a body holding ``null`` with ``json``; here a version named ``null`` puts it
    in every ``url``: the fragments step aside and the bytes stay the plain path's."""
    config = EmulatorConfig(datasets=50)
    (cached, cached_token), (plain, plain_token) = _app(config, cached=True), _app(config, cached=False)
    catalogue = cached.catalogue
    cached.catalogue.publish("null", None, "2026-01-01")
    plain.catalogue.publish("null", None, "2026-01-01")
    body = {"dataset_ids": [1, 2, 3], "indicator_ids": [1, 2]}
    version = catalogue.find_version("null")
    assert version is not None
    indicators = [INDICATORS_BY_ID[1], INDICATORS_BY_ID[2]]
    assert EncodedAnswers(catalogue).batch_body(version, "cutoff", [1, 2, 3], indicators, 3) is None
    ours = _batch(cached, cached_token, body, version="null")
    assert ours.body == _batch(plain, plain_token, body, version="null").body
    assert ours.status == 200


def test_page_scores_are_the_scores_of_impact_scores() -> None:
    catalogue = Catalogue(500, 3)
    rng = random.Random(1)
    indicators = [*rng.sample(INDICATORS, 150), INDICATORS_BY_ID[1]]
    ids = rng.sample(range(1, 501), 20)
    for name, system_model in (("3.11", "consequential"), ("3.10", "cutoff")):
        version = catalogue.find_version(name)
        assert version is not None
        scores = catalogue.page_scores(version, system_model, ids, [ind.id for ind in indicators])
        expected = [
            score["score"]
            for dataset_id in ids
            for score in catalogue.impact_scores(version, system_model, dataset_id, indicators)
        ]
        assert scores == expected
    assert any(score < 0 for score in catalogue.page_scores(version, "consequential", ids, [1, 2, 3]))


def test_a_method_replaced_on_an_instance_is_served() -> None:
    """Tests that serve awkward records replace ``Catalogue.impact_scores`` (or ``dataset``, or the endpoints'
    ``_scored``) on an instance: the fragments, which write those answers without calling them, step aside."""
    app, token = _app(EmulatorConfig(datasets=50), cached=True)
    plain_scores = app.catalogue.impact_scores

    def awkward(*args: Any) -> list[dict[str, Any]]:
        return [{**score, "score": None} for score in plain_scores(*args)]

    app.catalogue.impact_scores = awkward  # type: ignore[method-assign]
    answer = json.loads(_batch(app, token, {"dataset_ids": [1, 2], "indicator_ids": [1]}).body)
    assert [dataset["impact_scores"][0]["score"] for dataset in answer["datasets"]] == [None, None]
