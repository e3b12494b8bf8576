"""The manifests the operators return (XCom, asset events, ``_manifest.json``), one ``TypedDict`` per mode.

A manifest is the one thing downstream tasks read of a run, and docs/output.md lists every field: building
each through its type lets mypy check the fields every mode writes, and the docs test compares the tables of
docs/output.md with these types (``__required_keys__``, ``__optional_keys__`` and the annotations), so a
field added here but not documented, or documented but not written, fails. That test reads the types at
runtime: optional fields live in ``total=False`` classes (``NotRequired`` in a string annotation is not seen
by Python 3.11's ``__optional_keys__``).

* :class:`FileManifest`: the datasets operator writing one file.
* :class:`DryRunManifest`: ``dry_run=True`` (with :class:`DirectoryPreview` for a dataset directory).
* :class:`DirectoryManifest`: a dataset directory (:class:`ShardRecord` for one shard of a fan-out),
  :class:`CommitManifest`: the commit step completing a fan-out.
* :class:`GenericManifest`: :class:`EcoinventOperator` writing JSON Lines.
"""

from __future__ import annotations

from typing import Any, TypedDict

#: The calls in flight of a run: ``max_in_flight``, ``peak_in_flight``, ``final_in_flight``,
#: ``rate_limited_calls`` (empty in a commit whose shard records hold none).
Concurrency = dict[str, int]


class ResolvedIndicators(TypedDict, total=False):
    """With ``indicators`` (selection by name): the selectors as given, and each indicator they resolved to."""

    indicator_selectors: list[Any] | None
    indicators: list[dict[str, Any]]


class Selected(ResolvedIndicators):
    """What every datasets manifest says of the request: the selection, pinned version and indicators."""

    format: str
    layout: str
    version: str
    requested_version: str
    system_model: str
    indicator_ids: list[int]
    selection: str
    requested_datasets: int


class Effort(TypedDict):
    """What the task spent: API calls, access tokens, time."""

    api_calls: int
    token_requests: int
    elapsed_seconds: float


class FileManifest(Selected, Effort):
    """One file written (single-file mode)."""

    output_uri: str
    dry_run: bool
    record_count: int
    datasets_written: int
    returned_datasets: int
    missing_datasets: int
    missing_dataset_ids: list[int]
    bytes: int
    sha256: str
    concurrency: Concurrency


class DirectoryPreview(TypedDict, total=False):
    """What a dry run into a dataset directory reads there: the parts a real run would fetch."""

    plan_part_count: int
    assigned_parts: int
    parts_to_fetch: int
    reused_parts: int
    refetched_parts: list[str]


class DryRunManifest(Selected, Effort, DirectoryPreview):
    """``dry_run=True``: what a real run would score, and the cost guards in force; nothing written."""

    output_uri: str | None
    dry_run: bool
    unique_datasets: int
    unique_indicators: int
    max_unique_datasets: int | None
    max_unique_indicators: int | None
    within_cost_guard: bool


class DirectoryHead(Selected):
    """What a directory run knows before it writes: the request its fingerprint covers."""

    output_uri: str
    dry_run: bool
    request: dict[str, Any]


class PartTotals(TypedDict):
    """The counts of a directory, summed over its part records."""

    parts: list[dict[str, Any]]
    part_count: int
    record_count: int
    datasets_written: int
    bytes: int
    missing_datasets: int
    missing_dataset_ids: list[int]


class RunWork(TypedDict):
    """What a directory run did to the directory, and the calls it made."""

    skipped: bool
    unchanged: bool
    fetched_parts: int
    reused_parts: int
    refetched_parts: list[str]
    api_calls: int
    concurrency: Concurrency


class RunOutcome(RunWork):
    """What one task's directory run did, with the task's own effort."""

    token_requests: int
    elapsed_seconds: float


class DirectoryContent(DirectoryHead, PartTotals, RunWork):
    """A dataset directory as committed, and what the run that wrote it did (no task's own effort)."""

    fingerprint: str
    plan_part_count: int


class DirectoryManifest(DirectoryContent):
    """A dataset directory written by one task (all its parts, or one shard's: :class:`ShardRecord`)."""

    token_requests: int
    elapsed_seconds: float


class ShardRecord(DirectoryManifest):
    """One shard of a fan-out: its own parts, and what the commit step needs to check them."""

    shard: list[int]
    assigned_parts: int
    assigned_part_names: list[str]
    written_at: float
    run: str | None


class CommitManifest(DirectoryContent):
    """The commit step's manifest: the shards' records combined (their effort stays in the records)."""

    shards: int


class GenericManifest(Effort):
    """:class:`EcoinventOperator` with ``output_uri``: the JSON Lines file of an endpoint's records."""

    output_uri: str
    format: str
    endpoint: str
    method: str
    record_count: int
    pages: int
    bytes: int
    sha256: str


__all__ = [
    "CommitManifest",
    "Concurrency",
    "DirectoryContent",
    "DirectoryHead",
    "DirectoryManifest",
    "DirectoryPreview",
    "DryRunManifest",
    "Effort",
    "FileManifest",
    "GenericManifest",
    "PartTotals",
    "ResolvedIndicators",
    "RunOutcome",
    "RunWork",
    "Selected",
    "ShardRecord",
]
