"""The manifest of a run on the outlet asset events, shared by every operator that writes output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow.sdk import BaseOperator, Context


def publish_to_outlets(task: BaseOperator, context: Context, manifest: Mapping[str, Any]) -> None:
    """Put the manifest in the ``extra`` of the asset events of every ``Asset`` in ``outlets``."""
    from airflow.sdk import Asset

    outlets = [outlet for outlet in task.outlets or () if isinstance(outlet, Asset)]
    if not outlets:
        return
    events = context.get("outlet_events")
    if events is None:
        return
    for asset in outlets:
        events[asset].extra.update(manifest)
