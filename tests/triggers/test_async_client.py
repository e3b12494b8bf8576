"""EcoinventAsyncClient against the emulator over real HTTP: tokens, retries, errors."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from airflow_provider_ecoinvent._client.retry import RATE_LIMIT_FLOOR, RetryPolicy
from airflow_provider_ecoinvent.emulator import EmulatorServer
from airflow_provider_ecoinvent.exceptions import (
    EcoinventApiError,
    EcoinventAuthError,
    EcoinventConfigError,
    EcoinventCostGuardError,
    EcoinventRateLimitError,
    EcoinventRetriesExhaustedError,
)
from airflow_provider_ecoinvent.hooks.async_client import EcoinventAsyncClient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class ShiftedTime:
    """A clock that sleeping advances: back-off is recorded and time shifted, nothing is slept."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def shifted() -> ShiftedTime:
    return ShiftedTime()


@pytest.fixture
async def client(ecoinvent_conn: EmulatorServer, shifted: ShiftedTime) -> AsyncIterator[EcoinventAsyncClient]:
    async with EcoinventAsyncClient("ecoinvent_default") as ecoinvent:
        ecoinvent._sleep = shifted.sleep
        ecoinvent._clock = shifted.clock
        yield ecoinvent


async def test_get_versions_parses_the_catalogue(client: EcoinventAsyncClient, ecoinvent_conn: EmulatorServer) -> None:
    versions = await client.get_versions()

    assert [v.name for v in versions] == ["3.9", "3.10", "3.11"]
    assert "cutoff" in versions[-1].system_models
    assert versions[-1].to_dict()["version"] == "3.11"
    stats = ecoinvent_conn.stats()
    assert stats["token_requests"] == 1
    assert stats["requests"]["GET /versions"] == 1
    assert any(agent.startswith("airflow-provider-ecoinvent/") for agent in stats["user_agents"])


async def test_concurrent_calls_share_one_token_exchange(
    client: EcoinventAsyncClient, ecoinvent_conn: EmulatorServer
) -> None:
    results = await asyncio.gather(*(client.get_versions() for _ in range(12)))

    assert all(len(versions) == 3 for versions in results)
    assert client.token_requests == 1
    assert ecoinvent_conn.stats()["token_requests"] == 1
    assert client.api_calls == 12


async def test_token_is_renewed_before_it_expires(monkeypatch: pytest.MonkeyPatch, shifted: ShiftedTime) -> None:
    with EmulatorServer(token_ttl=120) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", emulator.connection_json())
        async with EcoinventAsyncClient() as ecoinvent:
            ecoinvent._clock = shifted.clock
            await ecoinvent.get_versions()
            shifted.now += 30  # well inside the lifetime: reused
            await ecoinvent.get_versions()
            assert ecoinvent.token_requests == 1
            shifted.now += 35  # 65 s of 120: inside the 60 s refresh margin
            await ecoinvent.get_versions()
            assert ecoinvent.token_requests == 2
        assert emulator.stats()["token_requests"] == 2


async def test_a_401_renews_the_token_once_and_repeats_the_call(
    client: EcoinventAsyncClient, ecoinvent_conn: EmulatorServer
) -> None:
    await client.get_versions()
    ecoinvent_conn.revoke_tokens()

    versions = await client.get_versions()

    assert versions
    assert client.token_requests == 2
    assert ecoinvent_conn.stats()["requests"]["GET /versions"] == 3


async def test_a_fresh_token_refused_again_is_an_auth_error(
    client: EcoinventAsyncClient, ecoinvent_conn: EmulatorServer
) -> None:
    ecoinvent_conn.add_fault("revoke", path="/versions", count=2)

    with pytest.raises(EcoinventAuthError, match="refused a freshly issued token"):
        await client.get_versions()
    assert client.token_requests == 2


async def test_transient_503_is_retried_with_backoff(
    client: EcoinventAsyncClient, ecoinvent_conn: EmulatorServer, shifted: ShiftedTime
) -> None:
    ecoinvent_conn.add_fault("status", status=503, path="/versions", count=2)

    versions = await client.get_versions()

    assert len(versions) == 3
    assert ecoinvent_conn.stats()["requests"]["GET /versions"] == 3
    # The policy's equal-jitter back-off: retry n waits between base*2^(n-1)/2 and base*2^(n-1).
    assert len(shifted.sleeps) == 2
    assert 0.25 <= shifted.sleeps[0] <= 0.5
    assert 0.5 <= shifted.sleeps[1] <= 1.0


async def test_retry_after_is_honoured(
    client: EcoinventAsyncClient, ecoinvent_conn: EmulatorServer, shifted: ShiftedTime
) -> None:
    ecoinvent_conn.add_fault("status", status=429, path="/versions", count=1, retry_after="7")

    await client.get_versions()

    assert shifted.sleeps == [7.0]


async def test_network_failures_are_retried(
    client: EcoinventAsyncClient, ecoinvent_conn: EmulatorServer, shifted: ShiftedTime
) -> None:
    ecoinvent_conn.add_fault("drop", path="/versions", count=1)
    ecoinvent_conn.add_fault("truncate", path="/versions", count=1, after=1)

    assert len(await client.get_versions()) == 3
    assert len(shifted.sleeps) == 2


async def test_token_endpoint_5xx_is_retried(
    client: EcoinventAsyncClient, ecoinvent_conn: EmulatorServer, shifted: ShiftedTime
) -> None:
    ecoinvent_conn.add_fault("status", status=502, path="/token", count=1)

    assert await client.get_versions()
    assert client.token_requests == 2
    assert len(shifted.sleeps) == 1


async def test_retries_are_bounded(ecoinvent_conn: EmulatorServer, shifted: ShiftedTime) -> None:
    ecoinvent_conn.add_fault("status", status=503, path="/versions", count=-1)
    async with EcoinventAsyncClient(retry_policy=RetryPolicy(max_retries=3)) as ecoinvent:
        ecoinvent._sleep, ecoinvent._clock = shifted.sleep, shifted.clock
        with pytest.raises(EcoinventRetriesExhaustedError, match="after 4 attempts") as caught:
            await ecoinvent.get_versions()
    assert caught.value.status_code == 503
    assert len(shifted.sleeps) == 3


async def test_429s_are_bounded_by_the_connections_rate_limit_budget(
    monkeypatch: pytest.MonkeyPatch, emulator: EmulatorServer, shifted: ShiftedTime
) -> None:
    """The same state machine as the hook's: 429 (Retry-After: 0) backs off with jitter for a time budget."""
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", emulator.connection_json(max_retries=0, rate_limit_budget=20))
    emulator.add_fault("status", status=429, retry_after="0", path="/versions", count=-1)
    async with EcoinventAsyncClient() as ecoinvent:
        ecoinvent._sleep, ecoinvent._clock = shifted.sleep, shifted.clock
        with pytest.raises(EcoinventRateLimitError, match="rate_limit_budget") as caught:
            await ecoinvent.get_versions()
    assert caught.value.status_code == 429
    assert len(shifted.sleeps) >= 3  # max_retries=0 does not stop them
    assert min(shifted.sleeps) >= RATE_LIMIT_FLOOR
    assert sum(shifted.sleeps) <= 20


async def test_connection_max_retries_sets_the_policy(
    monkeypatch: pytest.MonkeyPatch, emulator: EmulatorServer, shifted: ShiftedTime
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", emulator.connection_json(max_retries=0))
    emulator.add_fault("status", status=503, path="/versions", count=1)
    async with EcoinventAsyncClient() as ecoinvent:
        ecoinvent._sleep = shifted.sleep
        with pytest.raises(EcoinventRetriesExhaustedError, match="after 1 attempts"):
            await ecoinvent.get_versions()
    assert shifted.sleeps == []


async def test_wrong_secret_fails_at_once(
    monkeypatch: pytest.MonkeyPatch, emulator: EmulatorServer, shifted: ShiftedTime
) -> None:
    conn = emulator.connection_dict()
    conn["password"] = "not-the-secret"
    import json

    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", json.dumps(conn))
    async with EcoinventAsyncClient() as ecoinvent:
        ecoinvent._sleep = shifted.sleep
        ecoinvent._clock = shifted.clock
        with pytest.raises(EcoinventAuthError, match="rejected the client id or secret") as caught:
            await ecoinvent.get_versions()
    assert shifted.sleeps == []  # at once: no back-off, no retry
    assert "not-the-secret" not in str(caught.value)
    assert emulator.stats()["token_requests"] == 1
    assert emulator.stats()["api_calls"] == 0


async def test_permanent_errors_are_not_retried(
    client: EcoinventAsyncClient, ecoinvent_conn: EmulatorServer, shifted: ShiftedTime
) -> None:
    ecoinvent_conn.add_fault("status", status=403, path="/versions", count=1, detail="not licensed")

    with pytest.raises(EcoinventApiError, match=r"403 to GET /v0/versions.*not licensed") as caught:
        await client.get_versions()
    assert caught.value.status_code == 403
    assert shifted.sleeps == []


async def test_unknown_path_is_a_404(client: EcoinventAsyncClient) -> None:
    with pytest.raises(EcoinventApiError) as caught:
        await client.request("GET", "no-such-endpoint")
    assert caught.value.status_code == 404


async def test_non_json_success_is_an_api_error(client: EcoinventAsyncClient, ecoinvent_conn: EmulatorServer) -> None:
    ecoinvent_conn.add_fault("malformed", path="/versions", count=1)

    with pytest.raises(EcoinventApiError, match="not JSON"):
        await client.get_versions()


async def test_request_sends_query_and_body(client: EcoinventAsyncClient) -> None:
    result = await client.request(
        "post",
        "/datasets/batch",
        query={"limit": 2, "version": "3.10", "system_model": None},
        json={"dataset_ids": [1, 2]},
    )

    assert result["total"] == 2
    assert sorted(d["id"] for d in result["datasets"]) == [1, 2]


async def test_unknown_connection_is_a_config_error() -> None:
    async with EcoinventAsyncClient("no_such_connection") as ecoinvent:
        with pytest.raises(EcoinventConfigError, match="no_such_connection"):
            await ecoinvent.get_versions()


async def test_closed_client_refuses_calls(client: EcoinventAsyncClient) -> None:
    await client.get_versions()
    await client.aclose()
    await client.aclose()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await client.get_versions()


async def test_the_cost_guard_counts_every_scored_call_of_one_client(
    ecoinvent_conn: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``request`` is the hook's call: the connection's guards cap the ids the client scores over all its calls."""
    extras = {"max_unique_datasets": 2, "max_unique_indicators": 3}
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", ecoinvent_conn.connection_json(**extras))
    batch = {"dataset_ids": [1, 2, 3], "indicator_ids": [1]}
    async with EcoinventAsyncClient() as ecoinvent:
        with pytest.raises(EcoinventCostGuardError, match="would score 3 distinct datasets for 1 indicators"):
            await ecoinvent.request("POST", "datasets/batch", query={"version": "3.11"}, json=batch)
        with pytest.raises(EcoinventConfigError, match=r"pass the parameters as query=\{\.\.\.\}"):
            await ecoinvent.request("POST", "datasets/batch?", json=batch)
        for ident in (1, 2, 1):
            one = await ecoinvent.request("GET", f"datasets/{ident}", query={"version": "3.11", "indicator_ids": [1]})
            assert one["id"] == ident
        with pytest.raises(EcoinventCostGuardError, match="would score 3 distinct datasets") as caught:
            await ecoinvent.request("GET", "datasets/3", query={"version": "3.11", "indicator_ids": [1]})
        assert "already scored" in str(caught.value)
        with pytest.raises(EcoinventCostGuardError, match="would score 4 distinct indicators"):
            await ecoinvent.request("GET", "datasets/1", query={"version": "3.11", "indicator_ids": [2, 3, 4]})
    stats = ecoinvent_conn.stats(include_ids=True)
    assert stats["scored_calls"] == 3
    assert stats["usage"][ecoinvent_conn.client_id]["dataset_ids"] == [1, 2]
    assert "POST /datasets/batch" not in stats["requests"]
