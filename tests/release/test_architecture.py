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
    # The public face at the root: what DAG files and users import.
    "__init__": _PURE,
    "versions": _PURE,
    "exceptions": _PURE,
    "pools": _PURE,
    "records": _PURE,  # reading the operators' records and flat rows (DAG files import it)
    "get_provider_info": frozenset({"__init__", "_client.constants"}),
    "indicators": frozenset({"_client.ids", "exceptions"}),
    "connection": frozenset({"_client.constants", "_client.safety", "exceptions"}),
    # The client core (_client), private as a whole: pure decisions first...
    "_client.constants": _PURE,
    "_client.retry": _PURE,
    "_client.concurrency": _PURE,
    "_client.codec": _PURE,  # the JSON codec (msgspec, imported on first use, with the standard library's results)
    "_client.ids": frozenset({"exceptions"}),
    "_client.paging": frozenset({"exceptions"}),
    # ...request safety (paths, redirects, capped bodies), CA trust, network failures...
    "_client.safety": frozenset({"exceptions"}),
    "_client.trust": frozenset({"connection", "exceptions"}),  # reads EcoinventSettings (an annotation)
    # network: the User-Agent both transports send names the provider's version (__init__).
    "_client.network": frozenset({"__init__", "_client.safety", "_client.trust", "exceptions"}),
    "_client.errors": frozenset({"_client.codec", "_client.network", "_client.retry", "_client.safety", "exceptions"}),
    "_client.tokens": frozenset({"_client.errors", "_client.retry", "connection", "exceptions"}),
    # ...and the one request state machine (sans I/O) that both transports drive.
    "_client.call": frozenset(
        {"_client.errors", "_client.network", "_client.retry", "_client.safety", "_client.tokens", "connection"}
    ),
}
_BELOW_HOOKS = frozenset(ALLOWED)
ALLOWED |= {
    # The sync hook's parts: none imports the hook's module; what they need of the hook is a protocol.
    "hooks._answers": frozenset({"_client.paging", "exceptions", "versions"}),
    "hooks._requests": frozenset({"_client.call", "_client.concurrency", "_client.network", "exceptions"}),
    "hooks._stream": frozenset(
        {
            "_client.call",
            "_client.concurrency",
            "_client.ids",
            "_client.paging",
            "_client.network",
            "connection",
            "exceptions",
            "indicators",
        }
    ),
    "hooks._connection_test": frozenset({"_client.retry", "_client.safety", "connection", "exceptions", "versions"}),
    "hooks.ecoinvent": _BELOW_HOOKS | {"hooks._answers", "hooks._connection_test", "hooks._requests", "hooks._stream"},
    "hooks.async_client": _BELOW_HOOKS - {"get_provider_info"},  # _ids: the cost guard, as the hook counts it
    "triggers.ecoinvent": frozenset({"_client.constants", "exceptions", "versions", "hooks.async_client"}),
    "sensors.ecoinvent": frozenset({"_client.constants", "exceptions", "hooks.ecoinvent", "triggers.ecoinvent"}),
    # Operators: what they write (_records, _output) and check (_arguments) imports nothing above exceptions
    # (_arguments takes the rendered-text bound from _ids, which the selectors' parser shares);
    # the operator modules import the hook (inside execute, through _task.make_hook) and their own parts.
    "operators._records": frozenset({"_client.codec", "exceptions", "records"}),
    "operators._output": frozenset({"exceptions"}),
    "operators._arguments": frozenset({"_client.ids", "exceptions"}),
    "operators._mapping": _PURE,  # mapped instances sharing one output: Airflow's mapping only
    "operators._task": frozenset(
        {"exceptions", "hooks.ecoinvent", "operators._output", "operators._directory", "operators._partitions"}
    ),
    "operators._plan": frozenset(
        {"_client.ids", "_client.network", "exceptions", "indicators", "operators._arguments", "operators._output"}
        | {"operators._directory", "operators._partitions"}
    ),
    "operators._manifests": _PURE,  # the manifests' types, one per mode
    "operators.generic": frozenset(
        {"_client.constants", "_client.paging", "_client.safety", "exceptions", "hooks.ecoinvent"}
        | {"operators._arguments", "operators._mapping", "operators._output", "operators._records", "operators._task"}
        | {"operators._manifests"}
    ),
    "operators.datasets": frozenset(
        {"_client.constants", "exceptions", "hooks.ecoinvent"}
        | {"operators._arguments", "operators._output", "operators._plan", "operators._records", "operators._task"}
        | {"operators._partitioned", "operators._partitions", "operators._directory", "operators._selection"}
        | {"operators._manifests", "operators._mapping"}
    ),
    # Partitioned output (issue 14): the plan (pure), the directory's bookkeeping, the run, the fan-out's
    # final step.
    "operators._partitions": frozenset({"exceptions"}),
    "operators._directory": frozenset({"exceptions", "operators._output", "operators._partitions"}),
    "operators._partitioned": frozenset(
        {"exceptions", "hooks.ecoinvent", "operators._directory", "operators._output", "operators._partitions"}
        | {"operators._manifests", "operators._plan", "operators._records", "operators._task"}
    ),
    "operators.commit": frozenset(
        {"exceptions", "operators._directory", "operators._partitioned", "operators._partitions", "operators._task"}
        | {"operators._arguments", "operators._manifests", "operators._selection"}
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
    "probe.expected": frozenset({"_client.paging", "versions"}),  # reads a page as the hook reads it
    "probe.compare": frozenset({"probe.expected"}),
    "probe.report": frozenset({"__init__", "_client.errors", "probe.compare"}),
    "probe.run": frozenset(
        {
            "_client.constants",
            "_client.ids",
            "_client.paging",
            "_client.retry",
            "_client.tokens",
            "_client.safety",
            "exceptions",
            "hooks.ecoinvent",
            "versions",
        }
        | {"probe.compare", "probe.expected", "probe.report"}
    ),
    "probe.__main__": frozenset({"_client.constants", "probe.run"}),
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


@pytest.mark.parametrize("module", [m for m in CLIENT_MODULES if "." not in m or m.startswith("_client.")])
def test_modules_below_the_hooks_import_no_http_or_parquet_library(module: str) -> None:
    heavy = {name for name in imports_of(module) if name.split(".")[0] in HEAVY}
    assert heavy == set(), f"{module} imports {sorted(heavy)}, which DAG parsing would pay for"


@pytest.mark.parametrize("module", EMULATOR_MODULES)
def test_the_emulator_imports_nothing_of_the_client_nor_airflow(module: str) -> None:
    imported = imports_of(module)
    outside = {name for name in internal(imported) if not name.startswith("emulator")}
    assert outside == set(), f"{module} imports the client's {sorted(outside)}"
    assert not [name for name in imported if name.split(".")[0] == "airflow"], f"{module} imports Airflow"
