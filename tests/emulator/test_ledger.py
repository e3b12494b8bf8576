"""The usage ledger follows contract section 5, and the counters see what a client did."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_ecoinvent.emulator import EmulatorServer
    from airflow_provider_ecoinvent.emulator.testing import EmulatorFactory

    from .conftest import Api


def usage(emulator: EmulatorServer) -> dict[str, object]:
    stats = emulator.stats(include_ids=True)
    result: dict[str, object] = stats["usage"].get(emulator.client_id, {})
    return result


def test_scored_batch_counts_unique_datasets_indicators_users(ecoinvent_emulator: EmulatorServer, api: Api):
    headers = {"X-User-Id": "alice", "X-Organization-Id": "org-1"}
    assert api.batch([1, 2, 3, 2], [1, 2], headers=headers).status_code == 200
    assert api.batch([3, 4], [2, 3], headers={"X-User-Id": "bob"}).status_code == 200
    got = usage(ecoinvent_emulator)
    assert got["datasets"] == 4
    assert got["dataset_ids"] == [1, 2, 3, 4]
    assert got["indicators"] == 3
    assert got["indicator_ids"] == [1, 2, 3]
    assert got["users"] == ["alice", "bob"]
    assert got["organizations"] == ["org-1"]
    assert got["scored_calls"] == 2


def test_only_the_returned_page_counts(ecoinvent_emulator: EmulatorServer, api: Api):
    api.batch(list(range(1, 51)), [1], params={"limit": 5, "from": 10})
    assert usage(ecoinvent_emulator)["dataset_ids"] == [11, 12, 13, 14, 15]


def test_single_scored_dataset_counts(ecoinvent_emulator: EmulatorServer, api: Api):
    api.get("/datasets/9", params={"indicator_ids": [4]}, headers={"X-User-Id": "carol"})
    got = usage(ecoinvent_emulator)
    assert (got["dataset_ids"], got["indicator_ids"], got["users"]) == ([9], [4], ["carol"])


def test_repeats_do_not_count(ecoinvent_emulator: EmulatorServer, api: Api):
    for _ in range(3):
        api.batch([5, 6], [1], headers={"X-User-Id": "alice"})
        api.get("/datasets/5", params={"indicator_ids": 1}, headers={"X-User-Id": "alice"})
    got = usage(ecoinvent_emulator)
    assert (got["datasets"], got["indicators"], got["users"]) == (2, 1, ["alice"])
    assert got["scored_calls"] == 6


def test_unscored_search_metadata_and_failed_calls_do_not_count(ecoinvent_emulator: EmulatorServer, api: Api):
    user = {"X-User-Id": "mallory"}
    api.batch([1, 2], headers=user)  # no indicators: no scores
    api.batch([1, 2], [], headers=user)
    api.get("/datasets/1", headers=user)
    api.get("/datasets", params={"query": "steel"}, headers=user)
    api.get("/versions", headers=user)
    api.get("/indicators", headers=user)
    api.batch([1, 2], [1], params={"limit": 101}, headers=user)  # 422
    api.batch([1, 2], [9999], headers=user)  # 422, unknown indicator
    api.batch([7], [23], params={"version": "3.9"}, headers=user)  # 200, but nothing returned
    api.get("/datasets/7", params={"indicator_ids": 23, "version": "3.9"}, headers=user)  # 404
    ecoinvent_emulator.add_fault("status", status=500, path="/datasets/batch")
    api.batch([1, 2], [1], headers=user)  # 500
    stats = ecoinvent_emulator.stats()
    assert stats["usage"] == {}
    assert stats["scored_calls"] == 0
    assert stats["api_calls"] == 11
    assert stats["statuses"] == {"200": 8, "404": 1, "422": 2, "500": 1}  # 200s: 7 calls and the token


def test_usage_is_per_client(ecoinvent_emulator_factory: EmulatorFactory, make_api: Callable[..., Api]):
    emulator = ecoinvent_emulator_factory(extra_clients={"team-b": "b-secret"})
    first = make_api(emulator)
    second = make_api(emulator)
    second.session.headers["Authorization"] = (
        f"Bearer {second.fetch_token(client_id='team-b', client_secret='b-secret')}"
    )
    first.batch([1], [1])
    second.batch([2, 3], [1])
    got = emulator.stats()["usage"]
    assert got[emulator.client_id]["datasets"] == 1
    assert got["team-b"]["datasets"] == 2


def test_counters(ecoinvent_emulator: EmulatorServer, api: Api):
    api.get("/versions", headers={"User-Agent": "probe/1.0"})
    api.batch([1], [1])
    api.get("/datasets/3")
    api.get("/datasets")
    api.get("/indicators")
    stats = ecoinvent_emulator.stats()
    assert stats["requests"] == {
        "GET /datasets": 1,
        "GET /datasets/{id}": 1,
        "GET /indicators": 1,
        "GET /versions": 1,
        "POST /datasets/batch": 1,
        "POST /token": 1,
    }
    assert stats["token_requests"] == stats["tokens_issued"] == 1
    assert stats["api_calls"] == 5
    assert stats["max_in_flight"] == 1
    assert stats["in_flight"] == 0
    assert "probe/1.0" in stats["user_agents"]
    assert any(agent.startswith("python-requests/") for agent in stats["user_agents"])
    assert stats["latest"] == "3.11"
    assert stats["config"]["datasets"] == 1000


def test_reset_clears_ledger_and_faults_but_keeps_tokens(ecoinvent_emulator: EmulatorServer, api: Api):
    api.batch([1], [1])
    ecoinvent_emulator.add_fault("status", status=503, count=None)
    ecoinvent_emulator.reset()
    stats = ecoinvent_emulator.stats()
    assert stats["usage"] == {}
    assert stats["api_calls"] == stats["token_requests"] == 0
    assert stats["faults"] == []
    assert api.get("/versions").status_code == 200  # the token survived, the fault is gone
