"""Access tokens: issued by the token endpoint, checked on every API call.

Tokens are opaque random strings shaped like a JWT (three dot-separated parts) because the real ones are
JWTs and clients must never try to parse them. Expiry uses ``time.monotonic`` so a test that shifts the
wall clock (time-machine) cannot expire or revive them, and a fractional ttl (0.5 s) really expires.
"""

from __future__ import annotations

import dataclasses
import enum
import secrets
import threading
import time


class TokenState(enum.Enum):
    VALID = "valid"
    MISSING = "missing"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"


#: The ``detail`` of the 401 for each failure, so a test (and a human) can tell them apart.
TOKEN_ERRORS = {
    TokenState.MISSING: "Not authenticated: missing bearer token",
    TokenState.UNKNOWN: "Invalid token",
    TokenState.EXPIRED: "Token expired",
    TokenState.REVOKED: "Token revoked",
}


@dataclasses.dataclass
class _Token:
    client_id: str
    expires_at: float
    revoked: bool = False


class TokenStore:
    """Thread-safe registry of issued tokens."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}

    def issue(self, client_id: str) -> str:
        token = ".".join(secrets.token_urlsafe(n) for n in (18, 48, 32))
        now = time.monotonic()
        with self._lock:
            # Forget long-expired tokens so a long benchmark does not grow the dict without bound;
            # keep recent ones so their 401 still says "expired" rather than "invalid".
            if len(self._tokens) > 10_000:
                horizon = now - 10 * self.ttl
                self._tokens = {k: v for k, v in self._tokens.items() if v.expires_at > horizon}
            self._tokens[token] = _Token(client_id, now + self.ttl)
        return token

    def check(self, token: str | None) -> tuple[TokenState, str | None]:
        """The token's state and, when valid, the client it was issued to."""
        if not token:
            return TokenState.MISSING, None
        with self._lock:
            entry = self._tokens.get(token)
        if entry is None:
            return TokenState.UNKNOWN, None
        if entry.revoked:
            return TokenState.REVOKED, entry.client_id
        if time.monotonic() >= entry.expires_at:
            return TokenState.EXPIRED, entry.client_id
        return TokenState.VALID, entry.client_id

    def revoke(self, token: str) -> None:
        with self._lock:
            entry = self._tokens.get(token)
            if entry is not None:
                entry.revoked = True

    def revoke_all(self) -> int:
        """Revoke every token issued so far (new ones are fine); returns how many were live."""
        now = time.monotonic()
        with self._lock:
            live = 0
            for entry in self._tokens.values():
                if not entry.revoked and entry.expires_at > now:
                    live += 1
                entry.revoked = True
            return live
