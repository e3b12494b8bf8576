"""Partitioned output, the run: which parts to fetch, one stream over their ids, written part by part.

Used by :class:`EcoinventDatasetsOperator` for a dataset directory (``output_uri`` ending with ``/``), from
its :class:`._plan.Plan` (never the operator itself). The plan, names and keys come from :mod:`._partitions`,
the directory's bookkeeping from :mod:`._directory`. Each part is written with :class:`AtomicOutput` in
exactly the bytes single-file mode writes for the same datasets (same serialisation, same layouts, same
Parquet writer); its record is written once the part's bytes are final, just before the part is moved into
place.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from typing import TYPE_CHECKING, Any, Final, cast

from airflow_provider_ecoinvent.exceptions import EcoinventError, EcoinventOutputError
from airflow_provider_ecoinvent.operators._directory import Directory, attempt_owner, run_identity
from airflow_provider_ecoinvent.operators._partitions import (
    MANIFEST_NAME,
    SHARDS_FOLDER,
    SUCCESS_NAME,
    PlannedPart,
    Request,
    directory_text,
    mine,
    plan,
    record_name,
    shard_record_name,
)
from airflow_provider_ecoinvent.operators._records import LineBatch, ParquetRowWriter, write_dataset
from airflow_provider_ecoinvent.operators._task import Progress

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from airflow.sdk import ObjectStoragePath

    from airflow_provider_ecoinvent.hooks.ecoinvent import DatasetStream, EcoinventHook
    from airflow_provider_ecoinvent.operators._manifests import (
        Concurrency,
        DirectoryHead,
        DirectoryManifest,
        DirectoryPreview,
        PartTotals,
        RunOutcome,
        Selected,
        ShardRecord,
    )
    from airflow_provider_ecoinvent.operators._plan import Plan

#: Missing dataset ids listed in a manifest (the count is always complete).
MISSING_IDS_LISTED: Final = 20
#: Why a part is fetched under ``overwrite=True`` (not a defect of the part: not listed as refetched).
_OVERWRITTEN: Final = "overwrite"


def directory_run(
    plan: Plan, log: Any, selected: Selected, ids: Sequence[int], root: ObjectStoragePath, context: Mapping[str, Any]
) -> tuple[PartitionedWriter, DirectoryHead]:
    """The writer of one directory-mode run of ``plan``, and the manifest fields known before it writes.

    :param selected: the manifest fields of the selection (its pinned version is the request's).
    """
    given = plan.given
    request = Request(
        selected["version"],
        plan.system_model,
        tuple(plan.indicator_ids),
        given.layout,
        given.format,
        given.partition_size,
    )
    selection = {"kind": selected["selection"], "query": plan.query, "search_filters": plan.search_filters}
    head: DirectoryHead = {
        "output_uri": directory_text(given.output_uri),  # ending with "/", a path object's too
        **selected,
        "dry_run": False,
        "request": request.as_json({**selection, "datasets": len(ids)}),
    }
    writer = PartitionedWriter(
        Directory(root, attempt_owner(context)),
        request,
        shard=plan.shard,
        overwrite=given.overwrite,
        fail_on_missing=given.fail_on_missing,
        max_in_flight=given.max_in_flight,
        log=log,
        run=run_identity(context),
        progress_interval=float(given.progress_interval),
    )
    return writer, head


def manifest_entry(record: Mapping[str, Any]) -> dict[str, Any]:
    """A part as listed in ``_manifest.json`` and in shard records."""
    keys = ("name", "first_dataset_id", "last_dataset_id", "datasets", "records", "bytes", "sha256")
    return {key: record[key] for key in keys}


def totals(records: Sequence[Mapping[str, Any]]) -> PartTotals:
    """The counts of a manifest, summed over part records; a part without datasets has a record, no file."""
    missing = sorted(ident for record in records for ident in record.get("missing_dataset_ids", ()))
    files = [manifest_entry(record) for record in records if record.get("file", True)]
    return {
        "parts": files,
        "part_count": len(files),
        "record_count": sum(int(record["records"]) for record in records),
        "datasets_written": sum(int(record["datasets"]) for record in records),
        "bytes": sum(int(record["bytes"]) for record in records),
        "missing_datasets": len(missing),
        "missing_dataset_ids": missing[:MISSING_IDS_LISTED],
    }


class _PartFile:
    """One part being written: its atomic output, Parquet writer and counts."""

    def __init__(self, directory: Directory, part: PlannedPart, file_format: str) -> None:
        directory.remove(record_name(part.name))  # the record goes first: a part without one is never trusted
        self.part = part
        self.output = directory.output(part.name)
        self.output.open()
        self.parquet = ParquetRowWriter(self.output) if file_format == "parquet" else None
        self.lines = LineBatch(self.output)
        self.datasets = self.records = 0
        self.returned: set[int] = set()

    def seal(self) -> None:
        """Write out every byte: the size and SHA-256 of the temporary file are then final."""
        self.lines.flush()
        if self.parquet is not None:
            self.parquet.close()

    def discard(self) -> None:
        """Remove the temporary file; the Parquet writer is closed first (it would write to it when collected)."""
        if self.parquet is not None:
            with contextlib.suppress(Exception):
                self.parquet.close()
        self.output.abort()


class PartitionedWriter:
    """Writes one request's parts (all, or one shard's) into a dataset directory, resuming what is there."""

    def __init__(
        self,
        directory: Directory,
        request: Request,
        *,
        shard: tuple[int, int] | None,
        overwrite: bool,
        fail_on_missing: bool,
        max_in_flight: int,
        log: Any,
        run: str | None = None,
        progress_interval: float = 10.0,
    ) -> None:
        self.directory = directory
        #: The DAG run writing (see ``run_identity``): with ``overwrite``, its own parts are kept on a retry.
        self.dag_run = run
        self.progress_interval = progress_interval
        self.request = request
        self.shard = shard
        self.overwrite = overwrite
        self.fail_on_missing = fail_on_missing
        self.max_in_flight = max_in_flight
        self.log = log
        self.killed = False
        self._stream: DatasetStream | None = None
        #: The calls in flight of this task's stream (nothing fetched: the ceiling, untouched).
        self._concurrency: Concurrency = {
            "max_in_flight": max_in_flight,
            "peak_in_flight": 0,
            "final_in_flight": max_in_flight,
            "rate_limited_calls": 0,
        }
        self._current: _PartFile | None = None
        self._started = time.monotonic()
        #: ``overwrite`` and this DAG run's output was finished at the start of the try (set by _sort_out).
        self._rerun_of_finished = False

    # -- the run ----------------------------------------------------------------------------------

    def run(self, hook: EcoinventHook, ids: Sequence[int], head: DirectoryHead, started: float) -> DirectoryManifest:
        """Write the parts; returns the manifest (or, for a shard, its shard record) with ``head`` in it.

        :param started: ``time.monotonic()`` at the start of the task, for ``elapsed_seconds``.
        """
        self._started = started
        if not ids and not self.overwrite:
            self._refuse_emptying()
        parts = plan(self.request, ids)
        fingerprint = self.request.fingerprint(ids)
        self.directory.remove_dead_tries()
        assigned = [part for part in parts if mine(part.number, self.shard)]
        reused, fetch, refetched = self._sort_out(assigned)
        if self._rerun_of_finished:
            self._forget_run(assigned)
        if not fetch and self.shard is None:
            self._check_missing(list(reused.values()))
            untouched = self.directory.exists(SUCCESS_NAME)
            stored = self._complete_already(fingerprint)
            if stored is not None:  # the manifest as committed (read back from _manifest.json)
                kept = {**stored, **self._outcome(hook, 0, len(reused), []), "unchanged": untouched}
                return cast("DirectoryManifest", kept)
        if fetch:
            self.directory.withdraw_success()
            reused.update(self._fetch(hook, fetch))
        records = [reused[part.name] for part in assigned]
        self._check_missing(records)
        result: DirectoryManifest = {
            **head,
            "fingerprint": fingerprint,
            **totals(records),
            "plan_part_count": len(parts),
            **self._outcome(hook, len(fetch), len(assigned) - len(fetch), refetched),
        }
        if self.shard is not None:
            return self._finish_shard(result, assigned)
        self.directory.withdraw_success()
        self.directory.remove_unplanned(part.name for part in parts)
        self.directory.remove_expired_partials()
        self.directory.complete(result)
        return result

    def _finish_shard(self, result: DirectoryManifest, assigned: Sequence[PlannedPart]) -> ShardRecord:
        """Write this shard's record: its parts for the commit step, which completes the directory."""
        assert self.shard is not None
        record: ShardRecord = {
            **result,
            "shard": list(self.shard),
            "assigned_parts": len(assigned),
            # Every assigned part, file-less ones too: the commit step removes only what no shard planned.
            "assigned_part_names": [part.name for part in assigned],
            "written_at": time.time(),
            "run": self.dag_run,  # this shard finished in this DAG run (see _run_finished)
        }
        self._write_shard_record(record)
        return record

    def _refuse_emptying(self) -> None:
        """An empty selection would remove every part: only with ``overwrite=True`` (a search may come back empty)."""
        held = self.directory.stored_parts()
        if held:
            raise EcoinventOutputError(
                f"The selection is empty and {self.directory} holds {len(held)} parts of an earlier request: "
                "nothing was changed. Pass overwrite=True to empty the dataset directory."
            )

    def _outcome(self, hook: EcoinventHook, fetched: int, reused: int, refetched: list[str]) -> RunOutcome:
        return {
            "skipped": fetched == 0,
            "unchanged": False,  # True only when the directory was left exactly as found (see run)
            "fetched_parts": fetched,
            "reused_parts": reused,
            "refetched_parts": refetched,
            "api_calls": hook.api_calls,
            "token_requests": hook.token_requests,
            "concurrency": self._concurrency,
            "elapsed_seconds": round(time.monotonic() - self._started, 3),
        }

    def _sort_out(
        self, assigned: Sequence[PlannedPart]
    ) -> tuple[dict[str, dict[str, Any]], list[PlannedPart], list[str]]:
        """Which parts are reused (name -> record), which are fetched, and which of those were there but bad."""
        reused: dict[str, dict[str, Any]] = {}
        fetch: list[PlannedPart] = []
        refetched: list[str] = []
        self._rerun_of_finished = self.overwrite and self._run_finished()
        for part in assigned:
            record, reason = self._reusable(part)
            if record is not None:
                reused[part.name] = record
                continue
            fetch.append(part)
            if reason not in ("no record", _OVERWRITTEN):
                refetched.append(part.name)
                self.log.warning("Part %s is refetched: found %s.", part.name, reason)
        self.log.info(
            "%d parts to write in %s: %d reused, %d to fetch (%d of them found corrupt or stale).",
            len(assigned),
            self.directory,
            len(reused),
            len(fetch),
            len(refetched),
        )
        return reused, fetch, refetched

    def _reusable(self, part: PlannedPart) -> tuple[dict[str, Any] | None, str]:
        """The part's record if it may be reused, else ``None`` and why not.

        ``overwrite`` applies to the DAG run: while the run's output is unfinished, a part that an earlier try
        of this same run committed is kept (its record names the run), any other is rewritten. Once the run
        finished (see :meth:`_run_finished`), a rerun of the task in the same DAG run (a Clear) rewrites every
        part. Outside a DAG run every part is rewritten.
        """
        if self.overwrite:
            if self._rerun_of_finished:
                return None, _OVERWRITTEN
            record = self.directory.read_json(record_name(part.name))
            if self.dag_run is None or record is None or record.get("run") != self.dag_run:
                return None, _OVERWRITTEN
        return self.directory.trusted_record(part)

    def _run_finished(self) -> bool:
        """Whether this DAG run's output is finished, read at the start of the try.

        Unsharded: ``_SUCCESS`` is there (a try withdraws it before it changes any part, and a try of this run
        that wrote parts then died left it absent). A shard: its own shard record names this DAG run (the commit
        step, which writes ``_SUCCESS``, runs after every shard; a rerun withdraws it first, see _forget_run).
        """
        if self.shard is None:
            return self.directory.exists(SUCCESS_NAME)
        record = self.directory.read_json(shard_record_name(*self.shard))
        return self.dag_run is not None and record is not None and record.get("run") == self.dag_run

    def _forget_run(self, assigned: Sequence[PlannedPart]) -> None:
        """A rerun of a finished ``overwrite`` run rewrites every part: their records lose this run's mark first.

        The records go before the finished marker (``_SUCCESS``, or the shard's record), so a kill in between
        leaves the run finished and the next try starts over; a kill later leaves only the parts this rerun
        rewrote marked as this run's, and the next try resumes from them.
        """
        for part in assigned:
            self.directory.remove(record_name(part.name))
        if self.shard is None:
            self.directory.withdraw_success()
        else:
            self.directory.remove(shard_record_name(*self.shard))

    def preview(self, ids: Sequence[int]) -> tuple[DirectoryPreview, int]:
        """What a real run would fetch, read from the directory as it is: a dry run writes and removes nothing.

        :returns: the manifest fields of the preview, and the datasets a real run would fetch.
        """
        parts = plan(self.request, ids)
        assigned = [part for part in parts if mine(part.number, self.shard)]
        reused, fetch, refetched = self._sort_out(assigned)
        preview: DirectoryPreview = {
            "plan_part_count": len(parts),
            "assigned_parts": len(assigned),
            "parts_to_fetch": len(fetch),
            "reused_parts": len(reused),
            "refetched_parts": refetched,
        }
        return preview, sum(len(part.ids) for part in fetch)

    def _complete_already(self, fingerprint: str) -> dict[str, Any] | None:
        """The stored manifest when the directory already holds this request, complete; ``None`` otherwise."""
        stored = self.directory.read_json(MANIFEST_NAME)
        if stored is None or stored.get("fingerprint") != fingerprint:
            return None
        self.directory.remove_expired_partials()
        if not self.directory.exists(SUCCESS_NAME):  # killed between the manifest and the marker
            with self.directory.output(SUCCESS_NAME) as output:
                output.commit()
        self.log.info("%s already holds this request, complete and verified: nothing fetched.", self.directory)
        return stored

    def _check_missing(self, records: Sequence[Mapping[str, Any]]) -> None:
        missing = sorted(ident for record in records for ident in record.get("missing_dataset_ids", ()))
        if not missing:
            return
        request = self.request
        text = (
            f"{len(missing)} requested datasets are not in version {request.version} ({request.system_model}), "
            f"e.g. {missing[:MISSING_IDS_LISTED]}"
        )
        if self.fail_on_missing:
            raise EcoinventError(f"{text}; fail_on_missing=True, so the task fails and writes no manifest.")
        self.log.warning("%s.", text)

    # -- fetching -----------------------------------------------------------------------------------

    def _fetch(self, hook: EcoinventHook, parts: Sequence[PlannedPart]) -> dict[str, dict[str, Any]]:
        """One stream over the ids of ``parts``; each part committed as soon as its last dataset is written."""
        ids = [ident for part in parts for ident in part.ids]
        request = self.request
        stream = hook.get_datasets(
            ids,
            indicator_ids=list(request.indicator_ids),
            version=request.version,
            system_model=request.system_model,
            max_in_flight=self.max_in_flight,
        )
        self._stream = stream
        written: dict[str, dict[str, Any]] = {}
        pending = iter(parts)
        progress = Progress(self.log, len(ids), self.progress_interval)
        try:
            for dataset in stream:
                ident = int(dataset["id"])
                current = self._part_for(ident, pending, written)
                current.records += write_dataset(
                    current.lines, current.parquet, dataset, request.layout, (request.version, request.system_model)
                )
                current.datasets += 1
                current.returned.add(ident)
                progress.advance()
                self._stop_if_killed()
            self._finish(written)
            for part in pending:
                self._open(part)
                self._finish(written)
            progress.report()
        except Exception as err:
            self._abort()
            if self.killed:
                raise EcoinventError("The task was killed; the parts committed so far are kept for the retry.") from err
            raise
        finally:
            self._concurrency = stream.concurrency
            with contextlib.suppress(Exception):
                stream.close()
            self._stream = None
        return written

    def _part_for(self, ident: int, pending: Iterator[PlannedPart], written: dict[str, dict[str, Any]]) -> _PartFile:
        """The open part that ``ident`` belongs to, finishing the parts before it (ids come sorted)."""
        while self._current is None or ident > self._current.part.ids[-1]:
            self._finish(written)
            self._open(next(pending))
        return self._current

    def _open(self, part: PlannedPart) -> None:
        self._stop_if_killed()
        self._current = _PartFile(self.directory, part, self.request.file_format)

    def _finish(self, written: dict[str, dict[str, Any]]) -> None:
        """Seal the open part, write its record, then move the part into place.

        The record goes before the move: a kill after the move keeps the part (its record is there and matches),
        a kill before it leaves a record that no stored file matches (none, or an older one), so the part is
        refetched, never trusted unchecked.
        """
        current, self._current = self._current, None
        if current is None:
            return
        self._stop_if_killed()
        part = current.part
        if current.datasets:
            current.seal()
        else:  # every id of the part is missing in the version: no file (an empty JSON file breaks readers)
            current.discard()
            self.directory.remove(part.name)
        record = {
            "name": part.name,
            "key": part.key,
            "first_dataset_id": part.ids[0],
            "last_dataset_id": part.ids[-1],
            "planned_datasets": len(part.ids),
            "datasets": current.datasets,
            "records": current.records,
            "file": bool(current.datasets),
            "bytes": current.output.bytes_written if current.datasets else 0,
            "sha256": current.output.sha256 if current.datasets else hashlib.sha256(b"").hexdigest(),
            "missing_dataset_ids": [ident for ident in part.ids if ident not in current.returned],
            "run": self.dag_run,  # an overwrite=True run's next try keeps the parts of its own run
        }
        self.directory.write_json(record_name(part.name), record)
        if current.datasets:
            current.output.commit()
        written[part.name] = record
        self.log.info(
            "Committed part %s: %d datasets, %d records, %d bytes.",
            part.name,
            current.datasets,
            current.records,
            record["bytes"],
        )

    def _stop_if_killed(self) -> None:
        if self.killed:
            raise EcoinventError("The task was killed; the parts committed so far are kept for the retry.")

    def _abort(self) -> None:
        current, self._current = self._current, None
        if current is not None:
            current.discard()

    def _write_shard_record(self, result: ShardRecord) -> None:
        """This shard's record; records of another shard count (an earlier fan-out) are removed."""
        assert self.shard is not None
        index, count = self.shard
        name = shard_record_name(index, count)
        for other in self.directory.listing(SHARDS_FOLDER):
            if other.startswith("shard-") and not other.endswith(f"-of-{count:05d}.json"):
                self.directory.remove(f"{SHARDS_FOLDER}/{other}")
        self.directory.write_json(name, result)

    def kill(self) -> None:
        """From ``on_kill``: stop the stream and remove the part being written; never raises, never blocks."""
        self.killed = True
        stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()
        current = self._current
        if current is not None:
            with contextlib.suppress(Exception):
                current.output.abort()
