"""The requests side of the sync hook: its session's parts, network error reasons, masking, cancellation.

What only the requests transport needs (the async client has its httpx counterparts); the hook's module
keeps the hook itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_ecoinvent import __version__
from airflow_provider_ecoinvent.exceptions import EcoinventError

if TYPE_CHECKING:
    import threading

    import requests


def keep_authorization_header(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """Session auth that changes nothing; its presence stops requests from applying ``.netrc`` credentials."""
    return request


def transient_network_errors() -> tuple[type[Exception], ...]:
    """Network failures worth retrying: refused or reset connections, timeouts, bodies cut short."""
    import requests

    return (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def stop_if_cancelled(cancel: threading.Event | None, method: str, path: str) -> None:
    """No further attempt once the run a call belongs to is stopped: a retried scored call is billed."""
    if cancel is not None and cancel.is_set():
        raise EcoinventError(f"{method} {path} abandoned: the run it belonged to was stopped.")


def describe_network_error(err: Exception) -> str:
    """A short, secret-free reason for a network failure (no URL, no headers)."""
    import requests

    if isinstance(err, requests.Timeout):
        return "timed out"
    if isinstance(err, requests.exceptions.ChunkedEncodingError):
        return "connection dropped mid-response"
    return f"connection error ({type(err).__name__})"


def _path_of(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path or "/"


def mask(value: str) -> None:
    """Register a token with Airflow's secret masker (a no-op where no masker is configured)."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - Task SDK always present on supported Airflow
        return
    mask_secret(value)


def user_agent() -> str:
    import platform

    import requests

    try:
        from airflow import __version__ as airflow_version
    except ImportError:  # pragma: no cover
        airflow_version = "unknown"
    return (
        f"airflow-provider-ecoinvent/{__version__} apache-airflow/{airflow_version} "
        f"python-requests/{requests.__version__} Python/{platform.python_version()}"
    )


__all__ = [
    "describe_network_error",
    "keep_authorization_header",
    "mask",
    "stop_if_cancelled",
    "transient_network_errors",
    "user_agent",
]
