"""Sequences of runs against one output location (Hypothesis stateful testing).

Each step is a drawn request (a fresh selection, or the last one grown, shrunk or repeated; any output kind,
fan-out and overwrite) with a drawn fault schedule, a complete rerun, or a dry run followed by the real
run. After every step the invariants of property_invariants.py hold for what the location then holds.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule
from property_harness import Lab, dry_run, reference, run_step, snapshot
from property_invariants import check_rerun, check_step
from property_strategies import Request, Schedule, changed_selection, requests, schedules

pytestmark = pytest.mark.usefixtures("lab")


class RunSequence(RuleBasedStateMachine):
    """One output location and the runs made against it; ``complete`` is the request it now holds in full."""

    def __init__(self) -> None:
        super().__init__()
        import property_harness

        assert property_harness.LAB is not None, "the lab fixture starts the emulator"
        self.lab: Lab = property_harness.LAB
        self.location = self.lab.new_location()
        self.complete: Request | None = None

    @rule(data=st.data())
    def run(self, data: st.DataObject) -> None:
        """A run of a new request, or of the last one with its selection grown, shrunk or unchanged."""
        selection = None
        if self.complete is not None and data.draw(st.booleans(), label="change the last selection"):
            selection = changed_selection(self.complete)
        request = data.draw(requests(selection=selection), label="request")
        schedule = data.draw(schedules(request), label="schedule")
        before = snapshot(self.location)
        step = run_step(self.lab, request, schedule, self.location)
        note(step.describe())
        check_step(step, self.location, reference(self.lab, request) if step.ok else None, before)
        if step.ok:
            self.complete = request

    @precondition(lambda self: self.complete is not None and self.complete.directory)
    @rule()
    def rerun(self) -> None:
        """The same request again (without overwrite), nothing changed in between: no scored call, nothing rewritten."""
        assert self.complete is not None
        before = snapshot(self.location)
        step = run_step(self.lab, replace(self.complete, overwrite=False), Schedule(), self.location)
        check_rerun(step, before, self.location, untouched=True)

    @precondition(lambda self: self.complete is not None and self.complete.directory)
    @rule()
    def dry_run_then_run(self) -> None:
        """A dry run says what the real run right after it scores (nothing, for a complete directory)."""
        assert self.complete is not None
        request = replace(self.complete, overwrite=False)
        if request.shards or request.chunks:  # a dry run is one task's
            return
        said = dry_run(self.lab, request, self.location)["unique_datasets"]
        step = run_step(self.lab, request, Schedule(), self.location)
        scored = len(set().union(*(attempt.datasets for attempt in step.tries)))
        assert said == scored, f"the dry run said {said} datasets would be scored; the real run scored {scored}"


TestRunSequences = RunSequence.TestCase
