"""The property suite's set-up: Hypothesis profiles, and one emulator (a :class:`Lab`) per test process.

Profiles, chosen by ``ECOINVENT_HYPOTHESIS_PROFILE``:

* ``ci`` (default, ``make test``): derandomized (a fixed seed: the same examples on every run), no example
  database written, a bounded number of examples so that this folder stays well under two minutes.
* ``fuzz`` (``make fuzz``): random, seeded by ``--hypothesis-seed`` (the Makefile prints it for replay), many
  more examples; failures are also kept in ``.hypothesis/`` (git-ignored) and replayed first next time.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, Phase, settings

# The helper modules (strategies, harness, invariants) sit next to the tests; pytest's importlib mode does not
# put this folder on sys.path, so it is done here, before the test modules import them.
sys.path.insert(0, str(Path(__file__).parent))

import property_harness

if TYPE_CHECKING:
    from collections.abc import Iterator

PROFILE_ENV = "ECOINVENT_HYPOTHESIS_PROFILE"
_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]
#: No "explain" phase: it reruns a failing example many times to list the lines it alone ran (minutes here).
_PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=25,
    stateful_step_count=5,
    suppress_health_check=_SLOW_IS_FINE,
    print_blob=True,
    phases=_PHASES,
)
settings.register_profile(
    "fuzz",
    derandomize=False,
    deadline=None,
    max_examples=int(os.environ.get("ECOINVENT_FUZZ_EXAMPLES", "250")),
    stateful_step_count=10,
    suppress_health_check=_SLOW_IS_FINE,
    print_blob=True,
    phases=_PHASES,
)
settings.load_profile(os.environ.get(PROFILE_ENV, "ci"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A longer timeout than the suite's 300 s: shrinking a failure (and ``make fuzz``) takes minutes."""
    seconds = int(os.environ.get("ECOINVENT_PROPERTY_TIMEOUT", "1800"))
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.timeout(seconds))


@pytest.fixture(scope="session")
def lab() -> Iterator[property_harness.Lab]:
    """The emulator and scratch space every property test of this process shares (the state machine too)."""
    started = property_harness.Lab()
    property_harness.LAB = started
    try:
        yield started
    finally:
        property_harness.LAB = None
        started.close()
