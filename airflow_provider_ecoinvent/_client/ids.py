"""Dataset and indicator id validation, shared by the hook and the operators.

Operators validate their arguments when a DAG file is parsed, so this module imports nothing but the
standard library and the exceptions: the hook (and its HTTP stack) loads only when a task runs.
"""

from __future__ import annotations

import operator
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import unquote

from airflow_provider_ecoinvent.exceptions import EcoinventConfigError, EcoinventCostGuardError

#: The API's limit on indicators per scored call.
MAX_INDICATORS: Final = 100

#: The longest rendered list read from a template (characters): ~100,000 ids, four times a whole release; the
#: same bound holds for a templated ``indicators``. Beyond it, reading the text as Python would take seconds
#: and gigabytes before the cost guard could refuse it.
MAX_RENDERED_LIST_CHARS: Final = 1 << 20


def validate_dataset_ids(dataset_ids: Iterable[Any], *, allow_empty: bool = False) -> list[int]:
    """Integer dataset ids, de-duplicated in first-seen order.

    :raises EcoinventConfigError: for a non-integer id (``"12"``, ``1.5``, ``True``) or a negative one.
    """
    if isinstance(dataset_ids, str | bytes | Mapping):
        raise EcoinventConfigError(f"dataset_ids must be a list of integers, got {type(dataset_ids).__name__}.")
    ids: dict[int, None] = {}
    for value in dataset_ids:
        ident = _as_id(value)
        if ident is None:
            raise EcoinventConfigError(f"dataset ids must be positive integers; got {value!r}.")
        ids[ident] = None
    if not ids and not allow_empty:
        raise EcoinventConfigError("dataset_ids is empty: give at least one dataset id.")
    return list(ids)


def validate_indicator_ids(indicator_ids: Iterable[Any], *, max_count: int | None = None) -> list[int]:
    """Integer indicator ids, de-duplicated; at most ``max_count`` when a single call must take them all.

    Batch scoring takes any number (it splits them into calls of :data:`MAX_INDICATORS`); a single-dataset
    GET passes ``max_count=MAX_INDICATORS``, the API's limit per call.
    """
    if isinstance(indicator_ids, str | bytes | Mapping):
        raise EcoinventConfigError(f"indicator_ids must be a list of integers, got {type(indicator_ids).__name__}.")
    ids: dict[int, None] = {}
    for value in indicator_ids:
        ident = _as_id(value)
        if ident is None:
            raise EcoinventConfigError(f"indicator ids must be positive integers; got {value!r}.")
        ids[ident] = None
    if max_count is not None and len(ids) > max_count:
        raise EcoinventConfigError(
            f"{len(ids)} indicator ids given; the API scores at most {max_count} per call. "
            "Use get_datasets (batch calls take any number of indicators)."
        )
    return list(ids)


def capped_limit(argument: int | None, extra: int | None, name: str) -> int | None:
    """The cost guard in force: the connection extra ``name`` caps the task's argument of that name.

    The extra is set once by an admin for everyone using the connection, so an argument may only lower it.

    :raises EcoinventCostGuardError: the argument is above the extra (before any scored call).
    """
    if argument is None:
        return extra
    if extra is not None and argument > extra:
        raise EcoinventCostGuardError(
            f"{name}={argument} is more than the connection's {name}={extra}: the connection extra caps the "
            f"argument (an admin sets it for everyone using the connection), so an argument may only lower it. "
            f"No scored call was made. Pass {name}<={extra}, split the work, or ask the connection's admin to "
            "raise the extra."
        )
    return argument


def check_cost_guard(datasets: int, indicators: int, dataset_limit: int | None, indicator_limit: int | None) -> None:
    """Refuse a task that would score more distinct datasets or indicators than its cost guard allows.

    Only scored calls are billed: ``indicators == 0`` (datasets fetched unscored) passes whatever the limits.
    One check of counts; :class:`ScoredTally` keeps the running counts of a hook (per task for the operators).

    :raises EcoinventCostGuardError: before any scored call, naming the limit and how to stay within it.
    """
    if not indicators:
        return
    if dataset_limit is not None and datasets > dataset_limit:
        raise EcoinventCostGuardError(
            f"This run would score {datasets} distinct datasets for {indicators} indicators, more than "
            f"max_unique_datasets={dataset_limit}; the licence bills every distinct dataset scored (the API does "
            "not block overage). No scored call was made. Select fewer datasets, split the work, or raise "
            "max_unique_datasets (the operator argument, up to the connection extra that caps it) if this is "
            "intended."
        )
    if indicator_limit is not None and indicators > indicator_limit:
        raise EcoinventCostGuardError(
            f"This run would score {indicators} distinct indicators, more than "
            f"max_unique_indicators={indicator_limit}; the licence bills every distinct indicator scored (the "
            "API does not block overage). No scored call was made. Select fewer indicators, or raise "
            "max_unique_indicators (the operator argument, up to the connection extra that caps it) if this is "
            "intended."
        )


def scored_ids(endpoint: str, query: Any, body: Any) -> tuple[set[str], set[str]] | None:
    """The distinct dataset and indicator ids a call of a ``datasets`` endpoint would score, ``None`` if none.

    ``GET datasets/{id}`` scores its one dataset for the ``indicator_ids`` of its query; a batch call the
    ``dataset_ids`` and ``indicator_ids`` of its JSON body. Every count errs on the side of the licence: a
    ``datasets/{x}`` path counts ``x`` plus any ``dataset_ids`` of its body, indicator ids in the query count
    for a batch too, and the path is read percent-decoded and cut at any ``?``, ``#`` or ``;`` (which
    :func:`~airflow_provider_ecoinvent._client.safety.check_endpoint` refuses anyway).
    """
    path = re.split(r"[?#;]", unquote(str(endpoint)), maxsplit=1)[0]
    parts = [part for part in path.strip().split("/") if part.strip()]
    if len(parts) < 2 or parts[0].strip().lower() != "datasets":
        return None
    query = query if isinstance(query, Mapping) else {}
    body = body if isinstance(body, Mapping) else {}
    indicators = distinct_ids(query.get("indicator_ids")) | distinct_ids(body.get("indicator_ids"))
    if not indicators:
        return None
    datasets = distinct_ids(body.get("dataset_ids"))
    if parts[1].strip().lower() != "batch":
        datasets |= distinct_ids(parts[1])
    return datasets, indicators


def distinct_ids(values: Any) -> set[str]:
    """Distinct ids as the API would read them (``5`` and ``"5"`` are one id), for counting only.

    A list of ids, or one id (a query parameter given once); a text ``"1,2"`` counts as the ids it lists.
    """
    if values is None or isinstance(values, Mapping):
        return set()
    if isinstance(values, str | bytes | int):
        text = values.decode(errors="replace") if isinstance(values, bytes) else str(values)
        return {part.strip() for part in text.split(",") if part.strip()}
    if isinstance(values, list | tuple | set | frozenset):
        return {text for value in values for text in distinct_ids(value)}
    return {str(values).strip()}


class ScoredTally:
    """The distinct dataset and indicator ids one hook (or async client) has scored or is about to score.

    The connection's guards cap these running sets, so a loop of small calls over one hook is capped as
    one large call would be: the datasets operator makes one hook per task, so for it the guard counts per
    task. Ids already counted add nothing (a retry, or the re-ask of an indicator slice, is free to pass).
    Thread-safe: a dataset stream scores from several threads.
    """

    def __init__(self) -> None:
        self.datasets: set[str] = set()
        self.indicators: set[str] = set()
        self._lock = threading.Lock()

    def admit_call(self, settings: Any, path: str, query: Any, body: Any) -> None:
        """Count one call's scored ids (:func:`scored_ids`), refusing it if the sets would pass a guard.

        :raises EcoinventCostGuardError: before the call; nothing is counted then.
        """
        scored = scored_ids(path, query, body)
        if scored is not None:
            self.admit(settings, *scored)

    def check_call(self, settings: Any, path: str, query: Any, body: Any) -> None:
        """Refuse a call that :meth:`admit_call` would refuse, counting nothing.

        For a caller that prepares something before its first call (an output file, its folders) and must
        leave nothing behind when the guard refuses.

        :raises EcoinventCostGuardError: the call's scored ids would take the sets past a guard.
        """
        scored = scored_ids(path, query, body)
        if scored is not None:
            self.admit(settings, *scored, record=False)

    def admit(self, settings: Any, datasets: Iterable[Any], indicators: Iterable[Any], *, record: bool = True) -> None:
        """Count ``datasets`` scored for ``indicators`` (nothing when no indicator: unscored is free).

        ``record=False`` checks only: a stream checks its whole selection before its first batch counts.

        :raises EcoinventCostGuardError: the running sets would pass ``settings``' guards.
        """
        new_indicators = {str(ident) for ident in indicators}
        if not new_indicators:
            return
        new_datasets = {str(ident) for ident in datasets}
        with self._lock:
            all_datasets, all_indicators = self.datasets | new_datasets, self.indicators | new_indicators
            earlier = (len(self.datasets), len(self.indicators))
            try:
                check_cost_guard(
                    len(all_datasets), len(all_indicators), settings.max_unique_datasets, settings.max_unique_indicators
                )
            except EcoinventCostGuardError as err:
                if earlier[1]:
                    raise EcoinventCostGuardError(
                        f"{err} Counted with the {earlier[0]} datasets and {earlier[1]} indicators this hook has "
                        "already scored: the guard counts every scored call of one hook (one task for the "
                        "operators), so a loop of small calls is capped as one large call would be."
                    ) from None
                raise
            if record:
                self.datasets, self.indicators = all_datasets, all_indicators


def _as_id(value: Any) -> int | None:
    if type(value) is int:  # the usual case, checked first: ids are validated up to three times per run
        return value if value > 0 else None
    if isinstance(value, bool):
        return None
    try:
        ident = operator.index(value)
    except TypeError:
        return None
    return ident if ident > 0 else None
