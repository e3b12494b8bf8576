"""The network as both transports meet it: who they say they are, and which failures are worth a retry.

A refused connection or an unknown host is a configuration problem that no number of retries fixes; a
failed TLS handshake is either an untrusted certificate or a server that does not speak TLS; a timeout or
an answer cut short is retried. Each transport hands its own exception here and gets back the same
decision and the same words, and sends the same headers (:func:`default_headers`), so that the worker
and the triggerer cannot be told apart by anything but the HTTP library they name.
"""

from __future__ import annotations

import socket
import ssl
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import urlsplit

from airflow_provider_ecoinvent import __version__
from airflow_provider_ecoinvent._client.safety import origin
from airflow_provider_ecoinvent._client.trust import CA_BUNDLE_ENV_VARS
from airflow_provider_ecoinvent.exceptions import EcoinventApiError, EcoinventUnreachableError

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Connections each transport keeps open per host: the most concurrent calls one hook or client may make.
POOL_SIZE: Final = 32

#: Why a connection could not be made: failures a retry cannot fix for a configured host.
Unreachable = Literal["connection refused", "host name does not resolve"]


def user_agent(http_client: str) -> str:
    """The ``User-Agent`` of both transports: the provider, Airflow, ``http_client`` (e.g.
    ``python-requests/2.32.3``, the transport's library and version) and Python, so an API operator can tell
    which provider release and which path (worker or triggerer) made a call."""
    import platform

    try:
        from airflow import __version__ as airflow_version
    except ImportError:  # pragma: no cover - Airflow is always installed with the provider
        airflow_version = "unknown"
    return (
        f"airflow-provider-ecoinvent/{__version__} apache-airflow/{airflow_version} "
        f"{http_client} Python/{platform.python_version()}"
    )


def default_headers(http_client: str) -> dict[str, str]:
    """The headers every call of both transports carries (``http_client``: see :func:`user_agent`)."""
    return {"User-Agent": user_agent(http_client), "Accept": "application/json"}


def describe_network_error(
    err: BaseException, *, timeouts: tuple[type[BaseException], ...], cut_short: tuple[type[BaseException], ...]
) -> str:
    """A short, secret-free reason for a network failure (no URL, no headers), in the same words for both
    transports: each names its own exception classes for a timeout and for an answer cut short."""
    if isinstance(err, timeouts):
        return "timed out"
    if isinstance(err, cut_short):
        return "connection dropped mid-response"
    return f"connection error ({type(err).__name__})"


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
