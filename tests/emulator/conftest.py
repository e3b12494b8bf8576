"""Fixtures for the emulator's own tests: real HTTP over loopback with ``requests``, no mocks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_ecoinvent.emulator.testing import (  # noqa: F401
    ecoinvent_connection_env,
    ecoinvent_emulator,
    ecoinvent_emulator_factory,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_provider_ecoinvent.emulator import EmulatorServer


class Api:
    """A minimal client: one pooled session, a token fetched up front, paths relative to the prefix."""

    def __init__(self, emulator: EmulatorServer, session: requests.Session | None = None) -> None:
        self.emulator = emulator
        self.session = session or requests.Session()
        self.session.trust_env = False  # no proxy for loopback, whatever the environment says
        self.token = self.fetch_token()
        self.session.headers["Authorization"] = f"Bearer {self.token}"

    def fetch_token(self, **form: str) -> str:
        data = {
            "grant_type": "client_credentials",
            "client_id": self.emulator.client_id,
            "client_secret": self.emulator.client_secret,
            **form,
        }
        response = self.session.post(self.emulator.token_url, data=data, timeout=10)
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.session.get(self.emulator.api_url + path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.session.post(self.emulator.api_url + path, **kwargs)

    def batch(self, dataset_ids: list[int], indicator_ids: list[int] | None = None, **kwargs: Any) -> requests.Response:
        body: dict[str, Any] = {"dataset_ids": dataset_ids}
        if indicator_ids is not None:
            body["indicator_ids"] = indicator_ids
        return self.post("/datasets/batch", json=body, **kwargs)

    def close(self) -> None:
        self.session.close()


@pytest.fixture
def make_api() -> Iterator[Callable[..., Api]]:
    """``make_api(emulator, session=None)``: an ``Api`` for another emulator; closed after the test."""
    clients: list[Api] = []

    def factory(emulator: EmulatorServer, session: requests.Session | None = None) -> Api:
        client = Api(emulator, session)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def api(ecoinvent_emulator: EmulatorServer, make_api: Callable[..., Api]) -> Api:  # noqa: F811 (a fixture)
    return make_api(ecoinvent_emulator)


@pytest.fixture
def plain_session() -> Iterator[requests.Session]:
    """A session without a token, for the token endpoint and auth failures."""
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()
