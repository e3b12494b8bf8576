"""Connection parsing: every bad field is refused before any network call, naming the field and conn id."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_provider_ecoinvent.connection import DEFAULT_API_URL, DEFAULT_TOKEN_URL, parse_settings
from airflow_provider_ecoinvent.exceptions import EcoinventConfigError

GOOD: dict[str, Any] = {"conn_id": "eco", "host": "https://api.ecoinvent.org", "login": "id", "password": "s3cret"}


def settings(**changes: Any) -> Any:
    fields = {**GOOD, "extra": {}}
    extra = changes.pop("extra", {})
    fields.update(changes)
    fields["extra"] = {**fields["extra"], **extra}
    return parse_settings(**fields)


def test_defaults() -> None:
    parsed = settings(host=None)
    assert parsed.api_url == DEFAULT_API_URL
    assert parsed.token_url == DEFAULT_TOKEN_URL
    assert parsed.base_api_url == "https://api.ecoinvent.org/v0"
    assert parsed.client_auth == "body"
    assert parsed.verify is True
    assert parsed.timeouts == (10.0, 60.0)
    assert parsed.batch_size == 100
    assert parsed.rate_limit_budget == 300.0


def test_rate_limit_budget_is_seconds_and_0_turns_429_retries_off() -> None:
    assert settings(extra={"rate_limit_budget": "90"}).rate_limit_budget == 90.0
    assert settings(extra={"rate_limit_budget": 0}).rate_limit_budget == 0.0


def test_secret_not_in_repr() -> None:
    parsed = settings()
    assert "s3cret" not in repr(parsed)
    assert "s3cret" not in str(parsed)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"host": "api.example.org"}, "https://api.example.org"),
        ({"host": "api.example.org", "schema": "https", "port": 8443}, "https://api.example.org:8443"),
        ({"host": "127.0.0.1", "schema": "http", "port": 8080}, "http://127.0.0.1:8080"),
        ({"host": "https://api.example.org/"}, "https://api.example.org"),
        ({"host": "http://localhost:9000"}, "http://localhost:9000"),
        ({"host": "http://[::1]:9000"}, "http://[::1]:9000"),
    ],
    ids=["bare-host", "host-port", "loopback-http", "trailing-slash", "localhost", "ipv6-loopback"],
)
def test_api_url_forms(changes: dict[str, Any], expected: str) -> None:
    assert settings(**changes).api_url == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("/v0", "/v0"), ("v3/api1", "/v3/api1"), ("/v3/api1/", "/v3/api1"), ("/", "")],
    ids=["default", "no-slash", "trailing", "root"],
)
def test_api_prefix_forms(value: str, expected: str) -> None:
    assert settings(extra={"api_prefix": value}).api_prefix == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("/v0/..", "has '.' or '..' segments"),
        ("../admin", "has '.' or '..' segments"),
        ("/v0/%2e%2e/admin", "has '.' or '..' segments"),
        ("/v0/./x", "has '.' or '..' segments"),
        ("/v0\\..\\x", "has '.' or '..' segments"),
        ("/v0\nX-Injected", "holds control characters"),
        ("/v0\x00", "holds control characters"),
        ("/v0%3Fx=1", "holds '?', '#' or ';'"),
        ("/v0;x", "holds '?', '#' or ';'"),
        ("/v0%2523x", "holds '?', '#' or ';'"),
    ],
    ids=["dotdot-end", "dotdot-start", "encoded", "dot", "backslash", "newline", "nul", "query", "param", "fragment"],
)
def test_api_prefix_refuses_dot_segments_and_control_characters(value: str, problem: str) -> None:
    # check_endpoint keeps every call under the prefix only if the prefix itself cannot climb out.
    with pytest.raises(EcoinventConfigError) as raised:
        settings(extra={"api_prefix": value})
    message = str(raised.value)
    assert "extra 'api_prefix'" in message
    assert problem in message
    assert "'eco'" in message


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"login": ""}, "client id (field 'login') is empty"),
        ({"login": None}, "client id (field 'login') is empty"),
        ({"password": ""}, "client secret (field 'password') is empty"),
        ({"host": "ftp://api.example.org"}, "host is not a valid http:// or https:// URL: it must start with"),
        ({"host": "https://"}, "host is not a valid http:// or https:// URL: it has no host name"),
        ({"host": "https://api.example.org:notaport"}, "host is not a valid http:// or https:// URL: the part after"),
        ({"host": "https://user:pw@api.example.org"}, "must not embed credentials"),
        ({"host": "api.example.org", "schema": "ftp"}, "field 'schema' must be 'http' or 'https'"),
        ({"host": "http://api.example.org"}, "plain http://"),
        ({"extra": {"token_url": "http://sso.example.org/token"}}, "extra 'token_url' 'http://sso.example.org/token'"),
        (
            {"extra": {"token_url": "not a url"}},
            "extra 'token_url' is not a valid http:// or https:// URL: it holds",
        ),
        ({"extra": {"api_prefix": "https://x/v0"}}, "extra 'api_prefix' must be a URL path"),
        ({"extra": {"api_prefix": "/v0?x=1"}}, "extra 'api_prefix' must be a URL path"),
        ({"extra": {"client_auth": "header"}}, "extra 'client_auth' must be 'body' or 'basic'"),
        ({"extra": {"timeout": "abc"}}, "extra 'timeout' must be a positive number"),
        ({"extra": {"timeout": 0}}, "extra 'timeout' must be a positive number"),
        ({"extra": {"timeout": True}}, "extra 'timeout' must be a positive number"),
        ({"extra": {"max_retries": -1}}, "extra 'max_retries' must be a whole number from 0 to 100"),
        ({"extra": {"max_retries": 2.5}}, "extra 'max_retries' must be a whole number"),
        ({"extra": {"rate_limit_budget": -1}}, "extra 'rate_limit_budget' must be a number of seconds from 0 to 3600"),
        ({"extra": {"rate_limit_budget": "soon"}}, "extra 'rate_limit_budget' must be a number of seconds"),
        ({"extra": {"rate_limit_budget": 7200}}, "extra 'rate_limit_budget' must be a number of seconds"),
        ({"extra": {"rate_limit_budget": True}}, "extra 'rate_limit_budget' must be a number of seconds"),
        ({"extra": {"rate_limit_budget": "nan"}}, "extra 'rate_limit_budget' must be a number of seconds"),
        ({"extra": {"batch_size": 0}}, "extra 'batch_size' must be a whole number from 1 to 10000"),
        ({"extra": {"batch_size": 10001}}, "extra 'batch_size' must be a whole number from 1 to 10000"),
        ({"extra": {"allow_insecure_http": "maybe"}}, "extra 'allow_insecure_http' must be true or false"),
        ({"extra": {"max_unique_datasets": -5}}, "extra 'max_unique_datasets' must be a whole number >= 0"),
        ({"extra": {"user_id": ["a"]}}, "extra 'user_id' must be a string"),
    ],
    ids=lambda value: str(value)[:40] if isinstance(value, dict) else None,
)
def test_bad_fields_name_the_field_and_connection(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(EcoinventConfigError) as raised:
        settings(**changes)
    assert message in str(raised.value)
    assert "'eco'" in str(raised.value)
    assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize(
    "host",
    ["http://localhost.evil.example", "http://localhostx", "http://127.0.0.1.nip.io", "http://[::2]"],
    ids=["localhost-subdomain", "localhost-suffix", "ip-lookalike", "not-loopback-v6"],
)
def test_plain_http_is_refused_to_names_that_only_look_like_loopback(host: str) -> None:
    """Only ``localhost`` itself, 127.0.0.0/8 and ::1 are this machine: ``localhost.evil.example`` is anyone's."""
    with pytest.raises(EcoinventConfigError, match="uses plain http:// to a host that is not this machine"):
        settings(host=host)


@pytest.mark.parametrize("host", ["http://LocalHost:9000", "http://127.8.9.10:9000", "http://[::1]:9000"])
def test_plain_http_is_allowed_to_loopback(host: str) -> None:
    assert settings(host=host).api_url == host


def test_insecure_http_allowed_when_asked() -> None:
    parsed = settings(host="http://emulator.internal:8080", extra={"allow_insecure_http": "true"})
    assert parsed.api_url == "http://emulator.internal:8080"


def test_unknown_extras_warned_by_name(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    settings(extra={"tiemout": 5, "X-Api-Key": "v"})
    assert "tiemout" in caplog.text
    assert "X-Api-Key" in caplog.text


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("max_unique_dataset", "max_unique_datasets"),
        ("max-unique-indicator", "max_unique_indicators"),
        ("maxUniqueDatasets", "max_unique_datasets"),
    ],
)
def test_a_misspelt_cost_guard_extra_is_refused_naming_the_key(typo: str, meant: str) -> None:
    with pytest.raises(EcoinventConfigError) as raised:
        settings(extra={typo: 2})
    assert str(raised.value) == (
        f"Connection 'eco': extra {typo!r} is not a known extra; did you mean {meant!r}? "
        "The cost guard would be off. Rename the key to turn it on."
    )


def test_form_values_normalised() -> None:
    parsed = settings(
        extra={
            "extra__ecoinvent__timeout": "15",
            "verify": "/etc/ssl/ca.pem",
            "user_id": "",
            "max_retries": "3",
            "allow_insecure_http": False,
        }
    )
    assert parsed.timeout == 15.0
    assert parsed.verify == "/etc/ssl/ca.pem"
    assert parsed.user_id is None
    assert parsed.max_retries == 3


@pytest.mark.parametrize(("value", "expected"), [("false", False), ("TRUE", True), (False, False), ("0", False)])
def test_verify_flags(value: Any, expected: bool) -> None:
    assert settings(extra={"verify": value}).verify is expected


def test_usage_headers() -> None:
    parsed = settings(extra={"user_id": "u1", "organization_id": "org"})
    assert parsed.usage_headers == {"X-User-Id": "u1", "X-Organization-Id": "org"}
