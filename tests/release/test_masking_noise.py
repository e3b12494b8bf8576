"""Reading our connections makes Airflow's secret masker neither warn nor forget a secret.

Airflow passes the whole extra dict to ``mask_secret`` each time it reads a connection
(``Connection.get_uri`` -> ``extra_dejson``), and the masker checks a string's length before it checks
whether its key is sensitive: any string extra under five characters logs "Skipping masking for a secret
as it's too short" in the task. These tests read connections exactly the way Airflow does, with the real
masker, and look at what it logged and what it redacts.
"""

from __future__ import annotations

import importlib
import json
import logging
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.emulator import EmulatorServer
from airflow_provider_ecoinvent.get_provider_info import CONN_FIELDS
from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import ModuleType

    from airflow_provider_ecoinvent.connection import EcoinventSettings

SHORT_SECRET_WARNING = "Skipping masking for a secret as it's too short"


def maskers() -> list[ModuleType]:
    """The secret maskers a connection read can reach: the Task SDK's and, on Airflow 3.1, where a
    connection from an environment variable is a core ``airflow.models.Connection``, the core one."""
    found = []
    for name in ("airflow.sdk._shared.secrets_masker", "airflow._shared.secrets_masker"):
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            continue
    return found


def redact(text: str) -> str:
    """``text`` as a task log would show it: through every masker that is in use."""
    for masker in maskers():
        text = masker.redact(text)
    return text


@pytest.fixture
def masker_log(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture the maskers' warnings (each warns once per process: the flag is reset for each test)."""
    for masker in maskers():
        monkeypatch.setattr(masker.SecretsMasker, "_has_warned_short_secret", False)
        caplog.set_level(logging.WARNING, logger=masker.SecretsMasker.__module__)
    return caplog


def short_secret_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if SHORT_SECRET_WARNING in r.getMessage()]


def read_like_airflow(monkeypatch: pytest.MonkeyPatch, conn_id: str, fields: Mapping[str, Any]) -> EcoinventSettings:
    """Define the connection the way users do (an ``AIRFLOW_CONN_`` variable) and read it through the hook:
    the Task SDK's secrets backends, its URI cache and masking, then the hook's own parsing."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
    return EcoinventHook(ecoinvent_conn_id=conn_id).settings


def form_connection() -> dict[str, Any]:
    """The connection the Airflow UI saves when a user fills in only the three fields they must."""
    extra = {name: field["schema"]["default"] for name, field in CONN_FIELDS.items() if "default" in field["schema"]}
    return {
        "conn_type": "ecoinvent",
        "host": "https://api.ecoinvent.org",
        "login": "my-client",
        "password": "form-client-secret",
        "extra": extra,
    }


def test_a_connection_made_in_the_form_reads_without_masking_warning(
    masker_log: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = read_like_airflow(monkeypatch, "ecoinvent_form", form_connection())
    assert short_secret_warnings(masker_log) == []
    assert (settings.api_prefix, settings.client_auth, settings.verify) == ("/v0", "body", True)
    assert redact("secret=form-client-secret") == "secret=***"


def test_the_emulator_connection_reads_without_masking_warning(
    masker_log: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    with EmulatorServer() as emulator:
        fields = emulator.connection_dict()
    assert read_like_airflow(monkeypatch, "ecoinvent_emulated", fields).api_prefix == "/v0"
    assert short_secret_warnings(masker_log) == []
    assert redact("client secret emulator-secret") == "client secret ***"


def test_a_custom_api_prefix_still_reaches_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    with EmulatorServer(api_prefix="/v3/api1") as emulator:
        fields = emulator.connection_dict()
    assert fields["extra"]["api_prefix"] == "/v3/api1"
    assert read_like_airflow(monkeypatch, "ecoinvent_custom_prefix", fields).api_prefix == "/v3/api1"


def test_the_check_sees_the_warning_when_a_short_extra_is_set(
    masker_log: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: a user who types the default ``/v0`` by hand still gets Airflow's warning (Airflow's
    behaviour, which a provider cannot change), so the two tests above would see one if we caused it."""
    read_like_airflow(monkeypatch, "ecoinvent_typed_default", {**form_connection(), "extra": {"api_prefix": "/v0"}})
    assert short_secret_warnings(masker_log) == ["Skipping masking for a secret as it's too short (<5 chars)"]


def test_sensitive_extras_are_still_masked(
    masker_log: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing was taken away from the masker: a sensitive-named extra is still redacted in logs."""
    token_url = "https://sso.example.com/realms/x/token-endpoint"
    read_like_airflow(
        monkeypatch, "ecoinvent_sensitive_extra", {**form_connection(), "extra": {"token_url": token_url}}
    )
    assert redact(f"posting to {token_url}") == "posting to ***"
    assert short_secret_warnings(masker_log) == []
