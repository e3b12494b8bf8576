"""The selection of a fan-out, resolved once per DAG run and shared by its shards.

Every shard of ``.expand(shard=shards(n))`` needs the same resolved version, indicators and dataset ids
(their parts are planned over the whole selection). Resolving them costs free but real calls: the version
listing, the indicator listing (one page per 100 indicators) and the search (one page per 100 datasets),
about 70 calls for 6,000 datasets, about 250 for a release, which every shard would otherwise repeat. So the
first shard to resolve writes them, atomically, to ``_shards/selection-<run>-<request>.json`` in the dataset
directory, keyed by the DAG run and the arguments that select (version, system model, ids or search,
indicators, and the account: connection, user, organisation); the other shards, and later tries of the
same run, read it instead of calling the API. The commit step removes the file once the directory is committed.

**Concurrency.** Object stores offer no create-if-absent that fsspec exposes everywhere, so two shards
starting at the same moment may both resolve (each paying the look-ups, no more). A shard that resolved reads the
file again before writing its own and takes what another shard wrote meanwhile, which narrows the window
in which two shards could use different resolutions to the time between that read and its write. Even
then nothing wrong is written: two resolutions differ only if the catalogue changed between them (a new
``latest`` release, a search answering differently), the shards' fingerprints then differ and the commit
step refuses the stale shard by name, as it does without the shared file.

**Retries.** The file is keyed by the DAG run: the next try of a shard, and every shard of that run, uses
the selection its first resolution found, so one run writes one request even if ``latest`` moves meanwhile.
A new DAG run resolves again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_ecoinvent.operators._partitions import SHARDS_FOLDER, digest

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_ecoinvent.operators._directory import Directory
    from airflow_provider_ecoinvent.operators._plan import Plan

SELECTION_PREFIX: Final = "selection-"


@dataclass(frozen=True)
class Selection:
    """A resolved selection: the pinned version, the resolved indicators (``None`` when given by id), the ids."""

    version: str
    indicators: list[dict[str, Any]] | None
    ids: list[int]


def selection_inputs(plan: Plan, *, conn_id: str, user_id: str | None, organization_id: str | None) -> dict[str, Any]:
    """The rendered arguments that decide the selection: another request in the same run gets its own file.

    The account matters too: a search answers per licence, so fan-outs under another connection, user or
    organisation never share a selection. Only the digest of these inputs is stored, never the values.
    """
    inputs = {
        "account": digest([conn_id, user_id, organization_id]),
        "version": plan.version,
        "system_model": plan.system_model,
        "dataset_ids": plan.dataset_ids,
        "query": plan.query,
        "search_filters": plan.search_filters,
        "indicator_ids": None if plan.selectors is not None else list(plan.indicator_ids),
        "selectors": plan.selectors,
    }
    return dict(json.loads(json.dumps(inputs, default=str)))  # JSON values only, as ``digest`` needs


def selection_name(run: str, inputs: dict[str, Any]) -> str:
    return f"{SHARDS_FOLDER}/{SELECTION_PREFIX}{run[:16]}-{digest(inputs)[:16]}.json"


def shared_selection(
    directory: Directory, run: str, inputs: dict[str, Any], resolve: Callable[[], Selection], log: Any
) -> Selection:
    """The run's selection from the directory, else ``resolve()``'s, written for the other shards."""
    name = selection_name(run, inputs)
    stored = _read(directory, name, inputs)
    if stored is not None:
        log.info("Selection read from %s%s (resolved by another shard or try of this DAG run).", directory, name)
        return stored
    fresh = resolve()
    stored = _read(directory, name, inputs)  # another shard finished first: every shard takes its selection
    if stored is not None:
        return stored
    directory.write_json(
        name, {"key": digest(inputs), "version": fresh.version, "indicators": fresh.indicators, "ids": fresh.ids}
    )
    return fresh


def _read(directory: Directory, name: str, inputs: dict[str, Any]) -> Selection | None:
    """The stored selection if it is whole and was resolved for ``inputs``; anything else is ignored."""
    value = directory.read_json(name)
    if value is None or value.get("key") != digest(inputs):
        return None
    version, indicators, ids = value.get("version"), value.get("indicators"), value.get("ids")
    if not isinstance(version, str) or not isinstance(ids, list) or not all(_is_id(ident) for ident in ids):
        return None
    if indicators is not None and not (
        isinstance(indicators, list) and all(isinstance(item, dict) and _is_id(item.get("id")) for item in indicators)
    ):
        return None
    return Selection(version, indicators, ids)


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def remove_selections(directory: Directory) -> None:
    """Once the directory is committed, the shared selections of its runs are no longer needed."""
    for name in directory.listing(SHARDS_FOLDER):
        if name.startswith(SELECTION_PREFIX) and name.endswith(".json"):
            directory.remove(f"{SHARDS_FOLDER}/{name}")
