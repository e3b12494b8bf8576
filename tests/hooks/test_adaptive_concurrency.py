"""The dataset stream adapts its calls in flight to a server's concurrency limit (429 with Retry-After).

Against the real emulator over loopback: its ``--max-concurrency`` (or a ``concurrency`` fault rule) answers
429 to calls above the limit, its ledger records the peak it served and every 429, and the stream's own
figures (``concurrency``) and its log of width changes must agree with it.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import pytest

from airflow_provider_ecoinvent.emulator import EmulatorServer
from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

if TYPE_CHECKING:
    from collections.abc import Iterator

N = 2_000
BATCH = 20  # 100 batch calls: enough rounds for the width to settle and to grow back
MAX_IN_FLIGHT = 8
#: Then 175 calls without the limit: growing back to the width refused takes PROBE_ROUNDS rounds, the rest one each.
LIFTED_N = 4_000
_CHANGE = re.compile(r"calls in flight (?:lowered|raised) from (\d+) to (\d+)", re.IGNORECASE)


class WidthLog:
    """The stream's width changes as logged (Airflow's structlog writes to stdout; plain logging to caplog)."""

    def __init__(self, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
        self.caplog, self.capfd = caplog, capfd

    def changes(self) -> list[tuple[int, int]]:
        out, _ = self.capfd.readouterr()
        lines = [*out.splitlines(), *(record.getMessage() for record in self.caplog.records)]
        return [(int(m[1]), int(m[2])) for line in lines if (m := _CHANGE.search(line))]


@pytest.fixture
def width_log(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> WidthLog:
    caplog.set_level(logging.INFO)
    return WidthLog(caplog, capfd)


def assert_one_line_per_change(changes: list[tuple[int, int]], final: int) -> None:
    """The logged changes chain from the ceiling to the final width, each within [1, ceiling], none twice."""
    width = MAX_IN_FLIGHT
    for old, new in changes:
        assert old == width, changes
        assert 1 <= new <= MAX_IN_FLIGHT, changes
        assert new != old, changes
        width = new
    assert width == final, changes


def connect(server: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> EcoinventHook:
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", server.connection_json(batch_size=BATCH))
    return EcoinventHook()


@pytest.fixture
def limited(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    with EmulatorServer(datasets=N, latency_ms=10, max_concurrency=3) as server:
        yield server


def test_a_server_limit_of_three_is_found_and_the_figures_agree_with_the_ledger(
    limited: EmulatorServer, monkeypatch: pytest.MonkeyPatch, width_log: WidthLog
) -> None:
    hook = connect(limited, monkeypatch)
    stream = hook.get_datasets(range(1, N + 1), indicator_ids=[1, 2, 3], max_in_flight=MAX_IN_FLIGHT)
    ids = [dataset["id"] for dataset in stream]
    stats = limited.stats()

    assert ids == list(range(1, N + 1))  # every dataset, in order, whatever the retries
    figures = stream.concurrency
    batch_calls = N // BATCH
    assert stats["requests"]["POST /datasets/batch"] == batch_calls + figures["rate_limited_calls"]
    assert stats["statuses"]["429"] == stats["concurrency_rejections"] == figures["rate_limited_calls"]
    assert figures["rate_limited_calls"] >= 1  # eight at once against a limit of three: refused at first
    assert figures["rate_limited_calls"] <= batch_calls // 10  # then it keeps to the limit: at most 10 %
    assert stats["max_in_flight"] == 3
    assert 3 <= figures["peak_in_flight"] <= MAX_IN_FLIGHT
    assert figures["max_in_flight"] == MAX_IN_FLIGHT
    assert 1 <= figures["final_in_flight"] <= 4  # at the limit, or one above it while probing
    changes = width_log.changes()
    assert changes[0] == (MAX_IN_FLIGHT, MAX_IN_FLIGHT // 2)  # one decrease for the first burst of 429s
    assert_one_line_per_change(changes, figures["final_in_flight"])


def test_without_a_server_limit_the_width_stays_at_max_in_flight(
    monkeypatch: pytest.MonkeyPatch, width_log: WidthLog
) -> None:
    with EmulatorServer(datasets=N, latency_ms=10) as server:
        hook = connect(server, monkeypatch)
        stream = hook.get_datasets(range(1, N + 1), indicator_ids=[1], max_in_flight=MAX_IN_FLIGHT)
        assert sum(1 for _ in stream) == N
        stats = server.stats()
    figures = stream.concurrency
    assert figures["rate_limited_calls"] == 0
    assert figures["final_in_flight"] == MAX_IN_FLIGHT
    assert stats["max_in_flight"] <= figures["peak_in_flight"] <= MAX_IN_FLIGHT
    assert "429" not in stats["statuses"]
    assert width_log.changes() == []


def test_the_width_grows_back_to_max_in_flight_once_the_limit_is_lifted(
    monkeypatch: pytest.MonkeyPatch, width_log: WidthLog
) -> None:
    with EmulatorServer(datasets=LIFTED_N, latency_ms=10) as server:
        server.add_fault("concurrency", limit=2)
        hook = connect(server, monkeypatch)
        stream = hook.get_datasets(range(1, LIFTED_N + 1), indicator_ids=[1], max_in_flight=MAX_IN_FLIGHT)
        first = [next(stream)["id"] for _ in range(500)]  # 25 calls under the limit
        lowered = stream.concurrency["final_in_flight"]
        server.clear_faults()
        rest = [dataset["id"] for dataset in stream]
    assert first + rest == list(range(1, LIFTED_N + 1))
    assert lowered <= 3  # the limit of 2 was found: at it, or probing one above
    figures = stream.concurrency
    assert figures["final_in_flight"] == MAX_IN_FLIGHT
    assert figures["rate_limited_calls"] >= 1
    assert_one_line_per_change(width_log.changes(), MAX_IN_FLIGHT)
