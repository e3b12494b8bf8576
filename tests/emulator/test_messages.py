"""The emulator's JSON bodies: msgspec's speed, and the standard library's spelling where msgspec would
change a value (it writes NaN and infinities as ``null``; tests serve them to check the client's output)."""

from __future__ import annotations

import json
import math

from airflow_provider_ecoinvent.emulator.messages import encode_json, json_response


def test_non_finite_scores_are_served_as_python_spells_them() -> None:
    scores = [{"score": math.nan}, {"score": math.inf}, {"score": -math.inf}]
    payload = {"datasets": [{"id": 1, "impact_scores": scores}]}
    body = encode_json(payload)
    assert body == b'{"datasets":[{"id":1,"impact_scores":[{"score":NaN},{"score":Infinity},{"score":-Infinity}]}]}'


def test_plain_answers_decode_to_the_same_values() -> None:
    payload = {"total": 2, "datasets": [{"id": 1, "score": 3.72179e-07, "name": "Zürich 北"}, {"id": 2, "score": 1e16}]}
    body = encode_json(payload)
    assert json.loads(body) == payload
    assert b" " not in body.replace(b"Z\xc3\xbcrich \xe5\x8c\x97", b"")  # compact


def test_a_real_null_keeps_its_meaning_and_what_msgspec_refuses_is_encoded_by_json() -> None:
    assert json.loads(encode_json({"isic_class": None, "n": 1})) == {"isic_class": None, "n": 1}
    big = {"id": 2**70, "keys": {1: "int key"}}
    assert json.loads(encode_json(big)) == {"id": 2**70, "keys": {"1": "int key"}}


def test_a_lone_surrogate_echoed_back_is_escaped_as_json_does_instead_of_failing_the_call() -> None:
    # A 422 echoes the client's input: a lone surrogate in it must not turn the answer into a 500.
    assert encode_json({"input": "\ud800"}) == b'{"input":"\\ud800"}'


def test_json_response_sets_the_content_type() -> None:
    response = json_response(200, {"ok": True}, [("Retry-After", "1")])
    assert (response.status, response.body) == (200, b'{"ok":true}')
    assert response.headers == [("Content-Type", "application/json"), ("Retry-After", "1")]
