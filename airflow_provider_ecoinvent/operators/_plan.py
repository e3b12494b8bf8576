"""The arguments of one :class:`EcoinventDatasetsOperator` run, checked: never-templated ones in the
constructor, templated ones once rendered, always before any network call."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_ecoinvent._client.ids import validate_dataset_ids, validate_indicator_ids
from airflow_provider_ecoinvent._client.network import POOL_SIZE
from airflow_provider_ecoinvent.exceptions import EcoinventConfigError
from airflow_provider_ecoinvent.indicators import parse_selectors
from airflow_provider_ecoinvent.operators._arguments import (
    is_templated,
    optional_text,
    parse_id_list,
    positive_int,
    required_text,
)
from airflow_provider_ecoinvent.operators._directory import check_directory_uri
from airflow_provider_ecoinvent.operators._mapping import built_by_mapping, mapped_outputs, shared_output_text
from airflow_provider_ecoinvent.operators._output import check_uri
from airflow_provider_ecoinvent.operators._partitions import check_partition_size, parse_shard, writes_directory

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_ecoinvent.operators.datasets import EcoinventDatasetsOperator

LAYOUTS: Final = ("nested", "flat")
FORMATS: Final = ("jsonl", "parquet")
#: Query parameters the datasets operator sets itself; a search filter must not override them.
RESERVED_SEARCH_KEYS: Final = frozenset({"query", "version", "system_model", "from", "limit"})


class Plan:
    """The rendered, validated arguments of one :class:`EcoinventDatasetsOperator` run."""

    def __init__(
        self,
        dataset_ids: list[int] | None,
        indicator_ids: list[int],
        query: str | None,
        search_filters: dict[str, Any],
        version: str,
        system_model: str,
        user_id: str | None,
        organization_id: str | None,
        selectors: list[Any] | None = None,
        shard: tuple[int, int] | None = None,
        directory: bool = False,
    ) -> None:
        self.dataset_ids = dataset_ids
        #: With ``selectors``, filled in by their resolution against the pinned version.
        self.indicator_ids = indicator_ids
        #: The ``indicators`` argument as given (rendered), ``None`` when ids were given instead.
        self.selectors = selectors
        self.query = query
        self.search_filters = search_filters
        self.version = version
        self.system_model = system_model
        self.user_id = user_id
        self.organization_id = organization_id
        #: ``(index, count)`` of a fan-out over a dataset directory, ``None`` for the whole request.
        self.shard = shard
        #: Whether ``output_uri`` is written as a dataset directory (see :func:`._partitions.writes_directory`).
        self.directory = directory


def check_static(task: EcoinventDatasetsOperator) -> None:
    """Arguments that are never templated."""
    if task.layout not in LAYOUTS:
        raise EcoinventConfigError(f"layout must be one of {', '.join(LAYOUTS)}, got {task.layout!r}.")
    if task.format not in FORMATS:
        raise EcoinventConfigError(f"format must be one of {', '.join(FORMATS)}, got {task.format!r}.")
    if task.format == "parquet" and task.layout != "flat":
        raise EcoinventConfigError(
            "format='parquet' writes the flat table of scores: set layout='flat' (the nested layout is JSON Lines)."
        )
    if isinstance(task.max_in_flight, bool) or not isinstance(task.max_in_flight, int) or task.max_in_flight < 1:
        raise EcoinventConfigError(f"max_in_flight must be a whole number >= 1, got {task.max_in_flight!r}.")
    if task.max_in_flight > POOL_SIZE:
        raise EcoinventConfigError(
            f"max_in_flight must be at most {POOL_SIZE} (the connections the hook keeps open), got "
            f"{task.max_in_flight}."
        )
    for guard in ("max_unique_datasets", "max_unique_indicators"):
        if getattr(task, guard) is not None:
            positive_int(getattr(task, guard), guard, minimum=0)
    check_partition_size(task.partition_size)
    if task.directory is not None and not isinstance(task.directory, bool):
        raise EcoinventConfigError(f"directory must be True, False or None, got {task.directory!r}.")
    for name in ("dry_run_only", "fail_on_missing", "overwrite"):
        if not isinstance(getattr(task, name), bool):
            argument = "dry_run" if name == "dry_run_only" else name
            raise EcoinventConfigError(f"{argument} must be True or False, got {getattr(task, name)!r}.")
    interval = task.progress_interval
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
        raise EcoinventConfigError(f"progress_interval must be a positive number of seconds, got {interval!r}.")


def plan_run(task: EcoinventDatasetsOperator, *, rendered: bool) -> Plan | None:
    """Validate the templated arguments; before rendering, only those that are not templated.

    :returns: the plan once rendered, ``None`` before.
    """

    def ready(value: Any) -> bool:
        return rendered or not is_templated(value)

    dataset_ids: list[int] | None = None
    if task.dataset_ids is not None and ready(task.dataset_ids):
        ids = parse_id_list(task.dataset_ids, "dataset_ids")
        # A literal [] is a mistake in the DAG; an empty list rendered from an upstream XCom, or given to
        # one mapped task instance by expand(), is data.
        dataset_ids = sorted(validate_dataset_ids(ids, allow_empty=rendered or built_by_mapping(task)))
    indicator_ids: list[int] = []
    if ready(task.indicator_ids):
        raw = [] if task.indicator_ids is None else parse_id_list(task.indicator_ids, "indicator_ids")
        indicator_ids = sorted(validate_indicator_ids(raw))
    selectors = _check_selectors(task, indicator_ids, ready)

    query: str | None = None
    if ready(task.query) and task.query is not None:
        if not isinstance(task.query, str):
            raise EcoinventConfigError(f"query must be a string, got {type(task.query).__name__}.")
        query = task.query.strip()
    search_filters: dict[str, Any] = {}
    if ready(task.search_filters) and task.search_filters is not None:
        search_filters = _check_filters(task.search_filters)
    searching = task.query is not None or task.search_filters is not None
    if task.dataset_ids is not None and searching:
        raise EcoinventConfigError(
            "Give either dataset_ids or a search (query / search_filters), not both: the selection must be unambiguous."
        )
    if task.dataset_ids is None and not searching:
        raise EcoinventConfigError(
            "No datasets selected: give dataset_ids (e.g. [1, 2, 3] or an upstream XCom), or a search "
            "with query and/or search_filters."
        )

    version = system_model = ""
    if ready(task.version):
        version = required_text(task.version, "version")
    if ready(task.system_model):
        system_model = required_text(task.system_model, "system_model")
    if task.output_uri is None and not task.dry_run_only:
        raise EcoinventConfigError(
            "output_uri is required (e.g. 'file:///data/datasets.jsonl' or 's3://aws_default@bucket/key'): "
            "the datasets are written to a file, never to XCom. Only dry_run=True runs without it."
        )
    shard = _check_shard(task, ready)
    directory = writes_directory(task.output_uri, task.directory, shard)
    if task.output_uri is not None and ready(task.output_uri):
        check_directory_uri(task.output_uri) if directory else check_uri(task.output_uri)
    if ready(task.ecoinvent_conn_id):
        required_text(task.ecoinvent_conn_id, "ecoinvent_conn_id")
    user_id = optional_text(task.user_id, "user_id") if ready(task.user_id) else None
    organization_id = optional_text(task.organization_id, "organization_id") if ready(task.organization_id) else None
    if not rendered:
        return None
    return Plan(
        dataset_ids,
        indicator_ids,
        query,
        search_filters,
        version,
        system_model,
        user_id,
        organization_id,
        selectors,
        shard,
        directory,
    )


def refuse_shared_output(task: EcoinventDatasetsOperator, plan: Plan, context: Mapping[str, Any]) -> None:
    """Mapped task instances without ``shard`` must each write their own ``output_uri``; checked before any call.

    ``.partial(output_uri=".../dir/").expand(dataset_ids=chunks)`` (or the operator inside a ``@task_group``
    expanded over chunks) would have each instance take its chunk for the whole request: it removes the others'
    parts and marks the directory complete (a file: it replaces the others' file), so every chunk is billed and
    only the last is kept. A fan-out over one directory maps over ``shard`` instead; mapping over ``output_uri``
    too, or a template naming the map index, gives each instance its own output. A dry run writes nothing.

    :raises EcoinventConfigError: naming ``shards()``, the commit step and a per-instance output.
    """
    if task.output_uri is None or plan.shard is not None or task.dry_run_only:
        return
    found = mapped_outputs(task, context)
    if found is None or found[1] >= found[0]:
        return
    instances, outputs = found
    count = f"{instances}" if math.isfinite(instances) else "N"
    raise EcoinventConfigError(
        f"{shared_output_text(task, instances, outputs)} without shard: each would take its own chunk for the "
        "whole request and replace what the others wrote, so every chunk would be billed and only the last kept. "
        "To split one request over mapped tasks, give every task the whole selection and map over shard into a "
        "dataset directory: EcoinventDatasetsOperator.partial(..., output_uri='.../dir/')"
        f".expand(shard=shards({count})), "
        "then EcoinventDatasetsCommitOperator(output_uri='.../dir/'). Or give each mapped task its own output_uri: "
        "map over output_uri too, or name the map index in it (e.g. '.../{{ ti.map_index }}/' or "
        "'.../{{ ti.map_index }}.jsonl'). No call was made to the ecoinvent API."
    )


def _check_shard(task: EcoinventDatasetsOperator, ready: Callable[[Any], bool]) -> tuple[int, int] | None:
    """``shard`` checked (once rendered, or now if not templated): a fan-out writes a dataset directory."""
    if not ready(task.shard):
        return None
    shard = parse_shard(task.shard)
    if shard is not None and ready(task.output_uri) and not writes_directory(task.output_uri, task.directory, shard):
        raise EcoinventConfigError(
            f"shard={list(shard)} needs a dataset directory: end output_uri with '/' or pass directory=True (got "
            f"{task.output_uri!r}), so that every mapped task writes its parts into it; then run "
            "EcoinventDatasetsCommitOperator."
        )
    return shard


def _check_selectors(
    task: EcoinventDatasetsOperator, indicator_ids: list[int], ready: Callable[[Any], bool]
) -> list[Any] | None:
    """``indicators`` checked (once rendered, or now if not templated); one of it and ``indicator_ids``."""
    if task.indicators is None:
        return None
    ids_given = bool(indicator_ids) or (task.indicator_ids is not None and not ready(task.indicator_ids))
    if ids_given:
        raise EcoinventConfigError(
            "Give either indicator_ids or indicators, not both: indicators selects by name (and takes ids "
            "too, e.g. [1, {'method': 'EF v3.1'}])."
        )
    return parse_selectors(task.indicators) if ready(task.indicators) else None


def _check_filters(filters: Any) -> dict[str, Any]:
    if not isinstance(filters, Mapping):
        raise EcoinventConfigError(
            f"search_filters must be a dict such as {{'geography': 'Switzerland (CH)'}}, got {type(filters).__name__}."
        )
    checked: dict[str, Any] = {}
    for key, value in filters.items():
        if not isinstance(key, str) or not key:
            raise EcoinventConfigError(f"search_filters keys must be parameter names, got {key!r}.")
        if key in RESERVED_SEARCH_KEYS:
            raise EcoinventConfigError(
                f"search_filters must not set {key!r}: use the operator argument of that name instead."
            )
        if value is not None and not isinstance(value, str | int | float | bool):
            raise EcoinventConfigError(f"search_filters[{key!r}] must be a string or number, got {value!r}.")
        checked[key] = value
    return checked


__all__ = ["FORMATS", "LAYOUTS", "RESERVED_SEARCH_KEYS", "Plan", "check_static", "plan_run", "refuse_shared_output"]
