"""The architecture of docs/architecture.md, checked on the source.

What each module may import, no import cycle, a package root of public modules only, no function over 60
lines, user-facing code importing public modules only, and the pinned exports of every public module.
Every import counts, including those inside functions and under ``TYPE_CHECKING``, so a layer cannot be
crossed quietly. A new module must be given a place here (and in the diagram) before the test passes.
"""

from __future__ import annotations

import ast
import importlib
import re
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
    "hooks.async_client": _BELOW_HOOKS - {"get_provider_info"},  # _client.ids: the cost guard, as the hook counts it
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
    # Dataset directories: the plan (pure), the directory's bookkeeping, the run, the fan-out's
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
    """Every module name imported anywhere in ``module`` (absolute, as written or resolved).

    ``from package import name`` counts as an import of ``package.name`` when that is a module of ours.
    """
    path = SOURCE.joinpath(*module.split(".")).with_suffix(".py")
    package = module.rsplit(".", 1)[0] if "." in module else ""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join([PACKAGE, *package.split(".")[: len(package.split(".")) - node.level + 1]])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names if is_our_module(f"{source}.{alias.name}"))
    return found


def is_our_module(name: str) -> bool:
    if not name.startswith(PACKAGE + "."):
        return False
    relative = SOURCE.joinpath(*name.removeprefix(PACKAGE + ".").split("."))
    return relative.with_suffix(".py").is_file() or (relative / "__init__.py").is_file()


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


# -- the shape of the package (issue 23) ---------------------------------------------------------------

#: How many modules the package root may hold: its public face (the client core lives in ``_client``).
MAX_ROOT_MODULES = 8
#: The longest a function of the shipped package may be, from ``def`` to its last line, docstring included.
MAX_FUNCTION_LINES = 60
#: What users read and copy: every import of the package there must be public (benchmarks and tests may reach inside).
USER_FACING = ("example_dags", "docs", "README.md")


def import_graph() -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports (TYPE_CHECKING imports included)."""
    names = set(module_names())
    return {name: (internal(imports_of(name)) & names) - {name} for name in names}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"} - {"e"}}
    assert import_cycles(graph) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_anywhere_in_the_package() -> None:
    assert import_cycles(import_graph()) == [], "modules import each other in a circle: see docs/architecture.md"


def test_the_package_root_holds_only_its_public_face() -> None:
    root = sorted(path.stem for path in SOURCE.glob("*.py"))
    assert len(root) <= MAX_ROOT_MODULES, f"{len(root)} modules at the package root: {root}"
    assert [name for name in root if name.startswith("_") and name != "__init__"] == [], (
        "private modules belong in a sub-package (the client core in _client/)"
    )


def long_functions() -> list[str]:
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found.append(f"{path.relative_to(SOURCE)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_of_the_package_is_over_60_lines() -> None:
    assert long_functions() == []


def user_facing_imports() -> dict[str, set[str]]:
    """``airflow_provider_ecoinvent`` import paths named in example DAGs, docs, README and benchmarks."""
    root = SOURCE.parent
    pattern = re.compile(rf"\b(?:from|import)\s+({PACKAGE}(?:\.\w+)*)")
    found: dict[str, set[str]] = {}
    for entry in USER_FACING:
        paths = [root / entry] if (root / entry).is_file() else sorted((root / entry).rglob("*"))
        for path in paths:
            if path.suffix in (".py", ".md", ".sh") and path.is_file():
                names = set(pattern.findall(path.read_text()))
                if names:
                    found[str(path.relative_to(root))] = names
    return found


def test_user_facing_code_imports_only_public_modules() -> None:
    private = {
        where: sorted(name for name in names if any(part.startswith("_") for part in name.split(".")[1:]))
        for where, names in user_facing_imports().items()
    }
    assert {where: names for where, names in private.items() if names} == {}
    assert "example_dags/ecoinvent_to_postgres.py" in user_facing_imports()  # the scan reads what it should


#: Sub-packages whose public face is their ``__init__`` (its ``__all__``); their other modules are internal,
#: except those users name by path (the pytest plugin of the emulator).
FACADE_PACKAGES = ("emulator", "probe")
NAMED_BY_PATH = ("emulator.testing",)

#: What every public module exports, pinned: a change here is a change of the public API (CHANGELOG).
EXPORTED: dict[str, list[str]] = {
    "": ["__version__"],
    "connection": ["EcoinventSettings", "settings_from_connection"],
    "exceptions": [
        "EcoinventApiError",
        "EcoinventAuthError",
        "EcoinventConfigError",
        "EcoinventCostGuardError",
        "EcoinventError",
        "EcoinventIndicatorError",
        "EcoinventOutputError",
        "EcoinventRateLimitError",
        "EcoinventRetriesExhaustedError",
        "EcoinventUnreachableError",
    ],
    "versions": ["EcoinventVersion", "is_newer", "newest", "parse_versions", "release_key"],
    "indicators": ["SELECTOR_KEYS", "parse_selectors", "resolve_selectors"],
    "pools": ["DEFAULT_POOL", "POOL_ENV_VAR", "RECOMMENDED_POOL", "ecoinvent_pool"],
    "get_provider_info": ["get_provider_info"],
    "records": ["FLAT_COLUMNS", "flat_rows", "nested_record", "sorted_scores"],
    "hooks.ecoinvent": ["DatasetStream", "EcoinventHook"],
    "hooks.async_client": ["EcoinventAsyncClient"],
    "sensors.ecoinvent": ["EcoinventVersionSensor"],
    "triggers.ecoinvent": ["EcoinventNewVersionTrigger", "EcoinventVersionTrigger"],
    "operators.ecoinvent": [
        "EcoinventDatasetsCommitOperator",
        "EcoinventDatasetsOperator",
        "EcoinventOperator",
        "shards",
    ],
    "operators.datasets": ["EcoinventDatasetsOperator"],
    "operators.generic": ["EcoinventOperator"],
    "operators.commit": ["EcoinventDatasetsCommitOperator"],
    "emulator": ["EmulatorConfig", "EmulatorControl", "EmulatorControlError", "EmulatorProcess", "EmulatorServer"],
    "emulator.testing": [
        "EmulatorFactory",
        "ecoinvent_connection_env",
        "ecoinvent_emulator",
        "ecoinvent_emulator_factory",
    ],
    "probe": ["Difference", "EndpointReport", "ProbeReport", "run_probe"],
}


def public_modules() -> list[str]:
    """Modules users may import: no ``_`` in their path, and not inside a facade sub-package."""
    names = {""} | {path.parent.name for path in SOURCE.glob("*/__init__.py")} - {"_client"}
    for name in module_names():
        parts = name.split(".")
        if name.endswith("__main__") or any(part.startswith("_") for part in parts) or name == "__init__":
            continue
        if parts[0] in FACADE_PACKAGES and name not in NAMED_BY_PATH:
            continue
        names.add(name)
    bare_packages = {"hooks", "operators", "sensors", "triggers"}  # empty ``__init__``: nothing to export
    return sorted(names - bare_packages)


def test_every_public_module_has_its_exports_pinned() -> None:
    assert public_modules() == sorted(EXPORTED)


@pytest.mark.parametrize("module", sorted(EXPORTED))
def test_a_public_module_exports_exactly_its_pinned_names(module: str) -> None:
    imported = importlib.import_module(f"{PACKAGE}.{module}".rstrip("."))
    exported = getattr(imported, "__all__", None)
    assert exported is not None, f"{module or PACKAGE} has no __all__"
    assert sorted(exported) == EXPORTED[module]
    assert [name for name in exported if not hasattr(imported, name)] == []


def test_the_architecture_page_names_every_module_of_the_client() -> None:
    page = (SOURCE.parent / "docs" / "architecture.md").read_text()
    unnamed = [name for name in CLIENT_MODULES if not re.search(rf"\b{re.escape(name.split('.')[-1])}\b", page)]
    assert unnamed == [], "give each module its place in docs/architecture.md"
