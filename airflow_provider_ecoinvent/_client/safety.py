"""Request safety, for both transports: where a call may go, what a redirect means, how much may be read.

The bearer token goes with every API call, so what decides its destination is written once here and
shared by the worker path (``requests``) and the triggerer path (``httpx``): which API paths may be called
(never out of the API prefix, never with a query string hidden in the path), how a redirect is reported
(never followed), how large an answer may grow before reading stops, and how a URL is shown in a message
(never with user-info or a query string).
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote, urlsplit

from airflow_provider_ecoinvent.exceptions import EcoinventApiError, EcoinventConfigError

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

#: Bytes both transports read from an answer at a time (the size limit is checked after each).
CHUNK_BYTES: Final = 64 * 1024


class CappedBody:
    """Collects an answer's body and stops past ``limit`` bytes, so a huge answer is never held whole.

    Both transports stream the body into :meth:`add`, :data:`CHUNK_BYTES` at a time, after :meth:`check_length`
    has looked at ``Content-Length``; a body their HTTP library cannot decode is reported by :meth:`undecodable`.
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

    def undecodable(self, encoding: str | None) -> EcoinventApiError:
        """The error for an answer whose ``Content-Encoding`` (``encoding``) does not match its body (e.g.
        marked gzip but not gzip).

        Not retried: what mangles bodies is nearly always a proxy or gateway on the way, and it does so every
        time; repeating the call would only repeat a (possibly billed) request for the same broken answer.
        """
        method, path, conn_id = self._where
        marked = f"marked {encoding.strip()!r}" if encoding and encoding.strip() else "compressed"
        return EcoinventApiError(
            f"The answer to {method} {path} (connection {conn_id!r}) is {marked} but its body cannot be decoded; "
            "not retried: a proxy or gateway between Airflow and the API is probably altering answers. Check "
            "your proxy settings (HTTPS_PROXY, NO_PROXY) and the connection's host and 'api_prefix'.",
            status_code=None,
            method=method,
            path=path,
        )

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
