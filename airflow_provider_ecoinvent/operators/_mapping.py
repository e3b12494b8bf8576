"""Whether mapped task instances share one ``output_uri``, read from the task as the DAG defines it.

Mapped instances (``expand``/``expand_kwargs`` on the operator, on a ``@task_group`` around it, or both)
that write one output would each replace what the others wrote, billed for every chunk and keeping only
the last. Both operators refuse that before any call to the API; this module counts the instances and
their distinct outputs from the mapping Airflow resolves (expand inputs, XComs, group arguments), with no
call to the ecoinvent API. It reads Airflow's mapping structures only, nothing of the provider.
"""

from __future__ import annotations

import logging
import math
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from airflow.sdk import BaseOperator


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


__all__ = ["built_by_mapping", "mapped_outputs", "shared_output_text", "varies_per_instance"]
