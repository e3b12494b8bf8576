"""The emulator's application: one request's way through routing, faults, auth and an endpoint.

The endpoints themselves live apart: the API in ``endpoints.py``, the token endpoint in ``oauth.py``,
the control plane in ``admin.py``, the request and response types in ``messages.py``.

It knows nothing about sockets: the HTTP handler in ``server.py`` turns a request into a ``Request``,
calls ``EmulatorApp.handle`` and writes the ``Response`` back (honouring ``transport`` for the faults
that break the connection). Keeping the two apart keeps each small and lets the fault code describe a
broken response as data.

Order of checks on an API call, as a FastAPI app with a bearer dependency behaves: unknown path (404)
and wrong method (405) first, then the token (401), then validation (422), then version and system
model (404), then unknown indicators (422) and datasets (404).
"""

from __future__ import annotations

import functools
import json
import re
import threading
from http import HTTPStatus
from typing import Any

from airflow_provider_ecoinvent.emulator.admin import AdminEndpoints
from airflow_provider_ecoinvent.emulator.catalogue import Catalogue
from airflow_provider_ecoinvent.emulator.config import ADMIN_PREFIX, TOKEN_PATH, EmulatorConfig
from airflow_provider_ecoinvent.emulator.endpoints import ApiEndpoints
from airflow_provider_ecoinvent.emulator.faults import DEFAULT_MALFORMED_BODY, RESPONSE_KINDS, FaultBook, FaultRule
from airflow_provider_ecoinvent.emulator.ledger import Ledger
from airflow_provider_ecoinvent.emulator.messages import (
    JSON_TYPE,
    HTTPError,
    Request,
    Response,
    bearer,
    detail,
    json_response,
)
from airflow_provider_ecoinvent.emulator.oauth import OAUTH_ERROR_BY_STATUS, token_endpoint
from airflow_provider_ecoinvent.emulator.shapes import reshape
from airflow_provider_ecoinvent.emulator.tokens import TOKEN_ERRORS, TokenState, TokenStore

__all__ = ["EmulatorApp", "HTTPError", "Request", "Response", "detail", "json_response"]

_DATASET_PATH = re.compile(r"^/datasets/([^/]+)$")
_SINGLE_DATASET = re.compile(r"/datasets/(\d+)$")


class EmulatorApp:
    """All state of one emulator: catalogue, tokens, ledger, faults."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.catalogue = Catalogue(config.datasets, config.seed)
        self.tokens = TokenStore(config.token_ttl)
        self.ledger = Ledger()
        self.faults = FaultBook()
        #: Set on shutdown so that injected delays and hangs end at once.
        self.stopping = threading.Event()
        for rule in config.faults:
            self.faults.add(rule)
        self.api = ApiEndpoints(config, self.catalogue, self.ledger)
        self.admin = AdminEndpoints(config, self.catalogue, self.tokens, self.ledger, self.faults)

    def stats(self, include_ids: bool = False) -> dict[str, Any]:
        """The body of ``GET /_emulator/stats``."""
        return self.admin.stats(include_ids)

    # -- dispatch -------------------------------------------------------------------------------------

    @staticmethod
    def is_admin(path: str) -> bool:
        return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")

    def handle(self, req: Request) -> Response:
        if self.is_admin(req.path):
            return self.admin.handle(req)
        prefix = self.config.api_prefix
        is_token = req.path == TOKEN_PATH
        is_api = not is_token and (not prefix or req.path == prefix or req.path.startswith(prefix + "/"))
        template = self._template(req.path[len(prefix) :]) if is_api else None
        if is_token:
            endpoint = f"{req.method} /token"
        elif template is not None:
            endpoint = f"{req.method} {template}"
        else:
            endpoint = "other"
        self.ledger.record_request(endpoint, is_api=is_api, is_token=is_token, user_agent=req.headers.get("user-agent"))
        refusal = self._admit(req) if is_api else None
        if refusal is not None:
            response = refusal
        else:
            try:
                response = self._serve(req, is_api=is_api, is_token=is_token, template=template)
            finally:
                if is_api:
                    self.ledger.leave()
        self.ledger.record_status(response.transport or response.status)
        return response

    def _admit(self, req: Request) -> Response | None:
        """Count an API call in flight (``None``), or the 429 that refuses it at the concurrency limit.

        The limit is the server's ``max_concurrency`` or a ``concurrency`` fault rule's, the tighter one.
        Refused calls are answered before faults, latency and auth: a gateway in front turns them away.
        """
        rule = self.faults.concurrency_limit(req.method, req.path, is_api=True)
        limit, retry_after = self.config.max_concurrency, self.config.concurrency_retry_after
        if rule is not None and (not limit or rule.options["limit"] < limit):
            limit, retry_after = rule.options["limit"], str(rule.options["retry_after"])
        else:
            rule = None
        if self.ledger.enter(limit):
            return None
        if rule is not None:
            self.faults.record_hit(rule)
            self.ledger.record_fault(rule.kind)
        message = f"Too Many Requests: more than {limit} concurrent API calls, retry later"
        return detail(429, message, [("Retry-After", retry_after)])

    def _template(self, rel: str) -> str | None:
        if rel in self.api.routes:
            return rel
        if _DATASET_PATH.match(rel):
            return "/datasets/{id}"
        return None

    def _serve(self, req: Request, *, is_api: bool, is_token: bool, template: str | None) -> Response:
        fired = self.faults.fire(req.method, req.path, is_api, functools.cache(lambda: asked_ids(req)))
        delay = self.config.latency_ms / 1000 if is_api else 0.0
        for rule in fired:
            self.ledger.record_fault(rule.kind)
            if rule.kind == "latency":
                delay += float(rule.options.get("ms", 100)) / 1000
            elif rule.kind == "hang":
                delay += float(rule.options.get("seconds", 5))
            elif rule.kind == "revoke":
                token = bearer(req)
                if token:
                    self.tokens.revoke(token)
        if delay > 0:
            # Sleeps in this handler thread only: concurrent requests overlap as on a real server.
            self.stopping.wait(delay)
        for rule in fired:
            if rule.kind in RESPONSE_KINDS:
                return _fault_response(rule, is_token)
        if is_token:
            return self._reshape("token", token_endpoint(req, self.config, self.tokens, self.ledger))
        if template is None:
            return detail(404, "Not Found")
        methods = self.api.routes[template]
        handler = methods.get(req.method)
        if handler is None:
            # Also GET /datasets/batch: FastAPI might try /datasets/{id} with id "batch" (a 422), but
            # a 405 tells a client author what is wrong.
            return detail(405, "Method Not Allowed", [("Allow", ", ".join(sorted(methods)))])
        state, client_id = self.tokens.check(bearer(req))
        if state is not TokenState.VALID or client_id is None:
            return detail(401, TOKEN_ERRORS[state], [("WWW-Authenticate", "Bearer")])
        try:
            return self._reshape(template, _omitted(handler(req, client_id), fired))
        except HTTPError as exc:
            return exc.response

    def _reshape(self, endpoint: str, response: Response) -> Response:
        """A successful answer in the configured ``shapes`` (errors keep their contract form)."""
        if self.config.shapes == "contract" or response.status != 200:
            return response
        payload = reshape(self.config.shapes, endpoint, json.loads(response.body))
        return json_response(200, payload, [h for h in response.headers if h[0] != "Content-Type"])


def asked_ids(req: Request) -> tuple[frozenset[int], frozenset[int]]:
    """The dataset ids and indicator ids a request asks for (path or batch body; query or body), for the
    ``omit`` fault rules."""
    datasets: list[Any] = []
    indicators: list[Any] = list(req.query.get("indicator_ids", []))
    single = _SINGLE_DATASET.search(req.path)
    if single is not None:
        datasets.append(single.group(1))
    if req.body:
        try:
            body = json.loads(req.body)
        except ValueError:
            body = None
        if isinstance(body, dict):
            for key, found in (("dataset_ids", datasets), ("indicator_ids", indicators)):
                if isinstance(body.get(key), list):
                    found.extend(body[key])
    return _ints(datasets), _ints(indicators)


def _ints(values: list[Any]) -> frozenset[int]:
    ids: set[int] = set()
    for value in values:
        try:
            ids.add(int(value))
        except (TypeError, ValueError):
            continue
    return frozenset(ids)


def _omitted(response: Response, fired: list[FaultRule]) -> Response:
    """The answer without the datasets of the ``omit`` rules that fired (``total`` lowered to match); a
    single dataset's answer becomes a 404 when it is the one left out."""
    left_out = {int(rule.options["dataset"]) for rule in fired if rule.kind == "omit"}
    if not left_out or response.status != 200:
        return response
    payload = json.loads(response.body)
    if isinstance(payload, dict) and payload.get("id") in left_out:
        return detail(404, f"Dataset {payload['id']} not found (left out by an 'omit' fault)")
    datasets = payload.get("datasets") if isinstance(payload, dict) else None
    if not isinstance(datasets, list):
        return response
    kept = [dataset for dataset in datasets if not (isinstance(dataset, dict) and dataset.get("id") in left_out)]
    payload["datasets"] = kept
    if isinstance(payload.get("total"), int):
        payload["total"] -= len(datasets) - len(kept)
    return json_response(200, payload, [h for h in response.headers if h[0] != "Content-Type"])


def _fault_response(rule: FaultRule, is_token: bool) -> Response:
    """The response a firing fault rule sends instead of the normal one."""
    options = rule.options
    if rule.kind == "status":
        status = int(options["status"])
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Injected fault"
        message = str(options.get("detail") or f"{phrase} (injected by the emulator)")
        headers: list[tuple[str, str]] = []
        if "retry_after" in options:
            headers.append(("Retry-After", str(options["retry_after"])))
        if is_token:
            error = str(options.get("error") or OAUTH_ERROR_BY_STATUS.get(status, "server_error"))
            return json_response(status, {"error": error, "error_description": message}, headers)
        if status == 401:
            headers.append(("WWW-Authenticate", "Bearer"))
        return detail(status, message, headers)
    if rule.kind == "malformed":
        body = str(options.get("body", DEFAULT_MALFORMED_BODY)).encode()
        return Response(200, body, [("Content-Type", JSON_TYPE)])
    # drop / truncate: a plausible 1 KiB JSON body of which only the first bytes are sent.
    padding = "x" * 1000
    body = json.dumps({"total": 1, "datasets": [{"id": 1, "description": padding}]}).encode()
    transport = "drop_start" if rule.kind == "drop" and options.get("at") == "start" else rule.kind
    partial = max(0, min(int(options.get("bytes", 64)), len(body) - 1))
    return Response(200, body, [("Content-Type", JSON_TYPE)], transport=transport, partial_bytes=partial)
