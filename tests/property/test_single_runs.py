"""One drawn request with a drawn fault schedule, run on a fresh output location: every promise holds.

See property_strategies.py for what is drawn, property_invariants.py for what is asserted.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from hypothesis import given, note
from hypothesis import strategies as st
from property_harness import reference, run_step, snapshot
from property_invariants import check_rerun, check_step
from property_strategies import Request, Schedule, requests, schedules

if TYPE_CHECKING:
    from pathlib import Path

    from property_harness import Lab, Step


def run_and_check(lab: Lab, request: Request, data: st.DataObject) -> tuple[Step, Path]:
    """Run ``request`` under a drawn fault schedule on a fresh location; every promise of a step holds."""
    schedule = data.draw(schedules(request), label="schedule")
    location = lab.new_location()
    before = snapshot(location)
    step = run_step(lab, request, schedule, location)
    note(step.describe())
    check_step(step, location, reference(lab, request) if step.ok else None, before)
    return step, location


@given(request=requests(), data=st.data())
def test_a_run_keeps_every_promise_and_its_complete_rerun_scores_nothing(
    lab: Lab, request: Request, data: st.DataObject
) -> None:
    step, location = run_and_check(lab, request, data)
    if step.ok and request.directory:
        stored = snapshot(location)
        again = run_step(lab, replace(request, overwrite=False), Schedule(), location)
        check_rerun(again, stored, location, untouched=True)


def _overwrite_in_parts(request: Request) -> Request:
    """The request as one task overwriting a directory of at least two parts, within its guards."""
    ids = len(set(request.dataset_ids))
    return replace(
        request,
        overwrite=True,
        shards=None,
        chunks=None,
        max_unique_datasets=None,
        max_unique_indicators=None,
        partition_size=max(1, min(request.partition_size, ids // 2)),
        explicit_directory=request.explicit_directory or request.path_object,  # no shard names it a directory
    )


SEVERAL_IDS = st.lists(st.integers(1, 1000), min_size=4, max_size=30, unique=True).map(tuple)


@given(request=requests(directory=True, selection=SEVERAL_IDS).map(_overwrite_in_parts), data=st.data())
def test_an_overwrite_run_killed_after_committed_parts_keeps_every_promise(
    lab: Lab, request: Request, data: st.DataObject
) -> None:
    """``overwrite=True`` applies to the DAG run: the try after a kill resumes the parts its run committed
    (check_resumed), rare in the general draws, which seldom give an overwrite several parts and a kill."""
    run_and_check(lab, request, data)
