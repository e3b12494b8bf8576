"""Scriptable fault injection.

A test installs rules (``POST /_emulator/faults`` or ``EmulatorServer.add_fault``); each request that is
not an admin call is offered to every rule in order. A rule *matches* a request by path and method; it
*fires* on the matching requests number ``after + 1`` to ``after + count`` (so a failure can land in the
middle of a run), then stays installed but inert. Several rules may fire on one request: delays add up,
``revoke`` marks the token, and the first rule that replaces the response (``status``, ``drop``,
``truncate``, ``malformed``) decides what is sent.

Rule JSON (``kind`` plus flat options)::

    {"kind": "status", "status": 503, "detail": "...", "retry_after": "2",
     "path": "/datasets/batch", "method": "POST", "count": 1, "after": 0}

===============  ==================================================================================
kind             options (all optional except ``status`` for ``status``)
===============  ==================================================================================
``status``       ``status`` int, ``detail`` str, ``retry_after`` str sent verbatim as ``Retry-After``
                 (seconds or an HTTP date), ``error`` (OAuth ``error`` code, token endpoint only)
``latency``      ``ms`` extra delay before the normal answer (default 100)
``hang``         ``seconds`` to sleep before the normal answer (default 5): provokes read timeouts
``drop``         status line, headers and part of the body, then a TCP reset (``at="start"``: reset
                 before sending anything); ``bytes`` of body sent (default 64)
``truncate``     like ``drop`` but a clean close after the short body (an incomplete read)
``malformed``    200, ``Content-Type: application/json``, a non-JSON ``body``
``revoke``       the token used by this request becomes revoked, so the request gets a 401
``omit``         ``dataset`` int (required): the answer leaves that dataset out (a batch call's ``total``
                 one lower; ``GET /datasets/{id}`` answers 404), as if the API lost it for this call
                 only. Matches only calls that ask for the dataset; ``indicator`` int: only those also
                 scoring that indicator (body or query ``indicator_ids``), so that one indicator slice
                 of a batch lacks the dataset while the others return it.
``concurrency``  ``limit`` int (required): a matching API call that arrives while ``limit`` API calls
                 are being served gets 429 with ``Retry-After: retry_after`` (default ``"0"``), before
                 any other rule sees it, as a gateway's limit does; ``count`` (default: every) caps the
                 429s it sends. ``--max-concurrency`` sets the same limit for the server's lifetime.
===============  ==================================================================================

Common options: ``path`` (substring of the request path; when omitted the rule matches API calls only,
never the token endpoint), ``method`` (any when omitted), ``count`` (default 1; ``null``, ``"inf"`` or
``-1`` for every match), ``after`` (default 0).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import threading
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

#: The dataset ids and indicator ids a request asks for (an ``omit`` rule reads them only when it is installed).
Asked: TypeAlias = "Callable[[], tuple[frozenset[int], frozenset[int]]]"

FAULT_KINDS = ("status", "latency", "hang", "drop", "truncate", "malformed", "revoke", "omit", "concurrency")
#: Kinds whose response replaces the normal one.
RESPONSE_KINDS = frozenset({"status", "drop", "truncate", "malformed"})

_INT_OPTIONS = {"status", "after", "bytes", "limit", "dataset", "indicator"}
_FLOAT_OPTIONS = {"ms", "seconds"}
_STR_OPTIONS = {"path", "method", "detail", "retry_after", "error", "body", "at"}
_ALLOWED = {
    "status": {"status", "detail", "retry_after", "error"},
    "latency": {"ms"},
    "hang": {"seconds"},
    "drop": {"at", "bytes"},
    "truncate": {"bytes"},
    "malformed": {"body"},
    "revoke": set(),
    "omit": {"dataset", "indicator"},
    "concurrency": {"limit", "retry_after"},
}
_COMMON = {"kind", "path", "method", "count", "after"}
DEFAULT_MALFORMED_BODY = "<html><body><h1>502 Bad Gateway</h1>upstream sent an invalid response</body></html>"


@dataclasses.dataclass
class FaultRule:
    """One installed rule and how often it has matched and fired."""

    kind: str
    path: str | None = None
    method: str | None = None
    count: float = 1  # math.inf: every match
    after: int = 0
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    seen: int = 0
    hits: int = 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        """Validate a rule given as JSON; raises ``ValueError`` with a message fit for a 400."""
        kind = data.get("kind")
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}, not {kind!r}")
        unknown = set(data) - _COMMON - _ALLOWED[kind]
        if unknown:
            raise ValueError(f"unknown option(s) for fault {kind!r}: {', '.join(sorted(unknown))}")
        options = {k: _coerce(k, v) for k, v in data.items() if k not in _COMMON}
        if kind == "status":
            status = options.get("status")
            if not isinstance(status, int) or not 100 <= status <= 599:
                raise ValueError("a 'status' fault needs an integer 'status' in 100..599")
        if kind == "omit" and not isinstance(options.get("dataset"), int):
            raise ValueError("an 'omit' fault needs an integer 'dataset' (the dataset id to leave out)")
        if kind == "drop" and options.get("at", "body") not in ("body", "start"):
            raise ValueError("'at' must be 'body' or 'start'")
        if kind == "concurrency":
            if not isinstance(options.get("limit"), int) or options["limit"] < 1:
                raise ValueError("a 'concurrency' fault needs an integer 'limit' of at least 1 (API calls in flight)")
            options.setdefault("retry_after", "0")
        # A concurrency limit is a standing rule: by default it answers every call above the limit.
        count = _parse_count(data.get("count", None if kind == "concurrency" else 1))
        after = int(_coerce("after", data.get("after", 0)))
        if after < 0:
            raise ValueError("'after' must not be negative")
        path = data.get("path")
        method = data.get("method")
        return cls(
            kind=kind,
            path=str(path) if path else None,
            method=str(method).upper() if method else None,
            count=count,
            after=after,
            options=options,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": self.path,
            "method": self.method,
            "count": None if math.isinf(self.count) else int(self.count),
            "after": self.after,
            **self.options,
            "seen": self.seen,
            "hits": self.hits,
        }

    def matches(self, method: str, path: str, is_api: bool, asked: Asked | None = None) -> bool:
        """Whether the rule applies to the request; ``asked`` gives the dataset and indicator ids it asks for,
        called only for an ``omit`` rule (reading them costs a parse of the body)."""
        if self.method is not None and self.method != method:
            return False
        if self.kind == "omit" and not self._asked_for(asked):
            return False
        if self.path is None:
            return is_api
        return self.path in path

    def _asked_for(self, asked: Asked | None) -> bool:
        """An ``omit`` rule: whether the request asks for its dataset (and scores its indicator, if set)."""
        if asked is None:
            return False
        datasets, indicators = asked()
        if self.options["dataset"] not in datasets:
            return False
        return "indicator" not in self.options or self.options["indicator"] in indicators


def _coerce(key: str, value: Any) -> Any:
    try:
        if key in _INT_OPTIONS:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if key in _FLOAT_OPTIONS:
            number = float(value)
            if number < 0 or math.isnan(number):
                raise ValueError
            return number
    except (TypeError, ValueError):
        raise ValueError(f"fault option {key!r} has an invalid value {value!r}") from None
    if key in _STR_OPTIONS:
        return str(value)
    return value


def _parse_count(value: Any) -> float:
    if value is None or value in ("inf", "infinite", "always", -1, "-1"):
        return math.inf
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"'count' must be a positive integer or null, not {value!r}") from None
    if count < 1:
        raise ValueError("'count' must be a positive integer or null (every match)")
    return count


def parse_fault_spec(spec: str) -> dict[str, Any]:
    """Parse the command-line form ``KIND[:k=v,...]`` or a JSON object into a rule dict.

    In the ``k=v`` form a comma starts a new option only when ``name=`` follows, so an HTTP date in
    ``retry_after`` (``Wed, 21 Oct 2026 07:28:00 GMT``) survives.
    """
    spec = spec.strip()
    if spec.startswith("{"):
        data = json.loads(spec)
        if not isinstance(data, dict):
            raise ValueError("a JSON fault spec must be an object")
        return data
    kind, _, rest = spec.partition(":")
    rule: dict[str, Any] = {"kind": kind.strip()}
    if rest.strip():
        for item in re.split(r",(?=\s*\w+=)", rest):
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"fault option {item!r} is not key=value")
            rule[key.strip()] = value.strip()
    FaultRule.from_dict(rule)  # validate early: a typo should stop the emulator from starting
    return rule


class FaultBook:
    """The installed rules; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, data: Mapping[str, Any]) -> FaultRule:
        rule = FaultRule.from_dict(data)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def concurrency_limit(self, method: str, path: str, is_api: bool) -> FaultRule | None:
        """The tightest ``concurrency`` rule that may still answer this request with a 429, if any.

        Counts the request as seen by every matching concurrency rule; ``record_hit`` counts the 429.
        """
        tightest: FaultRule | None = None
        with self._lock:
            for rule in self._rules:
                if rule.kind != "concurrency" or not rule.matches(method, path, is_api):
                    continue
                rule.seen += 1
                active = rule.seen > rule.after and rule.hits < rule.count
                if active and (tightest is None or rule.options["limit"] < tightest.options["limit"]):
                    tightest = rule
        return tightest

    def record_hit(self, rule: FaultRule) -> None:
        """A rule answered a request (for rules that decide outside ``fire``)."""
        with self._lock:
            rule.hits += 1

    def fire(self, method: str, path: str, is_api: bool, asked: Asked | None = None) -> list[FaultRule]:
        """Count this request against every matching rule and return the rules that fire on it.

        ``concurrency`` rules are left out: they decide before the request is served
        (``concurrency_limit``).
        """
        fired: list[FaultRule] = []
        with self._lock:
            for rule in self._rules:
                if rule.kind == "concurrency" or not rule.matches(method, path, is_api, asked):
                    continue
                rule.seen += 1
                if rule.seen > rule.after and rule.hits < rule.count:
                    rule.hits += 1
                    fired.append(rule)
        return fired

    def as_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.as_json() for rule in self._rules]
