"""The arguments of one :class:`EcoinventDatasetsOperator` run, checked, and the :class:`Plan` they make.

Never-templated arguments are checked in the constructor, templated ones once rendered, always before any
network call, so a mistake in a DAG fails at parse time or at the start of the task, never after billed
calls. The checks take the arguments as a frozen value (:class:`Arguments`) and give back a frozen
:class:`Plan`; the run's helpers take that plan, never the operator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_ecoinvent._client.ids import (
    capped_limit,
    check_cost_guard,
    validate_dataset_ids,
    validate_indicator_ids,
)
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
from airflow_provider_ecoinvent.operators._output import check_uri
from airflow_provider_ecoinvent.operators._partitions import check_partition_size, parse_shard, writes_directory

if TYPE_CHECKING:
    from collections.abc import Callable

LAYOUTS: Final = ("nested", "flat")
FORMATS: Final = ("jsonl", "parquet")
#: Query parameters the datasets operator sets itself; a search filter must not override them.
RESERVED_SEARCH_KEYS: Final = frozenset({"query", "version", "system_model", "from", "limit"})


@dataclass(frozen=True)
class Arguments:
    """The arguments of an :class:`EcoinventDatasetsOperator` as they stand (before or after rendering).

    The operator hands these values to :func:`check_static` and :func:`plan_run`, never itself: the checks
    read nothing else of it.
    """

    output_uri: Any
    dataset_ids: Any
    query: Any
    search_filters: Any
    indicator_ids: Any
    indicators: Any
    version: Any
    system_model: Any
    layout: Any
    format: Any
    max_in_flight: Any
    max_unique_datasets: Any
    max_unique_indicators: Any
    dry_run: Any
    fail_on_missing: Any
    user_id: Any
    organization_id: Any
    progress_interval: Any
    ecoinvent_conn_id: Any
    partition_size: Any
    overwrite: Any
    shard: Any
    directory: Any
    #: A mapped task instance is being built (``expand`` inputs are data, as rendered templates are).
    from_mapping: bool = False


@dataclass(frozen=True)
class Plan:
    """The rendered, validated arguments of one :class:`EcoinventDatasetsOperator` run."""

    dataset_ids: list[int] | None
    #: With ``selectors``, the ids they resolved to once :meth:`with_indicators` is given the resolution.
    indicator_ids: list[int]
    query: str | None
    search_filters: dict[str, Any]
    version: str
    system_model: str
    user_id: str | None
    organization_id: str | None
    #: The ``indicators`` argument as given (rendered), ``None`` when ids were given instead.
    selectors: list[Any] | None
    #: ``(index, count)`` of a fan-out over a dataset directory, ``None`` for the whole request.
    shard: tuple[int, int] | None
    #: Whether ``output_uri`` is written as a dataset directory (see :func:`._partitions.writes_directory`).
    directory: bool
    #: The arguments as given (rendered): output, layout, format, guards and the directory's options.
    given: Arguments

    def with_indicators(self, resolved: list[dict[str, Any]] | None) -> Plan:
        """The plan scoring the indicators the selectors resolved to (itself when ids were given)."""
        if resolved is None:
            return self
        return replace(self, indicator_ids=[indicator["id"] for indicator in resolved])


@dataclass(frozen=True)
class CostGuard:
    """The licence limits of one run: the arguments, capped by the connection's extras (never raised)."""

    datasets: int | None
    indicators: int | None

    @classmethod
    def capped(cls, given: Arguments, settings: Any) -> CostGuard:
        """The limits in force; ``settings`` is the hook's (the connection extras, read without a call).

        :raises EcoinventCostGuardError: an argument above the connection's extra.
        """
        return cls(
            capped_limit(given.max_unique_datasets, settings.max_unique_datasets, "max_unique_datasets"),
            capped_limit(given.max_unique_indicators, settings.max_unique_indicators, "max_unique_indicators"),
        )

    def check(self, datasets: int, indicators: int) -> None:
        """:raises EcoinventCostGuardError: more distinct datasets or indicators than the limits allow."""
        check_cost_guard(datasets, indicators, self.datasets, self.indicators)

    def admits(self, datasets: int, indicators: int) -> bool:
        """Whether a real run scoring these counts would pass (unscored calls are free)."""
        if not indicators:
            return True
        return not (self.datasets is not None and datasets > self.datasets) and not (
            self.indicators is not None and indicators > self.indicators
        )


def check_static(given: Arguments) -> None:
    """Arguments that are never templated."""
    if given.layout not in LAYOUTS:
        raise EcoinventConfigError(f"layout must be one of {', '.join(LAYOUTS)}, got {given.layout!r}.")
    if given.format not in FORMATS:
        raise EcoinventConfigError(f"format must be one of {', '.join(FORMATS)}, got {given.format!r}.")
    if given.format == "parquet" and given.layout != "flat":
        raise EcoinventConfigError(
            "format='parquet' writes the flat table of scores: set layout='flat' (the nested layout is JSON Lines)."
        )
    if isinstance(given.max_in_flight, bool) or not isinstance(given.max_in_flight, int) or given.max_in_flight < 1:
        raise EcoinventConfigError(f"max_in_flight must be a whole number >= 1, got {given.max_in_flight!r}.")
    if given.max_in_flight > POOL_SIZE:
        raise EcoinventConfigError(
            f"max_in_flight must be at most {POOL_SIZE} (the connections the hook keeps open), got "
            f"{given.max_in_flight}."
        )
    for guard in ("max_unique_datasets", "max_unique_indicators"):
        if getattr(given, guard) is not None:
            positive_int(getattr(given, guard), guard, minimum=0)
    check_partition_size(given.partition_size)
    if given.directory is not None and not isinstance(given.directory, bool):
        raise EcoinventConfigError(f"directory must be True, False or None, got {given.directory!r}.")
    for name in ("dry_run", "fail_on_missing", "overwrite"):
        if not isinstance(getattr(given, name), bool):
            raise EcoinventConfigError(f"{name} must be True or False, got {getattr(given, name)!r}.")
    interval = given.progress_interval
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
        raise EcoinventConfigError(f"progress_interval must be a positive number of seconds, got {interval!r}.")


def plan_run(given: Arguments, *, rendered: bool) -> Plan | None:
    """Validate the templated arguments; before rendering, only those that are not templated.

    The checks run in a fixed order (selection, version, output, account), so one mistake gets one message.

    :returns: the plan once rendered, ``None`` before.
    """

    def ready(value: Any) -> bool:
        return rendered or not is_templated(value)

    dataset_ids = _check_dataset_ids(given, ready, allow_empty=rendered or given.from_mapping)
    indicator_ids: list[int] = []
    if ready(given.indicator_ids):
        raw = [] if given.indicator_ids is None else parse_id_list(given.indicator_ids, "indicator_ids")
        indicator_ids = sorted(validate_indicator_ids(raw))
    selectors = _check_selectors(given, indicator_ids, ready)
    query, search_filters = _check_search(given, ready)
    version = required_text(given.version, "version") if ready(given.version) else ""
    system_model = required_text(given.system_model, "system_model") if ready(given.system_model) else ""
    shard, directory = _check_output(given, ready)
    if ready(given.ecoinvent_conn_id):
        required_text(given.ecoinvent_conn_id, "ecoinvent_conn_id")
    user_id = optional_text(given.user_id, "user_id") if ready(given.user_id) else None
    organization_id = optional_text(given.organization_id, "organization_id") if ready(given.organization_id) else None
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
        given,
    )


def _check_dataset_ids(given: Arguments, ready: Callable[[Any], bool], *, allow_empty: bool) -> list[int] | None:
    """``dataset_ids`` sorted (once rendered, or now if not templated).

    A literal ``[]`` is a mistake in the DAG; an empty list rendered from an upstream XCom, or given to one
    mapped task instance by ``expand()``, is data (``allow_empty``).
    """
    if given.dataset_ids is None or not ready(given.dataset_ids):
        return None
    ids = parse_id_list(given.dataset_ids, "dataset_ids")
    return sorted(validate_dataset_ids(ids, allow_empty=allow_empty))


def _check_search(given: Arguments, ready: Callable[[Any], bool]) -> tuple[str | None, dict[str, Any]]:
    """``query`` and ``search_filters`` checked; exactly one of ``dataset_ids`` and a search selects."""
    query: str | None = None
    if ready(given.query) and given.query is not None:
        if not isinstance(given.query, str):
            raise EcoinventConfigError(f"query must be a string, got {type(given.query).__name__}.")
        query = given.query.strip()
    search_filters: dict[str, Any] = {}
    if ready(given.search_filters) and given.search_filters is not None:
        search_filters = _check_filters(given.search_filters)
    searching = given.query is not None or given.search_filters is not None
    if given.dataset_ids is not None and searching:
        raise EcoinventConfigError(
            "Give either dataset_ids or a search (query / search_filters), not both: the selection must be unambiguous."
        )
    if given.dataset_ids is None and not searching:
        raise EcoinventConfigError(
            "No datasets selected: give dataset_ids (e.g. [1, 2, 3] or an upstream XCom), or a search "
            "with query and/or search_filters."
        )
    return query, search_filters


def _check_output(given: Arguments, ready: Callable[[Any], bool]) -> tuple[tuple[int, int] | None, bool]:
    """``output_uri`` (required unless a dry run) and ``shard``: the fan-out, and whether a directory is written."""
    if given.output_uri is None and not given.dry_run:
        raise EcoinventConfigError(
            "output_uri is required (e.g. 'file:///data/datasets.jsonl' or 's3://aws_default@bucket/key'): "
            "the datasets are written to a file, never to XCom. Only dry_run=True runs without it."
        )
    shard = _check_shard(given, ready)
    directory = writes_directory(given.output_uri, given.directory, shard)
    if given.output_uri is not None and ready(given.output_uri):
        check_directory_uri(given.output_uri) if directory else check_uri(given.output_uri)
    return shard, directory


def _check_shard(given: Arguments, ready: Callable[[Any], bool]) -> tuple[int, int] | None:
    """``shard`` checked (once rendered, or now if not templated): a fan-out writes a dataset directory."""
    if not ready(given.shard):
        return None
    shard = parse_shard(given.shard)
    if shard is not None and ready(given.output_uri) and not writes_directory(given.output_uri, given.directory, shard):
        raise EcoinventConfigError(
            f"shard={list(shard)} needs a dataset directory: end output_uri with '/' or pass directory=True (got "
            f"{given.output_uri!r}), so that every mapped task writes its parts into it; then run "
            "EcoinventDatasetsCommitOperator."
        )
    return shard


def _check_selectors(given: Arguments, indicator_ids: list[int], ready: Callable[[Any], bool]) -> list[Any] | None:
    """``indicators`` checked (once rendered, or now if not templated); one of it and ``indicator_ids``."""
    if given.indicators is None:
        return None
    ids_given = bool(indicator_ids) or (given.indicator_ids is not None and not ready(given.indicator_ids))
    if ids_given:
        raise EcoinventConfigError(
            "Give either indicator_ids or indicators, not both: indicators selects by name (and takes ids "
            "too, e.g. [1, {'method': 'EF v3.1'}])."
        )
    return parse_selectors(given.indicators) if ready(given.indicators) else None


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


__all__ = ["FORMATS", "LAYOUTS", "RESERVED_SEARCH_KEYS", "Arguments", "CostGuard", "Plan", "check_static", "plan_run"]
