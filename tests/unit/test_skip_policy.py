"""The skip policy (tests/skip_policy.py), proved by running pytest on small test files with pytester."""

from __future__ import annotations

from pathlib import Path

import pytest

POLICY = Path(__file__).parents[1] / "skip_policy.py"
POLICY_ENV = "ECOINVENT_SKIP_POLICY"

CONFTEST = f"""
import importlib.util

spec = importlib.util.spec_from_file_location("ecoinvent_skip_policy", {str(POLICY)!r})
policy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(policy)


def pytest_configure(config):
    policy.register(config, {{"test_listed.py::test_allowed*": "listed with its reason"}})
"""

LISTED = """
import pytest

def test_passes():
    pass

@pytest.mark.parametrize("n", [1, 2])
def test_allowed(n):
    pytest.skip("listed on purpose")

@pytest.mark.xfail(reason="an expected failure is not a skip")
def test_expected_to_fail():
    raise AssertionError
"""

UNLISTED = """
import sys
import pytest

def test_passes():
    pass

def test_skips_itself():
    pytest.skip("a timing condition was not met")

@pytest.mark.skipif(sys.version_info > (3,), reason="always true")
def test_skipped_by_a_marker():
    pass
"""

UNLISTED_MODULE = """
import pytest

pytest.importorskip("no_such_module_anywhere")

def test_never_collected():
    pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_listed=LISTED)
    monkeypatch.setenv(POLICY_ENV, "1")
    return pytester


def test_listed_skips_pass(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")

    result.assert_outcomes(passed=1, skipped=2, xfailed=1)
    assert result.ret == pytest.ExitCode.OK
    assert "UNLISTED SKIP" not in result.stdout.str()


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_an_unlisted_skip_fails_the_run(suite: pytest.Pytester, workers: list[str]) -> None:
    suite.makepyfile(test_unlisted=UNLISTED, test_unlisted_module=UNLISTED_MODULE)

    result = suite.runpytest_subprocess("-p", "no:cacheprovider", *workers)

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, skipped=5, xfailed=1)  # nothing failed, yet the run does
    reported = sorted(line for line in result.outlines if line.startswith("UNLISTED SKIP"))
    assert [line.split(": ", 1)[0] for line in reported] == [
        "UNLISTED SKIP test_unlisted.py::test_skipped_by_a_marker",
        "UNLISTED SKIP test_unlisted.py::test_skips_itself",
        "UNLISTED SKIP test_unlisted_module.py",
    ]
    assert "UNLISTED SKIP test_unlisted.py::test_skips_itself: Skipped: a timing condition was not met" in reported


def test_the_policy_is_off_without_the_environment_variable(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite.makepyfile(test_unlisted=UNLISTED)
    monkeypatch.delenv(POLICY_ENV)

    result = suite.runpytest_subprocess("-p", "no:cacheprovider")

    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=2, skipped=4, xfailed=1)


def test_the_real_allowed_list_gives_a_reason_for_each_entry() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("ecoinvent_skip_policy_check", POLICY)
    assert spec is not None
    assert spec.loader is not None
    policy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(policy)

    assert policy.POLICY_ENV == POLICY_ENV
    for pattern, reason in policy.ALLOWED_SKIPS.items():
        assert pattern.startswith("tests/")
        assert "::" in pattern
        assert len(reason) > 20, pattern
