"""Pytest fixtures for the emulator.

Enable them with ``pytest_plugins = ["airflow_provider_ecoinvent.emulator.testing"]`` in the rootdir
``conftest.py`` (or import the fixture functions into a ``conftest.py``). No ``pytest11`` entry point is
registered on purpose: installing the provider must not add fixtures to unrelated test suites.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.emulator.control import EmulatorServer

if TYPE_CHECKING:
    from airflow_provider_ecoinvent.emulator.config import EmulatorConfig

EmulatorFactory = Callable[..., EmulatorServer]


@pytest.fixture
def ecoinvent_emulator() -> Iterator[EmulatorServer]:
    """A fresh in-process emulator with default settings, stopped after the test."""
    with EmulatorServer() as emulator:
        yield emulator


@pytest.fixture
def ecoinvent_emulator_factory() -> Iterator[EmulatorFactory]:
    """Start emulators with custom settings: ``ecoinvent_emulator_factory(token_ttl=1, datasets=50)``.

    Every emulator started is stopped after the test.
    """
    started: list[EmulatorServer] = []

    def factory(config: EmulatorConfig | None = None, **overrides: Any) -> EmulatorServer:
        emulator = EmulatorServer(config, **overrides).start()
        started.append(emulator)
        return emulator

    yield factory
    for emulator in reversed(started):
        emulator.stop()


@pytest.fixture
def ecoinvent_connection_env(ecoinvent_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    """The default emulator, with ``AIRFLOW_CONN_ECOINVENT_DEFAULT`` pointing at it for this test."""
    for name, value in ecoinvent_emulator.connection_env().items():
        monkeypatch.setenv(name, value)
    return ecoinvent_emulator
