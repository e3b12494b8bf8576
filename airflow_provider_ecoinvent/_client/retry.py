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


#: The shortest wait after a 429 that asks for none (``Retry-After: 0``) or says nothing: retrying at once
#: only earns another 429 from a gateway whose limit is full.
RATE_LIMIT_FLOOR: Final = 0.25


@dataclass(frozen=True)
class RetryPolicy:
    """How long one call keeps retrying: an attempt count for failures, a time budget for rate limiting.

    Server errors, dropped connections and timeouts are retried ``max_retries`` times with exponential
    back-off and equal jitter. A 429 is different: it says the server is fine but busy, and under a
    gateway's limit on calls in flight (shared by every shard of a fan-out) it may come back many times
    in a row, each in milliseconds. So 429s do not count against ``max_retries``; a call keeps retrying
    them for up to ``rate_limit_budget`` seconds, waiting as ``Retry-After`` asks (capped) or, when it asks
    for nothing or for 0 s, an exponential back-off with full jitter above :data:`RATE_LIMIT_FLOOR`, so
    that shards refused together do not come back together.

    :param max_retries: retries of failures other than 429 (so ``max_retries + 1`` attempts at most).
    :param backoff_base: the first back-off in seconds; it doubles on each retry.
    :param backoff_max: cap of one exponential back-off.
    :param retry_after_max: cap of a server-requested ``Retry-After`` wait, so that a hostile or buggy
        header cannot park a task for hours.
    :param total_max: the most time one call may spend retrying failures other than 429.
    :param rate_limit_budget: the most time one call may spend retrying 429s (0: never retry them).
    :param rate_limit_floor: the shortest wait after a 429 without a positive ``Retry-After``.
    """

    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 120.0
    total_max: float = 300.0
    rate_limit_budget: float = 300.0  # the connection's default, constants.DEFAULT_RATE_LIMIT_BUDGET
    rate_limit_floor: float = RATE_LIMIT_FLOOR

    def backoff(self, retry_number: int, rng: Callable[[], float] = random.random) -> float:
        """Delay before retry ``retry_number`` (1-based): half fixed, half random ("equal jitter").

        Jitter keeps many workers that failed together from retrying in lock-step.
        """
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** (retry_number - 1))
        return ceiling / 2 + rng() * ceiling / 2

    def rate_limit_backoff(self, refusal_number: int, rng: Callable[[], float] = random.random) -> float:
        """Delay after the ``refusal_number``-th 429 (1-based) that named no wait: anywhere from the floor to
        an exponential ceiling ("full jitter"), since clients refused together must spread out, not line up."""
        ceiling = max(self.rate_limit_floor, min(self.backoff_max, self.backoff_base * 2.0 ** (refusal_number - 1)))
        return self.rate_limit_floor + rng() * (ceiling - self.rate_limit_floor)

    def start(self, clock: Callable[[], float] = time.monotonic) -> RetryBudget:
        """A fresh budget for one logical call."""
        return RetryBudget(self, clock)


@dataclass
class RetryBudget:
    """Tracks the retries of one logical call against its :class:`RetryPolicy`."""

    policy: RetryPolicy
    clock: Callable[[], float]
    #: Retries after failures other than 429 (counted against ``max_retries``).
    retries: int = 0
    #: Retries after 429 (bounded by ``rate_limit_budget`` seconds, not by a count).
    rate_limited: int = 0
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def next_delay(self, retry_after: str | None = None, *, rate_limited: bool = False) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` when the budget is spent.

        :param rate_limited: the attempt was answered 429: the time budget for rate limiting applies.
        """
        if rate_limited:
            return self._next_rate_limited_delay(retry_after)
        if self.retries >= self.policy.max_retries:
            return None
        requested = self._requested_wait(retry_after)
        delay = requested if requested is not None else self.policy.backoff(self.retries + 1)
        if self.clock() - self.started + delay > self.policy.total_max:
            return None
        self.retries += 1
        return delay

    def _next_rate_limited_delay(self, retry_after: str | None) -> float | None:
        # Retry-After: 0, absent or unreadable: "now" would only meet the same full gateway, so back off.
        delay = self._requested_wait(retry_after) or self.policy.rate_limit_backoff(self.rate_limited + 1)
        if self.clock() - self.started + delay > self.policy.rate_limit_budget:
            return None
        self.rate_limited += 1
        return delay

    def _requested_wait(self, retry_after: str | None) -> float | None:
        """The wait ``Retry-After`` asks for, capped at ``retry_after_max`` (``None``: it asks for nothing)."""
        requested = parse_retry_after(retry_after)
        if requested is None:
            return None
        delay = min(requested, self.policy.retry_after_max)
        return delay

    @property
    def attempts(self) -> int:
        """Attempts made so far, counting the first."""
        return self.retries + self.rate_limited + 1

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
