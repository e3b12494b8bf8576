"""The datasets of ``EcoinventHook.get_datasets``, streamed in the order of the ids, with bounded calls in flight.

The batching window, cancellation, the merging of K > 100 indicators sliced over several calls, and the
calls in flight adapting to 429s (a :class:`~airflow_provider_ecoinvent._client.concurrency.CallGate` every
attempt passes) are a concern of their own. The stream takes what it needs of the hook as a protocol
(:class:`StreamClient`: ``request``, ``gate``, ``log``, ``session``) and the batch size as a value, so the hook
builds streams without the stream knowing the hook.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol, Unpack

from airflow_provider_ecoinvent._client.ids import check_cost_guard, validate_dataset_ids, validate_indicator_ids
from airflow_provider_ecoinvent._client.network import POOL_SIZE
from airflow_provider_ecoinvent._client.paging import BATCH_LIST_KEYS, PAGE_LIMIT, Page, read_page, walk_pages
from airflow_provider_ecoinvent.exceptions import EcoinventApiError, EcoinventConfigError, EcoinventError
from airflow_provider_ecoinvent.indicators import compact_scores, expand, indicator_slices, merge_compact

if TYPE_CHECKING:
    from airflow_provider_ecoinvent._client.call import CallOptions
    from airflow_provider_ecoinvent._client.concurrency import CallGate
    from airflow_provider_ecoinvent.connection import EcoinventSettings


class BatchCaller(Protocol):
    """What :func:`fetch_batch` needs of a client: one call, within a gate, that a cancel event stops."""

    def request(
        self,
        method: str,
        path: str,
        *,
        cancel: threading.Event | None,
        gate: CallGate | None,
        **options: Unpack[CallOptions],
    ) -> Any:
        """Call an endpoint under the API prefix and return its parsed JSON (``EcoinventHook.request``)."""


class StreamClient(BatchCaller, Protocol):
    """What a :class:`DatasetStream` needs of the client that made it (``EcoinventHook`` is one).

    A protocol rather than the hook, so that the stream's module does not import the hook's, which imports
    it to build streams: the calls in flight every attempt passes, the log, and the pooled session, which the
    stream creates before its worker threads race to.
    """

    @property
    def gate(self) -> CallGate:
        """The client's calls in flight, shared by all its calls."""

    @property
    def log(self) -> Any:
        """Where the stream logs a batch asked for again."""

    @property
    def session(self) -> object:
        """The client's pooled HTTP session, created on first use."""


class DatasetStream(Iterator[dict[str, Any]]):
    """The datasets of :meth:`EcoinventHook.get_datasets`, streamed in the order of the requested ids.

    At most ``max_in_flight`` batch calls run at once (one at a time with ``max_in_flight=1``), the next ones
    starting while the caller consumes a batch; the answers of at most :func:`look_ahead` calls and the
    batch being handed over are held in memory, so memory stays flat whatever the number of ids. The
    calls actually in flight adapt within that ceiling: a 429 halves them, a run of successes adds one back
    (:mod:`.._client.concurrency`), and ``concurrency`` tells the peak, the final width and the number of 429s.
    ``close()`` (or ``on_kill``), or a failed call, cancels what has not started. After iteration,
    ``missing_ids`` lists the requested ids the API did not return (unknown in that version, or not
    licensed).
    """

    def __init__(
        self,
        hook: StreamClient,
        ids: list[int],
        indicator_ids: list[int],
        version: str,
        system_model: str,
        max_in_flight: int,
        *,
        batch_size: int,
    ) -> None:
        self.hook = hook
        self.version = version
        self.system_model = system_model
        self.indicator_ids = indicator_ids
        self.requested = len(ids)
        self.returned = 0
        self.missing_ids: list[int] = []
        self.max_in_flight = max_in_flight
        #: Dataset ids per batch call (the connection's ``batch_size``).
        self.batch_size = batch_size
        #: The hook's calls in flight, under this stream's ceiling: its free calls meet the same gateway limit.
        self._gate = hook.gate
        self._gate.restart(max_in_flight)
        self._ids = ids
        self._cancelled = threading.Event()
        # Set when the stream stops early for any reason (close, or a failed batch): calls in flight stop retrying.
        self._abandoned = threading.Event()
        #: The first call that failed on its own (not because the stream was abandoned): what the caller sees.
        self._failure: BaseException | None = None
        self._complete = False
        self._slices = indicator_slices(indicator_ids)
        self._look_ahead = look_ahead(max_in_flight, batch_size * len(self._slices[0]))
        #: The fields of a score other than id and value, interned per indicator id (see ``compact_scores``).
        self._score_fields: dict[int, dict[str, Any]] = {}
        self._iterator = self._generate()

    def __repr__(self) -> str:
        return (
            f"DatasetStream(requested={self.requested}, returned={self.returned}, "
            f"version={self.version!r}, system_model={self.system_model!r})"
        )

    def __iter__(self) -> DatasetStream:
        return self

    def __next__(self) -> dict[str, Any]:
        try:
            return next(self._iterator)
        except StopIteration:
            self._stop_if_cancelled()  # closed early: fail loudly rather than end as if complete
            raise

    @property
    def concurrency(self) -> dict[str, int]:
        """``max_in_flight``, ``peak_in_flight``, ``final_in_flight`` and ``rate_limited_calls`` (429s) so far."""
        return self._gate.figures.as_dict()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`close` stopped the stream before it was complete."""
        return self._cancelled.is_set()

    def close(self) -> None:
        """Stop: batches not yet started are cancelled; the ones in flight finish and are discarded.

        Safe to call from another thread or a signal handler (``on_kill``) while the stream is being
        iterated: the iterating thread then gets :class:`EcoinventError` instead of a silent early end,
        so a cancelled run can never pass for a complete one.
        """
        if not self._complete:
            self._cancelled.set()
            self._abandoned.set()
        with contextlib.suppress(ValueError):  # "generator already executing" in the iterating thread
            self._iterator.close()

    def _stop_if_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise EcoinventError(
                f"Dataset stream cancelled after {self.returned} of {self.requested} datasets: "
                "the result is incomplete."
            )

    def _chunks(self) -> Iterator[list[int]]:
        size = self.batch_size
        for start in range(0, len(self._ids), size):
            yield self._ids[start : start + size]

    def _generate(self) -> Generator[dict[str, Any], None, None]:
        yield from self._batches()
        self._complete = True

    def _batches(self) -> Generator[dict[str, Any], None, None]:
        if not self._ids:
            return
        hook = self.hook
        hook.session  # noqa: B018 - create the session before worker threads race to do it
        pool = ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="ecoinvent-batch")
        # One future per call: a batch scored for K > 100 indicators is ceil(K / 100) calls, and they count
        # against max_in_flight like any other, so what is held in memory does not grow with K.
        window: deque[tuple[list[int], list[Future[list[Any]]]]] = deque()
        chunks = self._chunks()
        finished = False
        try:
            self._submit(pool, window, chunks)
            while window:
                self._stop_if_cancelled()
                settled = self._settle(window.popleft())
                # The next calls go out before this batch is handed over: while the caller writes it, the
                # server is already working (with max_in_flight=1 too: still one call at a time).
                self._submit(pool, window, chunks)
                yield from settled
            finished = True
        finally:
            # Stopped early (on_kill, a failed batch, even the last one's, whose other slices may still be on
            # the wire): calls in flight are discarded and must not retry, since a retried scored call is
            # billed for nothing; queued ones are cancelled; do not wait for them.
            if not finished:
                self._abandoned.set()
            pool.shutdown(wait=finished, cancel_futures=True)

    def _submit(
        self,
        pool: ThreadPoolExecutor,
        window: deque[tuple[list[int], list[Future[list[Any]]]]],
        chunks: Iterator[list[int]],
    ) -> None:
        """Start batches (all of a batch's calls) while they fit in the look-ahead with those in the window (one
        batch at least): with K > 100 indicators a batch is several calls, and what is held must not grow.

        The pool has ``max_in_flight`` threads; calls beyond them wait in its queue, and a thread whose call
        finished starts the next one at once, without waiting for the caller to consume the head batch."""
        while not window or sum(len(calls) for _, calls in window) + len(self._slices) <= self._look_ahead:
            chunk = next(chunks, None)
            if chunk is None:
                return
            self._stop_if_cancelled()
            window.append((chunk, [pool.submit(self._fetch_slice, chunk, part) for part in self._slices]))

    def _fetch_slice(self, chunk: list[int], indicators: list[int]) -> list[Any]:
        """One call; with several slices its answer is compacted while it waits for the others.

        A call that fails fails the stream once its batch is reached, so it abandons the stream at once: the
        other calls stop retrying, and the thread it frees does not start a queued call that would be billed
        for nothing before the caller gets to the failure. Its error is kept, so that the caller is told why,
        not that an earlier batch's call was abandoned because of it.
        """
        try:
            datasets = fetch_batch(
                self.hook, chunk, indicators, self.version, self.system_model, self._abandoned, self._gate
            )
        except BaseException as exc:
            if not self._abandoned.is_set():
                self._failure = exc
            self._abandoned.set()
            raise
        return compact_scores(datasets, self._score_fields) if len(self._slices) > 1 else datasets

    def _settle(self, pending: tuple[list[int], list[Future[list[Any]]]]) -> Iterable[dict[str, Any]]:
        """The batch's datasets; if one of its calls failed, the error of the stream's first failed call."""
        chunk, calls = pending
        try:
            answers = [call.result() for call in calls]
        except BaseException as exc:
            failure = exc if self._failure is None else self._failure
        else:
            return self._merge(chunk, answers)
        # Raised outside the handler, so the first failure is not chained to the abandonment it caused.
        raise failure

    def _merge(self, chunk: list[int], answers: list[list[Any]]) -> Iterable[dict[str, Any]]:
        """The batch's datasets, counted; with several slices each is expanded only when it is consumed."""
        if len(answers) == 1:
            return self._account(chunk, answers[0])
        self._complete_slices(answers)
        merged = merge_compact(chunk, answers)
        self._account(chunk, [dataset for dataset, _ in merged])
        return (expand(dataset, parts) for dataset, parts in merged)

    def _complete_slices(self, answers: list[list[Any]]) -> None:
        """Make sure every dataset of the batch came back from every indicator slice, before any is handed over.

        A dataset that one slice returned and another did not would be written with part of its scores, and
        counted neither as missing (the API has it) nor as failed. Such a lapse is asked for once more (only
        those datasets, only the slices that lacked them: no new distinct id, so nothing more on the licence);
        if the API still leaves them out, the batch fails naming the datasets and slices (a task retry asks
        again). Treating them as missing instead would call a dataset absent that the API just returned.

        :raises EcoinventApiError: a dataset is still absent from a slice after the second request.
        """
        lacking = lacking_slices(answers)
        if not lacking:
            return
        self.hook.log.warning(
            "The API left datasets out of some indicator slices of a batch (%s); asking for them once more.",
            describe_lacking(lacking, self._slices),
        )
        for index, ids in lacking.items():
            again = fetch_batch(
                self.hook, ids, self._slices[index], self.version, self.system_model, self._abandoned, self._gate
            )
            answers[index].extend(compact_scores(again, self._score_fields))
        still = lacking_slices(answers)
        if still:
            raise EcoinventApiError(
                f"POST datasets/batch returned datasets for some indicator slices but not for others, again when "
                f"asked once more: {describe_lacking(still, self._slices)}. Their scores would be incomplete, so "
                "none of this batch is written. Retry the task; if it persists, report it to ecoinvent (the API "
                "answers the same dataset for one set of indicators and not for another).",
                status_code=200,
                method="POST",
                path="datasets/batch",
            )

    def _account(self, chunk: list[int], datasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        returned = {int(dataset["id"]) for dataset in datasets}
        self.missing_ids.extend(ident for ident in chunk if ident not in returned)
        self.returned += len(datasets)
        return datasets


def lacking_slices(answers: Sequence[list[Any]]) -> dict[int, list[int]]:
    """Per slice (its index), the ids of the datasets another slice of the batch returned and it did not."""
    present = [_compact_ids(answer) for answer in answers]
    every: dict[int, None] = {}
    for ids in present:
        every.update(ids)
    lacking = {index: [ident for ident in every if ident not in ids] for index, ids in enumerate(present)}
    return {index: ids for index, ids in lacking.items() if ids}


def describe_lacking(lacking: dict[int, list[int]], slices: Sequence[Sequence[int]], shown: int = 10) -> str:
    """``dataset 7 lacks slice 2 of 2 (indicators 101..150)``, for each slice (at most ``shown`` ids each)."""
    parts = []
    for index, ids in sorted(lacking.items()):
        indicators = slices[index]
        more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
        names = ", ".join(map(str, ids[:shown])) + more
        parts.append(
            f"dataset{'s' if len(ids) > 1 else ''} {names} missing from indicator slice {index + 1} of "
            f"{len(slices)} ({len(indicators)} indicators, ids {indicators[0]}..{indicators[-1]})"
        )
    return "; ".join(parts)


def _compact_ids(answer: list[Any]) -> dict[int, None]:
    """The dataset ids of a compacted slice answer, in order."""
    ids: dict[int, None] = {}
    for part in answer:
        try:
            ids[int(part[0]["id"])] = None
        except (KeyError, TypeError, ValueError):
            continue
    return ids


#: Scores the look-ahead may hold beyond ``max_in_flight`` calls' answers: ~3.5 MB decoded (~700 bytes each).
LOOK_AHEAD_SCORE_BUDGET = 5_000


def look_ahead(max_in_flight: int, scores_per_call: int) -> int:
    """How many calls the stream's window holds, started or answered but not yet consumed (whole batches,
    one at least): a quarter more than ``max_in_flight`` (8 -> 10; below 4, no more), as far as the extra
    calls' answers stay within :data:`LOOK_AHEAD_SCORE_BUDGET` scores (``scores_per_call``: datasets per
    batch x indicators per call). With 100 datasets a batch: 2 extra calls up to 25 indicators, 1 up to 50,
    none from 51 (and none with K > 100, where a batch is several calls of 100).

    Batches are handed over in id order. With a window of exactly ``max_in_flight``, a call that finished
    before the head of the window left its thread idle until the caller had consumed everything before it,
    so on average only ~7 of 8 calls were on the wire. The extra calls keep the threads busy meanwhile: the
    operator went from about 5.9x to 6.1x-6.4x the sequential loop at 50 ms a call, K = 3 (``make bench``,
    section 3). Their price: the answered calls waiting in the window are held in memory, and billed for
    nothing when the run fails or is killed before writing them; heavy answers would cost megabytes each
    (a 100 x 100 call decodes to ~7 MB), for runs that their CPU bounds rather than latency.
    """
    extra = min(max_in_flight // 4, LOOK_AHEAD_SCORE_BUDGET // max(scores_per_call, 1))
    return max_in_flight + extra


def fetch_batch(
    hook: BatchCaller,
    ids: Sequence[int],
    indicators: Sequence[int],
    version: str,
    system_model: str,
    cancel: threading.Event | None = None,
    gate: CallGate | None = None,
) -> list[dict[str, Any]]:
    """All datasets of one batch call (paging within it), in the order of ``ids``."""
    body = {"dataset_ids": list(ids), "indicator_ids": list(indicators)}
    scope = {"version": version, "system_model": system_model}

    def fetch(offset: int, limit: int) -> Page:
        query = {"from": offset, "limit": limit, **scope}
        answer = hook.request("POST", "datasets/batch", query=query, json=body, cancel=cancel, gate=gate)
        return read_page(answer, BATCH_LIST_KEYS)

    by_id: dict[int, dict[str, Any]] = {}
    # At most len(ids) datasets can come back (ids are de-duplicated): a full last page ends the walk.
    pages = walk_pages(fetch, limit=min(PAGE_LIMIT, len(ids)), expected=len(ids), what="POST datasets/batch")
    for page in pages:
        for dataset in page:
            try:  # not contextlib.suppress: a context manager per dataset costs more than the rest of the loop
                by_id[int(dataset["id"])] = dataset
            except (KeyError, TypeError, ValueError):
                continue
    return [by_id[ident] for ident in ids if ident in by_id]


def checked_selection(
    settings: EcoinventSettings, dataset_ids: Iterable[int], indicator_ids: Iterable[int], max_in_flight: int
) -> tuple[list[int], list[int]]:
    """The de-duplicated ids of a stream, checked before any call: ids, the connection's cost guard, and
    ``max_in_flight`` within the connections the hook keeps open.

    :raises EcoinventCostGuardError: more distinct datasets or indicators than the connection allows.
    :raises EcoinventConfigError: ``max_in_flight`` out of range.
    """
    ids = validate_dataset_ids(dataset_ids, allow_empty=True)
    indicators = validate_indicator_ids(indicator_ids)
    check_cost_guard(len(ids), len(indicators), settings.max_unique_datasets, settings.max_unique_indicators)
    if not 1 <= max_in_flight <= POOL_SIZE:
        raise EcoinventConfigError(
            f"max_in_flight must be from 1 to {POOL_SIZE} (the connections the hook keeps open), got {max_in_flight!r}."
        )
    return ids, indicators


__all__ = [
    "LOOK_AHEAD_SCORE_BUDGET",
    "BatchCaller",
    "DatasetStream",
    "StreamClient",
    "checked_selection",
    "describe_lacking",
    "fetch_batch",
    "lacking_slices",
    "look_ahead",
]
