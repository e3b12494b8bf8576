"""The emulator's fixtures are a pytest plugin, and pytest stays out of the emulator itself.

pytest is no runtime dependency (the ``test`` extra brings it), so the emulator must import, print its
``--help`` and serve where pytest is not installed; only ``emulator.testing`` needs it, and says how to
install it. The child interpreters here run with a ``sitecustomize`` that makes pytest unimportable and
reports every attempt to import it, even one a ``try`` would swallow.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_ecoinvent.emulator import EmulatorProcess

MODULE = "airflow_provider_ecoinvent.emulator"
ROOT = Path(__file__).resolve().parents[2]
EMULATOR_SOURCE = ROOT / "airflow_provider_ecoinvent" / "emulator"
ATTEMPT = "PYTEST IMPORT ATTEMPTED"

NO_PYTEST = f"""
import sys


class _NoPytest:
    # Runs first on sys.meta_path: an interpreter where the test extra is not installed.
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("pytest", "_pytest"):
            print("{ATTEMPT}: " + name, file=sys.stderr, flush=True)
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _NoPytest())
"""


@pytest.fixture
def without_pytest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of a child interpreter that cannot import pytest (also set for this test's children)."""
    (tmp_path / "sitecustomize.py").write_text(NO_PYTEST)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), str(ROOT)]))
    env = dict(os.environ)
    blocked = run_python(env, "-c", "import pytest")
    assert blocked.returncode == 1, blocked.stderr  # the block works, so the checks below mean something
    assert f"{ATTEMPT}: pytest" in blocked.stderr
    return env


def run_python(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_the_emulator_imports_without_pytest(without_pytest: dict[str, str]) -> None:
    result = run_python(without_pytest, "-c", f"import {MODULE}; from {MODULE} import EmulatorServer, EmulatorProcess")

    assert result.returncode == 0, result.stderr
    assert ATTEMPT not in result.stderr


def test_the_emulator_command_prints_its_help_without_pytest(without_pytest: dict[str, str]) -> None:
    result = run_python(without_pytest, "-m", MODULE, "--help")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m {MODULE}")
    assert ATTEMPT not in result.stderr


def test_the_emulator_command_serves_without_pytest(without_pytest: dict[str, str]) -> None:
    # EmulatorProcess starts ``python -m airflow_provider_ecoinvent.emulator`` with this environment.
    with EmulatorProcess(datasets=10) as emulator:
        assert emulator.stats()["latest"]

    assert emulator.returncode == 0, emulator.stderr_tail
    assert ATTEMPT not in emulator.stderr_tail


def test_the_fixtures_say_how_to_install_pytest(without_pytest: dict[str, str]) -> None:
    result = run_python(without_pytest, "-c", f"import {MODULE}.testing")

    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("ModuleNotFoundError: airflow_provider_ecoinvent.emulator.testing is a pytest plugin")
    assert "pip install 'airflow-provider-ecoinvent[test]'" in last_line


@pytest.mark.parametrize("path", sorted(EMULATOR_SOURCE.glob("*.py")), ids=lambda path: path.stem)
def test_only_the_plugin_module_names_pytest(path: Path) -> None:
    # Static, so a module no child interpreter above reaches is covered too (TYPE_CHECKING imports included).
    tree = ast.parse(path.read_text(), filename=str(path))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    names_pytest = any(name.partition(".")[0] in ("pytest", "_pytest") for name in imported)
    assert names_pytest == (path.name == "testing.py")


def test_the_documented_pytest_plugins_line_enables_the_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["airflow_provider_ecoinvent.emulator.testing"]\n')
    pytester.makepyfile(
        test_uses_the_fixtures="""
        import os

        def test_default(ecoinvent_emulator):
            assert ecoinvent_emulator.running

        def test_factory(ecoinvent_emulator_factory):
            emulator = ecoinvent_emulator_factory(datasets=7, token_ttl=1)
            assert emulator.stats()["config"]["datasets"] == 7

        def test_connection_env(ecoinvent_connection_env):
            assert os.environ["AIRFLOW_CONN_ECOINVENT_DEFAULT"] == ecoinvent_connection_env.connection_json()
        """
    )

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    result.assert_outcomes(passed=3)
