"""Operators for the ecoinvent API.

* :class:`EcoinventOperator` calls any endpoint; small answers go to XCom, large ones to a JSON Lines
  file on any ``ObjectStoragePath``.
* :class:`EcoinventDatasetsOperator` is the ingestion workhorse: selected datasets, scored for a list of
  indicators against one pinned version, streamed to JSON Lines or Parquet, atomically, with a licence
  cost guard, a dry run and a manifest in XCom and on the outlet asset events.

Both validate their arguments in the constructor (values that are templated: at the start of
``execute``, once rendered), always before any network call, and never do I/O in the constructor.
"""

from __future__ import annotations

import ast
import contextlib
import json
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final
from urllib.parse import urlsplit

from airflow.sdk import BaseOperator

from airflow_provider_ecoinvent._constants import DEFAULT_CONN_ID
from airflow_provider_ecoinvent._ids import (
    capped_limit,
    check_cost_guard,
    validate_dataset_ids,
    validate_indicator_ids,
)
from airflow_provider_ecoinvent._paging import Page, read_page, walk_pages
from airflow_provider_ecoinvent._transport import POOL_SIZE, check_endpoint
from airflow_provider_ecoinvent.exceptions import (
    EcoinventConfigError,
    EcoinventError,
)
from airflow_provider_ecoinvent.indicators import parse_selectors
from airflow_provider_ecoinvent.operators._directory import (
    Directory,
    attempt_owner,
    check_directory_uri,
    directory_path,
)
from airflow_provider_ecoinvent.operators._outlets import publish_to_outlets as _publish_to_outlets
from airflow_provider_ecoinvent.operators._output import (
    AtomicOutput,
    ParquetRowWriter,
    check_uri,
    flat_rows,
    json_line,
    nested_record,
    require_filesystem,
    require_pyarrow,
    to_storage_path,
)
from airflow_provider_ecoinvent.operators._partitioned import PartitionedWriter
from airflow_provider_ecoinvent.operators._partitions import (
    DEFAULT_PARTITION_SIZE,
    Request,
    check_partition_size,
    is_directory_uri,
    parse_shard,
    shards,
)
from airflow_provider_ecoinvent.operators.commit import EcoinventDatasetsCommitOperator

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_ecoinvent.hooks.ecoinvent import DatasetStream, EcoinventHook

__all__ = ["EcoinventDatasetsCommitOperator", "EcoinventDatasetsOperator", "EcoinventOperator", "shards"]

#: Default cap on what :class:`EcoinventOperator` pushes to XCom (XCom lives in the metadata database).
DEFAULT_MAX_XCOM_BYTES: Final = 1024 * 1024
#: Missing dataset ids listed in a manifest (the count is always complete).
MISSING_IDS_IN_MANIFEST: Final = 20
HTTP_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
LAYOUTS: Final = ("nested", "flat")
FORMATS: Final = ("jsonl", "parquet")
#: Query parameters the datasets operator sets itself; a search filter must not override them.
RESERVED_SEARCH_KEYS: Final = frozenset({"query", "version", "system_model", "from", "limit"})
_ITEM_KEYS: Final = ("results", "datasets", "indicators", "versions", "data")


# -- argument helpers ------------------------------------------------------------------------------


def is_templated(value: Any) -> bool:
    """Whether ``value`` is only known once rendered: a Jinja string, an ``XComArg``, or holds one."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if hasattr(value, "resolve") and hasattr(value, "iter_references"):  # XComArg and friends
        return True
    if isinstance(value, Mapping):
        return any(is_templated(key) or is_templated(item) for key, item in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(is_templated(item) for item in value)
    return False


def parse_id_list(value: Any, argument: str) -> list[Any]:
    """A list of ids given as a list (or any iterable), or as the string rendering of one (``"[1, 2]"``).

    Jinja renders a list pulled from XCom as text unless the DAG renders native objects; both reach here.
    The items are not checked: :func:`validate_dataset_ids` does that.
    """
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = ast.literal_eval(text) if text else []
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise EcoinventConfigError(
                f"{argument} must be a list of integers; could not read {_short(text)} as a list."
            ) from None
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise EcoinventConfigError(
            f"{argument} must be a list of integers, got {type(value).__name__}: {_short(value)}."
        )
    return list(value)


def _listed(value: Any) -> Any:
    """A one-shot iterable (a generator) as a list, which validation would otherwise consume."""
    if value is None or isinstance(value, str | bytes | list | Mapping) or is_templated(value):
        return value
    return list(value) if isinstance(value, Iterable) else value


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _optional_text(value: Any, argument: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise EcoinventConfigError(f"{argument} must be a string, got {type(value).__name__}.")
    text = str(value).strip()
    return text or None


def _required_text(value: Any, argument: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise EcoinventConfigError(f"{argument} must be a non-empty string, got {_short(value)}.")
    return value.strip()


def _positive_int(value: Any, argument: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise EcoinventConfigError(f"{argument} must be a whole number >= {minimum}, got {_short(value)}.")
    return value


def _elapsed(start: float) -> float:
    return round(time.monotonic() - start, 3)


def _lineage(input_namespace: str, input_name: str, output: ObjectStoragePath | None) -> Any:
    """OpenLineage facets, or ``None`` when the openlineage provider (an optional extra) is absent."""
    try:
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None
    outputs = []
    if output is not None:
        name = output.path if output.protocol in ("file", "local", "") else (output.key or output.path)
        outputs.append(Dataset(namespace=output.namespace, name=name))
    return OperatorLineage(inputs=[Dataset(namespace=input_namespace, name=input_name)], outputs=outputs)


def _output_path(uri: Any, *, writing: bool = True) -> ObjectStoragePath | None:
    """The rendered output URI as a path; when it will be written, its filesystem is checked first, so a
    missing storage provider fails with what to install before any call to the API."""
    if uri is None:
        return None
    if writing:
        require_filesystem(uri)
    return directory_path(uri) if is_directory_uri(uri) else to_storage_path(uri)


def _built_by_mapping(task: BaseOperator) -> bool:
    """Whether a mapped task instance is being built: ``MappedOperator`` re-runs the constructor with the
    values resolved for one map index (``expand`` inputs are data, as rendered templates are)."""
    return bool(getattr(task, "_BaseOperator__from_mapped", False))


def _hook(conn_id: str, **kwargs: Any) -> EcoinventHook:
    """The hook, imported when a task runs: DAG files import this module at parse time, the HTTP stack not."""
    from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

    return EcoinventHook(conn_id, **kwargs)


def _stop_hook(hook: EcoinventHook | None) -> None:
    """``hook.stop()`` for on_kill: a retry wait wakes at once and no further call is made; never raises."""
    if hook is not None:
        with contextlib.suppress(Exception):
            hook.stop()


def _lineage_namespace(hook: EcoinventHook) -> str:
    return f"ecoinvent://{urlsplit(hook.settings.api_url).netloc}"


class _Progress:
    """Logs done / total, rate and ETA at most every ``interval`` seconds."""

    def __init__(self, log: Any, total: int, interval: float, what: str = "datasets") -> None:
        self.log = log
        self.total = total
        self.interval = interval
        self.what = what
        self.done = 0
        self.start = time.monotonic()
        self._last = self.start

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.report(now)

    def report(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        share = 100.0 * self.done / self.total if self.total else 100.0
        remaining = max(self.total - self.done, 0)
        eta = f"{remaining / rate:.1f} s" if rate > 0 else "unknown"
        self.log.info(
            "Progress: %d/%d %s (%.1f%%), %.1f/s, elapsed %.1f s, ETA %s.",
            self.done,
            self.total,
            self.what,
            share,
            rate,
            elapsed,
            eta,
        )


# -- the generic operator --------------------------------------------------------------------------


def _distinct(values: Sequence[Any]) -> set[str]:
    """Distinct ids as the API would read them (``5`` and ``"5"`` are one id), for counting only."""
    return {str(value).strip() for value in values}


class EcoinventOperator(BaseOperator):
    """Call any endpoint of the ecoinvent API.

    Without ``output_uri`` the parsed JSON is returned (and pushed to XCom), refused above
    ``max_xcom_bytes``. With ``output_uri`` the records (the items of the answer's list, every page of
    them with ``paginate``) are written to a JSON Lines file, atomically, and a small manifest is returned.

    :param endpoint: path under the API prefix, e.g. ``"versions"``, ``"indicators"``, ``"datasets/batch"``.
        (templated)
    :param method: HTTP method, default ``GET``.
    :param query: query parameters; a list value becomes a repeated parameter. (templated)
    :param body: JSON request body. (templated)
    :param paginate: follow ``from``/``limit`` until ``total`` is reached or a page comes back empty.
    :param page_size: ``limit`` per page when paginating (the API allows at most 100).
    :param output_uri: where to write JSON Lines: any ``ObjectStoragePath`` URI (``file:///...``,
        ``s3://conn_id@bucket/key``...). (templated)
    :param max_xcom_bytes: largest JSON answer returned to XCom without ``output_uri`` (default 1 MiB).
    :param ecoinvent_conn_id: the Airflow connection. (templated)
    """

    template_fields: Sequence[str] = ("endpoint", "query", "body", "output_uri", "ecoinvent_conn_id")
    template_fields_renderers: ClassVar[dict[str, str]] = {"query": "json", "body": "json"}
    ui_color = "#d5f5e3"

    def __init__(
        self,
        *,
        endpoint: str,
        method: str = "GET",
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        paginate: bool = False,
        page_size: int = 100,
        output_uri: str | ObjectStoragePath | None = None,
        max_xcom_bytes: int = DEFAULT_MAX_XCOM_BYTES,
        ecoinvent_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.endpoint = endpoint
        self.method = method.upper() if isinstance(method, str) else method
        self.query = query
        self.body = body
        self.paginate = paginate
        self.page_size = page_size
        self.output_uri = output_uri
        self.max_xcom_bytes = max_xcom_bytes
        self.ecoinvent_conn_id = ecoinvent_conn_id
        self._output: AtomicOutput | None = None
        self._kill_requested = False
        self._hook: EcoinventHook | None = None
        self._lineage_state: tuple[str, str, ObjectStoragePath | None] | None = None
        self._validate(rendered=False)

    def _validate(self, *, rendered: bool) -> None:
        def ready(value: Any) -> bool:
            return rendered or not is_templated(value)

        if not isinstance(self.method, str) or self.method not in HTTP_METHODS:
            raise EcoinventConfigError(f"method must be one of {', '.join(sorted(HTTP_METHODS))}, got {self.method!r}.")
        if not isinstance(self.paginate, bool):
            raise EcoinventConfigError(f"paginate must be True or False, got {self.paginate!r}.")
        _positive_int(self.page_size, "page_size", minimum=1)
        _positive_int(self.max_xcom_bytes, "max_xcom_bytes", minimum=1)
        if ready(self.endpoint):
            endpoint = _required_text(self.endpoint, "endpoint")
            if "://" in endpoint or endpoint.startswith("//"):
                raise EcoinventConfigError(
                    f"endpoint must be a path under the API prefix such as 'versions', not a URL: {endpoint!r}. "
                    "The host comes from the connection."
                )
            if "?" in endpoint or "#" in endpoint:
                raise EcoinventConfigError(
                    f"endpoint must not carry a query string ({endpoint!r}); pass the parameters as query={{...}}."
                )
            check_endpoint(endpoint)  # the hook's own check: nothing outside the API prefix gets the token
        if ready(self.query) and self.query is not None and not isinstance(self.query, Mapping):
            raise EcoinventConfigError(f"query must be a dict of query parameters, got {type(self.query).__name__}.")
        if ready(self.output_uri) and self.output_uri is not None:
            check_uri(self.output_uri)
        if ready(self.ecoinvent_conn_id):
            _required_text(self.ecoinvent_conn_id, "ecoinvent_conn_id")
        if rendered and self.paginate and self.query:
            for key in ("from", "limit"):
                if key in self.query:
                    _positive_int(self.query[key], f"query[{key!r}]", minimum=0 if key == "from" else 1)

    def execute(self, context: Context) -> Any:
        start = time.monotonic()
        self._validate(rendered=True)
        endpoint = str(self.endpoint).strip().lstrip("/")
        query = dict(self.query or {})
        destination = _output_path(self.output_uri)
        hook = _hook(self.ecoinvent_conn_id)
        self._hook = hook  # on_kill stops it
        self._check_cost_guard(hook, endpoint)
        self._lineage_state = (_lineage_namespace(hook), endpoint, destination)
        if destination is None:
            return self._to_xcom(hook, endpoint, query)
        manifest = self._to_file(hook, endpoint, query, destination, start)
        _publish_to_outlets(self, context, manifest)
        return manifest

    def _check_cost_guard(self, hook: EcoinventHook, endpoint: str) -> None:
        """The connection's cost guard holds for a scored call made here too (it is no way around it).

        A ``datasets`` endpoint whose JSON body names ``dataset_ids`` and ``indicator_ids`` scores the
        distinct ids given; they are counted against the connection extras before any call.
        """
        body = self.body
        if not endpoint.startswith("datasets") or not isinstance(body, Mapping):
            return
        datasets, indicators = body.get("dataset_ids"), body.get("indicator_ids")
        if not isinstance(indicators, list | tuple) or not indicators:
            return
        check_cost_guard(
            len(_distinct(datasets if isinstance(datasets, list | tuple) else [])),
            len(_distinct(indicators)),
            hook.settings.max_unique_datasets,
            hook.settings.max_unique_indicators,
        )

    def _pages(self, hook: EcoinventHook, endpoint: str, query: dict[str, Any]) -> Iterator[list[Any]]:
        """Every page's items; for a call without ``paginate``, its one answer as records."""
        if not self.paginate:
            payload = hook.request(self.method, endpoint, query=query or None, json=self.body)
            items = read_page(payload, _ITEM_KEYS).items
            yield items if items is not None else ([] if payload is None else [payload])
            return
        start = int(query.pop("from", 0))
        limit = int(query.pop("limit", self.page_size))

        def fetch(offset: int, size: int) -> Page:
            payload = hook.request(
                self.method, endpoint, query={**query, "from": offset, "limit": size}, json=self.body
            )
            page = read_page(payload, _ITEM_KEYS)
            if page.items is None:
                raise EcoinventError(
                    f"paginate=True, but {self.method} {endpoint} answered without a list of items "
                    f"(looked for a bare list or {', '.join(_ITEM_KEYS)}): call it without paginate."
                )
            return page

        yield from walk_pages(fetch, limit=limit, start=start, what=f"{self.method} {endpoint}")

    def _to_xcom(self, hook: EcoinventHook, endpoint: str, query: dict[str, Any]) -> Any:
        limit = self.max_xcom_bytes

        def refuse(size: str) -> EcoinventError:
            return EcoinventError(
                f"The answer of {self.method} {endpoint} is {size} bytes of JSON, more than max_xcom_bytes={limit}; "
                "XCom lives in the metadata database. Set output_uri (e.g. 'file:///data/answer.jsonl' or "
                "'s3://aws_default@bucket/answer.jsonl') to stream it to object storage and return a small "
                "manifest, or raise max_xcom_bytes."
            )

        if not self.paginate:
            result = hook.request(self.method, endpoint, query=query or None, json=self.body)
            size = len(json.dumps(result, ensure_ascii=False).encode("utf-8"))
            if size > limit:
                raise refuse(str(size))
            return result
        collected: list[Any] = []
        size = 2
        for items in self._pages(hook, endpoint, query):
            for item in items:
                size += len(json_line(item))
                if size > limit:
                    raise refuse(f"more than {size}")
                collected.append(item)
        return collected

    def _to_file(
        self, hook: EcoinventHook, endpoint: str, query: dict[str, Any], destination: ObjectStoragePath, start: float
    ) -> dict[str, Any]:
        records = pages = 0
        with AtomicOutput(destination) as output:
            self._output = output
            try:
                for items in self._pages(hook, endpoint, query):
                    pages += 1
                    for item in items:
                        output.write(json_line(item))
                        records += 1
                    if self._kill_requested:
                        raise EcoinventError("The task was killed; nothing was written.")
                output.commit()
            except OSError as err:
                if self._kill_requested:
                    raise EcoinventError("The task was killed; nothing was written.") from err
                raise
        self.log.info("Wrote %d records (%d bytes) to %s.", records, output.bytes_written, destination)
        return {
            "output_uri": str(destination),
            "format": "jsonl",
            "endpoint": endpoint,
            "method": self.method,
            "record_count": records,
            "pages": pages,
            "bytes": output.bytes_written,
            "sha256": output.sha256,
            "api_calls": hook.api_calls,
            "token_requests": hook.token_requests,
            "elapsed_seconds": _elapsed(start),
        }

    def on_kill(self) -> None:
        """Stop the hook's calls (a retry wait wakes, no further attempt) and remove the partial file."""
        self._kill_requested = True
        _stop_hook(self._hook)
        output = self._output
        if output is not None:
            with contextlib.suppress(Exception):
                output.abort()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Lineage of the call: the endpoint as input, the file (if any) as output. ``None`` without
        the openlineage provider or before ``execute`` ran."""
        if self._lineage_state is None:
            return None
        namespace, endpoint, destination = self._lineage_state
        return _lineage(namespace, endpoint, destination)


# -- the datasets operator -------------------------------------------------------------------------


class _Plan:
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


class EcoinventDatasetsOperator(BaseOperator):
    """Fetch datasets, scored for LCIA indicators, into a JSON Lines or Parquet file.

    Select the datasets either by ``dataset_ids`` or by a search (``query`` and/or ``search_filters``).
    ``version`` is resolved once at the start (``"latest"`` becomes a concrete name) and pinned for every
    call of the run. Records are written sorted by dataset id (scores by indicator id) with a canonical
    JSON serialisation, so two runs over the same data give byte-identical files. The file appears only
    when complete: it is written to ``.<name>.<uuid>.partial`` next to the destination and moved into
    place at the end; a failure or a kill removes it.

    Layouts: ``"nested"`` (default) writes one dataset per line with its ``impact_scores``; ``"flat"``
    writes one row per dataset and indicator with the columns ``dataset_id, activity, product,
    geography, unit, indicator_id, method, category, indicator, score, score_unit, version,
    system_model`` (a dataset without scores gets one row with empty indicator columns), as JSON Lines or
    Parquet (``format="parquet"``, needs ``pip install 'airflow-provider-ecoinvent[parquet]'``).

    Indicators: by id (``indicator_ids``) or by name (``indicators``), one or the other. A selector in
    ``indicators`` is an id, a ``"method | category | indicator"`` name (case and spacing do not matter),
    or a dict such as ``{"method": "EF v3.1"}`` for every indicator of a method (keys ``method``,
    ``category``, ``indicator``). They are resolved once per run against the pinned version (the free
    ``/indicators`` listing), de-duplicated and sorted by id; one that matches nothing, or a name that is
    ambiguous, fails the task before any scored call, naming the closest names or the candidates. Any
    number of indicators: the API scores 100 per call, so each batch of datasets takes ceil(K / 100)
    calls whose scores are merged into each record (or its rows) before it is written. The manifest then
    lists the resolved indicators and the selectors as given.

    Licence cost: only scored calls count, per distinct dataset and indicator. ``max_unique_datasets`` and
    ``max_unique_indicators`` (else the connection extras of those names) fail the task with
    :class:`EcoinventCostGuardError` before any scored call when more distinct datasets or indicators are
    selected. ``dry_run=True`` counts what a run would consume and returns it without scoring or writing.

    Dataset directory (``output_uri`` ending with ``/``): the records go to part files of at most
    ``partition_size`` datasets, each committed atomically with a ``_parts/`` record (key, size, SHA-256),
    then ``_manifest.json`` and ``_SUCCESS``. A retry or rerun reuses every part whose record and bytes
    still match and fetches only the others; a complete directory is skipped without a scored call.
    ``shard=(index, count)`` (``.expand(shard=shards(n))``) writes one share of the parts; then
    :class:`EcoinventDatasetsCommitOperator` completes the directory. See docs/output.md.

    :param output_uri: destination file, any ``ObjectStoragePath`` URI; ending with ``/``, a dataset
        directory. Required unless ``dry_run``. (templated)
    :param dataset_ids: ids to fetch: a list, or its string rendering such as ``"[1, 2]"``. (templated)
    :param query: free-text search selecting the datasets instead of ``dataset_ids``. (templated)
    :param search_filters: search filters, e.g. ``{"geography": "Switzerland (CH)"}``. (templated)
    :param indicator_ids: ids of the indicators to score, any number. (templated)
    :param indicators: the indicators to score by name, instead of ``indicator_ids``: a list of ids,
        ``"method | category | indicator"`` strings and dicts such as ``{"method": "EF v3.1"}``. (templated)
    :param version: database version, default ``"latest"`` (resolved once, then pinned). (templated)
    :param system_model: default ``"cutoff"``. (templated)
    :param layout: ``"nested"`` or ``"flat"``.
    :param format: ``"jsonl"`` or ``"parquet"`` (flat layout only).
    :param max_in_flight: concurrent batch calls, default 8, at most 32 (the hook's connection pool).
    :param max_unique_datasets: cost guard; ``None`` uses the connection's ``max_unique_datasets``.
    :param max_unique_indicators: cost guard; ``None`` uses the connection's ``max_unique_indicators``.
    :param dry_run: count only: no scored call, no file.
    :param fail_on_missing: fail (writing nothing) when some requested ids are not in the version.
    :param user_id: ``X-User-Id`` for this task, overriding the connection's. (templated)
    :param organization_id: ``X-Organization-Id`` for this task, overriding the connection's. (templated)
    :param progress_interval: seconds between progress lines in the task log.
    :param ecoinvent_conn_id: the Airflow connection. (templated)
    :param partition_size: directory mode: at most this many datasets per part (default 1000).
    :param overwrite: directory mode: rewrite every part, even those found valid.
    :param shard: directory mode: ``(index, count)``, this task writes the parts whose number modulo
        ``count`` is ``index``; ``None`` (default) writes them all. (templated)
    """

    template_fields: Sequence[str] = (
        "dataset_ids",
        "indicator_ids",
        "indicators",
        "query",
        "search_filters",
        "version",
        "system_model",
        "output_uri",
        "ecoinvent_conn_id",
        "user_id",
        "organization_id",
        "shard",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"search_filters": "json", "indicators": "json"}
    ui_color = "#abebc6"

    def __init__(
        self,
        *,
        output_uri: str | ObjectStoragePath | None = None,
        dataset_ids: Iterable[int] | str | None = None,
        query: str | None = None,
        search_filters: Mapping[str, Any] | None = None,
        indicator_ids: Iterable[int] | str = (),
        indicators: Iterable[Any] | str | None = None,
        version: str = "latest",
        system_model: str = "cutoff",
        layout: str = "nested",
        format: str = "jsonl",
        max_in_flight: int = 8,
        max_unique_datasets: int | None = None,
        max_unique_indicators: int | None = None,
        dry_run: bool = False,
        fail_on_missing: bool = False,
        user_id: str | None = None,
        organization_id: str | None = None,
        progress_interval: float = 10.0,
        ecoinvent_conn_id: str = DEFAULT_CONN_ID,
        partition_size: int = DEFAULT_PARTITION_SIZE,
        overwrite: bool = False,
        shard: Sequence[int] | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # A one-shot iterable (a generator) would be consumed by validation: keep a list instead.
        if (
            dataset_ids is not None
            and not isinstance(dataset_ids, str | bytes | list | Mapping)
            and not is_templated(dataset_ids)
        ):
            dataset_ids = list(dataset_ids) if isinstance(dataset_ids, Iterable) else dataset_ids
        if not isinstance(indicator_ids, str | bytes | list | Mapping) and not is_templated(indicator_ids):
            indicator_ids = list(indicator_ids) if isinstance(indicator_ids, Iterable) else indicator_ids
        self.output_uri = output_uri
        self.dataset_ids = dataset_ids
        self.query = query
        self.search_filters = search_filters
        self.indicator_ids = indicator_ids
        self.indicators = _listed(indicators)
        self.version = version
        self.system_model = system_model
        self.layout = layout
        self.format = format
        self.max_in_flight = max_in_flight
        self.max_unique_datasets = max_unique_datasets
        self.max_unique_indicators = max_unique_indicators
        # ``BaseOperator.dry_run()`` is a method (render templates, log them): keep the flag apart.
        self.dry_run_only = dry_run
        self.fail_on_missing = fail_on_missing
        self.user_id = user_id
        self.organization_id = organization_id
        self.progress_interval = progress_interval
        self.ecoinvent_conn_id = ecoinvent_conn_id
        self.partition_size = partition_size
        self.overwrite = overwrite
        self.shard = shard
        # Run state (never deep-copied with a value: set in execute only).
        self._writer: PartitionedWriter | None = None
        self._stream: DatasetStream | None = None
        self._output: AtomicOutput | None = None
        self._kill_requested = False
        self._hook: EcoinventHook | None = None
        self._lineage_state: tuple[str, str, ObjectStoragePath | None] | None = None
        self._check_static()
        self._plan(rendered=False)

    # -- validation ------------------------------------------------------------------------------

    def _check_static(self) -> None:
        """Arguments that are never templated."""
        if self.layout not in LAYOUTS:
            raise EcoinventConfigError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}.")
        if self.format not in FORMATS:
            raise EcoinventConfigError(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}.")
        if self.format == "parquet" and self.layout != "flat":
            raise EcoinventConfigError(
                "format='parquet' writes the flat table of scores: set layout='flat' (the nested layout is JSON Lines)."
            )
        if isinstance(self.max_in_flight, bool) or not isinstance(self.max_in_flight, int) or self.max_in_flight < 1:
            raise EcoinventConfigError(f"max_in_flight must be a whole number >= 1, got {self.max_in_flight!r}.")
        if self.max_in_flight > POOL_SIZE:
            raise EcoinventConfigError(
                f"max_in_flight must be at most {POOL_SIZE} (the connections the hook keeps open), got "
                f"{self.max_in_flight}."
            )
        for guard in ("max_unique_datasets", "max_unique_indicators"):
            if getattr(self, guard) is not None:
                _positive_int(getattr(self, guard), guard, minimum=0)
        check_partition_size(self.partition_size)
        for name in ("dry_run_only", "fail_on_missing", "overwrite"):
            if not isinstance(getattr(self, name), bool):
                argument = "dry_run" if name == "dry_run_only" else name
                raise EcoinventConfigError(f"{argument} must be True or False, got {getattr(self, name)!r}.")
        interval = self.progress_interval
        if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
            raise EcoinventConfigError(f"progress_interval must be a positive number of seconds, got {interval!r}.")

    def _plan(self, *, rendered: bool) -> _Plan | None:
        """Validate the templated arguments; before rendering, only those that are not templated.

        :returns: the plan once rendered, ``None`` before.
        """

        def ready(value: Any) -> bool:
            return rendered or not is_templated(value)

        dataset_ids: list[int] | None = None
        if self.dataset_ids is not None and ready(self.dataset_ids):
            ids = parse_id_list(self.dataset_ids, "dataset_ids")
            # A literal [] is a mistake in the DAG; an empty list rendered from an upstream XCom, or given to
            # one mapped task instance by expand(), is data.
            dataset_ids = sorted(validate_dataset_ids(ids, allow_empty=rendered or _built_by_mapping(self)))
        indicator_ids: list[int] = []
        if ready(self.indicator_ids):
            raw = [] if self.indicator_ids is None else parse_id_list(self.indicator_ids, "indicator_ids")
            indicator_ids = sorted(validate_indicator_ids(raw))
        selectors = self._check_selectors(indicator_ids, ready)

        query: str | None = None
        if ready(self.query) and self.query is not None:
            if not isinstance(self.query, str):
                raise EcoinventConfigError(f"query must be a string, got {type(self.query).__name__}.")
            query = self.query.strip()
        search_filters: dict[str, Any] = {}
        if ready(self.search_filters) and self.search_filters is not None:
            search_filters = self._check_filters(self.search_filters)
        searching = self.query is not None or self.search_filters is not None
        if self.dataset_ids is not None and searching:
            raise EcoinventConfigError(
                "Give either dataset_ids or a search (query / search_filters), not both: "
                "the selection must be unambiguous."
            )
        if self.dataset_ids is None and not searching:
            raise EcoinventConfigError(
                "No datasets selected: give dataset_ids (e.g. [1, 2, 3] or an upstream XCom), or a search "
                "with query and/or search_filters."
            )

        version = system_model = ""
        if ready(self.version):
            version = _required_text(self.version, "version")
        if ready(self.system_model):
            system_model = _required_text(self.system_model, "system_model")
        if self.output_uri is None:
            if not self.dry_run_only:
                raise EcoinventConfigError(
                    "output_uri is required (e.g. 'file:///data/datasets.jsonl' or 's3://aws_default@bucket/key'): "
                    "the datasets are written to a file, never to XCom. Only dry_run=True runs without it."
                )
        elif ready(self.output_uri):
            check_directory_uri(self.output_uri) if is_directory_uri(self.output_uri) else check_uri(self.output_uri)
        shard = self._check_shard(ready)
        if ready(self.ecoinvent_conn_id):
            _required_text(self.ecoinvent_conn_id, "ecoinvent_conn_id")
        user_id = _optional_text(self.user_id, "user_id") if ready(self.user_id) else None
        organization_id = (
            _optional_text(self.organization_id, "organization_id") if ready(self.organization_id) else None
        )
        if not rendered:
            return None
        return _Plan(
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
        )

    def _check_shard(self, ready: Callable[[Any], bool]) -> tuple[int, int] | None:
        """``shard`` checked (once rendered, or now if not templated): a fan-out writes a dataset directory."""
        if not ready(self.shard):
            return None
        shard = parse_shard(self.shard)
        if shard is not None and ready(self.output_uri) and not is_directory_uri(self.output_uri):
            raise EcoinventConfigError(
                f"shard={list(shard)} needs a dataset directory: end output_uri with '/' (got {self.output_uri!r}), "
                "so that every mapped task writes its parts into it; then run EcoinventDatasetsCommitOperator."
            )
        return shard

    def _check_selectors(self, indicator_ids: list[int], ready: Callable[[Any], bool]) -> list[Any] | None:
        """``indicators`` checked (once rendered, or now if not templated); one of it and ``indicator_ids``."""
        if self.indicators is None:
            return None
        ids_given = bool(indicator_ids) or (self.indicator_ids is not None and not ready(self.indicator_ids))
        if ids_given:
            raise EcoinventConfigError(
                "Give either indicator_ids or indicators, not both: indicators selects by name (and takes ids "
                "too, e.g. [1, {'method': 'EF v3.1'}])."
            )
        return parse_selectors(self.indicators) if ready(self.indicators) else None

    @staticmethod
    def _check_filters(filters: Any) -> dict[str, Any]:
        if not isinstance(filters, Mapping):
            raise EcoinventConfigError(
                "search_filters must be a dict such as {'geography': 'Switzerland (CH)'}, "
                f"got {type(filters).__name__}."
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

    # -- execution -------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        start = time.monotonic()
        self._kill_requested = False
        plan = self._plan(rendered=True)
        assert plan is not None
        if self.format == "parquet" and not self.dry_run_only:
            require_pyarrow()  # fails with the install command before any call
        destination = _output_path(self.output_uri, writing=not self.dry_run_only)
        hook = _hook(self.ecoinvent_conn_id, user_id=plan.user_id, organization_id=plan.organization_id)
        self._hook = hook  # on_kill stops it: its free calls (version, indicators, search) as well as batches
        # The connection extras (read without a network call) cap the arguments: an argument may only lower them.
        limit = capped_limit(self.max_unique_datasets, hook.settings.max_unique_datasets, "max_unique_datasets")
        indicator_limit = capped_limit(
            self.max_unique_indicators, hook.settings.max_unique_indicators, "max_unique_indicators"
        )

        version = hook.resolve_version(plan.version, plan.system_model)
        if version != plan.version:
            self.log.info("Version %r resolved to %r; every call of this run uses it.", plan.version, version)
        self._lineage_state = (_lineage_namespace(hook), f"datasets/{version}/{plan.system_model}", destination)
        resolved = self._resolve_indicators(hook, plan, version)
        ids = plan.dataset_ids if plan.dataset_ids is not None else self._search(hook, plan, version)
        selection = "dataset_ids" if plan.dataset_ids is not None else "search"
        scored = bool(plan.indicator_ids)
        unique = len(ids)
        if not self.dry_run_only:
            check_cost_guard(unique, len(plan.indicator_ids), limit, indicator_limit)
        indicators_over = scored and indicator_limit is not None and len(plan.indicator_ids) > indicator_limit
        common: dict[str, Any] = {
            "output_uri": str(destination) if destination is not None else None,
            "format": self.format,
            "layout": self.layout,
            "version": version,
            "requested_version": plan.version,
            "system_model": plan.system_model,
            "indicator_ids": plan.indicator_ids,
            "selection": selection,
            "requested_datasets": unique,
        }
        if resolved is not None:
            common["indicator_selectors"] = plan.selectors
            common["indicators"] = resolved
        if self.dry_run_only:
            manifest = {
                **common,
                "dry_run": True,
                "unique_datasets": unique if scored else 0,
                "unique_indicators": len(plan.indicator_ids) if scored else 0,
                "max_unique_datasets": limit,
                "max_unique_indicators": indicator_limit,
                "within_cost_guard": not (scored and limit is not None and unique > limit) and not indicators_over,
                "api_calls": hook.api_calls,
                "token_requests": hook.token_requests,
                "elapsed_seconds": _elapsed(start),
            }
            self.log.info(
                "Dry run: would score %d distinct datasets for %d indicators (version %s, %s); nothing written.",
                manifest["unique_datasets"],
                manifest["unique_indicators"],
                version,
                plan.system_model,
            )
            if not manifest["within_cost_guard"]:
                self.log.warning(
                    "A real run would exceed max_unique_datasets=%s or max_unique_indicators=%s and fail.",
                    limit,
                    indicator_limit,
                )
            _publish_to_outlets(self, context, manifest)
            return manifest

        assert destination is not None
        if is_directory_uri(self.output_uri):
            manifest = self._write_directory(hook, plan, version, ids, destination, common, context, start)
            _publish_to_outlets(self, context, manifest)
            return manifest
        if not ids:
            self.log.warning("No datasets selected; writing an empty file.")
        written = self._write(hook, plan, version, ids, destination)
        manifest = {
            **common,
            "dry_run": False,
            "record_count": written["records"],
            "datasets_written": written["datasets"],
            "returned_datasets": written["returned"],
            "missing_datasets": len(written["missing"]),
            "missing_dataset_ids": written["missing"][:MISSING_IDS_IN_MANIFEST],
            "bytes": written["bytes"],
            "sha256": written["sha256"],
            "api_calls": hook.api_calls,
            "token_requests": hook.token_requests,
            "elapsed_seconds": _elapsed(start),
        }
        self.log.info(
            "Wrote %d records (%d datasets, %d missing) to %s: %d bytes, sha256 %s, %d API calls.",
            manifest["record_count"],
            manifest["datasets_written"],
            manifest["missing_datasets"],
            destination,
            manifest["bytes"],
            manifest["sha256"],
            manifest["api_calls"],
        )
        _publish_to_outlets(self, context, manifest)
        return manifest

    def _write_directory(
        self,
        hook: EcoinventHook,
        plan: _Plan,
        version: str,
        ids: list[int],
        root: ObjectStoragePath,
        common: dict[str, Any],
        context: Context,
        start: float,
    ) -> dict[str, Any]:
        """Directory mode (``output_uri`` ends with ``/``): parts, resumed and verified (operators._partitioned)."""
        request = Request(
            version, plan.system_model, tuple(plan.indicator_ids), self.layout, self.format, self.partition_size
        )
        selection = {"kind": common["selection"], "query": plan.query, "search_filters": plan.search_filters}
        summary = {**common, "dry_run": False, "request": request.as_json({**selection, "datasets": len(ids)})}
        summary["output_uri"] = str(self.output_uri).strip()
        self._writer = PartitionedWriter(
            Directory(root, attempt_owner(context)),
            request,
            shard=plan.shard,
            overwrite=self.overwrite,
            fail_on_missing=self.fail_on_missing,
            max_in_flight=self.max_in_flight,
            log=self.log,
        )
        if self._kill_requested:
            raise EcoinventError("The task was killed before writing; nothing was written.")
        return self._writer.run(hook, ids, summary, start)

    def _resolve_indicators(self, hook: EcoinventHook, plan: _Plan, version: str) -> list[dict[str, Any]] | None:
        """Resolve ``indicators`` against the pinned version (a free listing) into ``plan.indicator_ids``.

        :returns: the resolved indicators for the manifest; ``None`` when ids were given instead.
        """
        if plan.selectors is None:
            return None
        resolved = hook.resolve_indicators(plan.selectors, version=version, system_model=plan.system_model)
        plan.indicator_ids = [indicator["id"] for indicator in resolved]
        self.log.info(
            "%d indicator selectors resolved to %d indicators in version %s (%s).",
            len(plan.selectors),
            len(resolved),
            version,
            plan.system_model,
        )
        return resolved

    def _search(self, hook: EcoinventHook, plan: _Plan, version: str) -> list[int]:
        """The ids (only) of every dataset the search matches, sorted; searches are not billed."""
        found: set[int] = set()
        for dataset in hook.search_datasets(
            plan.query or None, version=version, system_model=plan.system_model, **plan.search_filters
        ):
            ident = dataset.get("id")
            if isinstance(ident, int) and not isinstance(ident, bool):
                found.add(ident)
        self.log.info("The search selected %d datasets.", len(found))
        return sorted(found)

    def _write(
        self, hook: EcoinventHook, plan: _Plan, version: str, ids: list[int], destination: ObjectStoragePath
    ) -> dict[str, Any]:
        stream = hook.get_datasets(
            ids,
            indicator_ids=plan.indicator_ids,
            version=version,
            system_model=plan.system_model,
            max_in_flight=self.max_in_flight,
        )
        self._stream = stream
        progress = _Progress(self.log, len(ids), float(self.progress_interval))
        records = datasets = 0
        try:
            with AtomicOutput(destination) as output:
                self._output = output
                if self._kill_requested:
                    raise EcoinventError("The task was killed before writing; nothing was written.")
                parquet = ParquetRowWriter(output) if self.format == "parquet" else None
                for dataset in stream:
                    if self.layout == "nested":
                        output.write(json_line(nested_record(dataset)))
                        records += 1
                    else:
                        for row in flat_rows(dataset, version, plan.system_model):
                            if parquet is not None:
                                parquet.write(row)
                            else:
                                output.write(json_line(row))
                            records += 1
                    datasets += 1
                    progress.advance()
                if self._kill_requested:
                    raise EcoinventError("The task was killed; the partial output was removed.")
                progress.report()
                missing = sorted(stream.missing_ids)
                if missing and self.fail_on_missing:
                    raise EcoinventError(
                        f"{len(missing)} of {len(ids)} requested datasets are not in version {version} "
                        f"({plan.system_model}), e.g. {missing[:MISSING_IDS_IN_MANIFEST]}; fail_on_missing=True, so "
                        "nothing was written."
                    )
                if missing:
                    self.log.warning(
                        "%d requested datasets are not in version %s (%s), e.g. %s.",
                        len(missing),
                        version,
                        plan.system_model,
                        missing[:MISSING_IDS_IN_MANIFEST],
                    )
                if parquet is not None:
                    parquet.close()
                output.commit()
        except Exception as err:
            if self._kill_requested:  # whatever the stopped stream raised, the kill is what happened
                raise EcoinventError("The task was killed; the partial output was removed.") from err
            raise
        finally:
            with contextlib.suppress(Exception):
                stream.close()
            self._stream = None
        return {
            "records": records,
            "datasets": datasets,
            "returned": stream.returned,
            "missing": missing,
            "bytes": output.bytes_written,
            "sha256": output.sha256,
        }

    def on_kill(self) -> None:
        """Stop the hook's calls and the batches in flight, and remove the partial file; never raises."""
        self._kill_requested = True
        _stop_hook(self._hook)
        if self._writer is not None:
            self._writer.kill()
        stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception:
                # DatasetStream.close() on a generator running in this very thread (a signal handler
                # interrupting the iteration) raises ValueError; its cancel flag is set by then anyway.
                self.log.debug("Closing the dataset stream from on_kill failed.", exc_info=True)
        output = self._output
        if output is not None:
            with contextlib.suppress(Exception):
                output.abort()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The ecoinvent input (``datasets/{version}/{system_model}``) and the output file.

        ``None`` when the openlineage provider (the ``openlineage`` extra) is not installed, or before
        ``execute`` ran.
        """
        if self._lineage_state is None:
            return None
        namespace, name, destination = self._lineage_state
        return _lineage(namespace, name, destination)
