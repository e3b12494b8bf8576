"""The usage ledger and request counters.

The usage part follows contract section 5 exactly, because cost control is what tests assert with it:
only successful ``/datasets`` calls (batch or single) that return at least one scored dataset count, and
they add the unique dataset ids returned with scores, the unique indicator ids scored, the ``X-User-Id``
and ``X-Organization-Id`` values sent on them. Search, versions, indicators, token calls, failed calls and
repeats add nothing. The other counters (per endpoint, per status, in flight, user agents) exist so tests
and benchmarks can check a client's behaviour from the outside: its retries, its concurrency limit, its
token reuse. ``max_in_flight`` is the peak of API calls served at once; ``concurrency_rejections`` counts
the 429s sent by the server's concurrency limit (those calls never count as in flight).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable


@dataclasses.dataclass
class _Usage:
    datasets: set[int] = dataclasses.field(default_factory=set)
    indicators: set[int] = dataclasses.field(default_factory=set)
    users: set[str] = dataclasses.field(default_factory=set)
    organizations: set[str] = dataclasses.field(default_factory=set)
    scored_calls: int = 0

    def as_json(self, include_ids: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "datasets": len(self.datasets),
            "indicators": len(self.indicators),
            "users": sorted(self.users),
            "organizations": sorted(self.organizations),
            "scored_calls": self.scored_calls,
        }
        if include_ids:
            out["dataset_ids"] = sorted(self.datasets)
            out["indicator_ids"] = sorted(self.indicators)
        return out


class Ledger:
    """Thread-safe counters; ``snapshot()`` is the body of ``GET /_emulator/stats``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            in_flight = getattr(self, "_in_flight", 0)
            self._usage: dict[str, _Usage] = {}
            self._requests: Counter[str] = Counter()
            self._statuses: Counter[str] = Counter()
            self._user_agents: set[str] = set()
            self._token_requests = 0
            self._tokens_issued = 0
            self._api_calls = 0
            self._scored_calls = 0
            self._faults_triggered = 0
            self._faults_by_kind: Counter[str] = Counter()
            self._connections_opened = 0
            self._concurrency_rejections = 0
            # Requests being served right now are not forgotten: they will still call ``leave``.
            self._in_flight = in_flight
            self._max_in_flight = in_flight

    # -- request life-cycle ---------------------------------------------------------------------------

    def record_request(self, endpoint: str, *, is_api: bool, is_token: bool, user_agent: str | None) -> None:
        with self._lock:
            self._requests[endpoint] += 1
            if is_api:
                self._api_calls += 1
            if is_token:
                self._token_requests += 1
            if user_agent:
                self._user_agents.add(user_agent)

    def record_connection(self) -> None:
        """A client opened a TCP connection (a pooled client opens few; one per call means no pooling)."""
        with self._lock:
            self._connections_opened += 1

    def enter(self, limit: int = 0) -> bool:
        """An API request starts being served (counts toward ``max_in_flight``), unless ``limit`` (0: none)
        calls are in flight already: then it is refused and counted in ``concurrency_rejections``.

        Check and count are one step under the lock, so concurrent requests never exceed the limit.
        """
        with self._lock:
            if limit and self._in_flight >= limit:
                self._concurrency_rejections += 1
                return False
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            return True

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def record_status(self, status: int | str) -> None:
        with self._lock:
            self._statuses[str(status)] += 1

    def record_token_issued(self) -> None:
        with self._lock:
            self._tokens_issued += 1

    def record_fault(self, kind: str) -> None:
        with self._lock:
            self._faults_triggered += 1
            self._faults_by_kind[kind] += 1

    def record_scored(
        self,
        client_id: str,
        dataset_ids: Iterable[int],
        indicator_ids: Iterable[int],
        user_id: str | None,
        organization_id: str | None,
    ) -> None:
        """A successful ``/datasets`` call returned these datasets with these indicators' scores.

        The caller only calls this when at least one dataset was returned with at least one score.
        """
        with self._lock:
            usage = self._usage.setdefault(client_id, _Usage())
            usage.datasets.update(dataset_ids)
            usage.indicators.update(indicator_ids)
            if user_id:
                usage.users.add(user_id)
            if organization_id:
                usage.organizations.add(organization_id)
            usage.scored_calls += 1
            self._scored_calls += 1

    # -- reporting ------------------------------------------------------------------------------------

    def snapshot(self, include_ids: bool = False) -> dict[str, Any]:
        with self._lock:
            return {
                "token_requests": self._token_requests,
                "tokens_issued": self._tokens_issued,
                "api_calls": self._api_calls,
                "scored_calls": self._scored_calls,
                "requests": dict(sorted(self._requests.items())),
                "statuses": dict(sorted(self._statuses.items())),
                "connections_opened": self._connections_opened,
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "concurrency_rejections": self._concurrency_rejections,
                "usage": {client: u.as_json(include_ids) for client, u in sorted(self._usage.items())},
                "faults_triggered": self._faults_triggered,
                "faults_by_kind": dict(sorted(self._faults_by_kind.items())),
                "user_agents": sorted(self._user_agents),
            }
