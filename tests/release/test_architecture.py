"""The import rules of docs/architecture.md, checked on the source: what each module may import.

Every import counts, including those inside functions and under ``TYPE_CHECKING``, so a layer cannot be
crossed quietly. A new module must be given a place here (and in the diagram) before the test passes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "airflow_provider_ecoinvent"
SOURCE = Path(__file__).resolve().parents[2] / PACKAGE

_PURE: frozenset[str] = frozenset()
#: module -> the package's modules it may import (sub-packages' ``__init__`` files are empty).
ALLOWED: dict[str, frozenset[str]] = {
    "__init__": _PURE,
    "_constants": _PURE,
    "_retry": _PURE,
    "_concurrency": _PURE,
    "versions": _PURE,
    "exceptions": _PURE,
    "pools": _PURE,
    # the JSON codec (msgspec, imported on first use, with the standard library's results)
    "_json": _PURE,
    "get_provider_info": frozenset({"__init__", "_constants"}),
    "_ids": frozenset({"exceptions"}),
    "_paging": frozenset({"exceptions"}),
    "indicators": frozenset({"_ids", "exceptions"}),
    # _transport names EcoinventSettings in annotations only (a TYPE_CHECKING import): no import cycle at run time.
    "_transport": frozenset({"connection", "exceptions"}),
    "connection": frozenset({"_constants", "_transport", "exceptions"}),
    "_errors": frozenset({"_json", "_retry", "_transport", "exceptions"}),
    "_tokens": frozenset({"_errors", "_retry", "connection", "exceptions"}),
    # The one request state machine (sans I/O) that both transports drive.
    "_call": frozenset({"_errors", "_retry", "_tokens", "_transport", "connection"}),
}
_BELOW_HOOKS = frozenset(ALLOWED)
ALLOWED |= {
    # The sync hook's parts; those naming EcoinventHook do so in annotations only (TYPE_CHECKING).
    "hooks._answers": frozenset({"_paging", "exceptions", "versions"}),
    "hooks._requests": frozenset({"__init__", "_call", "_concurrency", "_transport", "exceptions"}),
    "hooks._stream": frozenset(
        {"_concurrency", "_ids", "_paging", "_transport", "connection", "exceptions", "indicators", "hooks.ecoinvent"}
    ),
    "hooks._connection_test": frozenset({"_retry", "_transport", "connection", "exceptions", "versions"})
    | {"hooks.ecoinvent"},
    "hooks.ecoinvent": _BELOW_HOOKS | {"hooks._answers", "hooks._connection_test", "hooks._requests", "hooks._stream"},
    "hooks.async_client": _BELOW_HOOKS - {"get_provider_info"},  # _ids: the cost guard, as the hook counts it
    "triggers.ecoinvent": frozenset({"_constants", "exceptions", "versions", "hooks.async_client"}),
    "sensors.ecoinvent": frozenset({"_constants", "exceptions", "hooks.ecoinvent", "triggers.ecoinvent"}),
    # Operators: what they write (_records, _output) and check (_arguments) imports nothing above exceptions
    # (_arguments takes the rendered-text bound from _ids, which the selectors' parser shares);
    # the operator modules import the hook (inside execute, through _task.make_hook) and their own parts.
    "operators._records": frozenset({"_json", "exceptions"}),
    "operators._output": frozenset({"exceptions", "operators._records"}),
    "operators._arguments": frozenset({"_ids", "exceptions"}),
    "operators._task": frozenset(
        {"exceptions", "hooks.ecoinvent", "operators._output", "operators._directory", "operators._partitions"}
    ),
    "operators._plan": frozenset(
        {"_ids", "_transport", "exceptions", "indicators", "operators._arguments", "operators._output"}
        | {"operators._task", "operators._directory", "operators._partitions"}
        | {"operators.datasets"}  # the operator's type, in annotations only
    ),
    "operators.generic": frozenset(
        {"_constants", "_ids", "_paging", "_transport", "exceptions", "hooks.ecoinvent"}
        | {"operators._arguments", "operators._output", "operators._records", "operators._task"}
    ),
    "operators.datasets": frozenset(
        {"_constants", "_ids", "exceptions", "hooks.ecoinvent"}
        | {"operators._arguments", "operators._output", "operators._plan", "operators._records", "operators._task"}
        | {"operators._partitioned", "operators._partitions", "operators._directory", "operators._selection"}
    ),
    # Partitioned output (issue 14): the plan (pure), the directory's bookkeeping, the run, the fan-out's
    # final step.
    "operators._partitions": frozenset({"exceptions"}),
    "operators._directory": frozenset({"exceptions", "operators._output", "operators._partitions"}),
    "operators._partitioned": frozenset(
        {"exceptions", "hooks.ecoinvent", "operators._directory", "operators._output", "operators._partitions"}
        | {"operators._records", "operators._task"}
        | {"operators._plan", "operators.datasets"}  # the operator's and the plan's types, in annotations only
    ),
    "operators.commit": frozenset(
        {"exceptions", "operators._directory", "operators._partitioned", "operators._partitions", "operators._task"}
        | {"operators._arguments", "operators._selection"}
    ),
    # One selection per DAG run, shared by the shards through the dataset directory.
    "operators._selection": frozenset(
        {"operators._partitions", "operators._directory"} | {"operators._plan"}  # the plan's type, in annotations
    ),
    # The public import path of the operators.
    "operators.ecoinvent": frozenset(
        {"operators.datasets", "operators.generic", "operators.commit", "operators._partitions"}
    ),
    # The probe: a command over the hook, comparing answers with the shapes the provider expects.
    "probe.expected": frozenset({"hooks.ecoinvent", "versions"}),
    "probe.compare": frozenset({"probe.expected"}),
    "probe.report": frozenset({"__init__", "_errors", "probe.compare"}),
    "probe.run": frozenset(
        {"_constants", "_ids", "_retry", "_tokens", "_transport", "exceptions", "hooks.ecoinvent", "versions"}
        | {"probe.compare", "probe.expected", "probe.report"}
    ),
    "probe.__main__": frozenset({"_constants", "probe.run"}),
}
#: Third-party imports the layers below the hooks must not make (they load at DAG parse time).
HEAVY = ("requests", "httpx", "pyarrow", "urllib3")


def module_names() -> list[str]:
    names = []
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            continue  # sub-package markers
        names.append(".".join(parts))
    return names


def imports_of(module: str) -> set[str]:
    """Every module name imported anywhere in ``module`` (absolute, as written or resolved)."""
    path = SOURCE.joinpath(*module.split(".")).with_suffix(".py")
    package = module.rsplit(".", 1)[0] if "." in module else ""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join([PACKAGE, *package.split(".")[: len(package.split(".")) - node.level + 1]])
                found.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                found.add(node.module)
                # ``from airflow_provider_ecoinvent import x`` may import a sub-module x
                if node.module == PACKAGE:
                    found.update(f"{PACKAGE}.{alias.name}" for alias in node.names if alias.name != "__version__")
    return found


def internal(imported: set[str]) -> set[str]:
    names = set()
    for name in imported:
        if name == PACKAGE:
            names.add("__init__")
        elif name.startswith(PACKAGE + "."):
            names.add(name.removeprefix(PACKAGE + "."))
    return names


CLIENT_MODULES = [m for m in module_names() if not m.startswith("emulator")]
EMULATOR_MODULES = [m for m in module_names() if m.startswith("emulator")]


def test_every_client_module_has_a_place_in_the_layers() -> None:
    assert sorted(set(CLIENT_MODULES) - set(ALLOWED)) == []


@pytest.mark.parametrize("module", CLIENT_MODULES)
def test_a_module_imports_only_what_its_layer_allows(module: str) -> None:
    crossing = internal(imports_of(module)) - ALLOWED[module] - {module}
    assert crossing == set(), f"{module} imports {sorted(crossing)}: see docs/architecture.md"


@pytest.mark.parametrize("module", [m for m in CLIENT_MODULES if "." not in m])
def test_modules_below_the_hooks_import_no_http_or_parquet_library(module: str) -> None:
    heavy = {name for name in imports_of(module) if name.split(".")[0] in HEAVY}
    assert heavy == set(), f"{module} imports {sorted(heavy)}, which DAG parsing would pay for"


@pytest.mark.parametrize("module", EMULATOR_MODULES)
def test_the_emulator_imports_nothing_of_the_client_nor_airflow(module: str) -> None:
    imported = imports_of(module)
    outside = {name for name in internal(imported) if not name.startswith("emulator")}
    assert outside == set(), f"{module} imports the client's {sorted(outside)}"
    assert not [name for name in imported if name.split(".")[0] == "airflow"], f"{module} imports Airflow"
