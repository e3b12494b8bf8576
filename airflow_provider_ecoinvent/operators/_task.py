"""What both operators do around their work when a task runs: the hook, progress lines, outlets, lineage."""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_ecoinvent.exceptions import EcoinventConfigError
from airflow_provider_ecoinvent.operators._directory import directory_path
from airflow_provider_ecoinvent.operators._output import require_filesystem, to_storage_path
from airflow_provider_ecoinvent.operators._partitions import is_directory_uri

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping

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


def built_by_mapping(task: BaseOperator) -> bool:
    """Whether a mapped task instance is being built: ``MappedOperator`` re-runs the constructor with the
    values resolved for one map index (``expand`` inputs are data, as rendered templates are)."""
    return bool(getattr(task, "_BaseOperator__from_mapped", False))


#: Per instance: the ``output_uri`` it writes (before rendering) and how many instances write it that way.
_Outputs = list[tuple[Any, int]]


def mapped_outputs(task: BaseOperator, context: Mapping[str, Any]) -> tuple[float, int] | None:
    """For a mapped task instance: how many instances its task maps to, and how many distinct ``output_uri``
    values they write; ``None`` when not mapped. A task is mapped by ``expand``/``expand_kwargs`` on the
    operator or on a ``@task_group`` around it (its operators are plain ones, their arguments stand-ins for
    the group's), or both; a template varying per instance (see :func:`varies_per_instance`) counts once each.

    Read from the task as the DAG holds it (the running copy is rendered), expand inputs resolved as Airflow
    resolves them to expand the task; no call to the ecoinvent API. When the mapping cannot be read but this
    instance has a map index, its output is judged alone: one that cannot vary per instance gives
    ``(math.inf, 1)`` (an unknown count of instances, one output): that output is shared if any is.
    """
    group = _closest_mapped_group(task)
    if not built_by_mapping(task) and group is None:
        return None
    original = _as_defined(task)
    try:
        outputs = _operator_outputs(original, context)
        if group is not None:
            outputs = [item for uri, count in outputs for item in _group_outputs(uri, count, group, context)]
    except Exception:
        logging.getLogger(__name__).debug("Could not read the mapping of %s.", task.task_id, exc_info=True)
        return _judged_alone(original, context)
    names = _mapped_names(original, group)
    instances = sum(count for _, count in outputs)
    fixed = {str(uri).strip().rstrip("/") for uri, _ in outputs if not varies_per_instance(uri, names)}
    return instances, len(fixed) + sum(count for uri, count in outputs if varies_per_instance(uri, names))


def shared_output_text(task: BaseOperator, instances: float, outputs: int) -> str:
    """The start of a refusal of mapped instances sharing outputs (``instances`` may be unknown: ``math.inf``)."""
    shared = "one output_uri" if outputs == 1 else f"only {outputs} distinct output_uri values"
    who = f"{instances} mapped task instances" if math.isfinite(instances) else "The mapped task instances"
    return f"{who} of {task.task_id!r} write {shared} (this one {str(getattr(task, 'output_uri', ''))!r})"


def varies_per_instance(uri: Any, names: Collection[str] = ()) -> bool:
    """Whether a (raw) ``output_uri`` renders differently for each mapped instance: a Jinja template (``{{`` or
    ``{%``) naming ``map_index`` (``ti.map_index``) or a mapped argument of the task (``task.<name>``). Nothing
    else in a template's context differs between the instances of one task in one run (``params``, ``ds``,
    ``run_id``, XCom pulls without the map index are the same for all)."""
    if not isinstance(uri, str) or ("{{" not in uri and "{%" not in uri):
        return False
    if re.search(r"\bmap_index\b", uri):
        return True
    return any(re.search(rf"\btask\.{re.escape(name)}\b", uri) for name in names if name != "output_uri")


def _closest_mapped_group(task: BaseOperator) -> Any:
    try:
        return task.get_closest_mapped_task_group()
    except Exception:
        return None


def _as_defined(task: BaseOperator) -> Any:
    """The task as the DAG defines it: the ``MappedOperator``, or the operator before rendering (the task runner
    renders a copy)."""
    dag = getattr(task, "dag", None)
    return getattr(dag, "task_dict", {}).get(task.task_id, task)


def _operator_outputs(original: Any, context: Mapping[str, Any]) -> _Outputs:
    """The outputs of a ``MappedOperator``'s instances; a plain operator's one output, once."""
    value = getattr(getattr(original, "expand_input", None), "value", None)
    if value is None:
        return [(getattr(original, "output_uri", None), 1)]
    partial = getattr(original, "partial_kwargs", {}).get("output_uri")
    if isinstance(value, dict):  # expand(a=[...], b=[...]): one instance per combination
        lengths = {key: len(_resolved(argument, context)) for key, argument in value.items() if argument is not None}
        instances = math.prod(lengths.values())
        if "output_uri" not in lengths:
            return [(partial, instances)]
        uris = list(_resolved(value["output_uri"], context))
        return [(uri, instances // len(uris)) for uri in uris]
    listed = [_resolved(mapping, context) for mapping in _resolved(value, context)]  # expand_kwargs([{...}, ...])
    return [(kwargs.get("output_uri", partial) if isinstance(kwargs, dict) else partial, 1) for kwargs in listed]


def _group_outputs(uri: Any, count: int, group: Any, context: Mapping[str, Any]) -> _Outputs:
    """The outputs of ``count`` instances per instance of a mapped task group; an argument of the group as
    ``output_uri`` is that argument's value in each instance."""
    from airflow.sdk.definitions._internal.expandinput import MappedArgument

    value = group._expand_input.value
    key = uri._key if isinstance(uri, MappedArgument) else None
    if isinstance(value, dict):  # g.expand(a=[...], b=[...])
        instances = math.prod(len(_resolved(argument, context)) for argument in value.values())
        if key is None:
            return [(uri, count * instances)]
        values = list(_resolved(value[key], context))
        return [(item, count * instances // len(values)) for item in values]
    listed = [_resolved(mapping, context) for mapping in _resolved(value, context)]  # g.expand_kwargs([...])
    return [(kwargs[key] if key is not None else uri, count) for kwargs in listed]


def _mapped_names(original: Any, group: Any) -> set[str]:
    """The task's arguments that differ per instance: the keys it expands over, the group arguments it takes."""
    from airflow.sdk.definitions._internal.expandinput import MappedArgument

    names: set[str] = set()
    value = getattr(getattr(original, "expand_input", None), "value", None)
    if isinstance(value, dict):
        names.update(value)
    elif isinstance(value, list):
        names.update(key for mapping in value if isinstance(mapping, dict) for key in mapping)
    elif value is not None:  # expand_kwargs(an XCom): any argument may vary
        names.update(getattr(original, "template_fields", ()))
    if group is not None:
        fields = getattr(original, "partial_kwargs", None) or vars(original)
        names.update(name for name, item in fields.items() if isinstance(item, MappedArgument))
    return names


def _judged_alone(original: Any, context: Mapping[str, Any]) -> tuple[float, int] | None:
    """A mapped instance whose mapping cannot be read: an output fixed for every instance is shared."""
    index = getattr(context.get("ti"), "map_index", None)
    if index is None or index < 0:
        return None
    if getattr(original, "expand_input", None) is not None:
        uri = getattr(original, "partial_kwargs", {}).get("output_uri")  # None: mapped over output_uri
    else:
        uri = getattr(original, "output_uri", None)
    if uri is None or hasattr(uri, "iter_references"):
        return None  # no output, or one resolved per instance (a group's argument, an XCom)
    return None if varies_per_instance(uri, _mapped_names(original, None)) else (math.inf, 1)


def _resolved(value: Any, context: Mapping[str, Any]) -> Any:
    from airflow.sdk.definitions.xcom_arg import XComArg

    return value.resolve(context) if isinstance(value, XComArg) else value


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
    "built_by_mapping",
    "elapsed",
    "lineage",
    "lineage_namespace",
    "make_hook",
    "mapped_outputs",
    "output_path",
    "publish_or_withhold",
    "publish_to_outlets",
    "refuse_existing_file",
    "refuse_existing_folder",
    "shared_output_text",
    "varies_per_instance",
]
