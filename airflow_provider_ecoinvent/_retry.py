"""One retry policy for both transports (the hook's ``requests`` and the trigger's ``httpx``).

The decision logic (which failures are transient, how long to wait, when to give up) is pure and shared;
each transport only supplies its own way of sleeping. That keeps the worker path and the triggerer path
from drifting apart, a common complaint about providers whose async path never retries 429.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

#: Statuses worth retrying: rate limiting and server-side or gateway failures.
RETRYABLE_STATUSES: Final = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential back-off with jitter that honours ``Retry-After``.

    :param max_retries: retries after the first attempt (so ``max_retries + 1`` attempts at most).
    :param backoff_base: the first back-off in seconds; it doubles on each retry.
    :param backoff_max: cap of one exponential back-off.
    :param retry_after_max: cap of a server-requested ``Retry-After`` wait, so that a hostile or buggy
        header cannot park a task for hours.
    :param total_max: the most time one call may spend retrying; past it, the call fails.
    """

    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 120.0
    total_max: float = 300.0

    def backoff(self, retry_number: int, rng: Callable[[], float] = random.random) -> float:
        """Delay before retry ``retry_number`` (1-based): half fixed, half random ("equal jitter").

        Jitter keeps many workers that failed together from retrying in lock-step.
        """
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** (retry_number - 1))
        return ceiling / 2 + rng() * ceiling / 2

    def start(self, clock: Callable[[], float] = time.monotonic) -> RetryBudget:
        """A fresh budget for one logical call."""
        return RetryBudget(self, clock)


@dataclass
class RetryBudget:
    """Tracks the retries of one logical call against its :class:`RetryPolicy`."""

    policy: RetryPolicy
    clock: Callable[[], float]
    retries: int = 0
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def next_delay(self, retry_after: str | None = None) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` when the budget is spent."""
        if self.retries >= self.policy.max_retries:
            return None
        requested = parse_retry_after(retry_after)
        if requested is not None:
            delay = min(requested, self.policy.retry_after_max)
        else:
            delay = self.policy.backoff(self.retries + 1)
        if self.clock() - self.started + delay > self.policy.total_max:
            return None
        self.retries += 1
        return delay

    @property
    def attempts(self) -> int:
        """Attempts made so far, counting the first."""
        return self.retries + 1

    @property
    def elapsed(self) -> float:
        """Seconds since the first attempt."""
        return self.clock() - self.started


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header, in either of its forms (RFC 9110 section 10.2.3).

    ``"120"`` means 120 seconds; ``"Wed, 21 Oct 2026 07:28:00 GMT"`` means until then. A date in the past
    means "now" (0); anything unreadable is ignored (``None``) and ordinary back-off applies.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())
