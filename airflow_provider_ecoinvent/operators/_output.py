"""Writing operator output atomically on any ``ObjectStoragePath``, and checking output URIs before any call.

* :class:`AtomicOutput` writes to a hidden temporary sibling (``.<name>.<uuid>.partial``, same folder,
  same store) and moves it into place only on :meth:`AtomicOutput.commit`; on any failure, or
  :meth:`AtomicOutput.abort` (``on_kill``), the temporary file is removed and the destination is left
  as it was. Temporary files of dead attempts are removed once older than a lease that live writers
  keep fresh, so concurrent attempts never remove each other's. It counts the bytes and computes the
  SHA-256 of what it writes, so the manifest needs no second read of the file.

What goes into the file (JSON Lines records, Parquet rows) is :mod:`._records`'s.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import importlib.util
import io
import logging
import os
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_ecoinvent.exceptions import EcoinventConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import TracebackType

    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

PARTIAL_SUFFIX: Final = ".partial"
#: Bytes collected before one write to the store: ObjectStoragePath wraps files for lineage, and every
#: ``write`` call through that wrapper costs ~25 us (it formats the path), more than a JSON line does.
WRITE_BUFFER_BYTES: Final = 1 << 20
#: A temporary file unmodified for this long belongs to a dead attempt and may be removed. Live writers
#: refresh theirs four times per lease, so this only bounds how long a dead attempt's file lingers.
DEFAULT_PARTIAL_LEASE_SECONDS: Final = 15 * 60.0


#: The longest output URI accepted: PATH_MAX on Linux, and far beyond any object store's key limit.
MAX_URI_CHARS: Final = 4096
#: The longest folder or file name on a local disk (NAME_MAX, in bytes).
MAX_NAME_BYTES: Final = 255
#: What the temporary sibling ``.<name>.<try>.<uuid>.partial`` adds to a file's name, rounded up.
TEMPORARY_NAME_EXTRA: Final = 70
#: Schemes whose URIs name a path on the worker's own disk.
LOCAL_SCHEMES: Final = frozenset({"file", "local"})


def to_storage_path(uri: Any, *, argument: str = "output_uri") -> ObjectStoragePath:
    """``uri`` (a string or an ``ObjectStoragePath``) as an ``ObjectStoragePath`` naming a file.

    :raises EcoinventConfigError: no scheme, or a folder (trailing ``/``) instead of a file.
    """
    from airflow.sdk import ObjectStoragePath

    check_uri(uri, argument=argument)
    return uri if isinstance(uri, ObjectStoragePath) else ObjectStoragePath(local_file_uri(str(uri).strip()))


def check_uri(uri: Any, *, argument: str = "output_uri") -> None:
    """Validate an output URI without touching any store (no I/O: safe in a constructor)."""
    from airflow.sdk import ObjectStoragePath

    if isinstance(uri, ObjectStoragePath):
        text = str(uri)
    elif isinstance(uri, str):
        text = uri.strip()
    else:
        raise EcoinventConfigError(
            f"{argument} must be a URI string or an ObjectStoragePath, got {type(uri).__name__}."
        )
    if len(text) > MAX_URI_CHARS:
        raise EcoinventConfigError(
            f"{argument} is {len(text):,} characters long, more than the {MAX_URI_CHARS:,} a path may have; it starts "
            f"{text[:80]!r}. Check the template that rendered it."
        )
    scheme, sep, rest = text.partition("://")
    if not sep or not scheme or not rest:
        raise EcoinventConfigError(
            f"{argument} must be a URI with a scheme, such as 'file:///data/datasets.jsonl' or "
            f"'s3://aws_default@bucket/key.jsonl'; got {text!r}."
        )
    if text.endswith("/"):
        raise EcoinventConfigError(f"{argument} must name a file, not a folder: {text!r}.")
    check_no_climbing(text, argument=argument, what="the output")
    if scheme.lower() in LOCAL_SCHEMES:
        local = local_file_uri(text, argument=argument)
        if local.endswith("/"):
            raise EcoinventConfigError(f"{argument} must name a file, not a folder: {text!r}.")
        _check_local_names(local, argument=argument)


def check_no_climbing(text: str, *, argument: str, what: str) -> None:
    """Refuse a ``..`` segment: the operators replace and remove files next to what they write.

    :raises EcoinventConfigError: naming the URI.
    """
    if ".." in text.partition("://")[2].split("/"):
        raise EcoinventConfigError(
            f"{argument} {text!r} has a '..' segment: name {what} without climbing out of a folder "
            "(files next to it are replaced and cleaned up)."
        )


def local_file_uri(text: str, *, argument: str = "output_uri") -> str:
    """A ``file:`` (or ``local:``) URI in its standard meaning (RFC 8089), as Airflow's path reads it.

    ``file://localhost/x`` is ``/x`` and ``file:////x`` is ``/x``; Airflow's ``ObjectStoragePath`` would
    read both relative to the working directory. An Airflow connection id (``file://conn@/x``) is kept.
    Other schemes are returned as they are.

    :raises EcoinventConfigError: the URI names another host (``file://server/x``), or none with a relative
        path (``file://data/x``): a file URI is a path on the worker's own disk.
    """
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in LOCAL_SCHEMES:
        return text
    authority, _, path = rest.partition("/")
    user, at, host = authority.rpartition("@")
    if host and host.lower() != "localhost":
        raise EcoinventConfigError(
            f"{argument} {text!r} names the host {host!r}, but a {scheme}: URI is a path on the worker's own "
            f"disk: write an absolute path after three slashes, such as '{scheme}:///{host}/{path}'."
        )
    return f"{scheme}://{user}{at}/{path.lstrip('/')}"


def _check_local_names(text: str, *, argument: str) -> None:
    """Refuse a folder or file name longer than a local disk allows, before any call (else a raw ``OSError``).

    The file's own name must leave room for its temporary sibling's longer name.
    """
    names = [name for name in text.partition("://")[2].split("/") if name]
    for position, name in enumerate(names):
        limit = MAX_NAME_BYTES - (TEMPORARY_NAME_EXTRA if position == len(names) - 1 else 0)
        if len(name.encode()) > limit:
            raise EcoinventConfigError(
                f"{argument} has a name of {len(name.encode())} bytes, more than the {limit} a local disk allows "
                f"there; it starts {name[:40]!r}."
            )


#: Schemes that Airflow providers register for ``ObjectStoragePath``: (what to pip install, the fsspec library).
_FILESYSTEM_PACKAGES: Final[dict[str, tuple[str, str]]] = {
    **dict.fromkeys(("s3", "s3a", "s3n"), ("apache-airflow-providers-amazon[s3fs]", "s3fs")),
    **dict.fromkeys(("gs", "gcs"), ("apache-airflow-providers-google", "gcsfs")),
    **dict.fromkeys(("abfs", "abfss", "adl"), ("apache-airflow-providers-microsoft-azure", "adlfs")),
    **dict.fromkeys(
        ("msgraph", "sharepoint", "onedrive", "msgd"), ("apache-airflow-providers-microsoft-azure", "msgraphfs")
    ),
}
#: fsspec names that no Airflow provider registers, and the scheme to use instead.
_SCHEME_INSTEAD: Final[dict[str, str]] = {"az": "abfs", "gcsfs": "gs", "s3fs": "s3"}


def require_filesystem(uri: Any, *, argument: str = "output_uri") -> None:
    """Fail with what to install when no filesystem serves the URI's scheme; at the start of ``execute``.

    Without it, a missing provider surfaces as Airflow's bare "No filesystem registered for scheme s3"
    only when the file is opened: after the version lookup, the search and, for a retry, billed calls.
    Reads the installed providers' registrations only: no store is contacted.

    :raises EcoinventConfigError: naming the provider package (and library) to install.
    """
    try:
        from airflow.sdk.io.fs import has_fs
    except ImportError:  # pragma: no cover - present on every supported Airflow; without it, no check
        return
    text = str(uri).strip()
    scheme = (getattr(uri, "protocol", None) or text.partition("://")[0]).lower()
    if scheme in _SCHEME_INSTEAD:
        instead = _SCHEME_INSTEAD[scheme]
        raise EcoinventConfigError(
            f"{argument} {text!r}: Airflow registers no filesystem for scheme {scheme!r}; write "
            f"'{instead}://...' instead ({_install_hint(instead)}). No call was made to the ecoinvent API."
        )
    if not has_fs(scheme):
        known = _FILESYSTEM_PACKAGES.get(scheme)
        if known is not None:
            raise EcoinventConfigError(
                f"{argument} {text!r} needs a filesystem for scheme {scheme!r}, and none is registered: "
                f"{_install_hint(scheme)} on every worker, then name the storage connection in the URI "
                f"(e.g. '{scheme}://my_conn_id@bucket/key'). No call was made to the ecoinvent API."
            )
        raise EcoinventConfigError(
            f"{argument} {text!r}: no filesystem is registered for scheme {scheme!r}. Install the Airflow "
            "provider that registers it (a provider lists its schemes under 'filesystems' in its provider info; "
            "'airflow providers list' shows what is installed), or use a registered scheme such as 'file://'. "
            "No call was made to the ecoinvent API."
        )
    known = _FILESYSTEM_PACKAGES.get(scheme)
    if known is not None and importlib.util.find_spec(known[1]) is None:
        raise EcoinventConfigError(
            f"{argument} {text!r}: the filesystem for scheme {scheme!r} needs the {known[1]} library, which is "
            f"not installed: {_install_hint(scheme)}. No call was made to the ecoinvent API."
        )


def _install_hint(scheme: str) -> str:
    package, library = _FILESYSTEM_PACKAGES[scheme]
    return f"pip install '{package}'" + ("" if library in package else f" (it brings {library})")


def configured_lease_seconds() -> float:
    """The lease on temporary files: ``[ecoinvent] partial_file_lease_seconds`` in the Airflow configuration
    (``AIRFLOW__ECOINVENT__PARTIAL_FILE_LEASE_SECONDS``), else :data:`DEFAULT_PARTIAL_LEASE_SECONDS`.

    Raise it where a store shows files while they are written but does not update their modification
    time on a flush; lower it to have dead attempts' files removed sooner.
    """
    from airflow.providers.common.compat.sdk import conf

    try:
        lease = conf.getfloat("ecoinvent", "partial_file_lease_seconds", fallback=DEFAULT_PARTIAL_LEASE_SECONDS)
    except Exception as err:  # AirflowConfigException: not a number
        raise EcoinventConfigError(
            f"[ecoinvent] partial_file_lease_seconds must be a number of seconds: {err}"
        ) from None
    if not lease > 0:
        raise EcoinventConfigError(f"[ecoinvent] partial_file_lease_seconds must be positive, got {lease!r}.")
    return float(lease)


def _is_local(path: ObjectStoragePath) -> bool:
    protocols = path.fs.protocol
    names = (protocols,) if isinstance(protocols, str) else tuple(protocols)
    return "file" in names or "local" in names


class AtomicOutput:
    """A binary file written in full or not at all.

    Use as a context manager; call :meth:`commit` at the end of the ``with`` block to move the file
    into place. Leaving the block without a commit (an exception, a kill) removes the temporary file.

    Several attempts may write one destination at once (a retry started while a zombie attempt still
    runs): each writes its own temporary file and commits it with one move, so the destination is always
    one complete file, the last move's. Temporary files that dead attempts left (SIGKILL runs no clean-up)
    are removed by the next :meth:`open`, but only once unmodified for ``lease_seconds``: a live writer
    keeps its own file fresh (see :meth:`_refresh_lease`), so no attempt removes another's live file, on a
    local disk or on object storage (where an upload in progress is not even listed).

    :meth:`abort` never blocks, so ``on_kill`` may call it from a signal handler that interrupted a
    :meth:`write` holding the lock: it marks the output aborted and, if the lock is busy, leaves the
    clean-up to the holder, which does it as it lets go. Writes after an abort fail; nothing is committed.
    """

    def __init__(
        self, destination: ObjectStoragePath, *, lease_seconds: float | None = None, owner: str | None = None
    ) -> None:
        lease = configured_lease_seconds() if lease_seconds is None else lease_seconds
        if isinstance(lease, bool) or not isinstance(lease, int | float) or not lease > 0:
            raise EcoinventConfigError(f"lease_seconds must be a positive number of seconds, got {lease!r}.")
        self.destination = destination
        # ``owner`` (the writing task instance and try, see operators._directory.attempt_owner) lets a later try
        # of the same task instance recognise, and remove at once, the temporary files of its dead tries.
        unique = uuid.uuid4().hex if owner is None else f"{owner}.{uuid.uuid4().hex}"
        self.temporary = destination.parent / f".{destination.name}.{unique}{PARTIAL_SUFFIX}"
        self.lease_seconds = float(lease)
        self.bytes_written = 0
        self._sha256 = hashlib.sha256()
        self._file: Any = None
        self._buffer = bytearray()
        self._lock = threading.Lock()
        # Written without the lock by abort() (a single store: atomic), read by whoever lets go of the lock.
        self._aborted = False
        self._discarded = False
        self._moving = False
        self._lease_stop = threading.Event()
        self._local_temporary: str | None = None
        #: Wall-clock source for the age of partial files; tests replace it to shift time.
        self._now: Callable[[], float] = time.time
        self.committed = False

    @property
    def sha256(self) -> str:
        """SHA-256 of every byte written so far (those still buffered included)."""
        if not self._buffer:
            return self._sha256.hexdigest()
        pending = self._sha256.copy()
        pending.update(self._buffer)
        return pending.hexdigest()

    @property
    def aborted(self) -> bool:
        return self._aborted

    # -- life-cycle ------------------------------------------------------------------------------

    def __enter__(self) -> AtomicOutput:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.committed:
            self.abort()

    def open(self) -> None:
        """Remove temporary files dead attempts left, open a fresh one and start keeping it fresh."""
        if _is_local(self.destination):
            self.destination.parent.mkdir(parents=True, exist_ok=True)
            self._local_temporary = self.temporary.path
        self._remove_stale_partials()
        self._file = self.temporary.open("wb")  # type: ignore[no-untyped-call]
        threading.Thread(target=self._keep_lease, name="ecoinvent-output-lease", daemon=True).start()

    def _remove_stale_partials(self) -> None:
        """Remove this destination's temporary files unmodified for ``lease_seconds`` (their writer is dead).

        A file whose age cannot be read is left alone: only what is provably dead is removed.
        """
        fs = self.destination.fs
        pattern = f"{self.destination.parent.path.rstrip('/')}/.{_glob_escape(self.destination.name)}.*{PARTIAL_SUFFIX}"
        try:
            found = fs.glob(pattern)
        except Exception:  # a store without listing rights: nothing to clean, not a reason to fail
            log.debug("Could not list %s for stale partial files.", pattern, exc_info=True)
            return
        now = self._now()
        for path in found:
            age = _age_seconds(fs, path, now)
            if age is None or age < self.lease_seconds:
                log.info(
                    "Leaving %s: another attempt may still be writing it (unmodified for %s, lease %g s).",
                    path,
                    "an unknown time" if age is None else f"{age:.0f} s",
                    self.lease_seconds,
                )
                continue
            with contextlib.suppress(Exception):
                fs.rm(path)
                log.info("Removed a partial file left by an earlier attempt %.0f s ago: %s", age, path)

    def _keep_lease(self) -> None:
        """The lease thread: refresh the temporary file four times per lease until commit or abort."""
        while not self._lease_stop.wait(self.lease_seconds / 4):
            self._refresh_lease()

    def _refresh_lease(self) -> None:
        """Show other attempts that this temporary file is alive: make its modification time now.

        On a local disk, ``utime`` (never creating the file, which may be gone already). Elsewhere, push the
        buffered bytes: a store that shows a file while it is written (SFTP, HDFS) updates its modification
        time; one that shows it only once complete (S3, GCS, Azure) lists nothing to remove meanwhile.
        """
        if self._local_temporary is not None:
            with contextlib.suppress(OSError):
                os.utime(self._local_temporary)
            return
        if not self._lock.acquire(blocking=False):
            return  # a write is under way: it is refreshing the file itself
        try:
            if self._file is not None and not self._aborted:
                self._drain()
                self._file.flush()
        except Exception:
            log.debug("Could not flush %s to refresh its lease.", self.temporary, exc_info=True)
        finally:
            self._let_go()

    # -- the lock: whoever lets go of it finishes an abort that could not take it -----------------

    @contextlib.contextmanager
    def _holding(self) -> Iterator[None]:
        self._lock.acquire()
        try:
            yield
        finally:
            self._let_go()

    def _let_go(self) -> None:
        self._lock.release()
        if self._aborted:  # checked after the release: an abort that found the lock busy is finished here
            self._discard()

    def _check_open(self) -> None:
        self._check_not_aborted()
        if self._file is None:
            raise OSError(f"the output to {self.destination} is not open (never opened, or already committed)")

    def _check_not_aborted(self) -> None:
        if self._aborted:
            raise OSError(f"the output to {self.destination} was aborted; nothing more is written")

    # -- file interface (pyarrow writes through it too) -----------------------------------------

    def write(self, data: bytes) -> int:
        # The lock taken and let go by hand, not through _holding(): a generator-based context manager costs
        # more than buffering a JSON line, and the operators may write one line at a time.
        self._lock.acquire()
        try:
            self._check_open()
            self._buffer += data
            self.bytes_written += len(data)
            if len(self._buffer) >= WRITE_BUFFER_BYTES:
                self._drain()
        finally:
            self._let_go()
        self._check_not_aborted()  # aborted while this write was in the store: the file is gone, say so
        return len(data)

    def _drain(self) -> None:
        """Hash the buffered bytes and hand them to the file (caller holds the lock).

        Hashing here, ~1 MiB at a time, rather than in every :meth:`write`: one call into OpenSSL per chunk.
        The store gets an immutable copy: a store may keep what it is given (a part of an upload) past ``write``.
        """
        if self._buffer:
            self._sha256.update(self._buffer)
            self._file.write(bytes(self._buffer))
            self._buffer.clear()

    def tell(self) -> int:
        return self.bytes_written

    def flush(self) -> None:
        with self._holding():
            if self._file is not None and not self._aborted:
                self._drain()
                self._file.flush()

    def writable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return self._file is None or self._aborted or self.committed

    def close(self) -> None:
        """pyarrow may close its sink; the real close happens in :meth:`commit` or :meth:`abort`."""

    # -- outcome ---------------------------------------------------------------------------------

    def commit(self) -> None:
        """Close the temporary file and move it onto the destination (replacing an older file).

        Another attempt committing the same destination meanwhile is not an error: the last move wins,
        and the destination is one complete file either way.
        """
        with self._holding():
            self._check_open()
            self._drain()
            self._file.close()
            self._file = None
        self._check_not_aborted()  # aborted while closing: the temporary file was removed
        self._moving = True  # from here an abort leaves the temporary file to the move...
        if self._aborted:  # ...unless it came in before the move started
            self._moving = False
            self._discard()
            self._check_not_aborted()
        self._lease_stop.set()
        try:
            self.destination.fs.mv(self.temporary.path, self.destination.path)
        except BaseException:
            self._moving = False
            self._discard()
            raise
        self.committed = True
        self._moving = False

    def abort(self) -> None:
        """Remove the temporary file, now or as soon as the writer lets go; never blocks, never raises.

        Called from ``on_kill``, that is from the SIGTERM handler on the main thread, possibly while the
        main thread is inside :meth:`write` holding the lock: waiting for it there would never end.
        """
        if self.committed:
            return
        self._aborted = True
        self._discard()

    def _discard(self) -> None:
        """Close and remove the temporary file once, if the lock is free (else its holder does it)."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            if self._discarded or self.committed or self._moving:
                return
            self._discarded = True
            self._lease_stop.set()
            self._buffer.clear()
            file, self._file = self._file, None
            if file is not None:
                _drop_unfinished(file)
            try:
                fs = self.destination.fs
                if fs.exists(self.temporary.path):
                    fs.rm(self.temporary.path)
            except Exception:
                log.warning("Could not remove the partial file %s.", self.temporary, exc_info=True)
        finally:
            self._lock.release()


def _drop_unfinished(file: Any) -> None:
    """Let go of a file being written without publishing it; never raises.

    ``close()`` on an fsspec buffered file (S3, GCS, Azure, ...) uploads what is buffered and completes the
    upload: the object would appear, from a signal handler, only to be deleted. Such a file is discarded
    instead (``discard()`` cancels a multipart or resumable upload where the store supports it) and marked
    closed, so nothing (not even its finaliser) flushes it. Any other file (a local one) is closed; the
    caller then removes it.
    """
    from fsspec.spec import AbstractBufferedFile

    raw = getattr(file, "_obj", file)  # ObjectStoragePath.open wraps the fsspec file to track lineage
    with contextlib.suppress(Exception):
        if isinstance(raw, AbstractBufferedFile) and not raw.readable():
            try:
                raw.discard()
            finally:
                raw.buffer = io.BytesIO()
                raw.closed = True
        else:
            file.close()


def _age_seconds(fs: Any, path: str, now: float) -> float | None:
    """Seconds since ``path`` was last modified, from what the store tells; ``None`` when it tells nothing."""
    try:
        modified: Any = fs.modified(path)
    except Exception:  # NotImplementedError on many stores: look in info() instead
        try:
            info = fs.info(path)
        except Exception:
            return None
        modified = next(
            (info[key] for key in ("mtime", "LastModified", "last_modified", "updated", "modified") if info.get(key)),
            None,
        )
    stamp = _epoch_seconds(modified)
    return None if stamp is None else now - stamp


def _epoch_seconds(value: Any) -> float | None:
    """A modification time as seconds since the epoch: a number, a datetime (naive means UTC), ISO text."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if isinstance(value, datetime.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=datetime.UTC)
        return aware.timestamp()
    return None


def _glob_escape(name: str) -> str:
    return "".join(f"[{ch}]" if ch in "*?[]" else ch for ch in name)


__all__ = [
    "DEFAULT_PARTIAL_LEASE_SECONDS",
    "LOCAL_SCHEMES",
    "MAX_URI_CHARS",
    "PARTIAL_SUFFIX",
    "WRITE_BUFFER_BYTES",
    "AtomicOutput",
    "check_no_climbing",
    "check_uri",
    "configured_lease_seconds",
    "local_file_uri",
    "require_filesystem",
    "to_storage_path",
]
