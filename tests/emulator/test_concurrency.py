"""The server-side concurrency limit: 429 with ``Retry-After`` above N API calls in flight.

Real concurrent callers (threads, each with its own pooled session) over loopback. Calls are held in
flight with ``hang`` faults, so which calls overlap does not depend on the machine's speed; assertions
are on counts from the clients and from the emulator's ledger.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import pytest
import requests

from airflow_provider_ecoinvent.emulator import EmulatorConfig, EmulatorControlError

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_ecoinvent.emulator import EmulatorServer
    from airflow_provider_ecoinvent.emulator.testing import EmulatorFactory

    from .conftest import Api

_REFUSED = "Too Many Requests: more than {} concurrent API calls, retry later"


def _wait_until_in_flight(emulator: EmulatorServer, calls: int) -> None:
    """Poll the ledger until ``calls`` API calls are being served (bounded, so a bug fails, not hangs)."""
    for _ in range(2000):
        if emulator.stats()["in_flight"] >= calls:
            return
        time.sleep(0.005)
    raise AssertionError(f"never saw {calls} API calls in flight")


def _in_background(api: Api, path: str) -> tuple[threading.Thread, list[int]]:
    """One API call on its own session in a thread; its status lands in the returned list."""
    statuses: list[int] = []
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {api.token}"

    def call() -> None:
        with session:
            statuses.append(session.get(api.emulator.api_url + path, timeout=10).status_code)

    thread = threading.Thread(target=call)
    thread.start()
    return thread, statuses


def test_eight_concurrent_callers_against_a_limit_of_3(
    ecoinvent_emulator_factory: EmulatorFactory, make_api: Callable[..., Api]
):
    emulator = ecoinvent_emulator_factory(max_concurrency=3)
    api = make_api(emulator)
    # The first three calls admitted stay in flight for a second: the others arrive meanwhile.
    emulator.add_fault("hang", seconds=1, count=3)
    start = threading.Barrier(8)
    refusals: list[tuple[str | None, object]] = []
    served: list[int] = []
    lock = threading.Lock()

    def caller() -> None:
        with requests.Session() as session:
            session.trust_env = False
            session.headers["Authorization"] = f"Bearer {api.token}"
            start.wait()
            for _ in range(1000):
                response = session.get(emulator.api_url + "/versions", timeout=10)
                if response.status_code != 429:
                    with lock:
                        served.append(response.status_code)
                    return
                with lock:
                    refusals.append((response.headers.get("Retry-After"), response.json()["detail"]))
                time.sleep(0.01)  # a polite caller; Retry-After says 0

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert served == [200] * 8
    assert len(refusals) >= 5  # at least the five callers that arrived while three calls hung
    assert set(refusals) == {("0", _REFUSED.format(3))}
    stats = emulator.stats()
    assert stats["max_in_flight"] == 3  # never more than three served at once
    assert stats["concurrency_rejections"] == len(refusals)
    assert stats["statuses"] == {"200": 9, "429": len(refusals)}  # 8 calls served and the token
    assert stats["api_calls"] == 8 + len(refusals)
    assert stats["in_flight"] == 0


def test_token_and_admin_calls_are_not_limited(
    ecoinvent_emulator_factory: EmulatorFactory, make_api: Callable[..., Api]
):
    emulator = ecoinvent_emulator_factory(max_concurrency=1, concurrency_retry_after="2")
    api = make_api(emulator)
    emulator.add_fault("hang", seconds=1, count=1)
    thread, statuses = _in_background(api, "/versions")
    _wait_until_in_flight(emulator, 1)

    assert api.fetch_token()  # the token endpoint answers while the one API slot is taken
    refused = api.get("/datasets")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "2"
    assert refused.json() == {"detail": _REFUSED.format(1)}
    thread.join()
    assert statuses == [200]
    assert api.get("/datasets").status_code == 200  # the slot is free again
    stats = emulator.stats()
    assert stats["concurrency_rejections"] == 1
    assert stats["max_in_flight"] == 1
    assert stats["tokens_issued"] == 2


def test_a_refused_call_reaches_no_fault_rule_and_no_endpoint(
    ecoinvent_emulator_factory: EmulatorFactory, make_api: Callable[..., Api]
):
    emulator = ecoinvent_emulator_factory(max_concurrency=1)
    api = make_api(emulator)
    emulator.add_fault("hang", seconds=1, count=1)
    thread, _ = _in_background(api, "/versions")
    _wait_until_in_flight(emulator, 1)
    emulator.add_fault("status", status=503, path="/datasets")

    assert api.batch([1, 2], [1]).status_code == 429  # the gateway answers: the 503 rule never sees it
    thread.join()
    assert api.batch([1, 2], [1]).status_code == 503
    stats = emulator.stats()
    assert stats["usage"] == {}
    assert [(rule["kind"], rule["seen"], rule["hits"]) for rule in stats["faults"]] == [
        ("hang", 2, 1),  # the background call and the last batch: not the refused one
        ("status", 1, 1),
    ]


def test_a_concurrency_fault_rule_tighter_than_the_server_limit(
    ecoinvent_emulator_factory: EmulatorFactory, make_api: Callable[..., Api]
):
    emulator = ecoinvent_emulator_factory(max_concurrency=5)
    api = make_api(emulator)
    emulator.add_fault("hang", seconds=1, count=1)
    emulator.add_fault("concurrency", limit=1, retry_after="1", count=2)
    thread, statuses = _in_background(api, "/versions")
    _wait_until_in_flight(emulator, 1)

    first, second = api.get("/versions"), api.get("/versions")
    assert [first.status_code, second.status_code] == [429, 429]
    assert first.headers["Retry-After"] == second.headers["Retry-After"] == "1"
    assert api.get("/versions").status_code == 200  # the rule's two 429s are spent: the server's 5 rule
    thread.join()
    assert statuses == [200]
    stats = emulator.stats()
    assert stats["concurrency_rejections"] == 2
    assert stats["max_in_flight"] == 2
    assert stats["faults_by_kind"] == {"concurrency": 2, "hang": 1}
    rule = next(r for r in stats["faults"] if r["kind"] == "concurrency")
    assert (rule["limit"], rule["retry_after"], rule["seen"], rule["hits"], rule["count"]) == (1, "1", 4, 2, 2)


def test_clearing_faults_lifts_a_concurrency_rule(ecoinvent_emulator: EmulatorServer, api: Api):
    ecoinvent_emulator.add_fault("concurrency", limit=1)
    assert ecoinvent_emulator.stats()["faults"][0]["count"] is None  # a standing limit: every call above it
    ecoinvent_emulator.add_fault("hang", seconds=1, count=1)
    thread, _ = _in_background(api, "/versions")
    _wait_until_in_flight(ecoinvent_emulator, 1)
    refused = api.get("/versions")
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "0")
    ecoinvent_emulator.clear_faults()
    assert api.get("/versions").status_code == 200
    thread.join()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_concurrency": -1}, "max_concurrency must be a positive number of API calls, or 0 for no limit"),
        ({"concurrency_retry_after": " "}, "concurrency_retry_after must be a Retry-After value, e.g. '0' or '1'"),
    ],
)
def test_bad_concurrency_settings_are_rejected(overrides: dict[str, object], message: str):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        EmulatorConfig(**overrides)  # type: ignore[arg-type]


@pytest.mark.parametrize("options", [{}, {"limit": 0}, {"limit": "many"}], ids=["missing", "zero", "not-a-number"])
def test_a_concurrency_rule_needs_a_limit(ecoinvent_emulator: EmulatorServer, options: dict[str, object]):
    expected = (
        "limit" if options.get("limit") == "many" else "a 'concurrency' fault needs an integer 'limit' of at least 1"
    )
    with pytest.raises(EmulatorControlError, match=expected):
        ecoinvent_emulator.add_fault("concurrency", **options)
    assert ecoinvent_emulator.stats()["faults"] == []
