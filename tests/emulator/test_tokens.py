"""The token endpoint (contract section 2) and bearer auth on API calls."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import requests

    from airflow_provider_ecoinvent.emulator import EmulatorServer
    from airflow_provider_ecoinvent.emulator.testing import EmulatorFactory

    from .conftest import Api


def test_token_success_has_the_keycloak_shape(ecoinvent_emulator: EmulatorServer, plain_session: requests.Session):
    response = plain_session.post(
        ecoinvent_emulator.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": ecoinvent_emulator.client_id,
            "client_secret": ecoinvent_emulator.client_secret,
        },
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert isinstance(body["expires_in"], int)
    assert body["refresh_expires_in"] == 0
    assert body["not-before-policy"] == 0
    assert body["scope"] == "profile email"
    assert "refresh_token" not in body
    assert body["access_token"].count(".") == 2


def test_token_via_basic_auth(ecoinvent_emulator: EmulatorServer, plain_session: requests.Session):
    response = plain_session.post(
        ecoinvent_emulator.token_url,
        data={"grant_type": "client_credentials"},
        auth=(ecoinvent_emulator.client_id, ecoinvent_emulator.client_secret),
    )
    assert response.status_code == 200
    token = response.json()["access_token"]
    versions = plain_session.get(ecoinvent_emulator.api_url + "/versions", headers={"Authorization": f"Bearer {token}"})
    assert versions.status_code == 200


def test_tokens_are_distinct(api: Api):
    assert api.fetch_token() != api.fetch_token()


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"client_id": "emulator-client", "client_secret": "emulator-secret"}, 400, "invalid_request"),
        (
            {"grant_type": "password", "client_id": "emulator-client", "client_secret": "emulator-secret"},
            400,
            "unsupported_grant_type",
        ),
        ({"grant_type": "client_credentials", "client_secret": "emulator-secret"}, 400, "invalid_client"),
        ({"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"}, 401, "invalid_client"),
        (
            {"grant_type": "client_credentials", "client_id": "emulator-client", "client_secret": "wrong"},
            401,
            "unauthorized_client",
        ),
        ({"grant_type": "client_credentials", "client_id": "emulator-client"}, 401, "unauthorized_client"),
    ],
    ids=["grant-missing", "grant-unsupported", "client-id-missing", "client-unknown", "secret-wrong", "secret-missing"],
)
def test_token_errors(
    ecoinvent_emulator: EmulatorServer,
    plain_session: requests.Session,
    form: dict[str, str],
    status: int,
    error: str,
):
    response = plain_session.post(ecoinvent_emulator.token_url, data=form)
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    assert body["error_description"]
    if status == 401:
        assert body["error_description"] == "Invalid client or Invalid client credentials"
    stats = ecoinvent_emulator.stats()
    assert stats["token_requests"] == 1
    assert stats["tokens_issued"] == 0
    assert stats["statuses"] == {str(status): 1}


def test_token_endpoint_rejects_get(ecoinvent_emulator: EmulatorServer, plain_session: requests.Session):
    assert plain_session.get(ecoinvent_emulator.token_url).status_code == 405


def test_extra_clients_get_tokens(ecoinvent_emulator_factory: EmulatorFactory, plain_session: requests.Session):
    emulator = ecoinvent_emulator_factory(extra_clients={"team-b": "b-secret"})
    response = plain_session.post(
        emulator.token_url,
        data={"grant_type": "client_credentials", "client_id": "team-b", "client_secret": "b-secret"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Not authenticated: missing bearer token"),
        ({"Authorization": "Basic abc"}, "Not authenticated: missing bearer token"),
        ({"Authorization": "Bearer not-a-token"}, "Invalid token"),
    ],
    ids=["no-header", "wrong-scheme", "unknown-token"],
)
def test_api_needs_a_valid_bearer_token(
    ecoinvent_emulator: EmulatorServer, plain_session: requests.Session, headers: dict[str, str], message: str
):
    response = plain_session.get(ecoinvent_emulator.api_url + "/versions", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": message}
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_token_really_expires(ecoinvent_emulator_factory: EmulatorFactory, plain_session: requests.Session):
    emulator = ecoinvent_emulator_factory(token_ttl=0.3)
    response = plain_session.post(
        emulator.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
        },
    )
    body = response.json()
    assert body["expires_in"] == 1  # an int, rounded up
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert plain_session.get(emulator.api_url + "/versions", headers=headers).status_code == 200
    time.sleep(0.35)
    expired = plain_session.get(emulator.api_url + "/versions", headers=headers)
    assert expired.status_code == 401
    assert expired.json() == {"detail": "Token expired"}


def test_revoke_tokens(ecoinvent_emulator: EmulatorServer, api: Api):
    assert api.get("/versions").status_code == 200
    ecoinvent_emulator.revoke_tokens()
    response = api.get("/versions")
    assert response.status_code == 401
    assert response.json() == {"detail": "Token revoked"}
    # A new token works.
    api.session.headers["Authorization"] = f"Bearer {api.fetch_token()}"
    assert api.get("/versions").status_code == 200


def test_wall_clock_shifts_do_not_expire_tokens(api: Api):
    """Client tests shift time with time-machine; the emulator's expiry uses the monotonic clock."""
    import datetime as dt

    import time_machine

    with time_machine.travel(dt.datetime(2099, 1, 1, tzinfo=dt.UTC)):
        assert api.get("/versions").status_code == 200
