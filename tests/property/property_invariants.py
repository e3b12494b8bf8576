"""The promises checked after every step, one small function each (the issue's "Invariants" list).

Each takes what a step did (:class:`~property_harness.Step`) and what storage holds, and fails with a message
that says which promise broke; Hypothesis then shrinks the request and faults to a minimal example.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from property_harness import View, minimum_calls, read_view, snapshot, temporaries, written_datasets

from airflow_provider_ecoinvent.operators._partitions import plan_parts

if TYPE_CHECKING:
    from pathlib import Path

    from property_harness import Step
    from property_strategies import Request


def check_outcome(step: Step, location: Path, expected: View | None, before: dict[str, Any]) -> None:
    """Storage equals a clean single-task run of the same request, or the step failed before any scored call
    (the ledger shows none) and left storage as it was."""
    if step.ok:
        assert expected is not None
        actual = read_view(step.request, location)
        assert actual.kind == expected.kind, f"the output is {actual.kind!r}, a clean run writes a {expected.kind}"
        assert actual.data == expected.data, (
            f"the data differs from a clean run's: {sorted(actual.data)} vs {sorted(expected.data)}\n{step.describe()}"
        )
        assert actual.records == expected.records, "the directory's bookkeeping differs from a clean run's"
        assert actual.manifest == expected.manifest, "the manifest differs from a clean run's"
        assert actual.complete == expected.complete, "_SUCCESS differs from a clean run's"
        return
    assert step.scored_calls == 0, f"the step failed after {step.scored_calls} scored calls\n{step.describe()}"
    assert snapshot(location) == before, f"the failed step changed storage\n{step.describe()}"


def check_guards(step: Step) -> None:
    """No try scores more distinct datasets or indicators than a cost guard of its request allows."""
    request = step.request
    for attempt in step.tries:
        if request.max_unique_datasets is not None:
            assert len(attempt.datasets) <= request.max_unique_datasets, (
                f"{len(attempt.datasets)} datasets scored past max_unique_datasets={request.max_unique_datasets}"
            )
        if request.max_unique_indicators is not None:
            assert len(attempt.indicators) <= request.max_unique_indicators, (
                f"{len(attempt.indicators)} indicators scored past max_unique_indicators="
                f"{request.max_unique_indicators}"
            )
    if not request.within_guards():
        assert step.scored_calls == 0, "a request over a cost guard made scored calls"


def task_ids(request: Request) -> list[list[int]]:
    """The distinct ids each task instance of the request has to fetch at most (its share of the parts)."""
    if request.chunks:
        return [sorted(set(chunk)) for chunk in request.chunks]
    if request.shards:
        parts = plan_parts(request.planned_ids, request.partition_size)
        return [
            [ident for number, part in enumerate(parts) if number % request.shards == index for ident in part]
            for index in range(request.shards)
        ]
    return [request.planned_ids]


def check_scored_calls(step: Step) -> None:
    """Scored calls stay within a clean fetch of every task's ids, plus what kills and failures forced: the
    calls a stopped try had in flight or answered ahead (its window), which the next try may repeat."""
    request = step.request
    planned = set(request.planned_ids)
    for attempt in step.tries:
        assert attempt.datasets <= planned, f"datasets outside the selection were scored: {attempt.datasets - planned}"
    minimum = sum(minimum_calls(request, ids) for ids in task_ids(request))
    window = request.max_in_flight + request.max_in_flight // 4 + 1
    forced = sum(window * request.slices for attempt in step.tries if not attempt.ok)
    assert step.scored_calls <= minimum + forced, (
        f"{step.scored_calls} scored calls; a clean fetch takes at most {minimum}, the faults forced {forced}\n"
        f"{step.describe()}"
    )


def check_resumed(step: Step) -> None:
    """The try after a kill scores no dataset of a part the killed try had committed (overwrite or not)."""
    for killed, retry in zip(step.tries, step.tries[1:], strict=False):
        if not killed.killed or (retry.task, retry.map_index) != (killed.task, killed.map_index):
            continue
        again = killed.committed_ids & retry.datasets
        assert not again, (
            f"the next try refetched {len(again)} datasets of parts its killed try had committed "
            f"(overwrite={step.request.overwrite}): e.g. {sorted(again)[:5]}\n{step.describe()}"
        )


def check_no_temporaries(step: Step, location: Path) -> None:
    """After a successful step no ``.partial`` (temporary) file is left at the output."""
    if step.ok:
        left = temporaries(location)
        assert not left, f"temporary files left after a successful run: {left}\n{step.describe()}"


def check_accounted(step: Step, location: Path) -> None:
    """Every planned id is in the output or counted (and, up to the listed number, named) as missing; every
    written dataset carries a score for every requested indicator (never partial scores)."""
    if not step.ok:
        return
    request = step.request
    assert step.manifest is not None
    written = written_datasets(request, read_view(request, location))
    planned = set(request.planned_ids)
    assert set(written) <= planned, f"datasets outside the selection were written: {set(written) - planned}"
    missing = int(step.manifest["missing_datasets"])
    listed = set(step.manifest["missing_dataset_ids"])
    assert listed <= planned - set(written), f"ids listed missing yet written or never planned: {listed}"
    assert len(written) + missing == len(planned), (
        f"{len(planned)} planned ids, {len(written)} written and {missing} counted missing"
    )
    if missing == len(listed):
        assert set(written) | listed == planned
    indicators = set(request.indicator_ids)
    for ident, scored in written.items():
        assert scored == indicators, f"dataset {ident} was written with {len(scored)} of {len(indicators)} scores"


def refusal_due(step: Step) -> str | None:
    """Why the step's request must be refused before any call, or ``None``: an ``output_uri`` climbing out with
    ``..``; mapped chunks without ``shard`` sharing one output; a file output at an existing folder or a
    dataset directory at an existing file."""
    request = step.request
    if request.dotdot:
        return "an output_uri with a '..' segment"
    if request.chunks is not None and len(request.chunks) > 1:
        return f"{len(request.chunks)} mapped chunks without shard into one output_uri"
    if request.directory and step.found == "file":
        return "a dataset directory naming an existing file"
    if not request.directory and step.found == "directory":
        return "a file output naming an existing folder"
    return None


def check_refused(step: Step) -> None:
    """A request that must be refused fails before any scored call, for good, with a config error (mapped
    chunks: one that names ``shards()``, the way to split a request over mapped tasks)."""
    from airflow_provider_ecoinvent.exceptions import EcoinventConfigError

    why = refusal_due(step)
    if why is None:
        return
    assert not step.ok, f"{why} was accepted\n{step.describe()}"
    assert step.scored_calls == 0, f"{why} was refused only after scored calls\n{step.describe()}"
    assert isinstance(step.error, EcoinventConfigError), f"{why} failed with {step.error!r}, not a config error"
    others = refusal_due(replace(step, request=replace(step.request, chunks=None)))
    if others is None:  # the mapped chunks are the one reason: the refusal says how to split a request instead
        assert "shards(" in str(step.error), f"the refusal of mapped chunks does not name shards(): {step.error}"


def check_accepted(step: Step) -> None:
    """A request that nothing refuses (no refusal due, within its cost guards) succeeds: every drawn fault is
    transient, so a failure here is a valid request turned away (failing before any call is not enough)."""
    if refusal_due(step) is None and step.request.within_guards():
        assert step.ok, f"a valid request failed\n{step.describe()}"


def check_faults_survived(step: Step) -> None:
    """Every drawn fault is transient: a few failures of one call (within its retries), a revoked token, latency,
    or rate limiting, which must cost no try. So no step fails because of one (an API or token error)."""
    from airflow_provider_ecoinvent.exceptions import EcoinventApiError, EcoinventAuthError

    failed = [attempt for attempt in step.tries if isinstance(attempt.error, EcoinventApiError | EcoinventAuthError)]
    assert not failed, f"a transient fault failed a try: {failed[0].error!r}\n{step.describe()}"


def check_failed_for_good(step: Step) -> None:
    """A refusal no retry can fix (bad arguments, a cost guard) fails the task for good: it must not spend the
    task's Airflow retries (AirflowFailException is how a task says so)."""
    from airflow.exceptions import AirflowFailException  # the one class on Airflow 3.1 and 3.2+ alike

    from airflow_provider_ecoinvent.exceptions import EcoinventConfigError, EcoinventCostGuardError

    for attempt in step.tries:
        if isinstance(attempt.error, EcoinventConfigError | EcoinventCostGuardError):
            assert isinstance(attempt.error, AirflowFailException), (
                f"{type(attempt.error).__name__} would be retried by Airflow: {attempt.error}"
            )


def check_step(step: Step, location: Path, expected: View | None, before: dict[str, Any]) -> None:
    """Every invariant of one step (and what kind of step it was, for ``--hypothesis-show-statistics``)."""
    from hypothesis import event

    request = step.request
    fan_out = "shards" if request.shards else "chunks" if request.chunks else "one task"
    output = ("directory" if request.directory else "file") + (" (path object)" if request.path_object else "")
    outcome = "ok" if step.ok else f"failed: {refusal_due(step) or type(step.error).__name__}"
    event(f"{output}, {fan_out}: {outcome}")
    check_refused(step)
    check_accepted(step)
    check_faults_survived(step)
    check_failed_for_good(step)
    check_outcome(step, location, expected, before)
    check_guards(step)
    check_scored_calls(step)
    check_resumed(step)
    check_no_temporaries(step, location)
    check_accounted(step, location)


def _data(files: dict[str, Any]) -> dict[str, Any]:
    """The stored data and its part records (not the manifest, the marker or the shard records)."""
    return {name: value for name, value in files.items() if "/part-" in name or "/_parts/" in name}


def _settled(files: dict[str, Any]) -> dict[str, Any]:
    """Stored files but the shard records, which each fan-out rewrites (their ``written_at`` says which is newest)."""
    return {name: value for name, value in files.items() if "/_shards/" not in name}


def check_rerun(step: Step, before: dict[str, Any], location: Path, *, untouched: bool) -> None:
    """A complete rerun scores nothing and rewrites no part; with ``untouched``, it leaves every file as it was
    (``_manifest.json`` and ``_SUCCESS`` too: same bytes, same modification time), so nothing downstream reruns."""
    assert step.ok, f"a rerun of a complete output failed\n{step.describe()}"
    assert step.scored_calls == 0, f"a complete rerun made {step.scored_calls} scored calls\n{step.describe()}"
    after = snapshot(location)
    assert _data(after) == _data(before), "a complete rerun rewrote parts or part records"
    if untouched:
        now, then = _settled(after), _settled(before)
        changed = sorted(name for name in now.keys() | then.keys() if now.get(name) != then.get(name))
        assert not changed, f"a complete rerun rewrote {changed}"
