"""The emulator's control plane (``/_emulator/...``): health, stats, reset, faults, revoke, versions.

No auth and never matched by fault rules: these calls are how tests and benchmarks drive and read the
emulator from outside (``control.py`` is their client).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from airflow_provider_ecoinvent.emulator.config import ADMIN_PREFIX
from airflow_provider_ecoinvent.emulator.messages import Request, Response, detail, json_response
from airflow_provider_ecoinvent.emulator.validation import query_value

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_ecoinvent.emulator.catalogue import Catalogue
    from airflow_provider_ecoinvent.emulator.config import EmulatorConfig
    from airflow_provider_ecoinvent.emulator.faults import FaultBook
    from airflow_provider_ecoinvent.emulator.ledger import Ledger
    from airflow_provider_ecoinvent.emulator.tokens import TokenStore


class AdminEndpoints:
    """The admin routes of one emulator: they read and change its catalogue, tokens, ledger and faults.

    It is given those parts, not the app that owns them, so that the app (which routes to it) and the
    control plane do not import each other.
    """

    def __init__(
        self, config: EmulatorConfig, catalogue: Catalogue, tokens: TokenStore, ledger: Ledger, faults: FaultBook
    ) -> None:
        self.config = config
        self.catalogue = catalogue
        self.tokens = tokens
        self.ledger = ledger
        self.faults = faults

    def stats(self, include_ids: bool = False) -> dict[str, Any]:
        snapshot = self.ledger.snapshot(include_ids)
        snapshot["faults"] = self.faults.as_json()
        snapshot["versions"] = [v.name for v in self.catalogue.versions_for_display()]
        snapshot["latest"] = self.catalogue.latest.name
        snapshot["config"] = {
            "token_ttl": self.config.token_ttl,
            "latency_ms": self.config.latency_ms,
            "datasets": self.config.datasets,
            "seed": self.config.seed,
            "api_prefix": self.config.api_prefix,
            "versions_shape": self.config.versions_shape,
            "shapes": self.config.shapes,
            "omit_total": self.config.omit_total,
            "page_cap": self.config.page_cap,
            "max_concurrency": self.config.max_concurrency,
            "concurrency_retry_after": self.config.concurrency_retry_after,
        }
        return snapshot

    def handle(self, req: Request) -> Response:
        action = req.path[len(ADMIN_PREFIX) :].strip("/")
        routes: dict[tuple[str, str], Callable[[], Response]] = {
            ("GET", "health"): lambda: json_response(200, {"ok": True}),
            ("GET", "stats"): lambda: json_response(
                200, self.stats(query_value(req.query, "ids") in ("1", "true", "yes"))
            ),
            ("POST", "reset"): self._reset,
            ("GET", "faults"): lambda: json_response(200, {"faults": self.faults.as_json()}),
            ("POST", "faults"): lambda: self._add_fault(req),
            ("DELETE", "faults"): self._clear_faults,
            ("POST", "revoke"): lambda: json_response(200, {"revoked": self.tokens.revoke_all()}),
            ("GET", "versions"): lambda: json_response(
                200, {"versions": [v.name for v in self.catalogue.versions_for_display()]}
            ),
            ("POST", "versions"): lambda: self._publish(req),
        }
        route = routes.get((req.method, action))
        if route is not None:
            return route()
        allowed = sorted(method for method, name in routes if name == action)
        if allowed:
            return detail(405, "Method Not Allowed", [("Allow", ", ".join(allowed))])
        return detail(404, "Not Found")

    def _reset(self) -> Response:
        self.ledger.reset()
        self.faults.clear()
        return json_response(200, {"ok": True})

    def _clear_faults(self) -> Response:
        self.faults.clear()
        return json_response(200, {"ok": True})

    def _add_fault(self, req: Request) -> Response:
        try:
            data = json.loads(req.body or b"null")
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object describing one fault rule")
            rule = self.faults.add(data)
        except ValueError as exc:  # JSONDecodeError is a ValueError
            return detail(400, str(exc))
        return json_response(201, {"rule": rule.as_json()})

    def _publish(self, req: Request) -> Response:
        try:
            data = json.loads(req.body or b"null")
            if not isinstance(data, dict) or not isinstance(data.get("version"), str) or not data["version"]:
                raise ValueError('the body must be {"version": "3.12", "system_models": [...]}')
            models = data.get("system_models")
            if models is not None and (
                not isinstance(models, list) or not all(isinstance(m, str) and m for m in models)
            ):
                raise ValueError("system_models must be a list of names")
            release_date = str(data.get("release_date") or dt.date.today().isoformat())
        except ValueError as exc:
            return detail(400, str(exc))
        try:
            version = self.catalogue.publish(data["version"], models, release_date)
        except ValueError as exc:
            return detail(409, str(exc))
        payload = {
            "version": version.name,
            "system_models": list(version.system_models),
            "release_date": version.release_date,
        }
        return json_response(201, payload)
