"""Defaults and the names of the connection extras.

Kept free of Airflow imports: ``get_provider_info`` reads them while Airflow itself is still
initialising its configuration, where importing ``airflow`` would be circular.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

#: The connection id every hook, operator, sensor and trigger uses unless told otherwise.
DEFAULT_CONN_ID: Final = "ecoinvent_default"
DEFAULT_API_URL: Final = "https://api.ecoinvent.org"
DEFAULT_TOKEN_URL: Final = "https://sso.ecoinvent.org/realms/ecoinvent/protocol/openid-connect/token"
DEFAULT_API_PREFIX: Final = "/v0"
DEFAULT_TIMEOUT: Final = 60.0
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_MAX_RETRIES: Final = 5
#: Seconds one call may keep retrying 429 answers (a gateway's limit shared by a fan-out can take minutes).
DEFAULT_RATE_LIMIT_BUDGET: Final = 300.0
#: The largest ``rate_limit_budget`` accepted: one hour.
MAX_RATE_LIMIT_BUDGET: Final = 3600.0
DEFAULT_BATCH_SIZE: Final = 100
MAX_BATCH_SIZE: Final = 10_000
#: The largest answer read (32 MiB). A batch page (at most 100 datasets x 100 scores) is a few MiB; decoded
#: JSON takes up to ~25x its bytes in memory (a 32 MiB ``[{},{},...]`` costs ~750 MiB), and every trigger in
#: the triggerer shares one process, so the bound is on memory as much as on bytes.
DEFAULT_MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024

#: Extras this provider understands, with a one-line meaning (also used for the connection form).
KNOWN_EXTRAS: Final[Mapping[str, str]] = {
    "token_url": "OAuth2 token endpoint (default: the ecoinvent SSO).",
    "api_prefix": "Path prefix of the API under the host (default /v0).",
    "client_auth": "How the client credentials reach the token endpoint: body (default) or basic.",
    "user_id": "Sent as X-User-Id on every call; the licence counts unique users by it.",
    "organization_id": "Sent as X-Organization-Id on every call.",
    "timeout": "Read timeout in seconds for each HTTP call (default 60).",
    "max_retries": "Retries of 5xx, connection errors and timeouts (default 5); 429 has its own budget.",
    "rate_limit_budget": (
        "Seconds one call keeps retrying 429 (rate limited) answers before the task fails (default 300; 0: "
        "never retry them)."
    ),
    "batch_size": "Dataset ids per batch call (default 100, at most 10,000).",
    "verify": "TLS verification: true (default), false, or the path of a CA bundle.",
    "allow_insecure_http": "Allow credentials over plain http:// to a non-loopback host (default false).",
    "max_unique_datasets": "Licence cost guard: the most distinct datasets one task may score.",
    "max_response_bytes": (
        "The largest answer read, in bytes (default 33554432 = 32 MiB); larger ones fail. Decoded JSON "
        "takes up to ~25x its size in memory."
    ),
    "max_unique_indicators": "Licence cost guard: the most distinct indicators one task may score.",
}
