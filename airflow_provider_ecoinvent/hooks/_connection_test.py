"""What the hook's connection test does and says: a token, then one cheap call, within Airflow's own test timeout.

Airflow's Test button gives up after about ten seconds and shows only the message, so the test runs with
short limits (:data:`CONNECTION_TEST_TIMEOUT`, :data:`CONNECTION_TEST_POLICY`) and turns each failure into a
sentence naming what to check. It uses only the hook's public surface (:class:`ConnectionUnderTest`); the
hook makes the limited copy of itself that the test runs on (``EcoinventHook.test_connection``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol

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
    from airflow_provider_ecoinvent.versions import EcoinventVersion

#: Per-attempt read timeout and retries of ``test_connection``: Airflow's connection test gives up after ~10 s.
CONNECTION_TEST_TIMEOUT: Final = 3.0
CONNECTION_TEST_POLICY: Final = RetryPolicy(
    max_retries=1, backoff_max=1.0, retry_after_max=1.0, total_max=2.0, rate_limit_budget=2.0
)


class ConnectionUnderTest(Protocol):
    """The public surface of ``EcoinventHook`` the connection test uses: a token, then one cheap call."""

    def get_access_token(self) -> str:
        """A valid access token (the cache's, or a new client-credentials exchange)."""

    def get_versions(self) -> list[EcoinventVersion]:
        """The database versions the licence covers (``GET /versions``)."""


def unreadable_connection(conn_id: str, err: Exception) -> str:
    """What the connection test says when the connection cannot be read: an invalid one explains itself."""
    if isinstance(err, EcoinventConfigError):
        return str(err)
    return f"Could not read connection {conn_id!r}: {type(err).__name__}: {err}"


def check_token_and_call(hook: ConnectionUnderTest, settings: EcoinventSettings) -> tuple[bool, str]:
    """Get a token, then make one cheap authenticated call: never raises, the message says what failed.

    ``hook`` is the connection-test copy of the hook (short timeouts, one retry); ``settings`` are its own.
    """
    import requests

    token_url = redact_url(settings.token_url)
    try:
        hook.get_access_token()
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


__all__ = [
    "CONNECTION_TEST_POLICY",
    "CONNECTION_TEST_TIMEOUT",
    "ConnectionUnderTest",
    "check_token_and_call",
    "unreadable_connection",
]
