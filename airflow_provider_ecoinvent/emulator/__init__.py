"""A local emulator of the ecoinvent API, for tests, demos and benchmarks.

It serves the contract in ``ecoinvent-api.md`` (token endpoint, ``/versions``, ``/indicators``,
``/datasets`` search, ``/datasets/{id}``, ``/datasets/batch``) over real HTTP on loopback, with a
deterministic synthetic catalogue, a usage ledger that follows the licence rules, and scriptable faults.
Standard library only, and it never imports Airflow, so it can run anywhere::

    from airflow_provider_ecoinvent.emulator import EmulatorServer

    with EmulatorServer(token_ttl=2) as emulator:
        emulator.add_fault("status", status=503, path="/datasets/batch", retry_after="1")
        ...  # point a client at emulator.connection_json()
        assert emulator.stats()["usage"][emulator.client_id]["datasets"] == 100

``EmulatorServer(max_concurrency=3)`` (``--max-concurrency 3``) answers 429 with ``Retry-After`` to API
calls above three in flight, as a rate-limited gateway does; ``stats()["max_in_flight"]`` and
``stats()["concurrency_rejections"]`` tell what a client did about it.

Or from a shell: ``python -m airflow_provider_ecoinvent.emulator --help``.
"""

from __future__ import annotations

from airflow_provider_ecoinvent.emulator.config import EmulatorConfig
from airflow_provider_ecoinvent.emulator.control import (
    EmulatorControl,
    EmulatorControlError,
    EmulatorProcess,
    EmulatorServer,
)

__all__ = ["EmulatorConfig", "EmulatorControl", "EmulatorControlError", "EmulatorProcess", "EmulatorServer"]
