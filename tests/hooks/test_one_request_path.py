"""The one request path: the sans-I/O state machine (``_client.call``) and both transports driving it.

The state machine is driven here with the answers a transport would report, without a network: it is the
code under test, and its inputs are plain values. The transports are tested over loopback as everywhere.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest

from airflow_provider_ecoinvent._client.call import MAX_RENEWALS, RENEW, Answer, ApiCall, Broken, Done, TokenCall, Wait
from airflow_provider_ecoinvent._client.retry import RATE_LIMIT_FLOOR, RetryPolicy
from airflow_provider_ecoinvent._client.tokens import AccessToken
from airflow_provider_ecoinvent.connection import EcoinventSettings
from airflow_provider_ecoinvent.exceptions import (
    EcoinventApiError,
    EcoinventAuthError,
    EcoinventRateLimitError,
    EcoinventRetriesExhaustedError,
    EcoinventUnreachableError,
)
from airflow_provider_ecoinvent.hooks.async_client import EcoinventAsyncClient
from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_ecoinvent.emulator import EmulatorServer

SECRET = "s3cret-client-secret"
_log = logging.getLogger(__name__)


def settings() -> EcoinventSettings:
    return EcoinventSettings(
        conn_id="ecoinvent_test",
        client_id="client",
        client_secret=SECRET,
        api_url="https://api.example.test",
        token_url="https://auth.example.test/realms/r/protocol/openid-connect/token",
    )


def api_call(max_retries: int = 2, clock: Callable[[], float] = lambda: 0.0, **policy: float) -> ApiCall:
    budget = RetryPolicy(max_retries=max_retries, **policy).start(clock)
    return ApiCall(
        settings(), "get", "versions", {"query": {"a": 1, "b": None}}, budget=budget, log=_log, secrets=lambda: [SECRET]
    )


def test_an_api_call_knows_its_request_before_any_attempt() -> None:
    call = api_call()
    assert (call.method, call.path, call.url) == ("GET", "/v0/versions", "https://api.example.test/v0/versions")
    assert call.params == {"a": 1}


TOKEN = AccessToken("token-value", lifetime=60.0, obtained_at=0.0)


def test_a_first_401_renews_the_token_and_a_second_to_a_token_issued_for_the_call_is_an_auth_error() -> None:
    call = api_call()
    call.headers(TOKEN, issued_for_call=False)
    assert call.after(Answer(401, {}, b"")) == RENEW
    call.headers(TOKEN, issued_for_call=True)  # the renewal's own token request issued it
    with pytest.raises(EcoinventAuthError, match="refused a freshly issued token for GET /v0/versions"):
        call.after(Answer(401, {}, b""))


def test_a_401_to_a_token_from_the_cache_renews_again_and_never_claims_it_was_fresh() -> None:
    """A token another thread fetched (or one that aged in a queue) says nothing about new tokens."""
    call = api_call()
    for _ in range(MAX_RENEWALS):
        call.headers(TOKEN, issued_for_call=False)
        assert call.after(Answer(401, {}, b"")) == RENEW
    call.headers(TOKEN, issued_for_call=False)
    with pytest.raises(EcoinventAuthError) as raised:
        call.after(Answer(401, {}, b""))
    assert "freshly issued" not in str(raised.value)
    assert f"{MAX_RENEWALS + 1} times in a row" in str(raised.value)


def test_429s_spend_time_not_retries_and_back_off_although_retry_after_says_0() -> None:
    now = [0.0]
    call = api_call(max_retries=0, clock=lambda: now[0], rate_limit_budget=10.0)
    assert call.after(Answer(429, {"Retry-After": "3"}, b"")) == Wait(3.0)  # a positive Retry-After is obeyed
    now[0] += 3.0
    waits: list[float] = []

    def refused_until_the_budget_is_spent() -> None:
        while True:
            step = call.after(Answer(429, {"Retry-After": "0"}, b""))
            assert isinstance(step, Wait)
            waits.append(step.seconds)
            now[0] += step.seconds

    with pytest.raises(EcoinventRateLimitError, match=r"raise the connection's 'rate_limit_budget' \(seconds\)"):
        refused_until_the_budget_is_spent()
    assert len(waits) >= 2, "max_retries=0 must not stop 429 retries"
    assert all(wait >= RATE_LIMIT_FLOOR for wait in waits), "Retry-After: 0 must not mean at once"
    assert 3.0 + sum(waits) <= 10.0


def test_other_failures_still_count_against_max_retries() -> None:
    call = api_call(max_retries=2)
    assert isinstance(call.after(Answer(503, {}, b"")), Wait)
    assert isinstance(call.after(Broken("timed out")), Wait)
    with pytest.raises(EcoinventRetriesExhaustedError, match="after 3 attempts"):
        call.after(Answer(502, {}, b""))


def test_success_is_the_decoded_body_and_an_error_answer_is_scrubbed() -> None:
    assert api_call().after(Answer(200, {}, b'{"versions": []}')) == Done({"versions": []})
    with pytest.raises(EcoinventApiError) as raised:
        api_call().after(Answer(403, {}, f'{{"detail": "no licence for {SECRET}"}}'.encode()))
    assert raised.value.status_code == 403
    assert SECRET not in str(raised.value)


def test_an_unreachable_token_endpoint_is_retried_once() -> None:
    budget = RetryPolicy(max_retries=5).start(lambda: 0.0)
    exchange = TokenCall(settings(), budget=budget, log=_log, clock=lambda: 0.0)
    assert exchange.path == "/realms/r/protocol/openid-connect/token"
    assert exchange.send_kwargs["data"]["grant_type"] == "client_credentials"
    assert isinstance(exchange.after(Broken("connection error", "connection refused")), Wait)
    with pytest.raises(EcoinventUnreachableError, match="token endpoint"):
        exchange.after(Broken("connection error", "connection refused"))


def test_a_token_answer_is_a_token() -> None:
    budget = RetryPolicy().start(lambda: 0.0)
    exchange = TokenCall(settings(), budget=budget, log=_log, clock=lambda: 10.0)
    step = exchange.after(Answer(200, {}, b'{"access_token": "abc.def", "expires_in": 300}'))
    assert isinstance(step, Done)
    assert (step.value.value, step.value.lifetime, step.value.obtained_at) == ("abc.def", 300.0, 10.0)


def test_the_hook_refuses_an_unknown_option_before_any_call(ecoinvent_conn: EmulatorServer) -> None:
    with pytest.raises(TypeError, match="unexpected keyword arguments: qeury"):
        EcoinventHook().request("GET", "versions", qeury={"limit": 1})  # type: ignore[call-arg]
    assert ecoinvent_conn.stats()["requests"] == {}


async def test_the_async_client_refuses_an_unknown_option_before_any_call(ecoinvent_conn: EmulatorServer) -> None:
    async with EcoinventAsyncClient() as client:
        with pytest.raises(TypeError, match="unexpected keyword arguments: body"):
            await client.request("POST", "datasets/batch", body={})  # type: ignore[call-arg]
    assert ecoinvent_conn.stats()["requests"] == {}
