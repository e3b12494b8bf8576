"""Turn an Airflow Connection into validated, typed settings for the ecoinvent client.

Both the worker-side hook and the triggerer-side async client read a connection, so the parsing lives
here once. Every check runs before any network call and names the connection id and the field, because
"401 Unauthorized" from a token server an hour into a run is a poor way to learn about a typo.

Field mapping (the same as the connection form):

* ``login`` = OAuth2 client id, ``password`` = client secret;
* ``host`` = API base URL (default ``https://api.ecoinvent.org``); a bare host name gets ``https://``
  unless the ``schema`` field says ``http``; ``port`` is appended when given;
* extras, all optional: see :data:`KNOWN_EXTRAS`.
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from airflow_provider_ecoinvent._client.constants import (
    DEFAULT_API_PREFIX,
    DEFAULT_API_URL,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RATE_LIMIT_BUDGET,
    DEFAULT_TIMEOUT,
    DEFAULT_TOKEN_URL,
    KNOWN_EXTRAS,
    MAX_BATCH_SIZE,
    MAX_RATE_LIMIT_BUDGET,
)
from airflow_provider_ecoinvent._client.safety import has_control_chars, path_problem, redact_url
from airflow_provider_ecoinvent.exceptions import EcoinventConfigError

log = logging.getLogger(__name__)

ClientAuth = Literal["body", "basic"]
_LEGACY_EXTRA_PREFIX: Final = "extra__ecoinvent__"
_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})
_WHITESPACE_OR_CONTROL: Final = re.compile(r"[\s\x00-\x1f\x7f]")


@dataclass(frozen=True)
class EcoinventSettings:
    """Validated connection settings. The secret is kept out of ``repr`` and ``str``."""

    conn_id: str
    client_id: str
    client_secret: str = field(repr=False)
    api_url: str = DEFAULT_API_URL
    token_url: str = DEFAULT_TOKEN_URL
    api_prefix: str = DEFAULT_API_PREFIX
    client_auth: ClientAuth = "body"
    user_id: str | None = None
    organization_id: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    rate_limit_budget: float = DEFAULT_RATE_LIMIT_BUDGET
    batch_size: int = DEFAULT_BATCH_SIZE
    verify: bool | str = True
    allow_insecure_http: bool = False
    max_unique_datasets: int | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_unique_indicators: int | None = None

    @property
    def base_api_url(self) -> str:
        """API base URL with the prefix, without a trailing slash: ``https://api.ecoinvent.org/v0``."""
        return self.api_url + self.api_prefix

    @property
    def timeouts(self) -> tuple[float, float]:
        """``(connect, read)`` timeouts for ``requests``: connecting never waits longer than reading."""
        return (min(DEFAULT_CONNECT_TIMEOUT, self.timeout), self.timeout)

    @property
    def usage_headers(self) -> dict[str, str]:
        """``X-User-Id`` / ``X-Organization-Id`` headers, which the licence uses to count users."""
        headers = {}
        if self.user_id:
            headers["X-User-Id"] = self.user_id
        if self.organization_id:
            headers["X-Organization-Id"] = self.organization_id
        return headers


def settings_from_connection(conn: Any, extra: Mapping[str, Any] | None = None) -> EcoinventSettings:
    """Validate an Airflow ``Connection`` (any object with its attributes) into :class:`EcoinventSettings`.

    :param conn: the connection; ``conn.extra_dejson`` is read unless ``extra`` is given (the async
        path passes the extra it read without blocking the event loop).
    :raises EcoinventConfigError: naming the connection id and the faulty field.
    """
    conn_id = str(getattr(conn, "conn_id", None) or "<unnamed>")
    if extra is None:
        extra = conn.extra_dejson
    return parse_settings(
        conn_id=conn_id,
        host=getattr(conn, "host", None),
        login=getattr(conn, "login", None),
        password=getattr(conn, "password", None),
        schema=getattr(conn, "schema", None),
        port=getattr(conn, "port", None),
        extra=extra or {},
    )


def parse_settings(
    *,
    conn_id: str,
    host: str | None,
    login: str | None,
    password: str | None,
    extra: Mapping[str, Any],
    schema: str | None = None,
    port: int | None = None,
) -> EcoinventSettings:
    """Validate raw connection fields; see :func:`settings_from_connection`."""
    where = f"Connection {conn_id!r}"
    extra = _normalise_extra(extra)
    _warn_unknown_extras(conn_id, extra)

    client_id = (login or "").strip()
    if not client_id:
        raise EcoinventConfigError(f"{where}: the client id (field 'login') is empty; set it to your client id.")
    if not password:
        raise EcoinventConfigError(
            f"{where}: the client secret (field 'password') is empty; set it to your client secret."
        )

    allow_insecure_http = _boolean(where, extra, "allow_insecure_http", default=False)
    api_url = _api_url(where, host, schema, port)
    token_url = _url(where, "extra 'token_url'", str(extra.get("token_url") or DEFAULT_TOKEN_URL))
    for label, url in (("host", api_url), ("extra 'token_url'", token_url)):
        _refuse_plain_http(where, label, url, allow_insecure_http)

    return EcoinventSettings(
        conn_id=conn_id,
        client_id=client_id,
        client_secret=password,
        api_url=api_url,
        token_url=token_url,
        api_prefix=_api_prefix(where, extra.get("api_prefix")),
        client_auth=_client_auth(where, extra.get("client_auth")),
        user_id=header_value(where, "extra 'user_id'", _optional_text(where, extra, "user_id")),
        organization_id=header_value(where, "extra 'organization_id'", _optional_text(where, extra, "organization_id")),
        timeout=_positive_number(where, extra, "timeout", DEFAULT_TIMEOUT),
        max_retries=_integer(where, extra, "max_retries", DEFAULT_MAX_RETRIES, minimum=0, maximum=100),
        rate_limit_budget=_seconds_up_to(
            where, extra, "rate_limit_budget", DEFAULT_RATE_LIMIT_BUDGET, MAX_RATE_LIMIT_BUDGET
        ),
        batch_size=_integer(where, extra, "batch_size", DEFAULT_BATCH_SIZE, minimum=1, maximum=MAX_BATCH_SIZE),
        verify=_verify(where, extra.get("verify")),
        allow_insecure_http=allow_insecure_http,
        max_unique_datasets=_optional_integer(where, extra, "max_unique_datasets", minimum=0),
        max_response_bytes=_integer(
            where, extra, "max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES, minimum=1024, maximum=2**40
        ),
        max_unique_indicators=_optional_integer(where, extra, "max_unique_indicators", minimum=0),
    )


def header_value(where: str, label: str, value: str | None) -> str | None:
    """``value`` if it can be sent as an HTTP header value (``X-User-Id``, ``X-Organization-Id``).

    A CR or LF would split the request; the HTTP libraries refuse it only when the request is sent, after a
    token request (and the async client would retry it as a network failure), so it is refused here.

    :raises EcoinventConfigError: the value holds control characters.
    """
    if value is not None and has_control_chars(value):
        raise EcoinventConfigError(
            f"{where}: {label} holds control characters (such as a line break), which cannot be sent in an HTTP "
            f"header; remove them: {value!r}."
        )
    return value


def is_loopback_host(hostname: str | None) -> bool:
    """Whether ``hostname`` names this machine (``localhost``, 127.0.0.0/8 or ::1)."""
    if not hostname:
        return False
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def _normalise_extra(extra: Mapping[str, Any]) -> dict[str, Any]:
    """Drop empty form values and the legacy ``extra__ecoinvent__`` prefix of Airflow 2-era forms."""
    if not isinstance(extra, Mapping):
        raise EcoinventConfigError(f"The connection extra must be a JSON object, got {type(extra).__name__}.")
    normalised: dict[str, Any] = {}
    for key, value in extra.items():
        name = key.removeprefix(_LEGACY_EXTRA_PREFIX)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        normalised[name] = value.strip() if isinstance(value, str) else value
    return normalised


#: Extras whose misspelling must fail rather than warn: ignoring them silently turns the cost guard off.
GUARD_EXTRAS: Final = ("max_unique_datasets", "max_unique_indicators")


def _warn_unknown_extras(conn_id: str, extra: Mapping[str, Any]) -> None:
    """Warn about extras this provider ignores; refuse a near miss of a cost-guard extra.

    :raises EcoinventConfigError: an unknown extra that is a close match of a cost-guard key (a typo such
        as ``max_unique_dataset`` would otherwise leave the licence unguarded with only a warning).
    """
    unknown = sorted(set(extra) - set(KNOWN_EXTRAS))
    for key in unknown:
        close = difflib.get_close_matches(str(key).strip().lower(), GUARD_EXTRAS, n=1, cutoff=0.8)
        if close:
            raise EcoinventConfigError(
                f"Connection {conn_id!r}: extra {key!r} is not a known extra; did you mean {close[0]!r}? "
                "The cost guard would be off. Rename the key to turn it on."
            )
    if unknown:
        log.warning(
            "Connection %r has extra fields this provider does not know and ignores: %s. Known extras: %s.",
            conn_id,
            ", ".join(unknown),
            ", ".join(KNOWN_EXTRAS),
        )


def _api_url(where: str, host: str | None, schema: str | None, port: int | None) -> str:
    host = (host or "").strip()
    if not host:
        return DEFAULT_API_URL
    if "://" not in host:
        scheme = (schema or "https").strip().lower()
        if scheme not in ("http", "https"):
            # The schema field carries the URL scheme only; anything else is a mistake.
            raise EcoinventConfigError(
                f"{where}: field 'schema' must be 'http' or 'https' when the host has no scheme, got {schema!r}."
            )
        host = f"{scheme}://{host}"
        if port:
            host = f"{host}:{int(port)}"
    return _url(where, "host", host)


def _url(where: str, label: str, url: str) -> str:
    """``url`` checked and without a trailing slash.

    A malformed value is never echoed, not even in part: a secret pasted into the host field
    (``cid:<secret>``, ``api.example.org:<secret>``) reads as a port, and the message would carry it to the
    task log and to the UI's connection test. The message says which part is wrong instead.
    """
    problem = _url_problem(url.strip())
    if problem is not None:
        raise EcoinventConfigError(
            f"{where}: {label} is not a valid http:// or https:// URL: {problem} (the value is not shown, as it may "
            "hold a secret). Write it as https://host[:port] and put the client id and secret in login and password."
        )
    parts = urlsplit(url.strip())
    if parts.username or parts.password:
        raise EcoinventConfigError(
            f"{where}: {label} must not embed credentials; put the client id and secret in login and password."
        )
    return url.strip().rstrip("/")


def _url_problem(url: str) -> str | None:
    """What is wrong with ``url``, in words that quote none of it; ``None`` if it is a usable URL."""
    if _WHITESPACE_OR_CONTROL.search(url):
        return "it holds spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as err:
        if "port" in str(err).lower():
            return "the part after the host's ':' is not a port number from 0 to 65535"
        return "it cannot be parsed (check its brackets and punctuation)"
    if parts.scheme not in ("http", "https"):
        return "it must start with http:// or https://"
    if not parts.hostname:
        return "it has no host name"
    return None


def _refuse_plain_http(where: str, label: str, url: str, allowed: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme == "http" and not allowed and not is_loopback_host(parts.hostname):
        raise EcoinventConfigError(
            f"{where}: {label} {redact_url(url)!r} uses plain http:// to a host that is not this machine; the client "
            "secret and tokens would cross the network unencrypted. Use https://, or set the extra "
            "'allow_insecure_http' to true if this is deliberate (e.g. an emulator in another container)."
        )


def _api_prefix(where: str, value: Any) -> str:
    if value is None:
        return DEFAULT_API_PREFIX
    prefix = str(value).strip()
    if any(ch in prefix for ch in "?#: \t") or "//" in prefix:
        raise EcoinventConfigError(f"{where}: extra 'api_prefix' must be a URL path such as '/v0', got {value!r}.")
    problem = path_problem(prefix.lstrip("/"))
    if problem is not None:
        raise EcoinventConfigError(
            f"{where}: extra 'api_prefix' {problem}: it must be a plain URL path such as '/v0', got {value!r}."
        )
    prefix = "/" + prefix.strip("/")
    return "" if prefix == "/" else prefix


def _client_auth(where: str, value: Any) -> ClientAuth:
    mode = str(value or "body").strip().lower()
    if mode == "body":
        return "body"
    if mode == "basic":
        return "basic"
    raise EcoinventConfigError(f"{where}: extra 'client_auth' must be 'body' or 'basic', got {value!r}.")


def _optional_text(where: str, extra: Mapping[str, Any], key: str) -> str | None:
    value = extra.get(key)
    if value is None:
        return None
    if not isinstance(value, str | int):
        raise EcoinventConfigError(f"{where}: extra {key!r} must be a string, got {value!r}.")
    return str(value)


def _positive_number(where: str, extra: Mapping[str, Any], key: str, default: float) -> float:
    value = extra.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise EcoinventConfigError(f"{where}: extra {key!r} must be a positive number of seconds, got {value!r}.")
    return number


def _seconds_up_to(where: str, extra: Mapping[str, Any], key: str, default: float, maximum: float) -> float:
    """A number of seconds from 0 to ``maximum`` (0 is allowed: it turns the retries it bounds off)."""
    value = extra.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not 0 <= number <= maximum:  # NaN fails the comparison too
        raise EcoinventConfigError(
            f"{where}: extra {key!r} must be a number of seconds from 0 to {maximum:g}, got {value!r}."
        )
    return number


def _integer(where: str, extra: Mapping[str, Any], key: str, default: int, *, minimum: int, maximum: int) -> int:
    value = extra.get(key, default)
    number = _as_int(value)
    if number is None or not minimum <= number <= maximum:
        raise EcoinventConfigError(
            f"{where}: extra {key!r} must be a whole number from {minimum} to {maximum}, got {value!r}."
        )
    return number


def _optional_integer(where: str, extra: Mapping[str, Any], key: str, *, minimum: int) -> int | None:
    if key not in extra:
        return None
    number = _as_int(extra[key])
    if number is None or number < minimum:
        raise EcoinventConfigError(f"{where}: extra {key!r} must be a whole number >= {minimum}, got {extra[key]!r}.")
    return number


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _boolean(where: str, extra: Mapping[str, Any], key: str, *, default: bool) -> bool:
    value = extra.get(key, default)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise EcoinventConfigError(f"{where}: extra {key!r} must be true or false, got {value!r}.")


def _verify(where: str, value: Any) -> bool | str:
    if value is None or isinstance(value, bool):
        return True if value is None else value
    text = str(value).strip()
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    # Anything else is a CA bundle path; its existence is checked where it is used (the worker may
    # have files the DAG processor does not).
    return text


#: What users import from here: the typed settings of a connection (``EcoinventHook.settings``) and the
#: function that reads them.
__all__ = ["EcoinventSettings", "settings_from_connection"]
