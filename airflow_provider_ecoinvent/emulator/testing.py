"""Pytest fixtures for the emulator: a pytest plugin, for test suites of code that calls the ecoinvent API.

Enable them with ``pytest_plugins = ["airflow_provider_ecoinvent.emulator.testing"]`` in the rootdir
``conftest.py`` (or import the fixture functions into a ``conftest.py``). No ``pytest11`` entry point is
registered on purpose: installing the provider must not add fixtures to unrelated test suites.

pytest is not a dependency of the provider (it comes with the ``test`` extra), so this is the only
module of the emulator that imports it, and it says how to install it when it is missing; the emulator
itself (``import airflow_provider_ecoinvent.emulator``, ``python -m airflow_provider_ecoinvent.emulator``)
never imports this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

try:
    import pytest
except ModuleNotFoundError as missing:
    if missing.name != "pytest":  # pytest is there but broken: its own error says more
        raise
    raise ModuleNotFoundError(
        "airflow_provider_ecoinvent.emulator.testing is a pytest plugin and needs pytest, which the provider "
        "does not install: pip install 'airflow-provider-ecoinvent[test]' (or pip install pytest). "
        "The emulator itself needs no pytest: from airflow_provider_ecoinvent.emulator import EmulatorServer",
        name="pytest",
    ) from missing

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


__all__ = ["EmulatorFactory", "ecoinvent_connection_env", "ecoinvent_emulator", "ecoinvent_emulator_factory"]
