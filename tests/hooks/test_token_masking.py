"""Every access token is registered with Airflow's real secrets masker, on the sync and the async path.

Airflow's log handlers redact what the masker knows; a token it does not know would be printed in clear
by any log line, traceback or rendered template that happens to carry it. The tokens are read from the
emulator that issued them (test infrastructure), then run through the masker the task runtime uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_ecoinvent.hooks.async_client import EcoinventAsyncClient
from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

if TYPE_CHECKING:
    from airflow_provider_ecoinvent.emulator import EmulatorServer


def issued_tokens(emulator: EmulatorServer) -> list[str]:
    """The access tokens the emulator has issued so far, oldest first."""
    server = emulator._server
    assert server is not None
    return list(server.app.tokens._tokens)


def redacted(text: str) -> str:
    """``text`` as Airflow's secrets masker writes it (the redaction behind task logs and rendered fields)."""
    from airflow.sdk._shared.secrets_masker import _secrets_masker

    return str(_secrets_masker().redact(text))


def assert_masked_in_logs(token: str) -> None:
    assert redacted(f"Authorization: Bearer {token}") == "Authorization: Bearer ***"
    assert redacted(f"GET /v0/versions failed with token {token!r}") == "GET /v0/versions failed with token '***'"


def test_the_hooks_token_is_masked(ecoinvent_conn: EmulatorServer) -> None:
    EcoinventHook().get_versions()

    [token] = issued_tokens(ecoinvent_conn)
    assert_masked_in_logs(token)


async def test_the_async_clients_token_is_masked(ecoinvent_conn: EmulatorServer) -> None:
    async with EcoinventAsyncClient("ecoinvent_default") as client:
        await client.get_versions()

    [token] = issued_tokens(ecoinvent_conn)
    assert_masked_in_logs(token)


def test_a_renewed_token_is_masked_too(ecoinvent_conn: EmulatorServer) -> None:
    hook = EcoinventHook()
    hook.get_versions()
    ecoinvent_conn.revoke_tokens()  # the next call gets a 401 and renews its token
    hook.get_versions()

    first, renewed = issued_tokens(ecoinvent_conn)
    assert first != renewed
    assert_masked_in_logs(renewed)
