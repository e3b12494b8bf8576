"""EcoinventDatasetsOperator, the ingestion workhorse (import it from :mod:`.ecoinvent`).

Selected datasets, scored for a list of indicators against one pinned version, streamed to JSON Lines or
Parquet, atomically, with a licence cost guard, a dry run and a manifest in XCom and on the outlet asset
events. The operator holds the arguments and the run's state (for ``on_kill``); what a run does is in its
parts, which take a frozen :class:`._plan.Plan` of the rendered arguments, never the operator: the checks
(:mod:`._plan`, before any network call; no I/O in the constructor), the selection shared by a fan-out
(:mod:`._selection`), the dataset directory (:mod:`._partitioned`) and the manifests (:mod:`._manifests`)."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import fields
from typing import TYPE_CHECKING, Any, ClassVar, Final

from airflow.sdk import BaseOperator

from airflow_provider_ecoinvent._client.constants import DEFAULT_CONN_ID
from airflow_provider_ecoinvent.exceptions import EcoinventConfigError, EcoinventError
from airflow_provider_ecoinvent.operators._arguments import check_flag, listed, reusable
from airflow_provider_ecoinvent.operators._directory import Directory, attempt_owner, run_identity
from airflow_provider_ecoinvent.operators._mapping import built_by_mapping, mapped_outputs, shared_output_text
from airflow_provider_ecoinvent.operators._output import AtomicOutput, require_filesystem
from airflow_provider_ecoinvent.operators._partitioned import PartitionedWriter, directory_run
from airflow_provider_ecoinvent.operators._partitions import DEFAULT_PARTITION_SIZE
from airflow_provider_ecoinvent.operators._plan import Arguments, CostGuard, Plan, check_static, plan_run
from airflow_provider_ecoinvent.operators._records import LineBatch, ParquetRowWriter, require_pyarrow, write_dataset
from airflow_provider_ecoinvent.operators._selection import Selection, selection_inputs, shared_selection
from airflow_provider_ecoinvent.operators._task import (
    Progress,
    elapsed,
    lineage,
    lineage_namespace,
    make_hook,
    output_path,
    publish_or_withhold,
    publish_to_outlets,
    stop_hook,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_ecoinvent.hooks.ecoinvent import DatasetStream, EcoinventHook
    from airflow_provider_ecoinvent.operators._manifests import (
        DirectoryManifest,
        DirectoryPreview,
        DryRunManifest,
        FileManifest,
        Selected,
    )

    #: What a run of the operator returns (XCom) and puts on its outlets' asset events.
    DatasetsManifest = FileManifest | DryRunManifest | DirectoryManifest

#: The operator's attributes of the same name as an :class:`Arguments` field (the others are computed).
ARGUMENT_NAMES: Final = tuple(item.name for item in fields(Arguments) if item.name not in ("dry_run", "from_mapping"))
#: Missing dataset ids listed in a manifest (the count is always complete).
MISSING_IDS_IN_MANIFEST: Final = 20


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

    Dataset directory (``output_uri`` ending with ``/``, or ``directory=True``): parts of at most
    ``partition_size`` datasets, each committed atomically with a ``_parts/`` record (key, size, SHA-256), then
    ``_manifest.json`` and ``_SUCCESS``. A retry or rerun reuses every part whose record and bytes still
    match and fetches only the others; a complete directory is skipped without a scored call. ``shard=(index, count)``
    (``.expand(shard=shards(n))``) writes one share of the parts, then :class:`EcoinventDatasetsCommitOperator`
    completes the directory. Mapped task instances must not share one ``output_uri`` without ``shard`` (each
    would replace the others' output): that fails before any call, naming ``shards()``. See docs/output.md.

    :param output_uri: destination file, any ``ObjectStoragePath`` URI or path object; ending with ``/`` (or
        with ``directory=True``), a dataset directory. A file must not name an existing folder. Required
        unless ``dry_run``. (templated)
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
    :param max_in_flight: concurrent batch calls, default 8, at most 32 (the hook's connection pool); a
        ceiling: fewer run while the API answers 429 (the manifest's ``concurrency`` tells how many).
    :param max_unique_datasets: cost guard; ``None`` uses the connection's ``max_unique_datasets``.
    :param max_unique_indicators: cost guard; ``None`` uses the connection's ``max_unique_indicators``.
    :param dry_run: count only: no scored call, no file.
    :param fail_on_missing: fail (writing nothing) when some requested ids are not in the version.
    :param user_id: ``X-User-Id`` for this task, overriding the connection's. (templated)
    :param organization_id: ``X-Organization-Id`` for this task, overriding the connection's. (templated)
    :param progress_interval: seconds between progress lines in the task log.
    :param ecoinvent_conn_id: the Airflow connection. (templated)
    :param partition_size: dataset directory: at most this many datasets per part (default 1000).
    :param overwrite: dataset directory: rewrite every part, even those found valid.
    :param shard: dataset directory: ``(index, count)`` writes the parts whose number modulo ``count`` is
        ``index``; ``None`` (default) writes them all. (templated)
    :param directory: ``True``: ``output_uri`` names a dataset directory, whatever its form (an
        ``ObjectStoragePath`` drops a trailing ``/``); ``False``: a file; ``None`` (default): a string ending
        with ``/`` is a directory, and so is a path object given with ``shard``.
    :param emit_unchanged: dataset directory: when ``False``, a run that leaves the directory exactly as it
        was (complete, nothing fetched) succeeds without emitting its outlets' asset events, so nothing
        scheduled on them reruns. Default ``True``: every successful run emits them.
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
        directory: bool | None = None,
        emit_unchanged: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # A one-shot iterable (a generator) would be consumed by validation: keep a list instead.
        dataset_ids, indicator_ids = reusable(dataset_ids), reusable(indicator_ids)
        self.output_uri = output_uri
        self.dataset_ids = dataset_ids
        self.query = query
        self.search_filters = search_filters
        self.indicator_ids = indicator_ids
        self.indicators = listed(indicators)
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
        self.directory = directory
        self.emit_unchanged = check_flag("emit_unchanged", emit_unchanged)
        self._clear_run_state()
        self._check_static()
        self._plan(rendered=False)

    def _clear_run_state(self) -> None:
        """What a running task holds for ``on_kill`` and lineage (never deep-copied with a value: set in execute)."""
        self._writer: PartitionedWriter | None = None
        self._stream: DatasetStream | None = None
        self._output: AtomicOutput | None = None
        self._kill_requested = False
        self._hook: EcoinventHook | None = None
        self._lineage_state: tuple[str, str, ObjectStoragePath | None] | None = None

    # -- validation ------------------------------------------------------------------------------

    def _arguments(self) -> Arguments:
        """The arguments as they stand now (before rendering, or rendered), as one frozen value."""
        given = {name: getattr(self, name) for name in ARGUMENT_NAMES}
        return Arguments(**given, dry_run=self.dry_run_only, from_mapping=built_by_mapping(self))

    def _check_static(self) -> None:
        """Arguments that are never templated (see :func:`._plan.check_static`)."""
        check_static(self._arguments())

    def _plan(self, *, rendered: bool) -> Plan | None:
        """Validate the templated arguments; before rendering, only those that are not templated.

        :returns: the plan once rendered, ``None`` before (see :func:`._plan.plan_run`).
        """
        return plan_run(self._arguments(), rendered=rendered)

    def _checked_plan(self, context: Context) -> Plan:
        """The rendered arguments, checked before any call: the plan of this run."""
        plan = self._plan(rendered=True)
        assert plan is not None
        self._refuse_shared_output(plan, context)  # mapped chunks into one output: before any call
        if plan.given.format == "parquet" and not plan.given.dry_run:
            require_pyarrow()  # fails with the install command before any call
        return plan

    def _refuse_shared_output(self, plan: Plan, context: Mapping[str, Any]) -> None:
        """Mapped task instances without ``shard`` must each write their own ``output_uri``; checked before any call.

        ``.partial(output_uri=".../dir/").expand(dataset_ids=chunks)`` (or the operator inside a ``@task_group``
        expanded over chunks) would have each instance take its chunk for the whole request: it removes the others'
        parts and marks the directory complete (a file: it replaces the others' file), so every chunk is billed and
        only the last is kept. A fan-out over one directory maps over ``shard`` instead; mapping over ``output_uri``
        too, or a template naming the map index, gives each instance its own output. A dry run writes nothing.

        :raises EcoinventConfigError: naming ``shards()``, the commit step and a per-instance output.
        """
        if self.output_uri is None or plan.shard is not None or self.dry_run_only:
            return
        found = mapped_outputs(self, context)
        if found is None or found[1] >= found[0]:
            return
        instances, outputs = found
        count = f"{instances}" if math.isfinite(instances) else "N"
        raise EcoinventConfigError(
            f"{shared_output_text(self, instances, outputs)} without shard: each would take its own chunk for the "
            "whole request and replace what the others wrote, so every chunk would be billed and only the last "
            "kept. To split one request over mapped tasks, give every task the whole selection and map over shard "
            "into a dataset directory: EcoinventDatasetsOperator.partial(..., output_uri='.../dir/')"
            f".expand(shard=shards({count})), "
            "then EcoinventDatasetsCommitOperator(output_uri='.../dir/'). Or give each mapped task its own "
            "output_uri: map over output_uri too, or name the map index in it (e.g. '.../{{ ti.map_index }}/' or "
            "'.../{{ ti.map_index }}.jsonl'). No call was made to the ecoinvent API."
        )

    # -- execution -------------------------------------------------------------------------------

    def execute(self, context: Context) -> DatasetsManifest:
        """The steps of a run: plan, select, then a dry run, a dataset directory or a single file, each
        returning its manifest, which the outlets' asset events carry too."""
        start = time.monotonic()
        self._kill_requested = False
        plan = self._checked_plan(context)
        destination = output_path(
            self.output_uri, writing=not self.dry_run_only, directory=plan.directory, directory_hint=True
        )
        hook = self._start_hook(plan)
        guard = CostGuard.capped(plan.given, hook.settings)
        selection = self._select(hook, plan, destination, context, guard)
        plan = plan.with_indicators(selection.indicators)
        source = f"datasets/{selection.version}/{plan.system_model}"
        self._lineage_state = (lineage_namespace(hook), source, destination)
        selected = selected_fields(plan, selection)
        if self.dry_run_only:
            dry_run = self._dry_run(hook, plan, selection, selected, destination, guard, context, start)
            publish_to_outlets(self, context, dry_run)
            return dry_run
        guard.check(len(selection.ids), len(plan.indicator_ids))
        assert destination is not None
        if plan.directory:  # a dataset directory: parts, resumed (operators._partitioned)
            return self._write_directory(hook, plan, selection.ids, selected, destination, context, start)
        manifest = self._write_file(hook, plan, selection, selected, destination, start)
        publish_to_outlets(self, context, manifest)
        return manifest

    def _start_hook(self, plan: Plan) -> EcoinventHook:
        """The run's hook (no call yet), kept for ``on_kill``: it stops its free calls as well as the batches."""
        hook = make_hook(self.ecoinvent_conn_id, user_id=plan.user_id, organization_id=plan.organization_id)
        self._hook = hook
        return hook

    def _select(
        self,
        hook: EcoinventHook,
        plan: Plan,
        destination: ObjectStoragePath | None,
        context: Context,
        guard: CostGuard,
    ) -> Selection:
        """The pinned version, the resolved indicators and the dataset ids of this run.

        A shard of a fan-out shares them with the other shards of its DAG run through the dataset directory
        (:mod:`._selection`): one resolution per DAG run, not one per shard. The cost guard judges a fresh
        resolution before it is stored: a refused shard leaves nothing behind.
        """
        run = run_identity(context)
        if plan.shard is None or self.dry_run_only or run is None or destination is None:
            return self._resolve(hook, plan)

        def resolve() -> Selection:
            fresh = self._resolve(hook, plan)
            guard.check(len(fresh.ids), len(plan.with_indicators(fresh.indicators).indicator_ids))
            return fresh

        directory = Directory(destination, attempt_owner(context))
        settings = hook.settings  # the account in effect: the arguments over the connection's extras
        inputs = selection_inputs(
            plan, conn_id=hook.ecoinvent_conn_id, user_id=settings.user_id, organization_id=settings.organization_id
        )
        return shared_selection(directory, run, inputs, resolve, self.log)

    def _resolve(self, hook: EcoinventHook, plan: Plan) -> Selection:
        """Resolve the version, the indicators and the search against the API (free calls)."""
        version = hook.resolve_version(plan.version, plan.system_model)
        if version != plan.version:
            self.log.info("Version %r resolved to %r; every call of this run uses it.", plan.version, version)
        resolved = self._resolve_indicators(hook, plan, version)
        ids = plan.dataset_ids if plan.dataset_ids is not None else self._search(hook, plan, version)
        return Selection(version, resolved, list(ids))

    def _resolve_indicators(self, hook: EcoinventHook, plan: Plan, version: str) -> list[dict[str, Any]] | None:
        """Resolve ``indicators`` against the pinned version (a free listing).

        :returns: the resolved indicators (the run scores their ids); ``None`` when ids were given instead.
        """
        if plan.selectors is None:
            return None
        resolved = hook.resolve_indicators(plan.selectors, version=version, system_model=plan.system_model)
        self.log.info(
            "%d indicator selectors resolved to %d indicators in version %s (%s).",
            len(plan.selectors),
            len(resolved),
            version,
            plan.system_model,
        )
        return resolved

    def _search(self, hook: EcoinventHook, plan: Plan, version: str) -> list[int]:
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

    # -- the three kinds of run --------------------------------------------------------------------

    def _dry_run(
        self,
        hook: EcoinventHook,
        plan: Plan,
        selection: Selection,
        selected: Selected,
        destination: ObjectStoragePath | None,
        guard: CostGuard,
        context: Context,
        start: float,
    ) -> DryRunManifest:
        """Count what a real run would score (into a directory: only the parts it would fetch); no scored call,
        nothing written."""
        preview, would_fetch = self._preview(plan, selection.ids, selected, destination, context)
        scored = bool(plan.indicator_ids)
        manifest: DryRunManifest = {
            "output_uri": str(destination) if destination is not None else None,
            **selected,
            "dry_run": True,
            "unique_datasets": (len(selection.ids) if would_fetch is None else would_fetch) if scored else 0,
            **preview,
            "unique_indicators": len(plan.indicator_ids) if scored else 0,
            "max_unique_datasets": guard.datasets,
            "max_unique_indicators": guard.indicators,
            "within_cost_guard": guard.admits(len(selection.ids), len(plan.indicator_ids)),
            "api_calls": hook.api_calls,
            "token_requests": hook.token_requests,
            "elapsed_seconds": elapsed(start),
        }
        self.log.info(
            "Dry run: would score %d distinct datasets for %d indicators (version %s, %s); nothing written.",
            manifest["unique_datasets"],
            manifest["unique_indicators"],
            selection.version,
            plan.system_model,
        )
        if not manifest["within_cost_guard"]:
            self.log.warning(
                "A real run would exceed max_unique_datasets=%s or max_unique_indicators=%s and fail.",
                guard.datasets,
                guard.indicators,
            )
        return manifest

    def _preview(
        self,
        plan: Plan,
        ids: list[int],
        selected: Selected,
        destination: ObjectStoragePath | None,
        context: Context,
    ) -> tuple[DirectoryPreview, int | None]:
        """A dry run into a dataset directory: which parts a real run would fetch, read from the directory
        (valid parts are reused, ``overwrite`` respected), and how many datasets they hold; nothing for a single
        file (all would be fetched)."""
        if destination is None or not plan.directory:
            return {}, None
        require_filesystem(self.output_uri)  # reading the directory needs its storage provider
        writer, _ = directory_run(plan, self.log, selected, ids, destination, context)
        return writer.preview(ids)

    def _write_directory(
        self,
        hook: EcoinventHook,
        plan: Plan,
        ids: list[int],
        selected: Selected,
        destination: ObjectStoragePath,
        context: Context,
        start: float,
    ) -> DirectoryManifest:
        """Write (or resume) a dataset directory; with ``emit_unchanged=False`` a run that changed nothing
        emits no asset event."""
        self._writer, head = directory_run(plan, self.log, selected, ids, destination, context)
        manifest = self._writer.run(hook, ids, head, start)
        publish_or_withhold(self, context, manifest, emit=self.emit_unchanged or not manifest.get("unchanged"))
        return manifest

    def _write_file(
        self,
        hook: EcoinventHook,
        plan: Plan,
        selection: Selection,
        selected: Selected,
        destination: ObjectStoragePath,
        start: float,
    ) -> FileManifest:
        """Write one file, atomically, and describe it."""
        if not selection.ids:
            self.log.warning("No datasets selected; writing an empty file.")
        written = self._write(hook, plan, selection.version, selection.ids, destination)
        manifest: FileManifest = {
            "output_uri": str(destination),
            **selected,
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
            "concurrency": written["concurrency"],
            "elapsed_seconds": elapsed(start),
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
        return manifest

    def _write(
        self, hook: EcoinventHook, plan: Plan, version: str, ids: list[int], destination: ObjectStoragePath
    ) -> dict[str, Any]:
        stream = hook.get_datasets(
            ids,
            indicator_ids=plan.indicator_ids,
            version=version,
            system_model=plan.system_model,
            max_in_flight=plan.given.max_in_flight,
        )
        self._stream = stream
        progress = Progress(self.log, len(ids), float(plan.given.progress_interval))
        records = datasets = 0
        try:
            with AtomicOutput(destination) as output:
                self._output = output
                if self._kill_requested:
                    raise EcoinventError("The task was killed before writing; nothing was written.")
                parquet = ParquetRowWriter(output) if plan.given.format == "parquet" else None
                # A failed try abandons the Parquet writer while its temporary output is still open.
                with parquet if parquet is not None else contextlib.nullcontext():
                    lines = LineBatch(output)
                    for dataset in stream:
                        records += write_dataset(
                            lines, parquet, dataset, plan.given.layout, (version, plan.system_model)
                        )
                        datasets += 1
                        progress.advance()
                    lines.flush()
                    if self._kill_requested:
                        raise EcoinventError("The task was killed; the partial output was removed.")
                    progress.report()
                    missing = self._missing(stream, len(ids), version, plan)
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
            "concurrency": stream.concurrency,
        }

    def _missing(self, stream: Any, requested: int, version: str, plan: Plan) -> list[int]:
        """The requested ids the API did not return, sorted; with ``fail_on_missing``, any is an error."""
        missing = sorted(stream.missing_ids)
        if missing and self.fail_on_missing:
            raise EcoinventError(
                f"{len(missing)} of {requested} requested datasets are not in version {version} "
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
        return missing

    def on_kill(self) -> None:
        """Stop the hook's calls and the batches in flight, and remove the partial file; never raises."""
        self._kill_requested = True
        stop_hook(self._hook)
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
        return lineage(namespace, name, destination)


def selected_fields(plan: Plan, selection: Selection) -> Selected:
    """The manifest fields of the request every mode shares: how the datasets were selected, pinned where."""
    selected: Selected = {
        "format": plan.given.format,
        "layout": plan.given.layout,
        "version": selection.version,
        "requested_version": plan.version,
        "system_model": plan.system_model,
        "indicator_ids": plan.indicator_ids,
        "selection": "dataset_ids" if plan.dataset_ids is not None else "search",
        "requested_datasets": len(selection.ids),
    }
    if selection.indicators is not None:
        selected["indicator_selectors"] = plan.selectors
        selected["indicators"] = selection.indicators
    return selected


__all__ = ["EcoinventDatasetsOperator"]
