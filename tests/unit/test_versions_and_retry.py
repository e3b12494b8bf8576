"""Pure helpers: release-number ordering, tolerant /versions parsing, Retry-After, back-off."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_provider_ecoinvent._client.retry import RetryPolicy, parse_retry_after
from airflow_provider_ecoinvent.versions import is_newer, newest, parse_versions, release_key


@pytest.mark.parametrize(
    ("candidate", "than", "newer"),
    [
        ("3.10", "3.9", True),
        ("3.9", "3.10", False),
        ("3.10.1", "3.10", True),
        ("3.10.0", "3.10", False),
        ("3.12", "3.12-sandbox", True),
        ("3.12-sandbox", "3.11", True),
        ("4.0", "3.99", True),
        ("v3.11", "3.10", True),
        ("3.11", "beta", True),
        ("3.11", "3.11", False),
    ],
)
def test_release_order(candidate: str, than: str, newer: bool) -> None:
    assert is_newer(candidate, than) is newer


def test_sorting_is_not_string_or_float_order() -> None:
    names = ["3.10", "3.9", "3.11", "3.1", "3.12-sandbox"]
    assert sorted(names, key=release_key) == ["3.1", "3.9", "3.10", "3.11", "3.12-sandbox"]


@pytest.mark.parametrize(
    "payload",
    [
        {"results": [{"version": "3.10", "system_models": [{"name": "cutoff"}]}, {"version": "3.9"}]},
        {"versions": [{"name": "3.10", "system_models": ["cutoff"]}, {"name": "3.9", "system_models": []}]},
        [{"name": "3.9"}, {"name": "3.10", "system_models": ["cutoff"], "unknown": 1}],
        ["3.9", {"version": "3.10", "system_models": ["cutoff"]}, None, {"no_name": True}],
    ],
    ids=["results-objects", "versions-names", "bare-list", "mixed-junk"],
)
def test_versions_shapes(payload: Any) -> None:
    versions = parse_versions(payload)
    assert [v.name for v in versions] == ["3.9", "3.10"]
    latest = newest(versions)
    assert latest is not None
    assert latest.system_models == ("cutoff",)


def test_versions_unreadable_payload() -> None:
    assert parse_versions({"detail": "x"}) == []
    assert parse_versions("nonsense") == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 3 ", 3.0),
        ("Sat, 28 Nov 2026 12:00:30 GMT", 30.0),
        ("Sat, 28 Nov 2026 11:00:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("-5", None),
    ],
    ids=["seconds", "padded", "date", "past-date", "garbage", "empty", "absent", "negative"],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(header, now) == expected


def test_budget_bounded_by_attempts_and_total_time() -> None:
    clock = [0.0]
    budget = RetryPolicy(max_retries=3, total_max=10.0).start(lambda: clock[0])
    assert budget.next_delay("4") == 4.0
    clock[0] += 4.0
    assert budget.next_delay("5") == 5.0
    clock[0] += 5.0
    assert budget.next_delay("5") is None, "a wait past the total budget gives up instead"
    assert budget.attempts == 3, "giving up for time must not count an attempt never made"


def test_429s_are_bounded_by_time_not_by_max_retries() -> None:
    clock = [0.0]
    budget = RetryPolicy(max_retries=0, rate_limit_budget=10.0).start(lambda: clock[0])
    waits = []
    for _ in range(1_000):  # bounded: a back-off of 0 s would never spend the time budget
        delay = budget.next_delay("0", rate_limited=True)
        if delay is None:
            break
        waits.append(delay)
        clock[0] += delay
    assert delay is None, "the time budget must end the retries"
    assert len(waits) >= 2, "max_retries=0 ends 5xx retries, not 429 ones"
    assert sum(waits) <= 10.0
    assert budget.attempts == len(waits) + 1
    assert budget.next_delay(None) is None, "a 5xx after them still meets max_retries=0"


def test_a_429_backs_off_with_full_jitter_above_the_floor_unless_retry_after_names_a_wait() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=30.0, rate_limit_floor=0.25)
    assert policy.rate_limit_backoff(1, rng=lambda: 0.0) == 0.25  # full jitter: down to the floor, not to 0
    assert policy.rate_limit_backoff(1, rng=lambda: 1.0) == 0.5
    assert policy.rate_limit_backoff(4, rng=lambda: 1.0) == 4.0  # the ceiling doubles
    assert policy.rate_limit_backoff(20, rng=lambda: 1.0) == 30.0  # and is capped
    budget = policy.start(lambda: 0.0)
    assert budget.next_delay("7", rate_limited=True) == 7.0  # a positive Retry-After is honoured
    assert budget.next_delay("3600", rate_limited=True) == policy.retry_after_max  # capped
    for header in ("0", None, "soon"):
        delay = budget.next_delay(header, rate_limited=True)
        assert delay is not None
        assert delay >= 0.25


def test_a_rate_limit_budget_of_0_never_retries_a_429() -> None:
    assert RetryPolicy(rate_limit_budget=0.0).start(lambda: 0.0).next_delay("0", rate_limited=True) is None


def test_retry_after_capped() -> None:
    budget = RetryPolicy(retry_after_max=60.0, total_max=1000.0).start(lambda: 0.0)
    assert budget.next_delay("3600") == 60.0


def test_the_policys_rate_limit_budget_defaults_to_the_connections() -> None:
    from airflow_provider_ecoinvent._client.constants import DEFAULT_RATE_LIMIT_BUDGET

    assert RetryPolicy().rate_limit_budget == DEFAULT_RATE_LIMIT_BUDGET
