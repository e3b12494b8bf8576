"""The hook's connection test: a token, then one cheap call, within Airflow's own test timeout."""

from __future__ import annotations

import copy
import dataclasses
import threading
from typing import TYPE_CHECKING, Final

from airflow_provider_ecoinvent._client.retry import RetryPolicy
from airflow_provider_ecoinvent._client.safety import redact_url
from airflow_provider_ecoinvent.exceptions import (
    EcoinventApiError,
    EcoinventAuthError,
    EcoinventConfigError,
    EcoinventError,
    EcoinventRetriesExhaustedError,
    EcoinventUnreachableError,
)
from airflow_provider_ecoinvent.versions import newest

if TYPE_CHECKING:
    from airflow_provider_ecoinvent.connection import EcoinventSettings
    from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

#: Per-attempt read timeout and retries of ``test_connection``: Airflow's connection test gives up after ~10 s.
CONNECTION_TEST_TIMEOUT: Final = 3.0
CONNECTION_TEST_POLICY: Final = RetryPolicy(
    max_retries=1, backoff_max=1.0, retry_after_max=1.0, total_max=2.0, rate_limit_budget=2.0
)


def run_connection_test(hook: EcoinventHook) -> tuple[bool, str]:
    """:meth:`EcoinventHook.test_connection`: never raises, the message says what failed."""
    try:
        settings = hook.settings
    except EcoinventConfigError as err:
        return False, str(err)
    except Exception as err:
        return False, f"Could not read connection {hook.ecoinvent_conn_id!r}: {type(err).__name__}: {err}"
    limited = _with_connection_test_limits(hook, settings)
    try:
        return _test_token_and_call(limited, settings)
    finally:
        with hook._counter_lock:  # the calls were made on this hook's behalf
            hook.api_calls += limited.api_calls
            hook.token_requests += limited.token_requests


def _with_connection_test_limits(hook: EcoinventHook, settings: EcoinventSettings) -> EcoinventHook:
    """A private copy of ``hook`` with short timeouts and at most one retry, for ``test_connection``.

    A copy, not a temporary change of the hook's settings: the hook may be shared with other threads,
    which must keep its own timeouts and retries meanwhile. The copy shares the session, the token
    cache and the time sources (``_sleep``, ``_clock``); it counts its calls from zero, and
    ``test_connection`` adds them to the hook's counters.
    """
    limited = copy.copy(hook)
    limited.__dict__["settings"] = dataclasses.replace(settings, timeout=min(settings.timeout, CONNECTION_TEST_TIMEOUT))
    policy = hook.retry_policy
    limited.__dict__["retry_policy"] = dataclasses.replace(
        CONNECTION_TEST_POLICY,
        max_retries=min(CONNECTION_TEST_POLICY.max_retries, policy.max_retries),
        rate_limit_budget=min(CONNECTION_TEST_POLICY.rate_limit_budget, policy.rate_limit_budget),
    )
    limited._counter_lock = threading.Lock()
    limited.api_calls = limited.token_requests = 0
    return limited


def _test_token_and_call(hook: EcoinventHook, settings: EcoinventSettings) -> tuple[bool, str]:
    import requests

    token_url = redact_url(settings.token_url)
    try:
        hook._token_cache.get(hook._token_key, hook._fetch_token)
    except EcoinventAuthError as err:
        return False, str(err)
    except EcoinventUnreachableError as err:
        return False, f"Token URL {token_url} unreachable: {err}"
    except EcoinventRetriesExhaustedError as err:
        return False, f"Token URL {token_url} unreachable or failing: {err}"
    except EcoinventError as err:
        return False, f"Could not get a token from {token_url}: {err}"
    except requests.RequestException as err:
        return False, f"Token URL {token_url} unreachable: {type(err).__name__}."
    try:
        versions = hook.get_versions()
    except EcoinventApiError as err:
        if err.status_code == 404:
            return False, (
                f"Token obtained, but GET {settings.api_prefix}/versions on {redact_url(settings.api_url)} "
                "answered 404: check the connection's host and 'api_prefix'."
            )
        return False, f"Token obtained, but the API call failed: {err}"
    except EcoinventError as err:
        return False, f"Token obtained, but the API call failed: {err}"
    except requests.RequestException as err:
        return (
            False,
            f"Token obtained, but API host {redact_url(settings.api_url)} unreachable: {type(err).__name__}.",
        )
    latest = newest(versions)
    return True, (
        f"Connected to {settings.base_api_url} as client {settings.client_id!r}: "
        f"{len(versions)} versions licensed" + (f", latest {latest.name}." if latest else ".")
    )


__all__ = ["CONNECTION_TEST_POLICY", "CONNECTION_TEST_TIMEOUT", "run_connection_test"]
