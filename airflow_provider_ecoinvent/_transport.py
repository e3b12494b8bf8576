"""Transport decisions shared by the sync hook (``requests``) and the async client (``httpx``).

Each transport only drives its own I/O; what to do with an answer or a failure is decided here once, so the
worker path and the triggerer path cannot drift apart: which API paths may be called, how a redirect is
reported, how large an answer may be, which network failures are worth retrying, which CA bundle is
trusted, and how a URL is shown in a message (never with user-info or a query string).
"""

from __future__ import annotations

import os
import re
import socket
import ssl
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import unquote, urlsplit

from airflow_provider_ecoinvent.exceptions import EcoinventApiError, EcoinventConfigError, EcoinventUnreachableError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_ecoinvent.connection import EcoinventSettings

#: Connections each transport keeps open per host: the most concurrent calls one hook or client may make.
POOL_SIZE: Final = 32

#: Environment variables naming a CA bundle, in the order they are honoured when the connection names none:
#: ``requests``' two variables first (what Airflow workers are usually configured with), then OpenSSL's.
CA_BUNDLE_ENV_VARS: Final = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")

_USER_INFO: Final = re.compile(r"(?<=//)[^/?#@\s]*@")
_CONTROL_CHARS: Final = re.compile(r"[\x00-\x1f\x7f]")
#: A query string, fragment or path parameter in an endpoint: its parameters belong in ``query=``.
_QUERY_MARKS: Final = re.compile(r"[?#;]")


# -- URLs and paths ---------------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """``url`` fit for a message: user-info replaced by ``***``, query string and fragment dropped.

    Works on malformed URLs too (it is used to report them).
    """
    text = _USER_INFO.sub("***@", url.strip())
    return re.split(r"[?#]", text, maxsplit=1)[0]


def origin(url: str) -> str:
    """``scheme://host:port`` of ``url`` (the default port written out), for "could not connect to ..."."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{host}:{port}"


def api_path(prefix: str, path: str) -> str:
    """The full path of an API call: ``prefix`` + ``/`` + ``path``, refusing a ``path`` that leaves the prefix.

    The bearer token goes with every call, so a path such as ``../_admin`` (or its percent-encoded
    ``%2e%2e`` form, or an absolute URL) must never be sent.

    :raises EcoinventConfigError: ``path`` escapes the prefix or is not a plain path.
    """
    return prefix + "/" + check_endpoint(path)


def check_endpoint(path: str) -> str:
    """``path`` without its leading slashes, once proven to stay under the API prefix.

    :raises EcoinventConfigError: a URL, a dot segment (plain or percent-encoded), a backslash or a control
        character.
    """
    relative = str(path).strip().lstrip("/")
    if _QUERY_MARKS.search(_fully_unquoted(relative)):
        raise EcoinventConfigError(
            f"endpoint {redact_url(str(path))!r} must not carry a query string, fragment or parameters ('?', "
            "'#' or ';', plain or percent-encoded): pass the parameters as query={...} (the argument of "
            "EcoinventHook.request and of EcoinventOperator). The path alone decides what a call is, and the "
            "cost guard counts the ids of query= and json=."
        )
    problem = path_problem(relative)
    if problem is None:
        return relative
    raise EcoinventConfigError(
        f"endpoint {redact_url(str(path))!r} {problem}: it must be a path under the API prefix such as "
        "'versions' or 'datasets/batch'; the host and prefix come from the connection."
    )


def path_problem(path: str) -> str | None:
    """Why ``path`` could leave the place it is meant to stay under, or ``None`` when it cannot.

    Shared by :func:`check_endpoint` and the connection's ``api_prefix``: the endpoint's promise to stay
    under the prefix holds only if the prefix itself holds no dot segment.
    """
    decoded = _fully_unquoted(path)
    segments = re.split(r"[/\\]", decoded)
    if "://" in decoded or decoded.startswith("//") or _CONTROL_CHARS.search(decoded):
        return "is a URL or holds control characters"
    if any(segment in (".", "..") for segment in segments) or "\\" in decoded:
        return "has '.' or '..' segments (plain or percent-encoded) or a backslash"
    if _QUERY_MARKS.search(decoded):
        return "holds '?', '#' or ';' (plain or percent-encoded)"
    return None


def _fully_unquoted(text: str) -> str:
    """Percent-decode until nothing changes (``%252e`` is ``%2e`` to a server that decodes twice)."""
    for _ in range(5):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def has_control_chars(value: str) -> bool:
    """Whether ``value`` holds a character that must never reach an HTTP header (CR, LF, NUL, ...)."""
    return bool(_CONTROL_CHARS.search(value))


# -- redirects --------------------------------------------------------------------------------------


def redirect_target(location: str | None) -> str:
    """Where a redirect pointed, for a message: the host only (a Location's query may carry signatures)."""
    where = urlsplit(location or "")
    return f" to host {where.hostname!r}" if where.hostname else (f" to {where.path!r}" if where.path else "")


def redirect_error(status: int, method: str, path: str, location: str | None, *, conn_id: str) -> EcoinventApiError:
    """A 3xx answer to an API call. Redirects are never followed: the token would go wherever they point."""
    target = redirect_target(location)
    return EcoinventApiError(
        f"ecoinvent API answered {status} (a redirect{target}) to {method} {path} (connection {conn_id!r}). "
        "Redirects are not followed, so that the access token goes nowhere else: set the connection's host "
        "and 'api_prefix' to where the API answers.",
        status_code=status,
        method=method,
        path=path,
    )


# -- answer size ------------------------------------------------------------------------------------


class CappedBody:
    """Collects an answer's body and stops past ``limit`` bytes, so a huge answer is never held whole.

    Both transports stream the body into :meth:`add` after :meth:`check_length` has looked at
    ``Content-Length``.
    """

    def __init__(self, limit: int, method: str, path: str, *, conn_id: str) -> None:
        self.limit = limit
        self._where = (method, path, conn_id)
        self._chunks: list[bytes] = []
        self._size = 0

    def check_length(self, content_length: str | None) -> None:
        """:raises EcoinventApiError: the declared length is already over the limit."""
        if content_length and content_length.strip().isdigit() and int(content_length) > self.limit:
            raise self._too_large(f"{int(content_length)} bytes")

    def add(self, chunk: bytes) -> None:
        """:raises EcoinventApiError: the body read so far is over the limit (reading stops there)."""
        self._size += len(chunk)
        if self._size > self.limit:
            raise self._too_large(f"more than {self.limit} bytes")
        self._chunks.append(chunk)

    @property
    def content(self) -> bytes:
        return b"".join(self._chunks)

    def _too_large(self, size: str) -> EcoinventApiError:
        method, path, conn_id = self._where
        return EcoinventApiError(
            f"The answer to {method} {path} (connection {conn_id!r}) is {size}, over the limit of "
            f"{self.limit} bytes; reading stopped. Raise the connection extra 'max_response_bytes' if this "
            "answer is expected, or check the connection's host and 'api_prefix'.",
            status_code=None,
            method=method,
            path=path,
        )


def undecodable_body_error(method: str, path: str, encoding: str | None, *, conn_id: str) -> EcoinventApiError:
    """An answer whose ``Content-Encoding`` does not match its body (e.g. marked gzip but not gzip).

    Not retried: what mangles bodies is nearly always a proxy or gateway on the way, and it does so every
    time; repeating the call would only repeat a (possibly billed) request for the same broken answer.
    """
    marked = f"marked {encoding.strip()!r}" if encoding and encoding.strip() else "compressed"
    return EcoinventApiError(
        f"The answer to {method} {path} (connection {conn_id!r}) is {marked} but its body cannot be decoded; "
        "not retried: a proxy or gateway between Airflow and the API is probably altering answers. Check "
        "your proxy settings (HTTPS_PROXY, NO_PROXY) and the connection's host and 'api_prefix'.",
        status_code=None,
        method=method,
        path=path,
    )


# -- network failures -------------------------------------------------------------------------------

#: Why a connection could not be made: failures a retry cannot fix for a configured host.
Unreachable = Literal["connection refused", "host name does not resolve"]


def _causes(err: BaseException) -> Iterator[BaseException]:
    """``err`` and everything it wraps: causes, contexts, urllib3's ``reason`` and exception arguments."""
    seen: set[int] = set()
    pending: list[BaseException] = [err]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending.extend(item for item in linked if isinstance(item, BaseException))


def unreachable_reason(err: BaseException) -> Unreachable | None:
    """Whether a network failure means the host refuses connections or does not exist (not worth retrying)."""
    for cause in _causes(err):
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):  # urllib3's NameResolutionError and httpcore wrap it
            return "host name does not resolve"
    return None


def give_up_now(unreachable: Unreachable | None, retries_done: int) -> bool:
    """A refused connection or an unknown host gets one retry (a restarting service), never more."""
    return unreachable is not None and retries_done >= 1


def unreachable_error(
    url: str, reason: Unreachable, method: str, *, conn_id: str, attempts: int, service: str
) -> EcoinventUnreachableError:
    """The error for a host that refused the connection or does not resolve; names where and what to check."""
    where = origin(url)
    check = (
        "the host name's spelling and your DNS or proxy settings (HTTPS_PROXY, NO_PROXY)"
        if reason == "host name does not resolve"
        else "the host and port, that the service runs there, and your proxy settings (HTTPS_PROXY, NO_PROXY)"
    )
    path = urlsplit(url).path or "/"
    return EcoinventUnreachableError(
        f"Could not connect to the {service} at {where} ({reason}) for {method} {path}, connection {conn_id!r}, "
        f"after {attempts} attempt{'s' if attempts != 1 else ''}: check {check}.",
        status_code=None,
        method=method,
        path=path,
        detail=reason,
    )


# -- TLS --------------------------------------------------------------------------------------------


def find_tls_error(err: BaseException) -> ssl.SSLError | None:
    """The TLS failure behind a transport error, if that is what it was."""
    return next((cause for cause in _causes(err) if isinstance(cause, ssl.SSLError)), None)


def tls_error(url: str, failure: BaseException, *, conn_id: str) -> EcoinventApiError:
    """A failed TLS handshake: a certificate the trusted CAs do not vouch for, or a server not speaking TLS."""
    where = origin(url)
    err = find_tls_error(failure) or ssl.SSLError(type(failure).__name__)
    if isinstance(err, ssl.SSLCertVerificationError):
        advice = (
            f"TLS verification failed for {where} (connection {conn_id!r}): {err.verify_message or 'untrusted'}. "
            "Set the connection extra 'verify' to the path of your CA bundle if the server uses a private CA "
            f"(or one of {', '.join(CA_BUNDLE_ENV_VARS)})."
        )
    else:
        advice = (
            f"TLS handshake with {where} failed (connection {conn_id!r}): {err.reason or type(err).__name__}. "
            "The server may not speak https on that port: if it serves plain http, write the scheme in the "
            "host, e.g. http://host:port."
        )
    return EcoinventApiError(advice, status_code=None, method="CONNECT", path=urlsplit(url).path or "/")


def trusted_cas(settings: EcoinventSettings) -> str | Literal[False]:
    """The CAs both transports verify servers against: a bundle file or a directory, or ``False`` for none.

    One decision for the worker and the triggerer: the connection extra ``verify`` (``false`` or a path)
    first, else the first of :data:`CA_BUNDLE_ENV_VARS` that is set, else certifi's bundle (the default of
    both ``requests`` and ``httpx``). A directory (OpenSSL's ``capath``: certificates named by their
    subject hash, as ``openssl rehash`` leaves them) is trusted as such by both. When neither the API nor
    the token endpoint is an ``https://`` URL there is nothing to verify, so no CA is looked up at all.

    :raises EcoinventConfigError: the chosen bundle does not exist (naming where it came from).
    """
    if settings.verify is False or not uses_tls(settings):
        return False
    if isinstance(settings.verify, str):
        return _existing_bundle(settings.verify, f"connection {settings.conn_id!r}: extra 'verify'")
    for name in CA_BUNDLE_ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            return _existing_bundle(value, f"environment variable {name}")
    import certifi

    return str(certifi.where())


def uses_tls(settings: EcoinventSettings) -> bool:
    """Whether the API or the token endpoint is reached over ``https://``."""
    return any(urlsplit(url).scheme.lower() == "https" for url in (settings.api_url, settings.token_url))


def tls_context(cas: str, *, conn_id: str) -> ssl.SSLContext:
    """An SSL context trusting ``cas`` (a :func:`trusted_cas` answer): a PEM bundle, or a ``capath`` directory.

    :raises EcoinventConfigError: the bundle or directory cannot be loaded.
    """
    try:
        if os.path.isdir(cas):
            return ssl.create_default_context(capath=cas)
        return ssl.create_default_context(cafile=cas)
    except (OSError, ssl.SSLError) as err:
        raise EcoinventConfigError(
            f"Connection {conn_id!r}: the CA bundle {cas!r} (extra 'verify' or the environment) "
            f"cannot be loaded ({type(err).__name__}): point it at a PEM file or a directory of hashed certificates."
        ) from None


def _existing_bundle(path: str, source: str) -> str:
    if not os.path.exists(path):
        raise EcoinventConfigError(
            f"{source[0].upper()}{source[1:]} names a CA bundle that does not exist: {path!r}. "
            "Point it at your CA bundle (a PEM file, or a directory of certificates prepared with "
            "'openssl rehash'), or remove it to use the default bundle."
        )
    return path
