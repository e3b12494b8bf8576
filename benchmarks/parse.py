"""Section 5: what parsing the example DAG file costs on top of ``import airflow.sdk``.

Each repeat is a fresh interpreter that imports ``airflow.sdk`` (not timed), then executes the DAG file
(timed: imports and DAG construction, as the DAG processor does). The timed part is split into three
steps run in the order the file would run them:

1. ``from airflow.sdk import DAG, Asset, task``: Airflow's lazily loaded names; any DAG of this shape pays it;
2. ``import airflow_provider_ecoinvent.operators.ecoinvent``: our provider's import;
3. the rest of the DAG file (module body, DAG and task objects), the modules above being cached.

A baseline DAG file, generated from the example by replacing our operator's import with a stub
``BaseOperator`` subclass (same shape: DAG, asset, ``@weekly``, three ``@task``), runs interleaved with it:
the difference is what our provider adds, the baseline what Airflow itself costs for such a file.

One more interpreter runs with ``-X importtime`` to name the modules the DAG file pulls in. A warm-up
interpreter per file (bytecode compilation) is discarded: the children write and read bytecode (in a
temporary ``PYTHONPYCACHEPREFIX``) as a deployment does, whatever ``PYTHONDONTWRITEBYTECODE`` says here.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

from benchmarks._common import REPO_ROOT, median, run_child, run_children

TARGET_MS = 30.0
DAG_FILE: Final = REPO_ROOT / "example_dags" / "ecoinvent_ingest_datasets.py"
MARKER: Final = "ECOINVENT-BENCH-AFTER-SDK"
PROVIDER_MODULE: Final = "airflow_provider_ecoinvent.operators.ecoinvent"
_OUR_IMPORT: Final = "from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator\n"
_STUB: Final = """from airflow.sdk import BaseOperator


class EcoinventDatasetsOperator(BaseOperator):
    def __init__(self, **kwargs):
        for name in (
            "dataset_ids",
            "indicator_ids",
            "indicators",
            "version",
            "system_model",
            "output_uri",
            "max_unique_datasets",
            "max_unique_indicators",
        ):
            kwargs.pop(name, None)
        super().__init__(**kwargs)
"""

_CHILD = """
import importlib.util, json, sys, time
import airflow.sdk
sys.stderr.write({marker!r} + "\\n"); sys.stderr.flush()
t0 = time.perf_counter()
from airflow.sdk import DAG, Asset, task
t1 = time.perf_counter()
{provider_import}
t2 = time.perf_counter()
spec = importlib.util.spec_from_file_location("ecoinvent_bench_dag", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
t3 = time.perf_counter()
assert module.dag.dag_id == "ecoinvent_ingest_datasets"
print(json.dumps({{"sdk_names_ms": (t1 - t0) * 1e3, "provider_ms": (t2 - t1) * 1e3,
                   "dag_body_ms": (t3 - t2) * 1e3, "total_ms": (t3 - t0) * 1e3}}))
"""

_IMPORTTIME = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|( *)(\S+)")


def _top_imports(stderr: str, limit: int = 8) -> list[dict[str, Any]]:
    """Outermost modules imported after ``airflow.sdk``, by cumulative time."""
    _, _, after = stderr.partition(MARKER)
    entries = []
    for line in after.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            entries.append((len(match.group(3)), int(match.group(2)), match.group(4)))
    if not entries:
        return []
    outer = min(indent for indent, _, _ in entries)
    top = sorted((e for e in entries if e[0] == outer), key=lambda e: -e[1])
    return [{"module": name, "cumulative_ms": round(us / 1e3, 1)} for _, us, name in top[:limit]]


def _baseline_source(dag_file: Path) -> str:
    source = dag_file.read_text(encoding="utf-8")
    if _OUR_IMPORT not in source:
        raise RuntimeError(f"{dag_file} no longer imports the operator as expected: update benchmarks/parse.py")
    return source.replace(_OUR_IMPORT, _STUB)


def run(repeats: int, dag_file: Path = DAG_FILE, *, quick: bool = False) -> dict[str, Any]:
    """``quick`` (smoke runs): no warm-up, no ``-X importtime`` run, both files parsed at once."""
    with tempfile.TemporaryDirectory(prefix="ecoinvent-bench-parse-") as folder:
        baseline_file = Path(folder) / "baseline_same_shape_dag.py"
        baseline_file.write_text(_baseline_source(dag_file), encoding="utf-8")
        # Bytecode as a deployment has it (pip compiles on install; the DAG processor's imports write it): the
        # children may write .pyc files, into a prefix of their own rather than the repository, even where the
        # environment says PYTHONDONTWRITEBYTECODE (then every run would time compiling source, not parsing).
        env = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(Path(folder) / "pycache")}
        codes = {
            "example DAG": _CHILD.format(
                marker=MARKER, path=str(dag_file), provider_import=f"import {PROVIDER_MODULE}"
            ),
            "same-shape DAG without the provider": _CHILD.format(
                marker=MARKER, path=str(baseline_file), provider_import="pass"
            ),
        }
        if not quick:
            for code in codes.values():
                run_child(["-c", code], env=env)  # warm-up: compiles bytecode
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in codes}
        for _ in range(repeats):
            children = run_children([["-c", code] for code in codes.values()], env=env, parallel=quick)
            for name, child in zip(codes, children, strict=True):
                child.pop("_stderr", None)
                runs[name].append(child)
        profiled = {"_stderr": ""} if quick else run_child(["-X", "importtime", "-c", codes["example DAG"]], env=env)
    medians = {
        name: {key: round(median([r[key] for r in values]), 1) for key in values[0]} for name, values in runs.items()
    }
    ours = medians["example DAG"]["total_ms"]
    baseline = medians["same-shape DAG without the provider"]["total_ms"]
    return {
        "target": f"DAG file adds < {TARGET_MS:g} ms over import airflow.sdk (median of {repeats} fresh interpreters)",
        "met": ours < TARGET_MS,
        "dag_file": str(dag_file.relative_to(REPO_ROOT)),
        "repeats": repeats,
        "median_ms": medians,
        "provider_attributable_ms": round(ours - baseline, 1),
        "runs_ms": {name: [{k: round(v, 1) for k, v in r.items()} for r in values] for name, values in runs.items()},
        "importtime_top": _top_imports(profiled["_stderr"]),
        "python": sys.version.split()[0],
    }
