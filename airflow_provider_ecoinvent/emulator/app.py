"""The emulator's application logic: routing, auth, the API endpoints, the token endpoint, admin calls.

It knows nothing about sockets: the HTTP handler in ``server.py`` turns a request into a ``Request``,
calls ``EmulatorApp.handle`` and writes the ``Response`` back (honouring ``transport`` for the faults
that break the connection). Keeping the two apart keeps each small and lets the fault code describe a
broken response as data.

Order of checks on an API call, as a FastAPI app with a bearer dependency behaves: unknown path (404)
and wrong method (405) first, then the token (401), then validation (422), then version and system
model (404), then unknown indicators (422) and datasets (404).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
import math
import re
import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote_plus

from airflow_provider_ecoinvent.emulator.catalogue import INDICATORS_BY_ID, Catalogue, Version
from airflow_provider_ecoinvent.emulator.config import ADMIN_PREFIX, TOKEN_PATH, EmulatorConfig
from airflow_provider_ecoinvent.emulator.faults import DEFAULT_MALFORMED_BODY, RESPONSE_KINDS, FaultBook, FaultRule
from airflow_provider_ecoinvent.emulator.lcia import in_version, indicators_for
from airflow_provider_ecoinvent.emulator.ledger import Ledger
from airflow_provider_ecoinvent.emulator.shapes import reshape
from airflow_provider_ecoinvent.emulator.tokens import TOKEN_ERRORS, TokenState, TokenStore
from airflow_provider_ecoinvent.emulator.validation import (
    ValidationErrors,
    is_missing,
    parse_json_body,
    query_value,
)

JSON_TYPE = "application/json"
MAX_LIMIT = 100
MAX_BATCH_IDS = 10_000
MAX_INDICATORS = 100
DEFAULT_LIMIT = 10
_INVALID_CLIENT = "Invalid client or Invalid client credentials"
_DATASET_PATH = re.compile(r"^/datasets/([^/]+)$")


@dataclasses.dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    #: Lower-cased header names.
    headers: dict[str, str]
    body: bytes = b""


@dataclasses.dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    #: ``None``: send normally. ``"drop"`` / ``"truncate"``: send ``partial_bytes`` of the body, then reset /
    #: cleanly close the connection. ``"drop_start"``: reset before sending anything.
    transport: str | None = None
    partial_bytes: int = 0


def json_response(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":"), check_circular=False).encode()
    return Response(status, body, [("Content-Type", JSON_TYPE), *(headers or [])])


def detail(status: int, message: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return json_response(status, {"detail": message}, headers)


class HTTPError(Exception):
    """Raised inside an endpoint to answer with an error response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _unprocessable(errors: ValidationErrors) -> HTTPError:
    return HTTPError(detail(422, errors.detail))


Endpoint = Callable[[Request, str], Response]


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
        self._routes: dict[str, dict[str, Endpoint]] = {
            "/versions": {"GET": self._versions},
            "/indicators": {"GET": self._indicators},
            "/datasets": {"GET": self._search},
            "/datasets/batch": {"POST": self._batch},
            "/datasets/{id}": {"GET": self._dataset},
        }

    # -- dispatch -------------------------------------------------------------------------------------

    @staticmethod
    def is_admin(path: str) -> bool:
        return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")

    def handle(self, req: Request) -> Response:
        if self.is_admin(req.path):
            return self._admin(req)
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
        if is_api:
            self.ledger.enter()
        try:
            response = self._serve(req, is_api=is_api, is_token=is_token, template=template)
        finally:
            if is_api:
                self.ledger.leave()
        self.ledger.record_status(response.transport or response.status)
        return response

    def _template(self, rel: str) -> str | None:
        if rel in self._routes:
            return rel
        if _DATASET_PATH.match(rel):
            return "/datasets/{id}"
        return None

    def _serve(self, req: Request, *, is_api: bool, is_token: bool, template: str | None) -> Response:
        fired = self.faults.fire(req.method, req.path, is_api)
        delay = self.config.latency_ms / 1000 if is_api else 0.0
        for rule in fired:
            self.ledger.record_fault(rule.kind)
            if rule.kind == "latency":
                delay += float(rule.options.get("ms", 100)) / 1000
            elif rule.kind == "hang":
                delay += float(rule.options.get("seconds", 5))
            elif rule.kind == "revoke":
                token = _bearer(req)
                if token:
                    self.tokens.revoke(token)
        if delay > 0:
            # Sleeps in this handler thread only: concurrent requests overlap as on a real server.
            self.stopping.wait(delay)
        for rule in fired:
            if rule.kind in RESPONSE_KINDS:
                return _fault_response(rule, is_token)
        if is_token:
            return self._reshape("token", self._token(req))
        if template is None:
            return detail(404, "Not Found")
        methods = self._routes[template]
        handler = methods.get(req.method)
        if handler is None:
            # Also GET /datasets/batch: FastAPI might try /datasets/{id} with id "batch" (a 422), but
            # a 405 tells a client author what is wrong.
            return detail(405, "Method Not Allowed", [("Allow", ", ".join(sorted(methods)))])
        state, client_id = self.tokens.check(_bearer(req))
        if state is not TokenState.VALID or client_id is None:
            return detail(401, TOKEN_ERRORS[state], [("WWW-Authenticate", "Bearer")])
        try:
            return self._reshape(template, handler(req, client_id))
        except HTTPError as exc:
            return exc.response

    def _reshape(self, endpoint: str, response: Response) -> Response:
        """A successful answer in the configured ``shapes`` (errors keep their contract form)."""
        if self.config.shapes == "contract" or response.status != 200:
            return response
        payload = reshape(self.config.shapes, endpoint, json.loads(response.body))
        return json_response(200, payload, [h for h in response.headers if h[0] != "Content-Type"])

    # -- token endpoint -------------------------------------------------------------------------------

    def _token(self, req: Request) -> Response:
        if req.method != "POST":
            return detail(405, "Method Not Allowed", [("Allow", "POST")])
        form: dict[str, list[str]] = {}
        if req.headers.get("content-type", "").lower().startswith("application/x-www-form-urlencoded"):
            form = parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True)

        def field(name: str) -> str | None:
            values = form.get(name)
            return values[0] if values else None

        client_id, secret = field("client_id"), field("client_secret")
        authorization = req.headers.get("authorization", "")
        if authorization[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return _oauth_error(400, "invalid_request", "Invalid Authorization header")
            basic_id, _, basic_secret = decoded.partition(":")
            client_id, secret = unquote_plus(basic_id), unquote_plus(basic_secret)

        grant_type = field("grant_type")
        if not grant_type:
            return _oauth_error(400, "invalid_request", "Missing form parameter: grant_type")
        if grant_type != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")
        if not client_id:
            return _oauth_error(400, "invalid_client", "Missing parameter: client_id")
        clients = self.config.clients
        if client_id not in clients:
            return _oauth_error(401, "invalid_client", _INVALID_CLIENT)
        if secret != clients[client_id]:
            return _oauth_error(401, "unauthorized_client", _INVALID_CLIENT)
        token = self.tokens.issue(client_id)
        self.ledger.record_token_issued()
        payload = {
            "access_token": token,
            # An int, as Keycloak sends; rounded up so a fractional test ttl (0.5 s) is not announced as 0.
            "expires_in": max(1, math.ceil(self.config.token_ttl)),
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "profile email",
        }
        return json_response(200, payload, [("Cache-Control", "no-store"), ("Pragma", "no-cache")])

    # -- API endpoints --------------------------------------------------------------------------------

    def _resolve(self, req: Request) -> tuple[Version, str]:
        """Version and system model of a data call: defaults ``latest`` and ``cutoff``; unknown: 404."""
        name = query_value(req.query, "version")
        version = self.catalogue.find_version(name)
        if version is None:
            known = ", ".join(v.name for v in self.catalogue.versions_for_display())
            raise HTTPError(detail(404, f"Version {name!r} not found (available: {known})"))
        system_model = query_value(req.query, "system_model") or "cutoff"
        if system_model not in version.system_models:
            raise HTTPError(
                detail(
                    404,
                    f"System model {system_model!r} not available in version {version.name} "
                    f"(available: {', '.join(version.system_models)})",
                )
            )
        return version, system_model

    def _paging(self, req: Request, errors: ValidationErrors, default_limit: int | None) -> tuple[int, int | None]:
        raw_from = query_value(req.query, "from")
        raw_limit = query_value(req.query, "limit")
        offset = 0 if raw_from is None else errors.bounded_int(raw_from, ("query", "from"), ge=0)
        limit = (
            default_limit
            if raw_limit is None
            else errors.bounded_int(raw_limit, ("query", "limit"), ge=1, le=MAX_LIMIT)
        )
        if limit is not None and self.config.page_cap is not None:
            limit = min(limit, self.config.page_cap)  # a server capping page size without saying so
        return offset or 0, limit

    def _paged(self, total: int, **body: Any) -> dict[str, Any]:
        """A paged answer: ``total`` first, unless the emulator runs with ``omit_total``."""
        return body if self.config.omit_total else {"total": total, **body}

    def _versions(self, req: Request, client_id: str) -> Response:
        versions = self.catalogue.versions_for_display()
        if self.config.versions_shape == "list":
            return json_response(
                200,
                [
                    {"name": v.name, "system_models": list(v.system_models), "release_date": v.release_date}
                    for v in versions
                ],
            )
        items = [
            {
                "version": v.name,
                "system_models": [{"name": sm} for sm in v.system_models],
                "release_date": v.release_date,
            }
            for v in versions
        ]
        return json_response(200, {"results": items})

    def _indicators(self, req: Request, client_id: str) -> Response:
        errors = ValidationErrors()
        offset, limit = self._paging(req, errors, default_limit=None)
        if errors:
            raise _unprocessable(errors)
        version, _ = self._resolve(req)
        catalogue = indicators_for(version.name)  # older versions lack the newer methods
        items = catalogue[offset:] if limit is None else catalogue[offset : offset + limit]
        return json_response(200, self._paged(len(catalogue), results=[i.as_json() for i in items]))

    def _search(self, req: Request, client_id: str) -> Response:
        errors = ValidationErrors()
        offset, limit = self._paging(req, errors, default_limit=DEFAULT_LIMIT)
        if errors or limit is None:
            raise _unprocessable(errors)
        version, system_model = self._resolve(req)
        ids, facets = self.catalogue.search(
            version,
            query_value(req.query, "query"),
            query_value(req.query, "geography"),
            query_value(req.query, "activity_type"),
        )
        page = ids[offset : offset + limit]
        results = [self.catalogue.dataset(version, system_model, i) for i in page]
        return json_response(200, self._paged(len(ids), results=results, facets=facets))

    def _indicator_objects(
        self, ids: list[int], loc: tuple[str, ...], version: Version, system_model: str
    ) -> list[Any]:
        errors = ValidationErrors()
        unique = list(dict.fromkeys(ids))
        for position, indicator_id in enumerate(ids):
            known = INDICATORS_BY_ID.get(indicator_id)
            if known is None or not in_version(known, version.name):
                errors.add(
                    "value_error",
                    (*loc, position),
                    f"Value error, unknown indicator id {indicator_id} for version {version.name}, "
                    f"system model {system_model} (see GET /indicators)",
                    indicator_id,
                )
        if errors:
            raise _unprocessable(errors)
        return [INDICATORS_BY_ID[i] for i in unique]

    def _scored(self, version: Version, system_model: str, dataset_id: int, indicators: list[Any]) -> dict[str, Any]:
        dataset = self.catalogue.dataset(version, system_model, dataset_id)
        if indicators:
            dataset["impact_scores"] = self.catalogue.impact_scores(version, system_model, dataset_id, indicators)
        return dataset

    def _record_usage(self, req: Request, client_id: str, dataset_ids: list[int], indicators: list[Any]) -> None:
        if dataset_ids and indicators:
            self.ledger.record_scored(
                client_id,
                dataset_ids,
                [i.id for i in indicators],
                req.headers.get("x-user-id"),
                req.headers.get("x-organization-id"),
            )

    def _dataset(self, req: Request, client_id: str) -> Response:
        errors = ValidationErrors()
        raw_id = req.path.rsplit("/", 1)[1]
        dataset_id = errors.coerce_int(raw_id, ("path", "dataset_id"))
        indicator_ids = errors.int_list(
            req.query.get("indicator_ids", []), ("query", "indicator_ids"), max_length=MAX_INDICATORS
        )
        if errors or dataset_id is None or indicator_ids is None:
            raise _unprocessable(errors)
        version, system_model = self._resolve(req)
        indicators = self._indicator_objects(indicator_ids, ("query", "indicator_ids"), version, system_model)
        if not self.catalogue.has_dataset(version, dataset_id):
            raise HTTPError(detail(404, f"Dataset {dataset_id} not found in version {version.name} ({system_model})"))
        dataset = self._scored(version, system_model, dataset_id, indicators)
        self._record_usage(req, client_id, [dataset_id], indicators)
        return json_response(200, dataset)

    def _batch(self, req: Request, client_id: str) -> Response:
        errors = ValidationErrors()
        offset, limit = self._paging(req, errors, default_limit=DEFAULT_LIMIT)
        body = parse_json_body(req.body, req.headers.get("content-type"), errors)
        dataset_ids: list[int] | None = None
        indicator_ids: list[int] | None = []
        if not is_missing(body):
            if not isinstance(body, dict):
                errors.add(
                    "model_attributes_type",
                    ("body",),
                    "Input should be a valid dictionary or object to extract fields from",
                    body,
                )
            else:
                if "dataset_ids" not in body:
                    errors.add("missing", ("body", "dataset_ids"), "Field required", body)
                else:
                    dataset_ids = errors.int_list(
                        body["dataset_ids"], ("body", "dataset_ids"), min_length=1, max_length=MAX_BATCH_IDS
                    )
                if "indicator_ids" in body:
                    indicator_ids = errors.int_list(
                        body["indicator_ids"], ("body", "indicator_ids"), max_length=MAX_INDICATORS
                    )
        if errors or limit is None or dataset_ids is None or indicator_ids is None:
            raise _unprocessable(errors)
        version, system_model = self._resolve(req)
        indicators = self._indicator_objects(indicator_ids, ("body", "indicator_ids"), version, system_model)
        # Unknown ids dropped, duplicates collapsed, ascending id order (not the input order).
        known = sorted({i for i in dataset_ids if self.catalogue.has_dataset(version, i)})
        page = known[offset : offset + limit]
        datasets = [self._scored(version, system_model, i, indicators) for i in page]
        self._record_usage(req, client_id, page, indicators)
        return json_response(200, self._paged(len(known), datasets=datasets))

    # -- admin ----------------------------------------------------------------------------------------

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
        }
        return snapshot

    def _admin(self, req: Request) -> Response:
        action = req.path[len(ADMIN_PREFIX) :].strip("/")
        routes: dict[tuple[str, str], Callable[[], Response]] = {
            ("GET", "health"): lambda: json_response(200, {"ok": True}),
            ("GET", "stats"): lambda: json_response(
                200, self.stats(query_value(req.query, "ids") in ("1", "true", "yes"))
            ),
            ("POST", "reset"): self._admin_reset,
            ("GET", "faults"): lambda: json_response(200, {"faults": self.faults.as_json()}),
            ("POST", "faults"): lambda: self._admin_add_fault(req),
            ("DELETE", "faults"): self._admin_clear_faults,
            ("POST", "revoke"): lambda: json_response(200, {"revoked": self.tokens.revoke_all()}),
            ("GET", "versions"): lambda: json_response(
                200, {"versions": [v.name for v in self.catalogue.versions_for_display()]}
            ),
            ("POST", "versions"): lambda: self._admin_publish(req),
        }
        route = routes.get((req.method, action))
        if route is not None:
            return route()
        allowed = sorted(method for method, name in routes if name == action)
        if allowed:
            return detail(405, "Method Not Allowed", [("Allow", ", ".join(allowed))])
        return detail(404, "Not Found")

    def _admin_reset(self) -> Response:
        self.ledger.reset()
        self.faults.clear()
        return json_response(200, {"ok": True})

    def _admin_clear_faults(self) -> Response:
        self.faults.clear()
        return json_response(200, {"ok": True})

    def _admin_add_fault(self, req: Request) -> Response:
        try:
            data = json.loads(req.body or b"null")
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object describing one fault rule")
            rule = self.faults.add(data)
        except ValueError as exc:  # JSONDecodeError is a ValueError
            return detail(400, str(exc))
        return json_response(201, {"rule": rule.as_json()})

    def _admin_publish(self, req: Request) -> Response:
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


def _bearer(req: Request) -> str | None:
    authorization = req.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def _oauth_error(status: int, error: str, description: str) -> Response:
    return json_response(status, {"error": error, "error_description": description}, [("Cache-Control", "no-store")])


_OAUTH_ERROR_BY_STATUS: Mapping[int, str] = {
    400: "invalid_request",
    401: "invalid_client",
    403: "access_denied",
    429: "temporarily_unavailable",
    503: "temporarily_unavailable",
}


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
            error = str(options.get("error") or _OAUTH_ERROR_BY_STATUS.get(status, "server_error"))
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
