"""The docs cannot rot: their code samples are the tested example DAGs, and every public name has a docstring."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


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
