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

    from airflow_provider_ecoinvent.emulator.app import EmulatorApp


class AdminEndpoints:
    """The admin routes of one emulator app (they read and change its state)."""

    def __init__(self, app: EmulatorApp) -> None:
        self.app = app

    def stats(self, include_ids: bool = False) -> dict[str, Any]:
        snapshot = self.app.ledger.snapshot(include_ids)
        snapshot["faults"] = self.app.faults.as_json()
        snapshot["versions"] = [v.name for v in self.app.catalogue.versions_for_display()]
        snapshot["latest"] = self.app.catalogue.latest.name
        snapshot["config"] = {
            "token_ttl": self.app.config.token_ttl,
            "latency_ms": self.app.config.latency_ms,
            "datasets": self.app.config.datasets,
            "seed": self.app.config.seed,
            "api_prefix": self.app.config.api_prefix,
            "versions_shape": self.app.config.versions_shape,
            "shapes": self.app.config.shapes,
            "omit_total": self.app.config.omit_total,
            "page_cap": self.app.config.page_cap,
            "max_concurrency": self.app.config.max_concurrency,
            "concurrency_retry_after": self.app.config.concurrency_retry_after,
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
            ("GET", "faults"): lambda: json_response(200, {"faults": self.app.faults.as_json()}),
            ("POST", "faults"): lambda: self._add_fault(req),
            ("DELETE", "faults"): self._clear_faults,
            ("POST", "revoke"): lambda: json_response(200, {"revoked": self.app.tokens.revoke_all()}),
            ("GET", "versions"): lambda: json_response(
                200, {"versions": [v.name for v in self.app.catalogue.versions_for_display()]}
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
        self.app.ledger.reset()
        self.app.faults.clear()
        return json_response(200, {"ok": True})

    def _clear_faults(self) -> Response:
        self.app.faults.clear()
        return json_response(200, {"ok": True})

    def _add_fault(self, req: Request) -> Response:
        try:
            data = json.loads(req.body or b"null")
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object describing one fault rule")
            rule = self.app.faults.add(data)
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
            version = self.app.catalogue.publish(data["version"], models, release_date)
        except ValueError as exc:
            return detail(409, str(exc))
        payload = {
            "version": version.name,
            "system_models": list(version.system_models),
            "release_date": version.release_date,
        }
        return json_response(201, payload)
