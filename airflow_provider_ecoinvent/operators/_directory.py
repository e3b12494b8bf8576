"""Partitioned output, the directory: part records, verification, clean-up, ``_manifest.json`` and ``_SUCCESS``.

Layout of a dataset directory (readers such as pyarrow.dataset, DuckDB and Spark ignore names starting
with ``_`` or ``.``)::

    part-<first id>-<last id>.parquet|.jsonl   the data, each part committed atomically on its own
    _parts/<part name>.json                     per part: key, ids range, datasets, records, bytes, sha256
    _shards/shard-00003-of-00008.json           per mapped task of a fan-out: what it wrote
    _shards/selection-<run>-<request>.json      the selection the shards of one DAG run share (._selection)
    .<name>.<owner>.<uuid>.partial              a file being written (or left by a killed try)
    _manifest.json                              written once every part is present and verified
    _SUCCESS                                    empty, written last

A part is trusted only when its record carries the key the current request computes for it and the
file's size and SHA-256 (read again) match the record. The record is written once the part's bytes are
final, just before the part is moved into place: a kill after the move keeps the part, a kill before it
leaves a record that no stored file matches, so the part is refetched, never trusted unchecked.

**Temporary files of dead tries.** Each temporary file's name carries its writer's *owner*: a hash of the
task instance (dag, run, task, map index) and the try number. Airflow runs one try of a task instance at
a time, so a try, before it writes anything, removes at once the temporary files of the earlier tries of
its own task instance (same or lower try number: they are dead, SIGKILL ran no clean-up). Any other
temporary file (another task instance's, a mapped sibling's, one without owner) is left to the lease rule
of :class:`AtomicOutput`: removed only once unmodified for the lease, which live writers keep fresh. So
clean-up never touches a file that a live attempt writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import time
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from airflow_provider_ecoinvent.exceptions import EcoinventConfigError
from airflow_provider_ecoinvent.operators._output import (
    LOCAL_SCHEMES,
    PARTIAL_SUFFIX,
    AtomicOutput,
    _age_seconds,
    check_uri,
    configured_lease_seconds,
    local_file_uri,
)
from airflow_provider_ecoinvent.operators._partitions import (
    MANIFEST_NAME,
    PART_PREFIX,
    PARTS_FOLDER,
    SHARDS_FOLDER,
    SUCCESS_NAME,
    PlannedPart,
    digest,
    record_name,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

_READ_CHUNK: Final = 1 << 20
_OWNER: Final = re.compile(r"\.(?P<task>[0-9a-f]{16})-t(?P<try>\d+)\.[0-9a-f]{32}" + re.escape(PARTIAL_SUFFIX) + "$")
#: What a part record must hold to be trusted.
_RECORD_KEYS: Final = ("key", "name", "bytes", "sha256", "records", "datasets")


def directory_path(uri: Any, *, argument: str = "output_uri") -> ObjectStoragePath:
    """A dataset directory URI (ending with ``/``, or a path object) as an ``ObjectStoragePath``; no I/O."""
    from airflow.sdk import ObjectStoragePath

    if isinstance(uri, ObjectStoragePath):  # kept as given: its connection and storage options with it
        return uri
    text = local_file_uri(str(uri).strip(), argument=argument)
    check_uri(text.rstrip("/"), argument=argument)
    return ObjectStoragePath(text.rstrip("/"))


def attempt_owner(context: Mapping[str, Any] | None) -> str | None:
    """``<task instance hash>-t<try>`` for the running try, ``None`` outside a task instance."""
    ti = (context or {}).get("ti")
    try_number = getattr(ti, "try_number", None)
    if ti is None or not isinstance(try_number, int):
        return None
    identity = [getattr(ti, name, None) for name in ("dag_id", "run_id", "task_id", "map_index")]
    return f"{digest([str(part) for part in identity])[:16]}-t{try_number}"


def run_identity(context: Mapping[str, Any] | None) -> str | None:
    """A hash of the DAG run (dag id, run id) the running try belongs to; ``None`` outside a task instance.

    Every try and every mapped instance of one DAG run shares it: part records carry it, so that the next try
    of an ``overwrite=True`` run keeps what an earlier try of the same run wrote.
    """
    ti = (context or {}).get("ti")
    identity = [getattr(ti, name, None) for name in ("dag_id", "run_id")]
    if ti is None or not all(isinstance(part, str) and part for part in identity):
        return None
    return digest(identity)[:32]


class Directory:
    """One dataset directory on any ``ObjectStoragePath``, written by one try (``owner``)."""

    def __init__(self, root: ObjectStoragePath, owner: str | None = None) -> None:
        self.root = root
        self.owner = owner
        self.fs = root.fs
        self.base = root.path.rstrip("/")

    def __str__(self) -> str:
        return str(self.root) + "/"

    def path(self, name: str) -> ObjectStoragePath:
        return self.root / name

    def full(self, name: str) -> str:
        return f"{self.base}/{name}"

    def output(self, name: str) -> AtomicOutput:
        """An atomic writer of ``name`` in this directory, its temporary file named after this try."""
        if self._is_local():
            self.fs.makedirs(self.full(name).rsplit("/", 1)[0], exist_ok=True)
        return AtomicOutput(self.path(name), owner=self.owner)

    def _is_local(self) -> bool:
        protocols = self.fs.protocol
        names = (protocols,) if isinstance(protocols, str) else tuple(protocols)
        return "file" in names or "local" in names

    # -- small files ------------------------------------------------------------------------------

    def read_json(self, name: str) -> dict[str, Any] | None:
        """A bookkeeping file as a dict; ``None`` if absent or unreadable (it is then not trusted)."""
        try:
            with self.fs.open(self.full(name), "rb") as handle:
                value = json.loads(handle.read().decode("utf-8"))
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def write_json(self, name: str, value: Mapping[str, Any]) -> None:
        data = (json.dumps(value, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
        with self.output(name) as output:
            output.write(data)
            output.commit()

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.fs.exists(self.full(name)):
                self.fs.rm(self.full(name))

    def exists(self, name: str) -> bool:
        try:
            return bool(self.fs.exists(self.full(name)))
        except OSError:
            return False

    def listing(self, folder: str = "") -> list[str]:
        """Names of the files in ``folder`` (``""``: the directory itself); empty if it does not exist."""
        base = self.full(folder).rstrip("/") if folder else self.base
        with contextlib.suppress(Exception):  # object stores cache listings; other tasks wrote meanwhile
            self.fs.invalidate_cache(base)
        try:
            found = self.fs.ls(base, detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(str(item).rstrip("/").rsplit("/", 1)[-1] for item in found)

    # -- parts ----------------------------------------------------------------------------------

    def measure(self, name: str) -> tuple[int, str] | None:
        """Size and SHA-256 of a stored file, read in full; ``None`` if it cannot be read."""
        sha = hashlib.sha256()
        size = 0
        try:
            with self.fs.open(self.full(name), "rb") as handle:
                while chunk := handle.read(_READ_CHUNK):
                    sha.update(chunk)
                    size += len(chunk)
        except OSError:
            return None
        return size, sha.hexdigest()

    def trusted_record(self, part: PlannedPart) -> tuple[dict[str, Any] | None, str]:
        """The part's record if the part may be reused, else ``None`` and why not (for the log)."""
        record = self.read_json(record_name(part.name))
        if record is None:
            return None, "no record" if not self.exists(part.name) else "a part file without its record"
        if any(key not in record for key in _RECORD_KEYS) or record["name"] != part.name:
            return None, "an unreadable record"
        if record["key"] != part.key:
            return None, "written for another request (another part key)"
        if record.get("file") is False:  # all its datasets missing in the version: recorded, no file
            return (None, "a file for a part recorded empty") if self.exists(part.name) else (record, "valid")
        measured = self.measure(part.name)
        if measured is None:
            return None, "its record but no file"
        if measured != (record["bytes"], record["sha256"]):
            return None, f"{measured[0]} bytes with sha256 {measured[1][:12]}..., not the recorded ones"
        return record, "valid"

    def verify(self, entry: Mapping[str, Any]) -> str | None:
        """Why a manifest entry's part file is not as listed (missing, size, sha256); ``None`` if it is."""
        measured = self.measure(str(entry["name"]))
        if measured is None:
            return "is missing"
        size, sha = measured
        if size != entry["bytes"]:
            return f"has {size} bytes, not the {entry['bytes']} recorded"
        if sha != entry["sha256"]:
            return f"has sha256 {sha}, not the recorded {entry['sha256']}"
        return None

    # -- clean-up and completion -------------------------------------------------------------------

    def withdraw_success(self) -> None:
        """Before changing any part: the directory no longer claims to be complete."""
        self.remove(SUCCESS_NAME)
        self.remove(MANIFEST_NAME)

    def remove_dead_tries(self) -> list[str]:
        """Remove the temporary files of the earlier tries of this task instance (see the module docstring).

        Called before this try writes anything, so every file of this task instance with a try number up to
        this one's is a dead try's: the same number too, since a try restarted in place (a cleared running
        task, ``dag.test`` on the same run) keeps its number.
        """
        if self.owner is None:
            return []
        task, _, current = self.owner.partition("-t")
        removed = []
        for folder in ("", PARTS_FOLDER, SHARDS_FOLDER):
            for name in self.listing(folder):
                found = _OWNER.search(name)
                if found is None or found["task"] != task or int(found["try"]) > int(current):
                    continue
                path = f"{folder}/{name}" if folder else name
                self.remove(path)
                removed.append(path)
        if removed:
            log.info("Removed %d temporary files left by earlier tries of this task: %s", len(removed), removed)
        return removed

    def remove_expired_partials(self) -> None:
        """Any temporary file unmodified for the lease (a dead writer's, whoever it was), as AtomicOutput does."""
        lease = configured_lease_seconds()
        now = time.time()
        for folder in ("", PARTS_FOLDER, SHARDS_FOLDER):
            for name in self.listing(folder):
                if not (name.startswith(".") and name.endswith(PARTIAL_SUFFIX)):
                    continue
                path = f"{folder}/{name}" if folder else name
                age = _age_seconds(self.fs, self.full(path), now)
                if age is not None and age >= lease:
                    self.remove(path)

    def stored_parts(self) -> list[str]:
        """Names of the parts the directory holds: part files, and records of parts without a file."""
        names = {name for name in self.listing() if name.startswith(PART_PREFIX)}
        names.update(name.removesuffix(".json") for name in self.listing(PARTS_FOLDER) if name.endswith(".json"))
        return sorted(names)

    def remove_unplanned(self, names: Iterable[str]) -> list[str]:
        """Remove part files and part records that are not in the plan: the directory reads as one table."""
        keep = set(names)
        removed = [name for name in self.listing() if name.startswith(PART_PREFIX) and name not in keep]
        for name in removed:
            self.remove(name)
        for name in self.listing(PARTS_FOLDER):
            if name.endswith(".json") and name.removesuffix(".json") not in keep:
                self.remove(f"{PARTS_FOLDER}/{name}")
        if removed:
            log.info("Removed %d part files of an earlier request: %s", len(removed), removed)
        return removed

    def complete(self, manifest: Mapping[str, Any]) -> None:
        """Write ``_manifest.json``, then the empty ``_SUCCESS`` marker, each atomically."""
        self.write_json(MANIFEST_NAME, manifest)
        with self.output(SUCCESS_NAME) as output:
            output.commit()


def check_directory_uri(uri: Any) -> None:
    """Validate a directory ``output_uri`` without I/O (the file form is checked by ``check_uri``).

    Runs clean-up removes ``part-*``, ``_SUCCESS`` and ``_manifest.json`` in the directory, so it must be a
    folder of its own: never a bucket or filesystem root, never a path climbing out with ``..``.
    """
    from airflow.sdk import ObjectStoragePath

    if isinstance(uri, ObjectStoragePath):  # a path object drops the trailing "/": it names the folder itself
        uri = f"{uri}/"
    if not isinstance(uri, str):
        raise EcoinventConfigError(
            f"output_uri must be a URI string or an ObjectStoragePath, got {type(uri).__name__}."
        )
    text = uri.strip()
    scheme, sep, rest = local_file_uri(text).partition("://")  # file://localhost/ is the root too
    if sep and scheme and not rest.strip("/"):
        raise _no_folder(text, scheme)
    if ".." in urlsplit(text).path.split("/"):
        raise EcoinventConfigError(
            f"output_uri {text!r} has a '..' segment: name the dataset directory without climbing out of a folder "
            "(its part files and bookkeeping are replaced on each run)."
        )
    check_uri(text.rstrip("/"))
    parts = urlsplit(local_file_uri(text))
    segments = parts.path.split("/")
    folders = [segment for segment in segments if segment not in ("", ".")]
    if scheme.lower() not in _LOCAL_SCHEMES and not parts.netloc:
        folders = folders[1:]  # "s3:///bucket/...": the bucket is the first segment
    if not folders:
        raise _no_folder(text, scheme)


#: Schemes whose path starts at the filesystem root; any other scheme's first name is a bucket (container).
_LOCAL_SCHEMES: Final = LOCAL_SCHEMES


def _no_folder(text: str, scheme: str) -> EcoinventConfigError:
    example = (
        "file:///data/ecoinvent/3.11/cutoff/"
        if scheme in _LOCAL_SCHEMES
        else f"{scheme}://bucket/ecoinvent/3.11/cutoff/"
    )
    return EcoinventConfigError(
        f"output_uri {text!r} names no folder: a dataset directory needs its own folder, such as "
        f"'{example}', not a bucket or filesystem root (its part files and bookkeeping are replaced on each run)."
    )
