"""``scrub``: a secret is removed in every form an echoing server can send it back in, before any cut."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus, urlencode

import pytest

from airflow_provider_ecoinvent._errors import MAX_DETAIL_CHARS, api_error, decode_json_body, scrub, token_error
from airflow_provider_ecoinvent.exceptions import EcoinventApiError

SECRET = "s3cr+t/v@lue=with&odd chars"
CLIENT = "airflow-client"


def _basic(client: str, secret: str) -> str:
    pair = f"{quote(client, safe='')}:{quote(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


@pytest.mark.parametrize(
    "echoed",
    [
        SECRET,
        quote(SECRET, safe=""),
        quote_plus(SECRET),
        urlencode({"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET}),
        json.dumps({"client_secret": SECRET}),
        _basic(CLIENT, SECRET),
        _basic("x", SECRET),
        _basic("xy", SECRET),
        "Authorization: " + base64.b64encode(f"{CLIENT}:{SECRET}".encode()).decode(),
    ],
    ids=["plain", "url-encoded", "form-plus", "form", "json", "basic", "basic-shift-1", "basic-shift-2", "b64-raw"],
)
def test_every_encoding_of_the_secret_is_scrubbed(echoed: str) -> None:
    text = f"server said: {echoed} (end)"
    scrubbed = scrub(text, [SECRET])
    assert "***" in scrubbed
    for form in (SECRET, quote(SECRET, safe=""), quote_plus(SECRET)):
        assert form not in scrubbed
    # Nothing decodable back to the secret is left in any base64 run.
    for word in scrubbed.replace(":", " ").split():
        try:
            decoded = base64.b64decode(word + "==", validate=False).decode("utf-8", "replace")
        except ValueError:
            continue
        assert "v@lue" not in decoded
        assert "v%40lue" not in decoded


def test_an_api_error_never_keeps_a_prefix_of_a_secret_cut_at_the_limit() -> None:
    # The secret straddles the cut: shortening first would leave its first characters in the message.
    body = json.dumps({"detail": "x" * (MAX_DETAIL_CHARS - 6) + SECRET + " and more"})
    error = api_error(400, "GET", "/v0/versions", body, conn_id="c", secrets=[SECRET])
    assert SECRET[:4] not in str(error)
    assert error.detail.endswith("…")


def test_a_token_error_scrubs_before_cutting() -> None:
    body = json.dumps({"error": "invalid_request", "error_description": "y" * (MAX_DETAIL_CHARS - 25) + SECRET})
    error = token_error(400, body, conn_id="c", token_url="https://sso.example/token", secrets=[SECRET])
    assert SECRET[:4] not in str(error)


def test_a_non_json_body_is_scrubbed_before_cutting() -> None:
    body = ("z" * 195 + SECRET).encode()
    with pytest.raises(EcoinventApiError) as raised:
        decode_json_body(200, body, method="GET", path="/v0/versions", conn_id="c", secrets=[SECRET])
    assert SECRET[:4] not in raised.value.detail


def test_a_long_secret_echoed_several_times_leaves_no_prefix() -> None:
    # A JWT-sized token echoed three times (a debugging proxy): scrubbing only the first 4096 bytes left the
    # start of the third copy in the kept 200 characters once the first two had become "***".
    token = "eyJ" + "x" * 1497
    with pytest.raises(EcoinventApiError) as raised:
        decode_json_body(
            200, ("echo: " + token * 3).encode(), method="GET", path="/v0/versions", conn_id="c", secrets=[token]
        )
    assert raised.value.detail == "echo: *********"


def test_a_non_string_detail_is_rendered_as_json_then_scrubbed() -> None:
    # A Python repr escapes a secret holding both quote kinds as 'pa\'ss"word', a form scrub does not know.
    secret = "pa'ss\"word-123456"
    body = json.dumps({"detail": {"input": {"client_secret": secret}}})
    error = api_error(422, "POST", "/v0/datasets/batch", body, conn_id="c", secrets=[secret])
    assert error.detail == '{"input": {"client_secret": "***"}}'
    assert "word-123456" not in str(error)


def test_non_string_validation_messages_are_json_too() -> None:
    secret = "pa'ss\"word-123456"
    body = json.dumps({"detail": [{"loc": ["body", "secret"], "msg": {"got": secret}}, [secret]]})
    error = api_error(422, "POST", "/v0/datasets/batch", body, conn_id="c", secrets=[secret])
    assert error.detail == 'body.secret: {"got": "***"}; ["***"]'
