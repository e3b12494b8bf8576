"""Build the provider's exceptions from HTTP answers, with the server's explanation made readable.

Shared by the sync hook and the async trigger client so that both fail with the same words.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import re
from typing import TYPE_CHECKING, Any, Final, NamedTuple
from urllib.parse import quote

from airflow_provider_ecoinvent._client.codec import decode
from airflow_provider_ecoinvent._client.network import Unreachable, give_up_now, unreachable_error
from airflow_provider_ecoinvent._client.retry import RETRYABLE_STATUSES, parse_retry_after
from airflow_provider_ecoinvent._client.safety import origin, redact_url, redirect_error, redirect_target
from airflow_provider_ecoinvent.exceptions import (
    EcoinventApiError,
    EcoinventAuthError,
    EcoinventRateLimitError,
    EcoinventRetriesExhaustedError,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_provider_ecoinvent._client.retry import RetryBudget

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


#: Shortest text scrubbed: shorter fragments would blank out ordinary words.
_MIN_SECRET_CHARS: Final = 4


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in ``text`` with ``***``, in every form it travels in (defence in depth:
    servers sometimes echo input): as is or in another letter case, URL- and form-encoded (either case of
    hex), JSON-escaped (``\\/``, ``\\uXXXX``; also inside a body that is not JSON), HTML-escaped (named or
    numeric entities), each character in any of these forms, and inside base64 (an echoed
    ``Authorization: Basic`` header). Scrub before shortening, never after: a cut can leave a prefix of a
    secret that no longer matches it."""
    pattern, _ = _scrub_pattern(frozenset(secret for secret in secrets if secret))
    return text if pattern is None else pattern.sub("***", text)


def scrub_head(text: str, secrets: Iterable[str], chars: int) -> str:
    """``scrub(text, secrets)[:chars]``, reading only the start of ``text`` that can reach the kept part.

    Every match is at most ``longest`` characters and yields at least one output character, so the first
    ``chars`` output characters come from the first ``chars * longest`` input characters, and whether a
    match starts there depends on the next ``longest`` characters only. A 32 MiB error page is scrubbed
    in milliseconds instead of seconds.
    """
    pattern, longest = _scrub_pattern(frozenset(secret for secret in secrets if secret))
    if pattern is None:
        return text[:chars]
    return pattern.sub("***", text[: (chars + 1) * longest])[:chars]


@functools.lru_cache(maxsize=16)
def _scrub_pattern(secrets: frozenset[str]) -> tuple[re.Pattern[str] | None, int]:
    """One case-insensitive pattern matching every form of every secret, longest secrets first, and the
    length of the longest text it can match (every part of it is bounded)."""
    alternatives, longest = [], 1
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= _MIN_SECRET_CHARS:
            chars = [_char_pattern(char) for char in secret]
            alternatives.append("".join(pattern for pattern, _ in chars))
            longest = max(longest, sum(length for _, length in chars))
        forms = sorted(secret_forms(secret), key=len, reverse=True)
        alternatives += [re.escape(form) for form in forms]
        longest = max([longest, *map(len, forms)])
    return (re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None), longest


def _char_pattern(char: str) -> tuple[str, int]:
    """Every form one character of a secret can be echoed in, as a regular expression (matched ignoring case).

    Per character, not per secret: an echo may encode some characters and not others (``quote`` keeps ``/``,
    a JSON encoder may write ``\\/``, an HTML page may use ``&#47;`` for one character and keep the rest).
    Returns the pattern and the length of the longest text it matches.
    """
    code = ord(char)
    literal = {
        char,
        html.escape(char),
        json.dumps(char)[1:-1],
        "".join(f"%{byte:02X}" for byte in char.encode()),  # URL encoding, either case of hex (IGNORECASE)
        "".join(f"\\u{unit:04X}" for unit in _utf16_units(code)),  # JSON, a pair beyond the BMP
        *_EXTRA_CHAR_FORMS.get(char, ()),
    }
    # HTML entities, with a bounded run of leading zeros so that every match has a known longest length.
    entities = {f"&#0{{0,{_ENTITY_ZEROS}}}{code};", f"&#x0{{0,{_ENTITY_ZEROS}}}{code:X};"}
    longest = max(*map(len, literal), len(f"&#{code};") + _ENTITY_ZEROS, len(f"&#x{code:X};") + _ENTITY_ZEROS)
    forms = sorted(map(re.escape, literal), key=len, reverse=True) + sorted(entities)
    return "(?:" + "|".join(forms) + ")", longest


def _utf16_units(code: int) -> tuple[int, ...]:
    """The UTF-16 code units of one code point: JSON's ``\\u`` escapes a character outside the BMP as a pair."""
    if code <= 0xFFFF:
        return (code,)
    code -= 0x10000
    return (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))


#: Forms of a character that neither ``html.escape`` nor ``json.dumps`` produce, but other encoders do.
_EXTRA_CHAR_FORMS: Final = {"/": ("\\/",), " ": ("+",), "'": ("&apos;",)}

#: Leading zeros matched in an HTML numeric entity (``&#00047;``): bounded, so that matches have a longest length.
_ENTITY_ZEROS: Final = 4


def secret_forms(secret: str) -> set[str]:
    """The encodings of ``secret`` that :func:`_char_pattern` cannot describe character by character:
    base64 (of the secret and of its URL encoding, as HTTP Basic sends it)."""
    url_encoded = quote(secret, safe="")
    forms: set[str] = set()
    for plain in (secret, url_encoded):  # HTTP Basic encodes the url-encoded secret
        forms |= _base64_cores(plain.encode())
    return {form for form in forms if len(form) >= _MIN_SECRET_CHARS}


def _base64_cores(raw: bytes) -> set[str]:
    """The base64 characters that depend on ``raw`` alone, for each of its three alignments in a longer text.

    base64 maps 3 bytes to 4 characters, so the encoding of a secret inside ``user:secret`` depends on where
    it starts; the characters fully determined by the secret's bits are the same for a given alignment.
    """
    cores = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        first = -(-8 * shift // 6)  # first character made only of the secret's bits
        last = (8 * (shift + len(raw))) // 6  # characters after this one mix in what follows the secret
        cores.add(encoded[first:last])
    return cores


def detail_from_body(body: str | bytes | None, secrets: Iterable[str] = ()) -> str:
    """The server's explanation, scrubbed of ``secrets`` then shortened: FastAPI's ``detail`` (string or
    validation list), Keycloak's ``error_description``, or the start of the raw body."""
    if not body:
        return ""
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):
        return _shorten(scrub_head(" ".join(raw.split()), secrets, MAX_DETAIL_CHARS + 1))
    return _shorten(scrub_head(_detail_from_json(payload), secrets, MAX_DETAIL_CHARS + 1))


def _detail_from_json(payload: Any) -> str:
    if isinstance(payload, dict):
        detail = payload.get("detail")
        if isinstance(detail, list):
            return "; ".join(_validation_item(item) for item in detail)
        if detail is not None:
            return _as_text(detail)
        if "error" in payload:
            description = payload.get("error_description")
            error = _as_text(payload["error"])
            return f"{error}: {_as_text(description)}" if description else error
    return _as_text(payload)


def _validation_item(item: Any) -> str:
    """``{"loc": ["query", "limit"], "msg": "..."}`` -> ``query.limit: ...``."""
    if not isinstance(item, dict):
        return _as_text(item)
    loc = ".".join(_as_text(part) for part in item.get("loc") or [])
    msg = _as_text(item.get("msg") or item.get("type") or item)
    return f"{loc}: {msg}" if loc else msg


def _as_text(value: Any) -> str:
    """A JSON value as text: strings as they are, anything else as JSON.

    Never ``str()``: a Python repr escapes quotes in a form :func:`scrub` does not know, so a secret holding
    both ``'`` and ``"`` would survive it; JSON's escaping is one of the forms it scrubs.
    """
    return value if isinstance(value, str) else json.dumps(value)


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 1] + "…"


def api_error(
    status: int, method: str, path: str, body: str | bytes | None, *, conn_id: str, secrets: Iterable[str] = ()
) -> EcoinventApiError:
    """The exception for a non-retryable error answer of the API."""
    detail = detail_from_body(body, secrets)
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
    url: str | None = None,
) -> EcoinventRetriesExhaustedError:
    """The exception for a transient failure that outlived the retry budget; ``url`` names the server
    (without user-info or query), so that a call to a default host says which host that was."""
    cls = EcoinventRateLimitError if status == 429 else EcoinventRetriesExhaustedError
    what = "kept rate-limiting (429)" if status == 429 else f"kept failing ({reason})"
    # 429s are retried for a time, not a number of attempts (see retry.RetryPolicy): name the knob that applies.
    knob = "rate_limit_budget' (seconds)" if status == 429 else "max_retries'"
    at = f" at {origin(url)}" if url else ""
    message = (
        f"{service} {what} {method} {path}{at} (connection {conn_id!r}) after {attempts} attempts "
        f"in {elapsed:.1f} s; retry later or raise the connection's '{knob}."
    )
    return cls(message, status_code=status, method=method, path=path, detail=reason)


def token_error(
    status: int,
    body: str | bytes | None,
    *,
    conn_id: str,
    token_url: str,
    secrets: Iterable[str] = (),
    location: str | None = None,
) -> EcoinventAuthError:
    """The exception for a token endpoint that refused the exchange (3xx, 4xx); echoed secrets are scrubbed."""
    detail = detail_from_body(body, secrets)
    code = _keycloak_error_code(body)
    if 300 <= status < 400:
        target = redirect_target(location)
        message = (
            f"The token endpoint {redact_url(token_url)} answered with a redirect ({status}){target} "
            f"for connection {conn_id!r}; redirects are not followed, since the request carries the client secret: "
            "set the extra 'token_url' to the token endpoint itself."
        )
    elif code in CREDENTIAL_ERRORS:
        message = (
            f"The token endpoint rejected the client id or secret of connection {conn_id!r} "
            f"({status} {code}): check the connection's login (client id) and password (client secret)."
        )
    else:
        message = (
            f"The token endpoint {redact_url(token_url)} refused the client-credentials exchange for connection "
            f"{conn_id!r} ({status}): {detail or 'no explanation given'}."
        )
    return EcoinventAuthError(message)


def _keycloak_error_code(body: str | bytes | None) -> str | None:
    try:
        payload = json.loads(body or b"")
    except (ValueError, RecursionError):
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
    location: str | None = None,
) -> str | Retryable:
    """What an API answer's status means, for both transports (the hook's and the trigger's).

    2xx: :data:`SUCCESS`. A first 401: :data:`RENEW_TOKEN` (get a new token, repeat once). 429 and 5xx:
    :class:`Retryable`. Anything else, or a second 401: raised at once. A redirect (3xx, its ``location``)
    is never followed by either transport: it is an error naming where it pointed.

    :raises EcoinventAuthError: a freshly issued token was refused too.
    :raises EcoinventApiError: 3xx, 400, 403, 404, 422 and other statuses retrying cannot fix.
    """
    if 200 <= status < 300:
        return SUCCESS
    if 300 <= status < 400:
        raise redirect_error(status, method, path, location, conn_id=conn_id)
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


def repeated_401_error(method: str, path: str, *, conn_id: str, answers: int) -> EcoinventAuthError:
    """401 to every token a call tried, none of them issued for it (each taken from the process's cache):
    tokens die between being issued and being read, which is not the same as a client the API refuses."""
    return EcoinventAuthError(
        f"The ecoinvent API answered 401 to {method} {path} {answers} times in a row (connection {conn_id!r}), "
        "each time to a token shared with other calls and renewed since: tokens are revoked or expire before "
        "they are used (check the token lifetime the token endpoint grants)."
    )


def decode_json_body(status: int, body: bytes, *, method: str, path: str, conn_id: str, secrets: Iterable[str]) -> Any:
    """The parsed JSON of a successful answer (``None`` for an empty body).

    :raises EcoinventApiError: the body is not JSON, which usually means the host or prefix points at
        something other than the API (a proxy or portal page).
    """
    if not body:
        return None
    try:
        return decode(body)
    except RecursionError:
        raise EcoinventApiError(
            f"ecoinvent API answered {status} to {method} {path} with JSON nested too deeply to read "
            f"(connection {conn_id!r}): check the connection's host and 'api_prefix'.",
            status_code=status,
            method=method,
            path=path,
        ) from None
    except ValueError:
        raise EcoinventApiError(
            f"ecoinvent API answered {status} to {method} {path} with a body that is not "
            f"JSON (connection {conn_id!r}): check the connection's host and 'api_prefix'.",
            status_code=status,
            method=method,
            path=path,
            # The whole body is scrubbed, then cut: scrubbing only a window lets a secret echoed across its edge
            # (or pulled into the kept part by earlier replacements) survive. The body is already size-capped.
            detail=scrub_head(body.decode("utf-8", "replace"), secrets, 200),
        ) from None


class Failure(NamedTuple):
    """One failed attempt, as either transport saw it: enough to decide on a retry and to explain giving up."""

    method: str
    url: str
    path: str
    reason: str
    conn_id: str
    service: str = "ecoinvent API"
    status: int | None = None
    retry_after: str | None = None
    #: Set when the host refused the connection or does not resolve (see ``network.unreachable_reason``).
    unreachable: Unreachable | None = None


def next_delay_or_raise(budget: RetryBudget, failure: Failure) -> float:
    """Seconds to wait before the next attempt, for both transports; raises when the call should stop.

    Transient failures are retried within the budget. A refused connection or an unknown host is retried
    once at most (a restarting service), then fails with a message naming ``scheme://host:port``.

    :raises EcoinventUnreachableError: the host refused or did not resolve, again.
    :raises EcoinventRetriesExhaustedError: the budget is spent (``EcoinventRateLimitError`` for 429).
    """
    rate_limited = failure.status == 429
    delay = (
        None
        if give_up_now(failure.unreachable, budget.retries)
        else budget.next_delay(failure.retry_after, rate_limited=rate_limited)
    )
    if delay is not None:
        return delay
    if failure.unreachable is not None:
        raise unreachable_error(
            failure.url,
            failure.unreachable,
            failure.method,
            conn_id=failure.conn_id,
            attempts=budget.attempts,
            service=failure.service,
        )
    raise retries_exhausted(
        failure.method,
        failure.path,
        conn_id=failure.conn_id,
        attempts=budget.attempts,
        elapsed=budget.elapsed,
        reason=failure.reason,
        status=failure.status,
        service=failure.service,
        url=failure.url,
    )


def retry_log_args(failure: Failure, budget: RetryBudget, delay: float) -> tuple[object, ...]:
    """Arguments of :data:`RETRY_LOG_FORMAT`: the same retry line from both transports.

    A failure's retry is counted against ``max_retries``; a 429's against the time left of the call's
    ``rate_limit_budget`` (so that "retry 9 of 5" never appears).
    """
    if failure.status == 429:
        left = max(0.0, budget.policy.rate_limit_budget - budget.elapsed)
        count = f"retry {budget.rate_limited} within the rate-limit budget ({left:.0f} s left)"
    else:
        count = f"retry {budget.retries} of {budget.policy.max_retries}"
    # A 429's "Retry-After: 0" is not obeyed (it would meet the same full gateway): the line must not claim so.
    ignored = failure.status == 429 and not parse_retry_after(failure.retry_after)
    asked = bool(failure.retry_after) and not ignored
    return (failure.method, failure.path, failure.reason, count, delay, " as Retry-After asks" if asked else "")


RETRY_LOG_FORMAT: Final = "%s %s failed (%s); %s in %.2f s%s."
