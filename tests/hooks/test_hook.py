"""EcoinventHook against the emulator over loopback HTTP: tokens, transport, typed API."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent._client.retry import RATE_LIMIT_FLOOR, RetryPolicy
from airflow_provider_ecoinvent._client.tokens import TOKEN_CACHE, token_key
from airflow_provider_ecoinvent.emulator import EmulatorServer
from airflow_provider_ecoinvent.exceptions import (
    EcoinventApiError,
    EcoinventAuthError,
    EcoinventConfigError,
    EcoinventError,
    EcoinventRateLimitError,
    EcoinventRetriesExhaustedError,
)
from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

if TYPE_CHECKING:
    from collections.abc import Iterator


def make_hook(conn_id: str = "ecoinvent_default", **kwargs: Any) -> tuple[EcoinventHook, list[float]]:
    """A hook whose back-off waits are recorded instead of slept (time shifted, not slept)."""
    hook = EcoinventHook(conn_id, **kwargs)
    waits: list[float] = []
    hook._sleep = waits.append
    return hook, waits


def use_connection(
    monkeypatch: pytest.MonkeyPatch, emulator: EmulatorServer, conn_id: str = "ecoinvent_default", **extra: Any
) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", emulator.connection_json(**extra))


def calls(emulator: EmulatorServer, endpoint: str) -> int:
    return int(emulator.stats()["requests"].get(endpoint, 0))


# -- token life-cycle ------------------------------------------------------------------------------


def test_one_token_request_for_fifty_calls(ecoinvent_conn: EmulatorServer) -> None:
    hook, _ = make_hook()
    for _ in range(50):
        assert hook.get_versions()
    stats = ecoinvent_conn.stats()
    assert stats["token_requests"] == 1
    assert stats["requests"]["GET /versions"] == 50
    assert hook.token_requests == 1
    assert hook.api_calls == 50


def test_token_shared_by_hook_instances(ecoinvent_conn: EmulatorServer) -> None:
    for _ in range(5):
        EcoinventHook().get_versions()
    assert ecoinvent_conn.stats()["token_requests"] == 1


def test_a_changed_secret_never_rides_on_a_token_the_old_secret_obtained(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process cache is keyed by the secret too: after a rotation (here, to a secret the token server
    refuses) the new secret is proven by its own token request, never served the old secret's token."""
    conn = emulator.connection_dict()
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", json.dumps(conn))
    assert EcoinventHook().get_versions()
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", json.dumps({**conn, "password": "rotated-secret"}))
    with pytest.raises(EcoinventAuthError, match="rejected the client id or secret"):
        EcoinventHook(retry_policy=RetryPolicy(max_retries=0)).get_versions()
    stats = emulator.stats()
    assert stats["token_requests"] == 2
    assert stats["requests"]["GET /versions"] == 1


def test_token_renewed_before_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    with EmulatorServer(token_ttl=2) as emulator:
        use_connection(monkeypatch, emulator)
        hook, _ = make_hook()
        hook.get_versions()
        # A 2 s token is replaced from 1 s on (the margin is at most half the lifetime).
        time.sleep(1.1)
        hook.get_versions()
        stats = emulator.stats()
    assert stats["token_requests"] == 2
    assert stats["statuses"].get("401", 0) == 0, "an expired token must never reach the API"


def test_revoked_token_renewed_once(ecoinvent_conn: EmulatorServer) -> None:
    hook, _ = make_hook()
    hook.get_versions()
    ecoinvent_conn.revoke_tokens()
    assert hook.get_versions()
    stats = ecoinvent_conn.stats()
    assert stats["token_requests"] == 2
    assert stats["statuses"]["401"] == 1


def test_second_401_is_an_auth_error(ecoinvent_conn: EmulatorServer) -> None:
    ecoinvent_conn.add_fault("status", status=401, count=2, path="/versions")
    hook, _ = make_hook()
    with pytest.raises(EcoinventAuthError, match="refused a freshly issued token"):
        hook.get_versions()
    assert ecoinvent_conn.stats()["token_requests"] == 2


@pytest.mark.parametrize(
    ("login", "password", "code"),
    [
        ("someone-else", "emulator-secret", "invalid_client"),
        ("emulator-client", "wrong-secret", "unauthorized_client"),
    ],
    ids=["unknown-client", "wrong-secret"],
)
def test_keycloak_credential_errors_fail_at_once(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, login: str, password: str, code: str
) -> None:
    conn = emulator.connection_dict()
    conn.update(login=login, password=password)
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", json.dumps(conn))
    hook, waits = make_hook()
    with pytest.raises(EcoinventAuthError) as raised:
        hook.get_versions()
    message = str(raised.value)
    assert code in message
    assert "'ecoinvent_default'" in message
    assert "client id" in message
    assert "secret" in message
    assert password not in message
    assert waits == [], "credential errors are never retried"
    assert emulator.stats()["token_requests"] == 1
    assert emulator.stats()["api_calls"] == 0


def test_basic_client_auth(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(monkeypatch, emulator, client_auth="basic")
    hook, _ = make_hook()
    assert hook.get_versions()
    assert emulator.stats()["tokens_issued"] == 1


def test_sixteen_threads_one_token_request(ecoinvent_conn: EmulatorServer) -> None:
    ecoinvent_conn.add_fault("latency", ms=200, path="token")
    errors: list[BaseException] = []
    barrier = threading.Barrier(16)

    def work() -> None:
        try:
            barrier.wait()
            hook = EcoinventHook()
            for _ in range(3):
                hook.get_versions()
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    stats = ecoinvent_conn.stats()
    assert stats["token_requests"] == 1
    assert stats["requests"]["GET /versions"] == 48


def test_token_endpoint_5xx_is_retried(ecoinvent_conn: EmulatorServer) -> None:
    ecoinvent_conn.add_fault("status", status=503, count=2, path="token")
    hook, waits = make_hook()
    assert hook.get_versions()
    assert len(waits) == 2
    assert ecoinvent_conn.stats()["tokens_issued"] == 1


# -- transport: retries ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "status", "status": 429, "retry_after": "1"},
        {"kind": "status", "status": 500},
        {"kind": "status", "status": 502},
        {"kind": "status", "status": 503},
        {"kind": "status", "status": 504},
        {"kind": "status", "status": 503, "count": 3},
        {"kind": "drop"},
        {"kind": "truncate"},
        {"kind": "hang", "seconds": 1.5},
    ],
    ids=["429", "500", "502", "503", "504", "503x3", "dropped-connection", "cut-short", "read-timeout"],
)
def test_transient_faults_end_in_success(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, fault: dict[str, Any]
) -> None:
    use_connection(monkeypatch, emulator, timeout=0.5)
    kind = fault.pop("kind")
    emulator.add_fault(kind, path="/datasets/batch", **fault)
    hook, waits = make_hook()
    datasets = list(hook.get_datasets([1, 2, 3], indicator_ids=[1]))
    assert [d["id"] for d in datasets] == [1, 2, 3]
    assert len(waits) == fault.get("count", 1)
    assert emulator.stats()["faults_triggered"] == fault.get("count", 1)


@pytest.mark.parametrize(
    ("status", "detail", "expected"),
    [
        (400, "Bad request body", "Bad request body"),
        (403, "Not licensed for 3.11/EN15804", "licence does not cover"),
        (404, "Dataset 9 not found", "Dataset 9 not found"),
        (422, None, "422"),
    ],
    ids=["400", "403", "404", "422"],
)
def test_permanent_statuses_fail_at_once(
    ecoinvent_conn: EmulatorServer, status: int, detail: str | None, expected: str
) -> None:
    options = {"detail": detail} if detail else {}
    ecoinvent_conn.add_fault("status", status=status, path="/versions", **options)
    hook, waits = make_hook()
    with pytest.raises(EcoinventApiError) as raised:
        hook.get_versions()
    error = raised.value
    assert error.status_code == status
    assert error.method == "GET"
    assert error.path == "/v0/versions"
    assert expected in str(error)
    assert "GET /v0/versions" in str(error)
    assert waits == []
    assert ecoinvent_conn.stats()["requests"]["GET /versions"] == 1


def test_validation_detail_is_readable(ecoinvent_conn: EmulatorServer) -> None:
    hook, _ = make_hook()
    with pytest.raises(EcoinventApiError) as raised:
        hook.request("GET", "datasets", query={"limit": 500})
    assert raised.value.status_code == 422
    assert "query.limit" in str(raised.value)


def test_retry_after_seconds_honoured(ecoinvent_conn: EmulatorServer) -> None:
    ecoinvent_conn.add_fault("status", status=429, retry_after="7", path="/versions")
    hook, waits = make_hook()
    hook.get_versions()
    assert waits == [7.0]


def test_retry_after_http_date_honoured(ecoinvent_conn: EmulatorServer) -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    ecoinvent_conn.add_fault("status", status=503, retry_after=format_datetime(when, usegmt=True), path="/versions")
    hook, waits = make_hook()
    hook.get_versions()
    assert len(waits) == 1
    # The date has whole seconds, and a loaded machine spends seconds between writing it and reading it:
    # still far above any back-off (0.25 to 1 s for a first retry), so only the header can explain the wait.
    assert 24.0 <= waits[0] <= 30.0


def test_retry_after_is_capped(ecoinvent_conn: EmulatorServer) -> None:
    ecoinvent_conn.add_fault("status", status=429, retry_after="86400", path="/versions")
    hook, waits = make_hook()
    hook.get_versions()
    assert waits == [hook.retry_policy.retry_after_max]


def test_backoff_grows_with_jitter(ecoinvent_conn: EmulatorServer) -> None:
    ecoinvent_conn.add_fault("status", status=503, count=4, path="/versions")
    hook, waits = make_hook()
    hook.get_versions()
    policy = hook.retry_policy
    assert len(waits) == 4
    for number, wait in enumerate(waits, start=1):
        ceiling = min(policy.backoff_max, policy.backoff_base * 2 ** (number - 1))
        assert ceiling / 2 <= wait <= ceiling


def test_retries_exhausted(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(monkeypatch, emulator, max_retries=2)
    emulator.add_fault("status", status=503, count=10, path="/versions")
    hook, waits = make_hook()
    with pytest.raises(EcoinventRetriesExhaustedError, match="after 3 attempts"):
        hook.get_versions()
    assert len(waits) == 2
    assert emulator.stats()["requests"]["GET /versions"] == 3


def test_429s_are_retried_for_the_rate_limit_budget_not_max_retries(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gateway answering ``429, Retry-After: 0`` again and again: each retry backs off (jittered, never
    0 s), max_retries does not end it, and the connection's rate_limit_budget (seconds) does."""
    use_connection(monkeypatch, emulator, max_retries=1, rate_limit_budget=20)
    emulator.add_fault("status", status=429, retry_after="0", count=None, path="/versions")
    hook, waits = make_hook()
    now = [0.0]
    hook._clock = lambda: now[0]
    hook._sleep = lambda seconds: (waits.append(seconds), now.__setitem__(0, now[0] + seconds))
    with pytest.raises(EcoinventRateLimitError, match=r"in \d+\.\d s; .*'rate_limit_budget' \(seconds\)"):
        hook.get_versions()
    assert len(waits) >= 3  # well past max_retries=1
    assert min(waits) >= RATE_LIMIT_FLOOR
    assert sum(waits) <= 20
    assert emulator.stats()["requests"]["GET /versions"] == len(waits) + 1


def test_malformed_json_fails_clearly(ecoinvent_conn: EmulatorServer) -> None:
    ecoinvent_conn.add_fault("malformed", path="/versions")
    hook, waits = make_hook()
    with pytest.raises(EcoinventApiError, match="not JSON"):
        hook.get_versions()
    assert waits == []


def test_session_is_pooled_and_identifies_itself(ecoinvent_conn: EmulatorServer) -> None:
    hook, _ = make_hook()
    session = hook.session
    for _ in range(3):
        hook.get_versions()
    assert hook.session is session
    agents = ecoinvent_conn.stats()["user_agents"]
    assert any(agent.startswith("airflow-provider-ecoinvent/") for agent in agents)


def test_usage_headers_sent(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(monkeypatch, emulator, user_id="analyst-7", organization_id="acme")
    hook, _ = make_hook()
    list(hook.get_datasets([1, 2], indicator_ids=[1]))
    usage = emulator.stats()["usage"][emulator.client_id]
    assert usage["users"] == ["analyst-7"]
    assert usage["organizations"] == ["acme"]


# -- typed API ---------------------------------------------------------------------------------------


def test_versions_in_release_order(ecoinvent_conn: EmulatorServer) -> None:
    hook, _ = make_hook()
    names = [version.name for version in hook.get_versions()]
    assert names == ["3.9", "3.10", "3.11"]
    assert hook.resolve_version() == "3.11"
    assert hook.resolve_version("3.10", "EN15804") == "3.10"


def test_versions_bare_list_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    with EmulatorServer(versions_shape="list") as emulator:
        use_connection(monkeypatch, emulator)
        hook, _ = make_hook()
        versions = hook.get_versions()
    assert [v.name for v in versions] == ["3.9", "3.10", "3.11"]
    assert "cutoff" in versions[0].system_models


@pytest.mark.parametrize(
    ("version", "system_model", "message"),
    [("3.13", "cutoff", "'3.13' is not available"), ("3.9", "EN15804", "no system model 'EN15804'")],
    ids=["unknown-version", "unknown-system-model"],
)
def test_resolve_version_errors(ecoinvent_conn: EmulatorServer, version: str, system_model: str, message: str) -> None:
    hook, _ = make_hook()
    with pytest.raises(EcoinventConfigError, match=message):
        hook.resolve_version(version, system_model)


@pytest.mark.parametrize("version", ["latest", "3.11"])
def test_system_model_typo_names_the_valid_models_and_the_closest(ecoinvent_conn: EmulatorServer, version: str) -> None:
    """Issue 12: "cut-off" listed the versions, not the system models a user can pick from."""
    hook, _ = make_hook()
    with pytest.raises(EcoinventConfigError) as raised:
        hook.resolve_version(version, "cut-off")
    message = str(raised.value)
    assert "system model 'cut-off'" in message
    assert "valid system models: apos, consequential, cutoff, EN15804" in message
    assert "did you mean 'cutoff'?" in message


def test_latest_follows_a_new_release(ecoinvent_conn: EmulatorServer) -> None:
    hook, _ = make_hook()
    ecoinvent_conn.publish_version("3.12")
    assert hook.resolve_version() == "3.12"


def test_indicators(ecoinvent_conn: EmulatorServer) -> None:
    hook, _ = make_hook()
    indicators = hook.get_indicators()
    assert len(indicators) >= 20
    assert {"id", "method", "category", "indicator", "unit"} <= set(indicators[0])


def test_search_pages_through_everything(ecoinvent_conn: EmulatorServer) -> None:
    hook, _ = make_hook()
    everything = list(hook.search_datasets())
    assert len(everything) == 1000
    assert len({d["id"] for d in everything}) == 1000
    assert ecoinvent_conn.stats()["requests"]["GET /datasets"] == 10
    usage = ecoinvent_conn.stats()["usage"].get(ecoinvent_conn.client_id, {})
    assert usage.get("datasets", 0) == 0, "searches are free"


def test_search_filters(ecoinvent_conn: EmulatorServer) -> None:
    hook, _ = make_hook()
    mexico = list(hook.search_datasets(geography="Mexico (MX)"))
    assert mexico
    assert all(d["geography"] == "Mexico (MX)" for d in mexico)


@pytest.mark.parametrize("given", ["DE", "de", "Germany"])
def test_search_maps_a_bare_geography_to_its_display_form(ecoinvent_conn: EmulatorServer, given: str) -> None:
    """Issue 12: a bare code selected nothing; the hook now maps it to the display form the API matches."""
    hook, _ = make_hook()
    germany = list(hook.search_datasets(geography=given))
    assert germany
    assert {d["geography"] for d in germany} == {"Germany (DE)"}
    assert germany == list(hook.search_datasets(geography="Germany (DE)"))


def test_search_rejects_an_unknown_geography_before_any_billed_call(ecoinvent_conn: EmulatorServer) -> None:
    hook, _ = make_hook()
    with pytest.raises(EcoinventConfigError) as raised:
        list(hook.search_datasets("steel", geography="XY"))
    message = str(raised.value)
    assert "geography 'XY' is not a geography of ecoinvent latest/cutoff" in message
    assert "'Germany (DE)'" in message
    assert "'Rest-of-World (RoW)'" in message
    stats = ecoinvent_conn.stats()
    assert stats["usage"].get(ecoinvent_conn.client_id, {}).get("datasets", 0) == 0
    assert stats["requests"]["GET /datasets"] == 1, "one free lookup, no search with a filter that matches nothing"


@pytest.mark.parametrize(
    ("given", "suggested"),
    [
        ("Germnay", "'Germany (DE)'"),  # a name
        ("swizerland (ch)", "'Switzerland (CH)'"),  # a display form
        ("Rest of World", "'Rest-of-World (RoW)'"),
        ("Chine", "'China (CN)' or 'Chile (CL)'"),  # best first
    ],
)
def test_a_misspelt_geography_gets_a_did_you_mean_before_any_search(
    ecoinvent_conn: EmulatorServer, given: str, suggested: str
) -> None:
    hook, _ = make_hook()
    with pytest.raises(EcoinventConfigError) as raised:
        list(hook.search_datasets("steel", geography=given, version="3.11"))
    assert str(raised.value).startswith(
        f"search filter geography {given!r} is not a geography of ecoinvent 3.11/cutoff; did you mean {suggested}? "
        "The API matches the display form"
    )
    assert ecoinvent_conn.stats()["requests"]["GET /datasets"] == 1, "the free lookup only"


def test_an_unknown_geography_unlike_any_gets_no_suggestion(ecoinvent_conn: EmulatorServer) -> None:
    hook, _ = make_hook()
    with pytest.raises(
        EcoinventConfigError,
        match=r"^search filter geography 'XY' is not a geography of ecoinvent "
        r"3\.11/cutoff\. The API matches",
    ):
        list(hook.search_datasets("steel", geography="XY", version="3.11"))


def test_search_looks_up_a_display_form_too(ecoinvent_conn: EmulatorServer) -> None:
    """Review 3.2: a display form is checked with the same free lookup (so a wrong one fails, see below)."""
    hook, _ = make_hook()
    found = list(hook.search_datasets(geography="Switzerland (CH)"))
    assert {d["geography"] for d in found} == {"Switzerland (CH)"}
    assert ecoinvent_conn.stats()["requests"]["GET /datasets"] == 2  # the free lookup, then the search


def test_get_dataset_scored(ecoinvent_conn: EmulatorServer) -> None:
    hook, _ = make_hook()
    dataset = hook.get_dataset(5, indicator_ids=[1, 2])
    assert dataset["id"] == 5
    assert sorted(score["id"] for score in dataset["impact_scores"]) == [1, 2]
    with pytest.raises(EcoinventApiError) as raised:
        hook.get_dataset(10**7)
    assert raised.value.status_code == 404


def test_get_datasets_minimum_calls_and_order(ecoinvent_conn: EmulatorServer) -> None:
    hook, _ = make_hook()
    ids = [*range(450, 0, -1), 7, 7, 8]  # reversed, with duplicates
    stream = hook.get_datasets(ids, indicator_ids=[1, 2, 3], max_in_flight=4)
    datasets = list(stream)
    assert [d["id"] for d in datasets] == list(range(450, 0, -1))
    assert all(len(d["impact_scores"]) == 3 for d in datasets)
    stats = ecoinvent_conn.stats()
    assert stats["requests"]["POST /datasets/batch"] == 5  # ceil(450 / 100)
    assert stats["token_requests"] == 1
    assert stats["usage"][ecoinvent_conn.client_id]["datasets"] == 450
    assert stream.missing_ids == []
    assert stats["max_in_flight"] <= 4


def test_get_datasets_reports_missing(ecoinvent_conn: EmulatorServer) -> None:
    hook, _ = make_hook()
    stream = hook.get_datasets([6, 7, 8, 14, 10**6], version="3.9")
    assert [d["id"] for d in stream] == [6, 8]
    assert stream.missing_ids == [7, 14, 10**6]


def test_get_datasets_large_batches_page(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(monkeypatch, emulator, batch_size=1000)
    hook, _ = make_hook()
    assert len(list(hook.get_datasets(range(1, 1001)))) == 1000
    assert calls(emulator, "POST /datasets/batch") == 10


@pytest.mark.parametrize(
    ("ids", "indicators", "message"),
    [
        ([1, "2"], [], "positive integers; got '2'"),
        ([1.5], [], "positive integers"),
        ([True], [], "positive integers"),
        ("1,2", [], "must be a list"),
        ([1], ["x"], "indicator ids must be positive integers"),
    ],
    ids=["string-id", "float-id", "bool-id", "string-list", "bad-indicator"],
)
def test_get_datasets_validates_before_any_call(
    ecoinvent_conn: EmulatorServer, ids: Any, indicators: Any, message: str
) -> None:
    hook, _ = make_hook()
    with pytest.raises(EcoinventConfigError, match=message):
        hook.get_datasets(ids, indicator_ids=indicators)
    stats = ecoinvent_conn.stats()
    assert stats["api_calls"] == 0
    assert stats["token_requests"] == 0


# -- connections --------------------------------------------------------------------------------------


def test_uri_form_connection(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from urllib.parse import quote, urlsplit

    api = urlsplit(emulator.base_url)
    query = f"token_url={quote(emulator.token_url, safe='')}&api_prefix=%2Fv0"
    uri = f"ecoinvent://{emulator.client_id}:{emulator.client_secret}@{api.hostname}:{api.port}/http?{query}"
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_URI", uri)
    hook, _ = make_hook("ecoinvent_uri")
    assert hook.settings.api_url == emulator.base_url
    assert hook.get_versions()


def test_get_hook_returns_ecoinvent_hook(ecoinvent_conn: EmulatorServer) -> None:
    from airflow.sdk import BaseHook

    hook = BaseHook.get_hook("ecoinvent_default")
    assert isinstance(hook, EcoinventHook)
    assert hook.get_versions()


def test_test_connection_success(ecoinvent_conn: EmulatorServer) -> None:
    ok, message = EcoinventHook().test_connection()
    assert ok, message
    assert "3 versions" in message
    assert "latest 3.11" in message


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"password": "wrong-secret"}, "rejected the client id or secret"),
        ({"password": ""}, "client secret (field 'password') is empty"),
        ({"extra": {"token_url": "http://127.0.0.1:{port}/token"}}, "unreachable"),
        ({"extra": {"api_prefix": "/v9"}}, "answered 404"),
        ({"host": "https://127.0.0.1:{emulator_port}"}, "TLS"),
        ({"host": "http://api.example.com"}, "plain http://"),
    ],
    ids=["wrong-secret", "no-secret", "token-url-unreachable", "wrong-prefix", "tls", "insecure-http"],
)
def test_test_connection_reports_what_failed(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, change: dict[str, Any], expected: str
) -> None:
    conn = emulator.connection_dict()
    fill = {"port": _free_port(), "emulator_port": emulator.port}
    for key, value in change.items():
        if key == "extra":
            conn["extra"].update({k: v.format(**fill) for k, v in value.items()})
        else:
            conn[key] = value.format(**fill)
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", json.dumps(conn))
    hook = EcoinventHook(retry_policy=RetryPolicy(max_retries=0))
    ok, message = hook.test_connection()
    assert not ok
    assert expected in message
    assert emulator.client_secret not in message


#: A secret with the punctuation that splits a URL, so that an echo of any part of it (before or after the
#: ``/``, or the ``:``-separated "port") is caught, not only an echo of the whole.
HOST_TYPO_SECRET = "Kq7zWx/Lm4p:Rt8v"


@pytest.mark.parametrize(
    "host",
    ["{client_id}:{secret}", "api.example.org:{secret}", "https://api.example.org:{secret}/v0"],
    ids=["client-id-colon-secret", "host-colon-secret", "url-colon-secret"],
)
def test_a_secret_typed_into_the_host_is_never_echoed(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, host: str
) -> None:
    """A secret pasted into the host field reads as a port: neither the hook nor the UI's test echoes any of it."""
    caplog.set_level(logging.DEBUG)
    conn = emulator.connection_dict()
    conn["host"] = host.format(client_id=conn["login"], secret=HOST_TYPO_SECRET)
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", json.dumps(conn))
    ok, message = EcoinventHook().test_connection()
    with pytest.raises(EcoinventConfigError) as raised:
        EcoinventHook().get_versions()
    assert not ok
    assert "host" in message
    fragments = [HOST_TYPO_SECRET, *HOST_TYPO_SECRET.replace(":", "/").split("/")]
    for text in (message, str(raised.value), caplog.text):
        leaked = [fragment for fragment in fragments if fragment in text]
        assert not leaked, text
    stats = emulator.stats()
    assert (stats["token_requests"], stats["api_calls"]) == (0, 0)


# -- secrets ----------------------------------------------------------------------------------------


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    return caplog


def test_no_secret_or_token_in_logs_errors_or_reprs(
    ecoinvent_conn: EmulatorServer,
    everything_logged: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    texts: list[str] = []
    ecoinvent_conn.add_fault("status", status=503, path="/versions")
    hook, _ = make_hook()
    hook.get_versions()
    first_token = hook.get_access_token()
    ecoinvent_conn.revoke_tokens()
    hook.get_versions()
    for status in (403, 422):
        ecoinvent_conn.add_fault("status", status=status, path="/versions")
        with pytest.raises(EcoinventApiError) as raised:
            hook.get_versions()
        texts += [str(raised.value), repr(raised.value)]
    tokens = {first_token, hook.get_access_token()}
    cached = TOKEN_CACHE.peek(token_key(hook.settings))
    texts += [repr(hook), repr(hook.settings), str(hook.settings), repr(cached), str(token_key(hook.settings))]
    out, err = capfd.readouterr()
    texts += [everything_logged.text, out, err]
    texts += [str(record.args) for record in everything_logged.records]
    blob = "\n".join(texts)
    assert len(tokens) == 2
    assert "retry 1 of" in blob, "the retry must have been logged (the scan would prove nothing otherwise)"
    for secret in (ecoinvent_conn.client_secret, *tokens):
        assert secret not in blob


def test_netrc_does_not_replace_the_bearer_token(
    ecoinvent_conn: EmulatorServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login intruder password netrc-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    hook, _ = make_hook()
    assert hook.get_versions()
    assert ecoinvent_conn.stats()["statuses"].get("401", 0) == 0


def test_zero_is_not_a_dataset_id(ecoinvent_conn: EmulatorServer) -> None:
    hook, _ = make_hook()
    with pytest.raises(EcoinventConfigError, match="positive integers; got 0"):
        hook.get_datasets([0, 1])


def test_stream_closed_from_another_thread_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """on_kill runs in another thread (or a signal handler): the consumer must not see a silent early end."""
    with EmulatorServer(datasets=2000, latency_ms=30) as emulator:
        use_connection(monkeypatch, emulator)
        hook, _ = make_hook()
        stream = hook.get_datasets(range(1, 2001), max_in_flight=2)
        seen = 0

        def consume() -> None:
            nonlocal seen
            for _ in stream:
                seen += 1
                if seen == 150:
                    closer = threading.Thread(target=stream.close)
                    closer.start()
                    closer.join()

        with pytest.raises(EcoinventError, match="cancelled after"):
            consume()
        assert stream.cancelled
        assert seen < 2000
        assert emulator.stats()["requests"]["POST /datasets/batch"] < 20


def test_closing_a_finished_stream_is_not_a_cancel(ecoinvent_conn: EmulatorServer) -> None:
    hook, _ = make_hook()
    stream = hook.get_datasets([1, 2, 3])
    assert len(list(stream)) == 3
    stream.close()
    assert not stream.cancelled


@pytest.mark.parametrize(
    "payload",
    [
        {"facets": {"geography": {"Germany (DE)": 3, "Global (GLO)": 1}}},
        {"facets": {"geography": ["Germany (DE)", "Global (GLO)"]}},
        {"facets": {"geography": [{"name": "Germany (DE)", "count": 3}, {"value": "Global (GLO)"}]}},
    ],
    ids=["counts", "names", "objects"],
)
def test_geography_facets_are_read_in_any_shape(payload: dict[str, Any]) -> None:
    from airflow_provider_ecoinvent.hooks._answers import facet_values, match_geography

    known = facet_values(payload, "geography")
    assert known == ["Germany (DE)", "Global (GLO)"]
    assert [match_geography(given, known) for given in ("DE", "glo", "germany", "XY")] == [
        "Germany (DE)",
        "Global (GLO)",
        "Germany (DE)",
        None,
    ]
    assert facet_values({"results": []}, "geography") == []


class _NoFacetsApi:
    """A loopback API whose search sends no ``facets``: only the first page's geographies are known."""

    def __init__(self) -> None:
        import http.server

        self.searches: list[str] = []
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._send({"access_token": "T" * 40, "expires_in": 3600})

            def do_GET(self) -> None:
                api.searches.append(self.path)
                first = "from=0" in self.path
                self._send({"results": [{"id": 1, "geography": "Germany (DE)"}] if first else []})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def connection_json(self) -> str:
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        extra = {"token_url": f"{base}/token", "max_retries": 0}
        return json.dumps(
            {"conn_type": "ecoinvent", "host": base, "login": "c", "password": "s3cret-value", "extra": extra}
        )


def test_without_facets_an_unknown_display_form_passes_through_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Review 3.2: without facets the lookup knows too little to refuse 'Atlantis (AT)'; a bare code still fails."""
    api = _NoFacetsApi()
    try:
        monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", api.connection_json())
        hook, _ = make_hook()
        list(hook.search_datasets(geography=" Atlantis (AT) "))
        with pytest.raises(EcoinventConfigError, match="geography 'AT' is not a geography"):
            list(hook.search_datasets(geography="AT"))
    finally:
        api.server.shutdown()
        api.server.server_close()
    assert "Atlantis+%28AT%29" in api.searches[1] or "Atlantis%20%28AT%29" in api.searches[1]
    logged = "".join(capfd.readouterr())
    assert "the API sent no facets, so only the first page's are known. Passing it through" in logged
