"""The skip policy: under ``make`` a skipped test fails the run unless it is listed here with its reason.

A skipped test counts as neither passed nor failed, so a test that silently stops running (a missing
optional dependency, a condition that is never met, a marker added in a hurry) would otherwise go unseen.
``make pytest`` and ``make test-lowest`` set :data:`POLICY_ENV`; a plain ``pytest`` run does not, so a
developer can still run one file without the stack (whose tests then skip) or without the soak settings.

Every skip reaches the controlling process, with or without pytest-xdist: test reports through
``pytest_runtest_logreport`` and collection skips (``importorskip`` at module level) through
``pytest_collectreport``. The controller checks them against :data:`ALLOWED_SKIPS` and turns the exit
status into a failure when one is not listed, naming it in the summary.

This module imports only pytest: tests/conftest.py registers it, and the policy's own test loads it into a
separate pytest run.
"""

from __future__ import annotations

import fnmatch
import os
from typing import Any, Final

import pytest

#: Set (to any non-empty value) by the Makefile's test targets to enforce the policy.
POLICY_ENV: Final = "ECOINVENT_SKIP_POLICY"

#: Test id pattern (``fnmatch``, matched against the node id) -> why skipping it is right.
ALLOWED_SKIPS: Final[dict[str, str]] = {
    "tests/triggers/test_ecoinvent_triggers.py::test_watcher_remembers_through_the_asset_state_store": (
        "BaseEventTrigger.asset_state_store arrived in Airflow 3.3; make test-lowest runs Airflow 3.1, where "
        "the watcher remembers in memory (test_watcher_without_a_state_store_remembers_in_memory)."
    ),
    "tests/reliability/test_load.py::test_soak_full": (
        "the five-minute soak runs only under make soak, which sets ECOINVENT_SOAK_SECONDS "
        "(make pytest deselects it; test_soak_short runs everywhere)."
    ),
}


class SkipPolicy:
    """A pytest plugin that fails the session on any skip not matched by ``allowed``."""

    def __init__(self, allowed: dict[str, str]) -> None:
        self.allowed = dict(allowed)
        self.unlisted: dict[str, str] = {}

    def _record(self, report: Any) -> None:
        if not report.skipped or hasattr(report, "wasxfail"):  # an xfail is reported as skipped: not a skip
            return
        if any(fnmatch.fnmatchcase(report.nodeid, pattern) for pattern in self.allowed):
            return
        self.unlisted[report.nodeid] = _skip_reason(report)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._record(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._record(report)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.unlisted and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.unlisted:
            return
        terminalreporter.write_sep("=", "skips not allowed by tests/skip_policy.py", red=True, bold=True)
        for nodeid, reason in sorted(self.unlisted.items()):
            terminalreporter.write_line(f"UNLISTED SKIP {nodeid}: {reason}")
        terminalreporter.write_line(
            f"Make the test run, or list it in ALLOWED_SKIPS with the reason ({POLICY_ENV} is set)."
        )


def _skip_reason(report: Any) -> str:
    """The reason pytest gives for a skip (its ``longrepr`` is ``(path, line, "Skipped: reason")``)."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def register(config: pytest.Config, allowed: dict[str, str] = ALLOWED_SKIPS) -> None:
    """Enforce the policy in this run when :data:`POLICY_ENV` is set, on the controller only.

    pytest-xdist workers forward their reports to the controller, which decides the exit status.
    """
    if not os.environ.get(POLICY_ENV) or hasattr(config, "workerinput"):
        return
    config.pluginmanager.register(SkipPolicy(allowed), "ecoinvent-skip-policy")
