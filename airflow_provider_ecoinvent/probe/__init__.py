"""The probe: find out in seconds whether the real ecoinvent API answers in the shapes the provider expects.

Much of the API contract is assumed (``ecoinvent-api.md``), so the first licensed user runs::

    python -m airflow_provider_ecoinvent.probe --conn-id ecoinvent_default

It makes free calls only (token, versions, indicators, one search page; plus one scored call of one dataset
and one indicator with ``--scored``) through the connection's hook, and reports, field by field, where the
answers differ from what the provider expects. Exit code 0: they agree; 1: differences; 2: could not connect
or authenticate. The report names keys, types and counts, never values, the secret or the token: it is safe
to paste into a bug report. See docs/probe.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_ecoinvent.probe.compare import Difference
    from airflow_provider_ecoinvent.probe.report import EndpointReport, ProbeReport
    from airflow_provider_ecoinvent.probe.run import run_probe

__all__ = ["Difference", "EndpointReport", "ProbeReport", "run_probe"]

_HOMES = {
    "Difference": "airflow_provider_ecoinvent.probe.compare",
    "EndpointReport": "airflow_provider_ecoinvent.probe.report",
    "ProbeReport": "airflow_provider_ecoinvent.probe.report",
    "run_probe": "airflow_provider_ecoinvent.probe.run",
}


def __getattr__(name: str) -> Any:
    # Lazy: ``python -m airflow_provider_ecoinvent.probe`` imports this package first, and must be able to
    # point Airflow's logging at stderr before Airflow (and structlog) are imported.
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_HOMES[name]), name)
