"""The docs cannot rot: every code sample is a tested example DAG, or runs here against the emulator, or (marked
as needing a real licence) at least compiles; and every public name has a docstring."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.emulator import EmulatorServer

if TYPE_CHECKING:
    from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def _snippets() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_snippets", REPO / "docs" / "snippets.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


SNIPPETS = _snippets()
BLOCKS = [block for document in SNIPPETS.DOCUMENTS for block in SNIPPETS.python_blocks(document)]


def _ids(kind: str) -> list[Any]:
    return [pytest.param(block, id=block.where) for block in BLOCKS if block.kind == kind]


@pytest.mark.integration
@pytest.mark.parametrize("block", _ids("run"))
def test_sample_runs_against_the_emulator(block: Any, tmp_path: Path) -> None:
    """The block, as a script of its own (its imports included), with ecoinvent_default at the emulator."""
    script = tmp_path / "sample.py"
    script.write_text(block.code)
    with EmulatorServer(datasets=2000) as emulator:
        env = {**os.environ, "AIRFLOW_CONN_ECOINVENT_DEFAULT": emulator.connection_json()}
        env["ECOINVENT_OUTPUT_ROOT"] = (tmp_path / "out").as_uri()
        result = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
        )
    assert result.returncode == 0, f"{block.where}:\n{block.code}\n{result.stdout[-2000:]}{result.stderr[-3000:]}"


def test_compile_only_samples_compile() -> None:
    """Blocks marked as needing a real licence cannot run here; they must at least be valid Python."""
    for block in BLOCKS:
        if block.kind == "compile-only":
            compile(block.code, block.where, "exec")


def test_an_unmarked_python_block_fails_the_check(tmp_path: Path) -> None:
    document = tmp_path / "new.md"
    document.write_text("Text.\n\n```python\nprint(1)\n```\n\n<!-- sample: run -->\n```python\nprint(2)\n```\n")
    assert [block.kind for block in SNIPPETS.python_blocks(document)] == ["unmarked", "run"]
    assert [block.line for block in SNIPPETS.python_blocks(document) if block.kind == "unmarked"] == [3]


def test_every_document_has_only_tested_blocks() -> None:
    assert [block.where for block in BLOCKS if block.kind == "unmarked"] == []
    assert {"example", "run"} <= {block.kind for block in BLOCKS}


def test_samples_match_the_example_dags() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "docs" / "snippets.py")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_docs_have_samples() -> None:
    text = (REPO / "docs" / "operators.md").read_text()
    assert text.count("<!-- example: ") >= 4


PUBLIC_MODULES = [
    "airflow_provider_ecoinvent.hooks.ecoinvent",
    "airflow_provider_ecoinvent.hooks.async_client",
    "airflow_provider_ecoinvent.operators.ecoinvent",
    "airflow_provider_ecoinvent.sensors.ecoinvent",
    "airflow_provider_ecoinvent.triggers.ecoinvent",
    "airflow_provider_ecoinvent.exceptions",
    "airflow_provider_ecoinvent.connection",
    "airflow_provider_ecoinvent.versions",
    "airflow_provider_ecoinvent.probe.run",
    "airflow_provider_ecoinvent.probe.report",
    "airflow_provider_ecoinvent.probe.compare",
    "airflow_provider_ecoinvent.probe.expected",
    "airflow_provider_ecoinvent.pools",
]


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_classes_and_methods_have_docstrings(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__doc__
    missing = []
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
            continue
        if not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
                    continue
                # getdoc follows the MRO, so an override of a documented base method (execute, run) passes.
                if not inspect.getdoc(getattr(obj, attr)):
                    missing.append(f"{name}.{attr}")
    assert missing == [], f"public names without a docstring: {missing}"
