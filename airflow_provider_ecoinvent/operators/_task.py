"""What both operators do around their work when a task runs: the hook, progress lines, outlets, lineage.

One place for it, so both operators log progress, publish manifests on asset events and report lineage
alike; the hook (and with it the HTTP stack) is imported only when a task runs, never at DAG parse time.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_ecoinvent.exceptions import EcoinventConfigError
from airflow_provider_ecoinvent.operators._directory import directory_path
from airflow_provider_ecoinvent.operators._output import require_filesystem, to_storage_path
from airflow_provider_ecoinvent.operators._partitions import is_directory_uri

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow.sdk import BaseOperator, Context, ObjectStoragePath

    from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook


def elapsed(start: float) -> float:
    return round(time.monotonic() - start, 3)


def publish_to_outlets(task: BaseOperator, context: Context, manifest: Mapping[str, Any]) -> None:
    """Put the manifest in the ``extra`` of the asset events of every ``Asset`` in ``outlets``."""
    from airflow.sdk import Asset

    outlets = [outlet for outlet in task.outlets or () if isinstance(outlet, Asset)]
    if not outlets:
        return
    events = context.get("outlet_events")
    if events is None:
        return
    for asset in outlets:
        events[asset].extra.update(manifest)


def publish_or_withhold(task: BaseOperator, context: Context, manifest: Mapping[str, Any], *, emit: bool) -> None:
    """Publish the manifest on the outlets' asset events, or, with ``emit=False``, emit no asset event at all.

    Airflow registers an event for every asset in the running task's ``outlets`` once it succeeds, whatever
    ``outlet_events`` holds (the task runner reads ``ti.task.outlets`` after ``execute``), so withholding
    them means running on without outlets: the running copy's are rebound to an empty list (the DAG's
    definition, the serialized DAG and other tries keep theirs). The task still succeeds with its XCom; a
    skip would instead skip every downstream task and drop the manifest from XCom.
    """
    if emit:
        publish_to_outlets(task, context, manifest)
        return
    if task.outlets:
        task.log.info("The dataset is unchanged and emit_unchanged=False: no asset event for %s.", task.outlets)
        task.outlets = []


def lineage(input_namespace: str, input_name: str, output: ObjectStoragePath | None) -> Any:
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


def output_path(
    uri: Any, *, writing: bool = True, directory: bool | None = None, directory_hint: bool = False
) -> ObjectStoragePath | None:
    """The rendered output URI as a path; when it will be written, its filesystem is checked first, so a
    missing storage provider fails with what to install before any call to the API.

    :param directory: whether it names a dataset directory; ``None``: a string ending with ``/`` does.
    :param directory_hint: the operator writes dataset directories too: the refusal of a folder says how.
    :raises EcoinventConfigError: a file output naming an existing folder, or a dataset directory naming an
        existing file (checked when writing).
    """
    if uri is None:
        return None
    if writing:
        require_filesystem(uri)
    if is_directory_uri(uri) if directory is None else directory:
        folder = directory_path(uri)
        if writing:
            refuse_existing_file(folder)
        return folder
    path = to_storage_path(uri)
    if writing:
        refuse_existing_folder(path, directory_hint=directory_hint)
    return path


def store_says(question: Callable[[], Any]) -> bool:
    """The store's answer to a yes-or-no question (``path.is_dir``), or ``False`` when it cannot tell: a store
    that cannot answer is not a reason to fail a run."""
    try:
        return bool(question())
    except Exception:
        return False


def refuse_existing_folder(path: ObjectStoragePath, *, directory_hint: bool) -> None:
    """A file output must not name an existing folder: the file would land inside it, hidden as a ``.partial``
    (the move into place puts it in the folder), and a later directory run's clean-up would delete it.

    One listing of the store, before any call to the API; a store that cannot tell is not a reason to fail.
    """
    if not store_says(path.is_dir):
        return
    hint = (
        " To write a dataset directory there, end output_uri with '/' or pass directory=True." if directory_hint else ""
    )
    raise EcoinventConfigError(
        f"output_uri {str(path)!r} names an existing folder, not a file: name a file in it instead (e.g. "
        f"'{str(path).rstrip('/')}/datasets.jsonl').{hint} No call was made to the ecoinvent API."
    )


def refuse_existing_file(path: ObjectStoragePath) -> None:
    """A dataset directory must not name an existing file: its parts could not be written under it, and the
    run would fail only after its first scored calls (with a raw ``FileExistsError``).

    One look at the store, before any call to the API; a store that cannot tell is not a reason to fail.
    """
    if not store_says(path.is_file):
        return
    raise EcoinventConfigError(
        f"output_uri {str(path) + '/'!r} names a dataset directory, but {str(path)!r} is an existing file: "
        "choose another location for the directory, or remove the file. No call was made to the ecoinvent API."
    )


def make_hook(conn_id: str, **kwargs: Any) -> EcoinventHook:
    """The hook, imported when a task runs: DAG files import this module at parse time, the HTTP stack not."""
    from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

    return EcoinventHook(conn_id, **kwargs)


def stop_hook(hook: EcoinventHook | None) -> None:
    """``hook.stop()`` for on_kill: a retry wait wakes at once and no further call is made; never raises."""
    if hook is not None:
        with contextlib.suppress(Exception):
            hook.stop()


def lineage_namespace(hook: EcoinventHook) -> str:
    return f"ecoinvent://{urlsplit(hook.settings.api_url).netloc}"


class Progress:
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


__all__ = [
    "Progress",
    "elapsed",
    "lineage",
    "lineage_namespace",
    "make_hook",
    "output_path",
    "publish_or_withhold",
    "publish_to_outlets",
    "refuse_existing_file",
    "refuse_existing_folder",
]
