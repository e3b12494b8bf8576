"""Fault injection: every kind, with ``path``, ``method``, ``count`` and ``after``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
import requests

from airflow_provider_ecoinvent.emulator import EmulatorControlError
from airflow_provider_ecoinvent.emulator.faults import parse_fault_spec

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_ecoinvent.emulator import EmulatorServer
    from airflow_provider_ecoinvent.emulator.testing import EmulatorFactory

    from .conftest import Api


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 403])
def test_status_fault_fires_once_by_default(ecoinvent_emulator: EmulatorServer, api: Api, status: int):
    ecoinvent_emulator.add_fault("status", status=status, retry_after="2")
    first = api.get("/versions")
    assert first.status_code == status
    assert first.headers["Retry-After"] == "2"
    assert "detail" in first.json()
    assert api.get("/versions").status_code == 200
    stats = ecoinvent_emulator.stats()
    assert stats["faults_triggered"] == 1
    assert stats["faults"][0]["hits"] == 1
    assert stats["statuses"] == {"200": 2, str(status): 1}  # the token, the second call, the fault


def test_retry_after_http_date_is_verbatim(ecoinvent_emulator: EmulatorServer, api: Api):
    date = "Wed, 21 Oct 2026 07:28:00 GMT"
    ecoinvent_emulator.add_fault("status", status=429, retry_after=date, detail="slow down")
    response = api.get("/versions")
    assert response.headers["Retry-After"] == date
    assert response.json() == {"detail": "slow down"}


def test_after_and_count_land_mid_run(ecoinvent_emulator: EmulatorServer, api: Api):
    ecoinvent_emulator.add_fault("status", status=503, path="/datasets/batch", after=2, count=2)
    statuses = [api.batch([1], [1]).status_code for _ in range(6)]
    assert statuses == [200, 200, 503, 503, 200, 200]
    assert api.get("/versions").status_code == 200  # other paths untouched
    rule = ecoinvent_emulator.stats()["faults"][0]
    assert (rule["seen"], rule["hits"]) == (6, 2)


def test_unlimited_count_and_method_filter(ecoinvent_emulator: EmulatorServer, api: Api):
    ecoinvent_emulator.add_fault("status", status=500, method="GET", path="/datasets", count=None)
    assert [api.get("/datasets/1").status_code for _ in range(3)] == [500, 500, 500]
    assert api.batch([1]).status_code == 200  # POST is not matched
    ecoinvent_emulator.clear_faults()
    assert api.get("/datasets/1").status_code == 200


def test_faults_skip_the_token_endpoint_unless_asked(ecoinvent_emulator: EmulatorServer, api: Api):
    ecoinvent_emulator.add_fault("status", status=503, count=None)
    api.fetch_token()  # not affected
    ecoinvent_emulator.clear_faults()
    ecoinvent_emulator.add_fault("status", status=503, path="token", retry_after="1")
    response = api.session.post(
        ecoinvent_emulator.token_url,
        data={"grant_type": "client_credentials", "client_id": "emulator-client", "client_secret": "emulator-secret"},
    )
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["Retry-After"] == "1"
    api.fetch_token()


def test_latency_fault_and_config_latency(ecoinvent_emulator: EmulatorServer, api: Api):
    ecoinvent_emulator.add_fault("latency", ms=200, path="/versions")
    start = time.perf_counter()
    assert api.get("/versions").status_code == 200
    assert time.perf_counter() - start >= 0.2  # a lower bound: a loaded machine only makes it later
    api.get("/versions")
    # The rule (count 1) delayed the first call only: counted, not timed.
    [rule] = ecoinvent_emulator.stats()["faults"]
    assert (rule["kind"], rule["seen"], rule["hits"]) == ("latency", 2, 1)


def test_hang_provokes_a_read_timeout(ecoinvent_emulator: EmulatorServer, api: Api):
    ecoinvent_emulator.add_fault("hang", seconds=1.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.get("/versions", timeout=0.2)
    assert api.get("/versions").status_code == 200


@pytest.mark.parametrize(
    ("kind", "options"),
    [("drop", {}), ("drop", {"at": "start"}), ("truncate", {"bytes": 10})],
    ids=["drop-mid-body", "drop-at-start", "truncate"],
)
def test_broken_connections(ecoinvent_emulator: EmulatorServer, api: Api, kind: str, options: dict[str, object]):
    ecoinvent_emulator.add_fault(kind, path="/datasets/batch", **options)
    with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        api.batch([1], [1], params={"limit": 1}).json()
    assert api.batch([1], [1]).status_code == 200  # the next call works (a new connection)
    stats = ecoinvent_emulator.stats()
    assert stats["usage"][ecoinvent_emulator.client_id]["scored_calls"] == 1
    assert stats["faults_by_kind"] == {kind: 1}


def test_truncate_is_an_incomplete_read(ecoinvent_emulator: EmulatorServer, api: Api):
    ecoinvent_emulator.add_fault("truncate")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        api.get("/versions")


def test_malformed_body(ecoinvent_emulator: EmulatorServer, api: Api):
    ecoinvent_emulator.add_fault("malformed", path="/datasets/batch")
    response = api.batch([1], [1])
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    with pytest.raises(requests.exceptions.JSONDecodeError):
        response.json()
    assert "usage" in ecoinvent_emulator.stats()
    assert ecoinvent_emulator.stats()["usage"] == {}


def test_revoke_fault_invalidates_the_token_in_use(ecoinvent_emulator: EmulatorServer, api: Api):
    ecoinvent_emulator.add_fault("revoke", after=1)
    assert api.get("/versions").status_code == 200
    response = api.get("/versions")
    assert response.status_code == 401
    assert response.json() == {"detail": "Token revoked"}
    assert api.get("/versions").status_code == 401  # stays revoked
    api.session.headers["Authorization"] = f"Bearer {api.fetch_token()}"
    assert api.get("/versions").status_code == 200


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "explode"},
        {"kind": "status"},
        {"kind": "status", "status": 1000},
        {"kind": "latency", "ms": -1},
        {"kind": "latency", "colour": "red"},
        {"kind": "status", "status": 500, "count": 0},
        {"kind": "drop", "at": "middle"},
        {"kind": "concurrency"},
        {"kind": "concurrency", "limit": 0},
    ],
    ids=[
        "unknown-kind",
        "status-missing",
        "status-out-of-range",
        "negative-ms",
        "unknown-option",
        "count-zero",
        "bad-at",
        "concurrency-without-limit",
        "concurrency-limit-zero",
    ],
)
def test_invalid_fault_rules_are_rejected(ecoinvent_emulator: EmulatorServer, rule: dict[str, object]):
    kind = str(rule.pop("kind"))
    with pytest.raises(EmulatorControlError, match="400"):
        ecoinvent_emulator.add_fault(kind, **rule)


def test_admin_endpoints_are_never_faulted(ecoinvent_emulator: EmulatorServer):
    ecoinvent_emulator.add_fault("status", status=500, path="/", count=None)
    ecoinvent_emulator.add_fault("status", status=500, path="_emulator", count=None)
    assert ecoinvent_emulator.stats()["faults_triggered"] == 0


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("latency:ms=50", {"kind": "latency", "ms": "50"}),
        (
            "status:status=429,retry_after=Wed, 21 Oct 2026 07:28:00 GMT,count=inf",
            {"kind": "status", "status": "429", "retry_after": "Wed, 21 Oct 2026 07:28:00 GMT", "count": "inf"},
        ),
        ('{"kind": "drop", "at": "start"}', {"kind": "drop", "at": "start"}),
        ("revoke", {"kind": "revoke"}),
    ],
    ids=["simple", "http-date", "json", "no-options"],
)
def test_command_line_fault_specs(spec: str, expected: dict[str, str]):
    assert parse_fault_spec(spec) == expected


def test_faults_from_config(ecoinvent_emulator_factory: EmulatorFactory, make_api: Callable[..., Api]):
    emulator = ecoinvent_emulator_factory(faults=[{"kind": "status", "status": 502, "path": "/versions"}])
    assert make_api(emulator).get("/versions").status_code == 502


def test_omit_leaves_a_dataset_out_of_the_calls_that_ask_for_it(ecoinvent_emulator: EmulatorServer, api: Api):
    """``omit`` drops one dataset from the answers of calls scoring a given indicator: one indicator slice of
    a batch lacks it while the others return it (count and after count only the calls asking for it)."""
    ecoinvent_emulator.add_fault("omit", dataset=2, indicator=150, count=2)
    unrelated = api.batch([1, 3], [150])  # does not ask for dataset 2: not counted
    first_slice = api.batch([1, 2, 3], list(range(1, 101)))  # does not score indicator 150: not counted
    lacking = api.batch([1, 2, 3], list(range(101, 151)))
    single = api.get("/datasets/2", params={"indicator_ids": [150]})
    after = api.batch([1, 2, 3], list(range(101, 151)))  # count spent: answered in full
    assert [d["id"] for d in unrelated.json()["datasets"]] == [1, 3]
    assert [d["id"] for d in first_slice.json()["datasets"]] == [1, 2, 3]
    assert ([d["id"] for d in lacking.json()["datasets"]], lacking.json()["total"]) == ([1, 3], 2)
    assert single.status_code == 404
    assert [d["id"] for d in after.json()["datasets"]] == [1, 2, 3]
    rule = ecoinvent_emulator.stats()["faults"][0]
    assert (rule["seen"], rule["hits"]) == (3, 2)


def test_omit_needs_a_dataset(ecoinvent_emulator: EmulatorServer):
    with pytest.raises(EmulatorControlError, match="an 'omit' fault needs an integer 'dataset'"):
        ecoinvent_emulator.add_fault("omit", indicator=1)
