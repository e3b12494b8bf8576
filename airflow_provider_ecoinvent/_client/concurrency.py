"""Adaptive calls in flight: additive increase, multiplicative decrease (AIMD) under a ceiling.

A rate-limited gateway answers 429 once more than its limit of calls are in flight. Retrying every
refused call at the same width only earns more 429s (and, with ``Retry-After: 0``, spends each call's
retry budget in milliseconds). :class:`AdaptiveWidth` is the pure decision: it is told when an attempt
starts and how it ended, and answers with the width change to make, if any. :class:`CallGate` drives it
for threads: an attempt waits for a free place within the width before it goes on the wire. The request
path reports each attempt to the gate; the retry decision itself stays where it is (``retry``).

How the width moves:

- **Decrease.** A 429 halves the width (``decrease_factor``), never below 1. Only an attempt that started
  after the last decrease can halve it again, so one burst of refusals counts once, as in TCP; the rest of
  that burst only bounds the width by what the server accepted of it (sent minus refused).
- **Increase.** After a run of successes as long as the width (one round of calls) the width grows by 1,
  up to ``max_in_flight``. Only successes while the width is in use count (as in TCP's window
  validation): a consumer too slow to fill the width must not grow it untested.
- **Probe.** Growing back to the width that was last refused waits ``probe_rounds`` rounds instead of
  one, and that wait doubles each time the probe is refused again, so a steady server limit costs a few
  429s per run, not one per round. A probe that succeeds for a full round clears the memory: the limit
  was lifted, and the width grows one round at a time again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

#: Factor applied to the width on a 429.
DECREASE_FACTOR: Final = 0.5
#: Rounds of successes before growing back to a width the server refused: at a limit of 3, a probe every
#: 36 calls at first (then 72, 144...), so a run of 100 calls spends about one 429 on probing.
PROBE_ROUNDS: Final = 12
#: The longest probe wait, in rounds, however often a probe is refused.
MAX_PROBE_ROUNDS: Final = 64
#: Seconds between checks of ``stopped`` while an attempt waits for a place.
_WAIT_TICK: Final = 0.1


@dataclass(frozen=True)
class WidthChange:
    """The width moved from ``old`` to ``new`` because of ``reason`` (``"429"`` or ``"successes"``)."""

    old: int
    new: int
    reason: str


@dataclass(frozen=True)
class ConcurrencyFigures:
    """What a run did about concurrency, as the manifest reports it."""

    max_in_flight: int
    peak_in_flight: int
    final_in_flight: int
    rate_limited_calls: int

    def as_dict(self) -> dict[str, int]:
        """The manifest's ``concurrency`` object."""
        return {
            "max_in_flight": self.max_in_flight,
            "peak_in_flight": self.peak_in_flight,
            "final_in_flight": self.final_in_flight,
            "rate_limited_calls": self.rate_limited_calls,
        }


class AdaptiveWidth:
    """The AIMD decision for calls in flight: no threads, no clock, no I/O (see the module docstring).

    :param max_in_flight: the ceiling and the starting width.
    :param decrease_factor: the width is multiplied by this on a 429 (rounded down, at least 1).
    :param probe_rounds: rounds of successes before growing back to the width last refused.
    """

    def __init__(
        self,
        max_in_flight: int,
        *,
        decrease_factor: float = DECREASE_FACTOR,
        probe_rounds: int = PROBE_ROUNDS,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        if not 0 < decrease_factor < 1:
            raise ValueError(f"decrease_factor must be between 0 and 1, got {decrease_factor}")
        if probe_rounds < 1:
            raise ValueError(f"probe_rounds must be at least 1, got {probe_rounds}")
        self.max_in_flight = max_in_flight
        self.width = max_in_flight
        self.in_flight = 0
        self.peak_in_flight = 0
        self.rate_limited_calls = 0
        self._decrease_factor = decrease_factor
        self._base_probe_rounds = probe_rounds
        self._probe_rounds = probe_rounds
        #: Bumped on each decrease; an attempt's ticket is the epoch it started in.
        self._epoch = 0
        #: Attempts started and refused in this epoch, and in the one the last decrease ended.
        self._burst = [0, 0]
        self._last_burst = [0, 0]
        self._successes = 0
        #: The width a 429 last refused (0: none, or the limit has since been lifted).
        self._refused_width = 0
        #: Whether an attempt had to wait for a place since the width last changed.
        self._limiting = False

    def __repr__(self) -> str:
        return (
            f"AdaptiveWidth(width={self.width}, max_in_flight={self.max_in_flight}, "
            f"in_flight={self.in_flight}, rate_limited_calls={self.rate_limited_calls})"
        )

    def may_start(self) -> bool:
        """Whether one more attempt fits within the width now."""
        return self.in_flight < self.width

    def waited(self) -> None:
        """An attempt found no place and waits: the width, not the caller, sets the pace now."""
        self._limiting = True

    def started(self) -> int:
        """Count an attempt in flight; returns its ticket for :meth:`finished`."""
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        self._burst[0] += 1
        return self._epoch

    def finished(self, ticket: int, *, rate_limited: bool = False, succeeded: bool = True) -> WidthChange | None:
        """An attempt ended: refused with 429, succeeded, or neither (another error: the width stays).

        A success counts toward an increase only while the width is in use (as many attempts in flight as
        it allows, or one waiting for a place since the last change): a client that cannot fill its width
        has learnt nothing about a wider one. A 429 to a lone attempt (the only one in flight, none waiting:
        a version check while other clients fill the gateway) lowers nothing either: the server is busy,
        which the call's back-off answers, not this client sending too many at once.

        :returns: the change of width this outcome causes, or ``None``.
        """
        width_in_use = self._limiting or self.in_flight >= self.width
        lone = self.in_flight == 1 and not self._limiting
        self.in_flight -= 1
        if rate_limited:
            self.rate_limited_calls += 1
            return None if lone else self._decrease(ticket)
        if succeeded and width_in_use:
            return self._count_success()
        return None

    @property
    def figures(self) -> ConcurrencyFigures:
        """The figures so far; ``final_in_flight`` is the width now."""
        return ConcurrencyFigures(self.max_in_flight, self.peak_in_flight, self.width, self.rate_limited_calls)

    def restart(self, max_in_flight: int) -> None:
        """A new run under a new ceiling: the figures count from here, what was learnt of the server stays.

        A width that 429s lowered stays lowered (within the new ceiling), since the limit that lowered it is
        likely still there; a width at its old ceiling starts at the new one.
        """
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        if self.width >= self.max_in_flight:
            self.width = max_in_flight
        self.width = min(self.width, max_in_flight)
        self.max_in_flight = max_in_flight
        self.peak_in_flight = self.in_flight
        self.rate_limited_calls = 0

    def _decrease(self, ticket: int) -> WidthChange | None:
        self._successes = 0
        if ticket == self._epoch - 1:
            return self._narrow_to_burst()
        if ticket != self._epoch:
            return None  # started before the last decrease: that decrease already answered it
        old = self.width
        if self._refused_width and old >= self._refused_width:
            # The probe was refused again: probe less often (bounded), the limit is still there.
            self._probe_rounds = min(self._probe_rounds * 2, MAX_PROBE_ROUNDS)
        self._refused_width = old
        self._burst[1] += 1
        self._last_burst, self._burst = self._burst, [0, 0]
        self._epoch += 1
        self._limiting = False
        self.width = max(1, int(old * self._decrease_factor))
        return WidthChange(old, self.width, "429") if self.width != old else None

    def _narrow_to_burst(self) -> WidthChange | None:
        """Another 429 from the burst the last decrease answered: no second halving, but a bound.

        Of the ``started`` attempts of that burst the server refused ``refused``, so it took at most
        ``started - refused`` at once: eight sent against a limit of three narrow the width to three
        (not to two, through a second halving, or back up through a refused four).
        """
        self._last_burst[1] += 1
        started, refused = self._last_burst
        accepted = max(1, started - refused)
        if accepted >= self.width:
            return None
        old, self.width = self.width, accepted
        self._refused_width = min(self._refused_width, accepted + 1)
        return WidthChange(old, self.width, "429")

    def _count_success(self) -> WidthChange | None:
        self._successes += 1
        if self._refused_width and self.width >= self._refused_width and self._successes >= self.width:
            # A full round at the width once refused: the limit is gone, grow a round at a time again.
            self._refused_width = 0
            self._probe_rounds = self._base_probe_rounds
        if self.width >= self.max_in_flight:
            return None
        probing = self._refused_width and self.width + 1 >= self._refused_width
        if self._successes < self.width * (self._probe_rounds if probing else 1):
            return None
        self._successes = 0
        self._limiting = False
        old, self.width = self.width, self.width + 1
        return WidthChange(old, self.width, "successes")


class CallGate:
    """:class:`AdaptiveWidth` for threads: each API attempt waits for a place, then reports how it ended.

    The request path calls :meth:`enter` before an attempt goes on the wire and :meth:`leave` once its
    status is known, so a call retried after a 429 waits within the lowered width instead of at the old
    one. Each width change is passed once to ``on_change`` (the hook logs it). A hook has one gate for all
    its calls, free (versions, indicators, search) and scored alike: they meet the same gateway limit.

    :param max_in_flight: the ceiling and the starting width.
    :param on_change: told of every width change, under the gate's lock (keep it short).
    """

    def __init__(self, max_in_flight: int, on_change: Callable[[WidthChange], None] | None = None) -> None:
        self._width = AdaptiveWidth(max_in_flight)
        self._on_change = on_change
        self._room = threading.Condition()

    def __repr__(self) -> str:
        return f"CallGate({self._width!r})"

    @property
    def figures(self) -> ConcurrencyFigures:
        """Peak and current width, ceiling and 429 count so far."""
        with self._room:
            return self._width.figures

    @property
    def ceiling(self) -> int:
        """The most calls in flight the width may grow to (``max_in_flight``)."""
        return self._width.max_in_flight

    def restart(self, max_in_flight: int) -> None:
        """Start a run (a dataset stream) under ``max_in_flight``; see :meth:`AdaptiveWidth.restart`."""
        with self._room:
            self._width.restart(max_in_flight)
            self._room.notify_all()

    def enter(self, stopped: Callable[[], bool] | None = None) -> int | None:
        """Wait for a place within the width; returns the attempt's ticket, or ``None`` once ``stopped()``."""
        with self._room:
            if not self._width.may_start():
                self._width.waited()
            while not self._width.may_start():
                if stopped is not None and stopped():
                    return None
                self._room.wait(_WAIT_TICK if stopped is not None else None)
            return self._width.started()

    def leave(self, ticket: int, status: int | None) -> None:
        """The attempt ended with HTTP ``status`` (``None``: no answer, e.g. a dropped connection)."""
        with self._room:
            change = self._width.finished(
                ticket, rate_limited=status == 429, succeeded=status is not None and status < 400
            )
            if change is not None and self._on_change is not None:
                self._on_change(change)
            self._room.notify_all()
