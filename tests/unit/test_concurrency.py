"""The AIMD width controller, driven directly with sequences of outcomes (no threads, no clock)."""

from __future__ import annotations

import threading
import weakref
from collections import deque

import pytest

from airflow_provider_ecoinvent._client.concurrency import PROBE_ROUNDS, AdaptiveWidth, CallGate, WidthChange


class Saturated:
    """A client that always has as many attempts in flight as the width allows (a full thread pool)."""

    def __init__(self, width: AdaptiveWidth) -> None:
        self.width = width
        self.outstanding: deque[int] = deque()

    def fill(self) -> None:
        while self.width.may_start():
            self.outstanding.append(self.width.started())

    def ok(self, n: int = 1) -> list[WidthChange]:
        """The oldest attempt succeeds, ``n`` times, the width refilled each time; the changes caused."""
        changes = []
        for _ in range(n):
            self.fill()
            change = self.width.finished(self.outstanding.popleft())
            if change is not None:
                changes.append(change)
        self.fill()
        return changes


_CLIENTS: weakref.WeakKeyDictionary[AdaptiveWidth, Saturated] = weakref.WeakKeyDictionary()


def ok(width: AdaptiveWidth, n: int = 1) -> list[WidthChange]:
    """``n`` successes with the width in use (one saturated client per controller); the changes caused."""
    return _CLIENTS.setdefault(width, Saturated(width)).ok(n)


def refused(width: AdaptiveWidth) -> WidthChange | None:
    """A fresh attempt (started now, after any decrease so far) answered 429, not alone: another attempt
    waits for a place (a lone attempt's 429 lowers nothing)."""
    width.waited()
    return width.finished(width.started(), rate_limited=True)


def test_a_lone_429_is_counted_but_lowers_nothing() -> None:
    """A version check refused while other clients fill the gateway: the server is busy, not this client's
    width too wide (the call's back-off answers it). Halving for each would take 32 to 1 in five calls."""
    width = AdaptiveWidth(32)
    for _ in range(5):
        assert width.finished(width.started(), rate_limited=True) is None
    assert width.width == 32
    assert width.figures.rate_limited_calls == 5
    # Two in flight: no longer alone, the width is what the server refused.
    first, second = width.started(), width.started()
    assert width.finished(second, rate_limited=True) == WidthChange(32, 16, "429")
    width.finished(first)


def test_restart_sets_a_new_ceiling_keeps_a_lowered_width_and_counts_from_zero() -> None:
    width = AdaptiveWidth(32)
    width.restart(8)  # never lowered: starts at the new ceiling
    assert (width.width, width.max_in_flight) == (8, 8)
    assert refused(width) == WidthChange(8, 4, "429")
    width.restart(6)  # lowered by a 429: stays lowered, the limit is likely still there
    assert (width.width, width.max_in_flight) == (4, 6)
    assert width.figures.as_dict() == {
        "max_in_flight": 6,
        "peak_in_flight": 0,
        "final_in_flight": 4,
        "rate_limited_calls": 0,
    }
    width.restart(2)
    assert width.width == 2
    with pytest.raises(ValueError, match="at least 1"):
        width.restart(0)


def test_starts_at_the_ceiling_and_a_server_without_limit_never_lowers_it() -> None:
    width = AdaptiveWidth(8)
    assert width.width == 8
    assert ok(width, 500) == []
    assert width.figures.as_dict() == {
        "max_in_flight": 8,
        "peak_in_flight": 8,
        "final_in_flight": 8,
        "rate_limited_calls": 0,
    }


def test_a_429_halves_the_width_and_never_below_one() -> None:
    width = AdaptiveWidth(8)
    assert refused(width) == WidthChange(8, 4, "429")
    assert refused(width) == WidthChange(4, 2, "429")
    assert refused(width) == WidthChange(2, 1, "429")
    assert refused(width) is None
    assert width.width == 1
    assert width.rate_limited_calls == 4


def test_one_burst_of_429s_halves_once_then_narrows_to_what_the_server_took() -> None:
    """Eight attempts in flight, five refused: one halving, then the width bounded by the three accepted."""
    width = AdaptiveWidth(8)
    tickets = [width.started() for _ in range(8)]
    assert width.peak_in_flight == 8
    changes = [width.finished(t, rate_limited=True) for t in tickets[:5]]
    assert changes == [WidthChange(8, 4, "429"), None, None, None, WidthChange(4, 3, "429")]
    assert [width.finished(t) for t in tickets[5:]] == [None, None, None]
    assert width.width == 3
    assert width.rate_limited_calls == 5
    assert width.in_flight == 0
    # Growing back to 4, the width the server refused in effect, is a probe: PROBE_ROUNDS rounds of 3 (of
    # the burst's three accepted calls, the first ended with the width in use and counts).
    assert ok(width, 3 * PROBE_ROUNDS - 2) == []
    assert ok(width, 1) == [WidthChange(3, 4, "successes")]


def test_a_429_from_an_attempt_started_after_the_decrease_halves_again() -> None:
    width = AdaptiveWidth(8)
    burst = [width.started() for _ in range(7)]
    assert refused(width) == WidthChange(8, 4, "429")  # 8 sent, 1 refused
    assert width.finished(burst[0], rate_limited=True) is None  # same burst: up to 6 accepted, above 4
    assert refused(width) == WidthChange(4, 2, "429")  # sent after the decrease


def test_a_round_of_successes_grows_the_width_by_one_up_to_the_ceiling() -> None:
    width = AdaptiveWidth(8)
    refused(width)  # 8 -> 4
    refused(width)  # 4 -> 2: 4 is the width last refused
    assert width.width == 2
    # Width 3 was never refused: one round (as many successes as the width) grows to it.
    assert ok(width, 1) == []
    assert ok(width, 1) == [WidthChange(2, 3, "successes")]
    # Growing back to 4 is a probe, after PROBE_ROUNDS rounds of 3.
    assert ok(width, 3 * PROBE_ROUNDS - 1) == []
    assert ok(width, 1) == [WidthChange(3, 4, "successes")]
    # A full round at 4 succeeds: the limit is gone, one round per step again, and never past the ceiling.
    assert ok(width, 4) == [WidthChange(4, 5, "successes")]
    assert ok(width, 5 + 6 + 7) == [
        WidthChange(5, 6, "successes"),
        WidthChange(6, 7, "successes"),
        WidthChange(7, 8, "successes"),
    ]
    assert ok(width, 100) == []
    assert width.width == 8


def test_from_one_the_width_probes_the_refused_width_two() -> None:
    width = AdaptiveWidth(8)
    for _ in range(3):
        refused(width)  # 8 -> 4 -> 2 -> 1: 2 is the width last refused
    assert ok(width, PROBE_ROUNDS - 1) == []
    assert ok(width, 1) == [WidthChange(1, 2, "successes")]
    assert ok(width, 2) == [WidthChange(2, 3, "successes")]  # a full round at 2: the limit is gone


def test_successes_below_the_width_do_not_grow_it() -> None:
    """A consumer that keeps one call in flight has learnt nothing about a width of five."""
    width = AdaptiveWidth(8)
    refused(width)  # 8 -> 4
    for _ in range(100):
        assert width.finished(width.started()) is None
    assert width.width == 4
    assert ok(width, 4) == [WidthChange(4, 5, "successes")]  # with the width in use, one round grows it


def test_an_attempt_waiting_for_a_place_shows_the_width_is_in_use() -> None:
    """Calls that end at different times rarely leave the width exactly full: a waiter counts as full."""
    width = AdaptiveWidth(8)
    refused(width)  # 8 -> 4
    width.waited()
    assert [width.finished(width.started()) for _ in range(4)] == [None, None, None, WidthChange(4, 5, "successes")]
    assert [width.finished(width.started()) for _ in range(10)] == [None] * 10  # nobody waited at 5


def test_a_probe_refused_again_waits_twice_as_long_before_the_next() -> None:
    width = AdaptiveWidth(8, probe_rounds=2)
    refused(width)  # 8 -> 4
    refused(width)  # 4 -> 2, 4 refused
    assert ok(width, 2) == [WidthChange(2, 3, "successes")]
    assert ok(width, 6) == [WidthChange(3, 4, "successes")]  # a probe after 2 rounds of 3
    assert refused(width) == WidthChange(4, 2, "429")
    assert ok(width, 2) == [WidthChange(2, 3, "successes")]
    assert ok(width, 11) == []  # now 4 rounds of 3
    assert ok(width, 1) == [WidthChange(3, 4, "successes")]


def test_other_errors_neither_grow_nor_shrink_the_width_and_a_429_restarts_the_run() -> None:
    width = AdaptiveWidth(4)
    refused(width)  # 4 -> 2
    ok(width, 1)
    assert width.finished(width.started(), succeeded=False) is None
    assert width.width == 2
    tick = width.started()
    refused(width)  # 2 -> 1
    assert width.finished(tick, rate_limited=True) is None
    assert ok(width, PROBE_ROUNDS) == [WidthChange(1, 2, "successes")]  # back to the refused 2: a probe


def test_a_ceiling_of_one_stays_one_and_still_counts_429s() -> None:
    width = AdaptiveWidth(1)
    assert refused(width) is None
    assert ok(width, 10) == []
    assert width.figures.as_dict() == {
        "max_in_flight": 1,
        "peak_in_flight": 1,
        "final_in_flight": 1,
        "rate_limited_calls": 1,
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_in_flight": 0}, "max_in_flight must be at least 1, got 0"),
        ({"max_in_flight": 2, "decrease_factor": 1.0}, "decrease_factor must be between 0 and 1, got 1.0"),
        ({"max_in_flight": 2, "probe_rounds": 0}, "probe_rounds must be at least 1, got 0"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AdaptiveWidth(**kwargs)  # type: ignore[arg-type]


def test_the_gate_holds_an_attempt_until_a_place_frees_and_reports_each_change_once() -> None:
    changes: list[WidthChange] = []
    gate = CallGate(2, on_change=changes.append)
    first, second = gate.enter(), gate.enter()
    assert first is not None
    assert second is not None
    entered = threading.Event()

    def third() -> None:
        ticket = gate.enter()
        entered.set()
        assert ticket is not None
        gate.leave(ticket, 200)

    thread = threading.Thread(target=third)
    thread.start()
    assert not entered.wait(0.2)  # two in flight at width 2: the third waits
    gate.leave(first, 429)  # width 2 -> 1, still one in flight: the third still waits
    assert not entered.wait(0.2)
    gate.leave(second, 429)  # started before the decrease: no second change; now nothing in flight
    thread.join(timeout=10)
    assert entered.is_set()
    assert changes == [WidthChange(2, 1, "429")]
    assert gate.figures.as_dict() == {
        "max_in_flight": 2,
        "peak_in_flight": 2,
        "final_in_flight": 1,  # growing back to the refused 2 waits for PROBE_ROUNDS rounds
        "rate_limited_calls": 2,
    }


def test_a_waiting_attempt_gives_up_once_cancelled() -> None:
    gate = CallGate(1)
    assert gate.enter() is not None
    cancel = threading.Event()
    cancel.set()
    assert gate.enter(cancel.is_set) is None
