"""The emulator's token endpoint: Keycloak's OAuth2 client-credentials grant, errors included."""

from __future__ import annotations

import base64
import binascii
import math
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote_plus

from airflow_provider_ecoinvent.emulator.messages import Request, Response, detail, json_response

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_ecoinvent.emulator.config import EmulatorConfig
    from airflow_provider_ecoinvent.emulator.ledger import Ledger
    from airflow_provider_ecoinvent.emulator.tokens import TokenStore

_INVALID_CLIENT = "Invalid client or Invalid client credentials"

#: The OAuth ``error`` code a status fault on the token endpoint sends when the rule names none.
OAUTH_ERROR_BY_STATUS: Mapping[int, str] = {
    400: "invalid_request",
    401: "invalid_client",
    403: "access_denied",
    429: "temporarily_unavailable",
    503: "temporarily_unavailable",
}


def oauth_error(status: int, error: str, description: str) -> Response:
    return json_response(status, {"error": error, "error_description": description}, [("Cache-Control", "no-store")])


def token_endpoint(req: Request, config: EmulatorConfig, tokens: TokenStore, ledger: Ledger) -> Response:
    """Answer ``POST`` on the token path: credentials from the form or HTTP Basic, a token or an error."""
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
            return oauth_error(400, "invalid_request", "Invalid Authorization header")
        basic_id, _, basic_secret = decoded.partition(":")
        client_id, secret = unquote_plus(basic_id), unquote_plus(basic_secret)

    grant_type = field("grant_type")
    if not grant_type:
        return oauth_error(400, "invalid_request", "Missing form parameter: grant_type")
    if grant_type != "client_credentials":
        return oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")
    if not client_id:
        return oauth_error(400, "invalid_client", "Missing parameter: client_id")
    clients = config.clients
    if client_id not in clients:
        return oauth_error(401, "invalid_client", _INVALID_CLIENT)
    if secret != clients[client_id]:
        return oauth_error(401, "unauthorized_client", _INVALID_CLIENT)
    token = tokens.issue(client_id)
    ledger.record_token_issued()
    payload = {
        "access_token": token,
        # An int, as Keycloak sends; rounded up so a fractional test ttl (0.5 s) is not announced as 0.
        "expires_in": max(1, math.ceil(config.token_ttl)),
        "refresh_expires_in": 0,
        "token_type": "Bearer",
        "not-before-policy": 0,
        "scope": "profile email",
    }
    return json_response(200, payload, [("Cache-Control", "no-store"), ("Pragma", "no-cache")])
