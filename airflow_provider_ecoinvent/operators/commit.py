"""The final step of a fan-out: check every shard's parts, then write ``_manifest.json`` and ``_SUCCESS``.

::

    ingest = EcoinventDatasetsOperator.partial(task_id="ingest", ..., output_uri="s3://.../").expand(
        shard=shards(8)
    )
    commit = EcoinventDatasetsCommitOperator(task_id="commit", output_uri="s3://.../", outlets=[asset])
    ingest >> commit

It makes no API call. Each mapped task wrote its parts and a shard record (``_shards/shard-i-of-n.json``);
this step requires all ``n`` records, written for one request (one fingerprint: the newest record's), and
reads every listed part again to check its size and SHA-256. Only then does the directory get its manifest,
and its ``_SUCCESS`` marker last. Anything missing or stale fails with :class:`EcoinventOutputError` naming
the shard (map index) or part to clear.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final, cast

from airflow.sdk import BaseOperator

from airflow_provider_ecoinvent.exceptions import EcoinventConfigError, EcoinventOutputError
from airflow_provider_ecoinvent.operators._arguments import check_flag
from airflow_provider_ecoinvent.operators._directory import (
    Directory,
    attempt_owner,
    check_directory_uri,
    directory_path,
)
from airflow_provider_ecoinvent.operators._partitioned import MISSING_IDS_LISTED
from airflow_provider_ecoinvent.operators._partitions import (
    MANIFEST_NAME,
    SHARDS_FOLDER,
    SUCCESS_NAME,
    is_directory_uri,
    shard_record_name,
)
from airflow_provider_ecoinvent.operators._selection import remove_selections
from airflow_provider_ecoinvent.operators._task import publish_or_withhold

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_ecoinvent.operators._manifests import CommitManifest

__all__ = ["EcoinventDatasetsCommitOperator"]

_SHARD_RECORD: Final = re.compile(r"^shard-(\d+)-of-(\d+)\.json$")
#: Keys of a shard record that describe the shard, not the dataset.
_SHARD_ONLY: Final = (
    "shard",
    "written_at",
    "elapsed_seconds",
    "token_requests",
    "assigned_parts",
    "assigned_part_names",
    "run",
)
_SUMMED: Final = ("fetched_parts", "reused_parts", "api_calls", "missing_datasets")


class EcoinventDatasetsCommitOperator(BaseOperator):
    """Complete a dataset directory written by ``EcoinventDatasetsOperator(...).expand(shard=shards(n))``.

    :param output_uri: the dataset directory the mapped tasks wrote: a URI ending with ``/``, or an
        ``ObjectStoragePath`` (it always names the directory: a path object cannot end with ``/``). (templated)
    :param shard_count: the number of shards expected; ``None`` reads it from the shard records (which must
        then agree on one count).
    :param emit_unchanged: when ``False``, a run that leaves the directory as it was (every shard skipped, the
        same manifest already committed) succeeds without an asset event, so nothing downstream reruns.
    :returns: the manifest (also in the ``extra`` of the outlet asset events).
    :raises EcoinventOutputError: a shard is missing or stale, or a part is missing or altered.
    """

    template_fields: Sequence[str] = ("output_uri",)
    template_fields_renderers: ClassVar[dict[str, str]] = {}
    ui_color = "#82e0aa"

    def __init__(
        self,
        *,
        output_uri: str | ObjectStoragePath,
        shard_count: int | None = None,
        emit_unchanged: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.output_uri = output_uri
        self.shard_count = shard_count
        self.emit_unchanged = check_flag("emit_unchanged", emit_unchanged)
        if shard_count is not None and (
            isinstance(shard_count, bool) or not isinstance(shard_count, int) or shard_count < 1
        ):
            raise EcoinventConfigError(f"shard_count must be a whole number >= 1 or None, got {shard_count!r}.")
        if not (isinstance(output_uri, str) and "{{" in output_uri):
            self._check_uri()

    def _check_uri(self) -> None:
        if isinstance(self.output_uri, str) and not is_directory_uri(self.output_uri):
            raise EcoinventConfigError(
                f"output_uri must name the dataset directory the mapped tasks wrote, ending with '/' (or be an "
                f"ObjectStoragePath); got {self.output_uri!r}."
            )
        check_directory_uri(self.output_uri)

    def execute(self, context: Context) -> CommitManifest:
        self._check_uri()
        directory = Directory(directory_path(self.output_uri), attempt_owner(context))
        try:
            records, entries = self._checked(directory)
        except EcoinventOutputError:
            directory.withdraw_success()  # what is there can no longer be vouched for
            raise
        manifest = self._manifest(records, max(records, key=_written_at), entries)
        kept = self._keep_unchanged(directory, manifest, _planned_names(records, entries))
        if kept is not None:
            publish_or_withhold(self, context, kept, emit=self.emit_unchanged)
            return kept
        manifest["unchanged"] = False
        directory.withdraw_success()
        directory.remove_unplanned(_planned_names(records, entries))
        directory.remove_expired_partials()
        directory.complete(manifest)
        remove_selections(directory)
        self.log.info(
            "Committed %s: %d shards, %d parts, %d records, %d datasets (%d missing).",
            directory,
            len(records),
            len(entries),
            manifest["record_count"],
            manifest["datasets_written"],
            manifest["missing_datasets"],
        )
        publish_or_withhold(self, context, manifest, emit=True)
        return manifest

    def _keep_unchanged(
        self, directory: Directory, manifest: CommitManifest, planned: set[str]
    ) -> CommitManifest | None:
        """The committed manifest, with this run's counts, when every shard skipped and the directory already
        holds this manifest, complete: ``_manifest.json`` and ``_SUCCESS`` are then left untouched (a rewrite
        would make every downstream load rerun). ``None`` when the directory must be committed again."""
        stored = directory.read_json(MANIFEST_NAME)
        if (
            not manifest["skipped"]
            or stored is None
            or stored.get("fingerprint") != manifest.get("fingerprint")
            or stored.get("parts") != manifest["parts"]
            or not directory.exists(SUCCESS_NAME)
            or directory.remove_unplanned(planned)  # a stray part removed: the table as read did change
        ):
            return None
        directory.remove_expired_partials()
        remove_selections(directory)
        self.log.info("%s is unchanged (every shard skipped): nothing rewritten.", directory)
        kept = {**stored, **{key: manifest[key] for key in _RUN_ONLY}, "unchanged": True}
        return cast("CommitManifest", kept)

    def _checked(self, directory: Directory) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every shard's record, fresh, and every part they list, verified; else EcoinventOutputError."""
        count = self._count(directory)
        records = self._shard_records(directory, count)
        newest = max(records, key=_written_at)
        self._check_fresh(records, newest, count)
        return records, self._check_parts(directory, records, newest, count)

    def _count(self, directory: Directory) -> int:
        if self.shard_count is not None:
            return int(self.shard_count)
        counts = sorted(
            {int(found[2]) for found in map(_SHARD_RECORD.match, directory.listing(SHARDS_FOLDER)) if found}
        )
        if not counts:
            raise EcoinventOutputError(
                f"No shard records in {directory}{SHARDS_FOLDER}/: run the mapped ingestion task "
                "(EcoinventDatasetsOperator with shard=...) into this directory before this step."
            )
        if len(counts) > 1:
            raise EcoinventOutputError(
                f"{directory}{SHARDS_FOLDER}/ holds records of fan-outs over {counts} shards: set shard_count to the "
                "current one, or clear (re-run) the mapped ingestion task."
            )
        return counts[0]

    def _shard_records(self, directory: Directory, count: int) -> list[dict[str, Any]]:
        records, missing = [], []
        for index in range(count):
            record = directory.read_json(shard_record_name(index, count))
            if record is None:
                missing.append(index)
            else:
                records.append(record)
        if missing:
            names = ", ".join(shard_record_name(index, count) for index in missing)
            raise EcoinventOutputError(
                f"Shard(s) {missing} of {count} are missing in {directory} (no {names}): clear (re-run) the mapped "
                f"ingestion task instance(s) with map index {missing}, then this step."
            )
        return records

    def _check_fresh(self, records: list[dict[str, Any]], newest: Mapping[str, Any], count: int) -> None:
        """Every shard wrote for the newest request (fingerprint) and the same plan."""
        stale = [
            int(record["shard"][0]) for record in records if record.get("fingerprint") != newest.get("fingerprint")
        ]
        if stale:
            raise EcoinventOutputError(
                f"Shard(s) {stale} of {count} are stale: written for another request (fingerprint differs from the "
                f"newest shard's, {str(newest.get('fingerprint'))[:12]}...). Clear (re-run) the mapped ingestion task "
                f"instance(s) with map index {stale}, then this step."
            )

    def _check_parts(
        self, directory: Directory, records: list[dict[str, Any]], newest: Mapping[str, Any], count: int
    ) -> list[dict[str, Any]]:
        """Every listed part, read again: present, with the recorded size and SHA-256."""
        entries: list[dict[str, Any]] = []
        for record in records:
            index = int(record["shard"][0])
            for entry in record.get("parts", ()):
                problem = directory.verify(entry)
                if problem is not None:
                    raise EcoinventOutputError(
                        f"Part {entry['name']} of shard {index} of {count} {problem}: clear (re-run) the mapped "
                        f"ingestion task instance with map index {index} (it refetches the part), then this step."
                    )
                entries.append(dict(entry))
        planned = newest.get("plan_part_count")
        assigned = sum(int(record.get("assigned_parts") or 0) for record in records)
        if planned != assigned:
            raise EcoinventOutputError(
                f"The shards wrote {assigned} parts, the plan has {planned}: clear (re-run) the whole mapped "
                "ingestion task, then this step."
            )
        return sorted(entries, key=lambda entry: int(entry["first_dataset_id"]))

    @staticmethod
    def _manifest(
        records: list[dict[str, Any]], newest: Mapping[str, Any], entries: list[dict[str, Any]]
    ) -> CommitManifest:
        """The shards' records combined: the newest one's request, every part, the counts summed over shards.

        Built from the records as read back from the directory (JSON), hence the cast to its type.
        """
        manifest = {key: value for key, value in newest.items() if key not in _SHARD_ONLY}
        missing = sorted(ident for record in records for ident in record.get("missing_dataset_ids", ()))
        manifest.update(
            {
                "parts": entries,
                "part_count": len(entries),
                "record_count": sum(int(entry["records"]) for entry in entries),
                "datasets_written": sum(int(entry["datasets"]) for entry in entries),
                "bytes": sum(int(entry["bytes"]) for entry in entries),
                "missing_dataset_ids": missing[:MISSING_IDS_LISTED],
                "refetched_parts": sorted(name for record in records for name in record.get("refetched_parts", ())),
                "skipped": all(bool(record.get("skipped")) for record in records),
                "shards": len(records),
            }
        )
        for key in _SUMMED:
            manifest[key] = sum(int(record.get(key) or 0) for record in records)
        manifest["concurrency"] = _combined_concurrency(records)
        return cast("CommitManifest", manifest)


def _combined_concurrency(records: list[dict[str, Any]]) -> dict[str, int]:
    """The shards' calls in flight: the highest ceiling and peak, the lowest final width, every 429 counted."""
    figures = [record["concurrency"] for record in records if isinstance(record.get("concurrency"), Mapping)]
    if not figures:
        return {}
    return {
        "max_in_flight": max(int(f.get("max_in_flight") or 0) for f in figures),
        "peak_in_flight": max(int(f.get("peak_in_flight") or 0) for f in figures),
        "final_in_flight": min(int(f.get("final_in_flight") or 0) for f in figures),
        "rate_limited_calls": sum(int(f.get("rate_limited_calls") or 0) for f in figures),
    }


def _planned_names(records: list[dict[str, Any]], entries: list[dict[str, Any]]) -> set[str]:
    """Every part of the whole plan, those without a file included (their records make reruns skip them).

    Shard records written before ``assigned_part_names`` existed list only parts with a file.
    """
    names = {str(entry["name"]) for entry in entries}
    for record in records:
        names.update(str(name) for name in record.get("assigned_part_names") or ())
    return names


#: Keys of a commit's manifest that describe this run, not the dataset (the rest is what was committed).
_RUN_ONLY: Final = ("skipped", "fetched_parts", "reused_parts", "refetched_parts", "api_calls", "concurrency", "shards")


def _written_at(record: Mapping[str, Any]) -> float:
    stamp = record.get("written_at")
    return float(stamp) if isinstance(stamp, int | float) else 0.0
