"""OAuth2 client-credentials tokens: the request, the answer, and a process-wide cache.

The grant has no refresh token (contract section 2), so "refreshing" means asking for a new token shortly
before the current one expires. The cache is shared by every hook instance and thread of a process and
keyed by (token URL, client id, hash of the secret): a task that makes thousands of calls, or sixteen
threads that start at once, cause one token request, and a rotated secret never reuses an old token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, NamedTuple
from urllib.parse import quote

from airflow_provider_ecoinvent._client.errors import Retryable, token_error
from airflow_provider_ecoinvent._client.retry import RETRYABLE_STATUSES
from airflow_provider_ecoinvent.exceptions import EcoinventAuthError

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_ecoinvent.connection import EcoinventSettings

#: How long before expiry a token is replaced, at most; never more than half its lifetime.
REFRESH_MARGIN: Final = 60.0


class TokenKey(NamedTuple):
    """What identifies a token: the secret enters only as a hash, so the key is safe to log or keep."""

    token_url: str
    client_id: str
    secret_sha256: str


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and when to stop using it. ``repr`` never shows the token."""

    value: str
    lifetime: float
    obtained_at: float

    def __repr__(self) -> str:
        return f"AccessToken(lifetime={self.lifetime:g}s)"

    __str__ = __repr__

    @property
    def refresh_at(self) -> float:
        """Monotonic time from which the token is replaced rather than used."""
        return self.obtained_at + self.lifetime - min(REFRESH_MARGIN, self.lifetime / 2)

    def is_fresh(self, now: float) -> bool:
        """Whether the token may still be sent (not inside its refresh margin)."""
        return now < self.refresh_at


class TokenRequest(NamedTuple):
    """The parts of a token request, independent of the HTTP client that sends it."""

    url: str
    form: dict[str, str]
    headers: dict[str, str]


def token_key(settings: EcoinventSettings) -> TokenKey:
    """Cache key of the settings' client."""
    digest = hashlib.sha256(settings.client_secret.encode()).hexdigest()
    return TokenKey(settings.token_url, settings.client_id, digest)


def build_token_request(settings: EcoinventSettings) -> TokenRequest:
    """The documented form body (``client_auth=body``) or HTTP Basic (``client_auth=basic``)."""
    form = {"grant_type": "client_credentials"}
    headers = {"Accept": "application/json"}
    if settings.client_auth == "basic":
        # RFC 6749 section 2.3.1: both parts are form-urlencoded before base64.
        pair = f"{quote(settings.client_id, safe='')}:{quote(settings.client_secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        form["client_id"] = settings.client_id
        form["client_secret"] = settings.client_secret
    return TokenRequest(settings.token_url, form, headers)


class MalformedTokenResponse(ValueError):
    """The token endpoint answered 200 without a usable token (treated as transient: proxies do this)."""


def parse_token_response(body: str | bytes, now: float) -> AccessToken:
    """Read ``access_token`` and ``expires_in``; every other key is optional and ignored."""
    try:
        payload = json.loads(body)
        value = payload["access_token"]
        lifetime = float(payload["expires_in"])
    except (ValueError, KeyError, TypeError, RecursionError) as err:
        raise MalformedTokenResponse(f"token response without access_token/expires_in ({type(err).__name__})") from None
    if not isinstance(value, str) or not value or lifetime <= 0:
        raise MalformedTokenResponse("token response with an empty access_token or a non-positive expires_in")
    if not _is_header_safe_token(value):
        # Sent as a header it would split the request (or fail there, after a token request); never retried,
        # since the endpoint would issue the same kind of token again. The token itself is never echoed.
        raise EcoinventAuthError(
            f"The token endpoint issued an access token of {len(value)} characters that holds characters a bearer "
            "token cannot have (control characters, spaces or non-ASCII); it was not used. Check the extra "
            "'token_url' points at an OAuth2 token endpoint."
        )
    return AccessToken(value=value, lifetime=lifetime, obtained_at=now)


def _is_header_safe_token(value: str) -> bool:
    """Whether ``value`` is printable ASCII without spaces (RFC 6750 ``b64token`` is narrower still)."""
    return all("\x21" <= char <= "\x7e" for char in value)


def read_token_response(
    status: int,
    body: bytes,
    retry_after: str | None,
    *,
    settings: EcoinventSettings,
    now: float,
    location: str | None = None,
) -> AccessToken | Retryable:
    """What a token-endpoint answer means, for both transports (the hook's and the trigger's).

    200 with a token: the token. 200 without one (a proxy page), 429 or 5xx: a failure worth retrying.
    Any other status (``invalid_client``, ``unauthorized_client``, ...): raised at once, never retried. A
    redirect (``location``) is never followed: the form carries the client secret.

    :raises EcoinventAuthError: the endpoint refused the exchange; echoed secrets are scrubbed.
    """
    if status == 200:
        try:
            return parse_token_response(body, now)
        except MalformedTokenResponse as err:
            return Retryable(str(err))
    if status in RETRYABLE_STATUSES or status >= 500:
        return Retryable(f"HTTP {status}", retry_after)
    raise token_error(
        status,
        body,
        conn_id=settings.conn_id,
        token_url=settings.token_url,
        secrets=[settings.client_secret],
        location=location,
    )


class TokenCache:
    """Process-wide, thread-safe cache of access tokens with single-flight renewal.

    ``get`` returns a fresh cached token or, under a per-key lock, fetches one: threads that arrive
    while a fetch is running wait for it and reuse its result instead of fetching again.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[TokenKey, AccessToken] = {}
        self._locks: dict[TokenKey, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: TokenKey, fetch: Callable[[], AccessToken]) -> AccessToken:
        """The cached token for ``key`` if still fresh, else a new one from ``fetch``."""
        token = self._tokens.get(key)
        if token is not None and token.is_fresh(self._clock()):
            return token
        with self._lock_for(key):
            token = self._tokens.get(key)
            if token is not None and token.is_fresh(self._clock()):
                return token
            token = fetch()
            self._tokens[key] = token
            return token

    def peek(self, key: TokenKey) -> AccessToken | None:
        """The cached token for ``key``, fresh or not, without fetching (to scrub it from error text)."""
        return self._tokens.get(key)

    def invalidate(self, key: TokenKey, rejected: AccessToken) -> None:
        """Forget ``rejected`` (the API answered 401 to it), unless another thread already replaced it."""
        with self._lock_for(key):
            if self._tokens.get(key) is rejected:
                del self._tokens[key]

    def clear(self) -> None:
        """Forget every token (tests, and after credentials rotate)."""
        with self._guard:
            self._tokens.clear()

    def _lock_for(self, key: TokenKey) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


#: The one cache of this process.
TOKEN_CACHE: Final = TokenCache()
