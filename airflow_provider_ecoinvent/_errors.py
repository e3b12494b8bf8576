"""Build the provider's exceptions from HTTP answers, with the server's explanation made readable.

Shared by the sync hook and the async trigger client so that both fail with the same words.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from airflow_provider_ecoinvent._retry import RETRYABLE_STATUSES
from airflow_provider_ecoinvent.exceptions import (
    EcoinventApiError,
    EcoinventAuthError,
    EcoinventRateLimitError,
    EcoinventRetriesExhaustedError,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

#: The longest server explanation copied into an exception (a proxy's HTML page is not useful in full).
MAX_DETAIL_CHARS: Final = 500

#: What to tell the user for statuses whose cause is usually on their side.
_HINTS: Final = {
    400: "the request was malformed",
    403: "the licence does not cover this version, system model, dataset or indicator",
    404: "the version, system model, dataset or API prefix does not exist",
    422: "the API rejected the request's parameters",
}

#: Keycloak ``error`` codes that mean "your client id or secret is wrong" (contract section 2).
CREDENTIAL_ERRORS: Final = frozenset({"invalid_client", "unauthorized_client"})


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in ``text`` with ``***`` (defence in depth: servers sometimes echo input)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def detail_from_body(body: str | bytes | None) -> str:
    """The server's explanation: FastAPI's ``detail`` (string or validation list), Keycloak's
    ``error_description``, or the start of the raw body."""
    if not body:
        return ""
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        payload = json.loads(raw)
    except ValueError:
        return _shorten(" ".join(raw.split()))
    return _shorten(_detail_from_json(payload))


def _detail_from_json(payload: Any) -> str:
    if isinstance(payload, dict):
        detail = payload.get("detail")
        if isinstance(detail, list):
            return "; ".join(_validation_item(item) for item in detail)
        if detail is not None:
            return str(detail)
        if "error" in payload:
            description = payload.get("error_description")
            return f"{payload['error']}: {description}" if description else str(payload["error"])
    return json.dumps(payload)


def _validation_item(item: Any) -> str:
    """``{"loc": ["query", "limit"], "msg": "..."}`` -> ``query.limit: ...``."""
    if not isinstance(item, dict):
        return str(item)
    loc = ".".join(str(part) for part in item.get("loc") or [])
    msg = str(item.get("msg") or item.get("type") or item)
    return f"{loc}: {msg}" if loc else msg


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 1] + "…"


def api_error(
    status: int, method: str, path: str, body: str | bytes | None, *, conn_id: str, secrets: Iterable[str] = ()
) -> EcoinventApiError:
    """The exception for a non-retryable error answer of the API."""
    detail = scrub(detail_from_body(body), secrets)
    hint = _HINTS.get(status, "the API refused the request")
    message = f"ecoinvent API answered {status} to {method} {path} (connection {conn_id!r}): {hint}"
    if detail:
        message += f". Server said: {detail}"
    return EcoinventApiError(message, status_code=status, method=method, path=path, detail=detail)


def retries_exhausted(
    method: str,
    path: str,
    *,
    conn_id: str,
    attempts: int,
    elapsed: float,
    reason: str,
    status: int | None,
    service: str = "ecoinvent API",
) -> EcoinventRetriesExhaustedError:
    """The exception for a transient failure that outlived the retry budget."""
    cls = EcoinventRateLimitError if status == 429 else EcoinventRetriesExhaustedError
    what = "kept rate-limiting (429)" if status == 429 else f"kept failing ({reason})"
    message = (
        f"{service} {what} {method} {path} (connection {conn_id!r}) after {attempts} attempts "
        f"in {elapsed:.1f} s; retry later or raise the connection's 'max_retries'."
    )
    return cls(message, status_code=status, method=method, path=path, detail=reason)


def token_error(
    status: int, body: str | bytes | None, *, conn_id: str, token_url: str, secrets: Iterable[str] = ()
) -> EcoinventAuthError:
    """The exception for a token endpoint that refused the exchange (4xx); echoed secrets are scrubbed."""
    detail = scrub(detail_from_body(body), secrets)
    code = _keycloak_error_code(body)
    if code in CREDENTIAL_ERRORS:
        message = (
            f"The token endpoint rejected the client id or secret of connection {conn_id!r} "
            f"({status} {code}): check the connection's login (client id) and password (client secret)."
        )
    else:
        message = (
            f"The token endpoint {token_url} refused the client-credentials exchange for connection "
            f"{conn_id!r} ({status}): {detail or 'no explanation given'}."
        )
    return EcoinventAuthError(message)


def _keycloak_error_code(body: str | bytes | None) -> str | None:
    try:
        payload = json.loads(body or b"")
    except ValueError:
        return None
    error = payload.get("error") if isinstance(payload, dict) else None
    return str(error) if error else None


class Retryable(NamedTuple):
    """An answer worth retrying: why, and the server's ``Retry-After`` if any."""

    reason: str
    retry_after: str | None = None


#: :func:`read_api_status` results that are not a :class:`Retryable`.
SUCCESS: Final = "success"
RENEW_TOKEN: Final = "renew-token"


def read_api_status(
    status: int,
    body: bytes,
    retry_after: str | None,
    *,
    method: str,
    path: str,
    conn_id: str,
    secrets: Iterable[str],
    renewed_after_401: bool,
) -> str | Retryable:
    """What an API answer's status means, for both transports (the hook's and the trigger's).

    2xx: :data:`SUCCESS`. A first 401: :data:`RENEW_TOKEN` (get a new token, repeat once). 429 and 5xx:
    :class:`Retryable`. Anything else, or a second 401: raised at once.

    :raises EcoinventAuthError: a freshly issued token was refused too.
    :raises EcoinventApiError: 400, 403, 404, 422 and other statuses retrying cannot fix.
    """
    if 200 <= status < 300:
        return SUCCESS
    if status == 401:
        if renewed_after_401:
            raise EcoinventAuthError(
                f"The ecoinvent API refused a freshly issued token for {method} {path} "
                f"(connection {conn_id!r}): the client may not be enabled for this API."
            )
        return RENEW_TOKEN
    if status not in RETRYABLE_STATUSES:
        raise api_error(status, method, path, body, conn_id=conn_id, secrets=secrets)
    return Retryable(f"HTTP {status}", retry_after)


def decode_json_body(status: int, body: bytes, *, method: str, path: str, conn_id: str, secrets: Iterable[str]) -> Any:
    """The parsed JSON of a successful answer (``None`` for an empty body).

    :raises EcoinventApiError: the body is not JSON, which usually means the host or prefix points at
        something other than the API (a proxy or portal page).
    """
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        raise EcoinventApiError(
            f"ecoinvent API answered {status} to {method} {path} with a body that is not "
            f"JSON (connection {conn_id!r}): check the connection's host and 'api_prefix'.",
            status_code=status,
            method=method,
            path=path,
            detail=scrub(body[:200].decode("utf-8", "replace"), secrets),
        ) from None
