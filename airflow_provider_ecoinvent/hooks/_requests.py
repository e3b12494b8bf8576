"""The requests side of the sync hook: its pooled session, its network failures, masking and cancellation.

What only the requests transport needs, kept apart from the hook so that the hook reads as the steps of a
call: the session (never following ``.netrc``, proxies read once per host), which requests exceptions are
retryable network failures (described in the words of ``_client.network``), registering tokens with the
secret masker, and the wait between attempts that ``stop()`` or a run's cancel event ends at once.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final, TypeVar
from urllib.parse import urlsplit

from airflow_provider_ecoinvent._client.call import Answer, Broken
from airflow_provider_ecoinvent._client.network import (
    POOL_SIZE,
    default_headers,
    describe_network_error,
    unreachable_reason,
)
from airflow_provider_ecoinvent.exceptions import EcoinventError

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

    import requests

    from airflow_provider_ecoinvent._client.call import ApiCall
    from airflow_provider_ecoinvent._client.concurrency import CallGate

#: The token an attempt carried (an ``AccessToken``), handed back with its outcome.
TokenT = TypeVar("TokenT")
#: How soon a retry wait notices stop() while it waits on a run's own cancel event (both can stop it).
_STOP_TICK: Final = 0.05


def new_session(verify: bool | str) -> requests.Session:
    """The hook's pooled HTTP session, trusting ``verify`` (``_client.trust.trusted_cas``)."""
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=POOL_SIZE)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update(default_headers(f"python-requests/{requests.__version__}"))
    session.verify = verify
    # A ~/.netrc entry for the host must not replace the bearer token: requests consults .netrc only when no
    # session auth is set (and on redirects, which are never followed: see EcoinventHook._exchange).
    session.auth = keep_authorization_header
    # Proxies from the environment still apply, read once per host (EnvironmentProxies) instead of requests
    # scanning the whole environment on every call (~240 us each). The CA bundle variables are read by
    # _client.trust.trusted_cas and .netrc is not wanted: nothing else of the environment is lost.
    session.trust_env = False
    return session


class EnvironmentProxies:
    """The environment's proxies for a URL (``HTTPS_PROXY``, ``NO_PROXY``...), as requests reads them with
    ``trust_env``, cached per scheme and host: pass the result as ``proxies=`` to a ``trust_env=False`` session."""

    def __init__(self) -> None:
        self._by_origin: dict[tuple[str, str], dict[str, str]] = {}

    def __call__(self, url: str) -> dict[str, str]:
        origin = urlsplit(url)[:2]
        proxies = self._by_origin.get(origin)
        if proxies is None:
            from requests.utils import get_environ_proxies

            proxies = self._by_origin[origin] = dict(get_environ_proxies(url))
        return proxies


def wait_unless_stopped(delay: float, stop: threading.Event, cancel: threading.Event | None) -> None:
    """Sleep ``delay`` seconds, waking at once when ``stop`` (the hook's) or ``cancel`` (the run's) is set.

    on_kill (through ``EcoinventHook.stop``) or a failed sibling batch (through ``cancel``): no waiting out a
    long Retry-After. With both events, the wait is sliced so that either wakes it within a tick.
    """
    if cancel is None:
        stop.wait(delay)
        return
    deadline = time.monotonic() + delay
    while not (stop.is_set() or cancel.is_set()):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        cancel.wait(min(remaining, _STOP_TICK))


def keep_authorization_header(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """Session auth that changes nothing; its presence stops requests from applying ``.netrc`` credentials."""
    return request


def transient_network_errors() -> tuple[type[Exception], ...]:
    """Network failures worth retrying: refused or reset connections, timeouts, bodies cut short."""
    import requests

    return (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def stop_if_requested(stopped: bool, method: str, path: str) -> None:
    """No further attempt once the run a call belongs to is stopped (``stopped``: the hook's
    ``_stop_requested``): a retried scored call is billed."""
    if stopped:
        raise _abandoned(method, path)


def _abandoned(method: str, path: str) -> EcoinventError:
    return EcoinventError(f"{method} {path} abandoned: the run it belonged to was stopped.")


def attempt_within(
    gate: CallGate,
    attempt: Callable[[], tuple[TokenT, Answer | Broken]],
    stopped: Callable[[], bool],
    call: ApiCall,
) -> tuple[TokenT, Answer | Broken]:
    """One attempt (its token and outcome) within the hook's calls in flight (:mod:`.._client.concurrency`).

    The attempt waits for a place within the gate's width, then reports its status to it, so a call retried
    after a 429 goes out at the lowered width. ``attempt`` takes its token only once it has the place: a
    token taken before a long wait could expire in the queue. ``stopped()`` ends the wait
    (:func:`stop_if_requested`).
    """
    ticket = gate.enter(stopped)
    if ticket is None:
        raise _abandoned(call.method, call.path)
    status = None
    try:
        token, outcome = attempt()
        status = outcome.status if isinstance(outcome, Answer) else None
    finally:
        gate.leave(ticket, status)
    return token, outcome


def network_failure(err: Exception) -> Broken:
    """A retryable requests failure (:func:`transient_network_errors`) as the call reads it, in the words
    both transports use (``_client.network.describe_network_error``)."""
    import requests

    reason = describe_network_error(
        err, timeouts=(requests.Timeout,), cut_short=(requests.exceptions.ChunkedEncodingError,)
    )
    return Broken(reason, unreachable_reason(err))


def mask(value: str) -> None:
    """Register a token with Airflow's secret masker (a no-op where no masker is configured)."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - Task SDK always present on supported Airflow
        return
    mask_secret(value)


__all__ = [
    "keep_authorization_header",
    "mask",
    "network_failure",
    "new_session",
    "stop_if_requested",
    "transient_network_errors",
    "wait_unless_stopped",
]
