"""``scrub``: a secret is removed in every form an echoing server can send it back in, before any cut."""

from __future__ import annotations

import base64
import html
import json
import re
from urllib.parse import quote, quote_plus, unquote, urlencode

import pytest

from airflow_provider_ecoinvent._client.errors import (
    MAX_DETAIL_CHARS,
    api_error,
    decode_json_body,
    detail_from_body,
    scrub,
    scrub_head,
    token_error,
)
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


def _decoded(text: str) -> str:
    """``text`` with every encoding scrub knows undone, lower-cased: what a reader could recover from it."""
    return unquote(html.unescape(text).replace("\\/", "/")).lower()


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda match: match.group().lower(), text)


def _secret_left(text: str) -> list[str]:
    """The six-character pieces of the secret that can still be read in ``text``, in any encoding or case."""
    readable = _decoded(text)
    return [SECRET[i : i + 6] for i in range(len(SECRET) - 5) if SECRET[i : i + 6].lower() in readable]


@pytest.mark.parametrize(
    "echoed",
    [
        _lower_hex(quote(SECRET, safe="")),
        _lower_hex(quote_plus(SECRET)),
        "var config = " + json.dumps({"client_secret": SECRET}).replace("/", "\\/") + ";",
        SECRET.upper(),
        quote(SECRET.upper(), safe=""),
        "".join(f"&#{ord(char)};" for char in SECRET),
        "".join(f"&#x{ord(char):x};" for char in SECRET),
        html.escape(SECRET).replace("/", "&#47;").replace("@", "&#X40;").replace(" ", "&#0032;"),
    ],
    ids=[
        "lowercase-percent-hex",
        "lowercase-form-hex",
        "slash-escaped-json-in-text",
        "upper-cased",
        "upper-cased-url-encoded",
        "html-decimal-entities",
        "html-hex-entities",
        "html-mixed-entities",
    ],
)
def test_other_echo_forms_are_scrubbed_too(echoed: str) -> None:
    assert _secret_left(echoed), "the case must hold the secret before scrubbing"
    text = f"<html><body><pre>server said: {echoed} (end)</pre></body></html>"
    assert not _secret_left(scrub(text, [SECRET]))
    assert not _secret_left(detail_from_body(text, [SECRET]))
    with pytest.raises(EcoinventApiError) as raised:
        decode_json_body(200, text.encode(), method="GET", path="/v0/versions", conn_id="c", secrets=[SECRET])
    assert raised.value.detail is not None
    assert not _secret_left(raised.value.detail)


def test_a_secret_beyond_the_basic_multilingual_plane_is_scrubbed_in_json_escapes() -> None:
    secret = "pa\U0001f600ss-word"
    assert scrub(json.dumps({"s": secret}), [secret]) == '{"s": "***"}'
    assert scrub(json.dumps({"s": secret}, ensure_ascii=False), [secret]) == '{"s": "***"}'


@pytest.mark.parametrize("offset", [0, 1, 150, 195, 199, 200, 5000])
def test_scrubbing_only_the_head_gives_the_head_of_the_whole_scrub(offset: int) -> None:
    # Echoes of every length pull later text forward; the head must be what scrubbing everything would give.
    echoes = [SECRET, "".join(f"&#x{ord(char):x};" for char in SECRET), SECRET.upper(), "plain words"]
    text = "y" * offset + " ".join(echoes * 20) + "tail" * 5000
    assert scrub_head(text, [SECRET], 200) == scrub(text, [SECRET])[:200]
