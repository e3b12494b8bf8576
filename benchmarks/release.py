"""Section 8: a full release. N datasets x K indicators (25,000 x 250 by default) against an emulator that
sleeps ``latency_ms`` (100) on every API call, written by ``EcoinventDatasetsOperator`` as a partitioned
Parquet dataset (flat layout, ``partition_size`` datasets per part, the default 8 calls in flight).

Three runs, each of the operator in a fresh subprocess against a fresh emulator process (same catalogue):

1. **clean**: elapsed time against the latency-bound limit, batch calls x latency / calls in flight (what
   the run would take with free client and server CPU), and the peak memory (``ru_maxrss``) of the process;
2. **killed**: the same request into another directory, SIGKILLed once half of its parts are committed. To
   kill at the same point every time, the emulator holds every batch call after those of the first half of
   the parts (a ``hang`` fault), so the run cannot get further while the parent waits for the parts;
3. **retry**: the same request into the killed run's directory: its time and scored calls (from the
   emulator's ledger) against the clean run's, whether it left any ``.partial`` file, and whether every part
   is byte-identical to the clean run's.

The retry gets its own emulator so that its ledger counts only its own calls: the calls the killed run left
hanging die with the second emulator. Datasets are selected by id (1..N), so the figure is the ingestion's,
without the free search's sequential pages (N / 100 x latency more with ``query=""``).

Child entry point: ``python -m benchmarks.release --child DIRECTORY N K PARTITION_SIZE``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from benchmarks._common import child_env, min_batch_calls, run_child

#: The operator's default: batch calls in flight in one task.
MAX_IN_FLIGHT: Final = 8
#: How long a held batch call sleeps: longer than the whole killed run can take.
HOLD_SECONDS: Final = 900.0
#: Hang detector only (seconds): the killed run must reach half its parts within this time.
KILL_WAIT_LIMIT: Final = 900.0


def _maxrss_mb() -> float:
    # Linux reports kilobytes (macOS bytes; the benchmark targets Linux CI).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(directory: Path, n: int, k: int, partition_size: int) -> dict[str, Any]:
    from benchmarks._common import prepare_airflow_env

    prepare_airflow_env()
    import airflow_provider_ecoinvent.operators.ecoinvent  # noqa: F401  (imports first: the baseline)
    from benchmarks import clients

    baseline = _maxrss_mb()
    start = time.perf_counter()
    result = clients.operator_ingest(
        range(1, n + 1),
        range(1, k + 1),
        directory.as_uri() + "/",  # a trailing "/": a partitioned dataset directory
        max_in_flight=MAX_IN_FLIGHT,
        layout="flat",
        format="parquet",
        partition_size=partition_size,
    )
    seconds = time.perf_counter() - start
    manifest = result.manifest or {}
    parts = manifest.get("parts", [])
    return {
        "seconds": round(seconds, 3),
        "maxrss_after_imports_mb": round(baseline, 1),
        "maxrss_mb": round(_maxrss_mb(), 1),
        "manifest": {key: value for key, value in manifest.items() if key != "parts"},
        "parts": {part["name"]: part["sha256"] for part in parts},
        "bytes": sum(part["bytes"] for part in parts),
    }


def _child_command(directory: Path, n: int, k: int, partition_size: int) -> list[str]:
    return ["-m", "benchmarks.release", "--child", str(directory), str(n), str(k), str(partition_size)]


def _part_files(directory: Path) -> list[Path]:
    """Committed part files: final names only (temporary files start with ".", bookkeeping with "_")."""
    return sorted(path for path in directory.glob("part-*") if path.is_file())


def _partial_files(directory: Path) -> list[str]:
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*") if path.name.endswith(".partial"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ledger(emulator: Any) -> dict[str, Any]:
    stats = emulator.stats()
    return {
        "batch_calls": int(stats["requests"].get("POST /datasets/batch", 0)),
        "scored_calls": int(stats["scored_calls"]),
        "api_calls": int(stats["api_calls"]),
        "max_in_flight": int(stats["max_in_flight"]),
    }


def _kill_at(directory: Path, n: int, k: int, partition_size: int, target: int, env: dict[str, str]) -> dict[str, Any]:
    """Start the operator, SIGKILL it once ``target`` parts are committed; what it left behind."""
    process = subprocess.Popen(
        [sys.executable, *_child_command(directory, n, k, partition_size)],
        env=child_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    start = time.perf_counter()
    try:
        while len(_part_files(directory)) < target:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the run to kill ended (exit {process.returncode}) with {len(_part_files(directory))} of "
                    f"{target} parts:\n{(process.stderr.read() if process.stderr else '')[-3000:]}"
                )
            if time.perf_counter() - start > KILL_WAIT_LIMIT:
                raise RuntimeError(f"the run to kill did not commit {target} parts in {KILL_WAIT_LIMIT:g} s")
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stderr is not None:
            process.stderr.close()
    return {
        "seconds_to_kill": round(time.perf_counter() - start, 3),
        "returncode": process.returncode,
        "parts_at_kill": len(_part_files(directory)),
        "partial_files_left": len(_partial_files(directory)),
    }


def run(n: int, k: int, latency_ms: float, partition_size: int) -> dict[str, Any]:
    """The three runs (see the module docstring); each emulator in its own process."""
    from airflow_provider_ecoinvent.emulator import EmulatorProcess

    sizes = [min(partition_size, n - start) for start in range(0, n, partition_size)]
    parts = len(sizes)
    half = parts // 2
    with tempfile.TemporaryDirectory(prefix="ecoinvent-bench-release-") as folder:
        clean_dir, resumed_dir = Path(folder) / "clean", Path(folder) / "resumed"
        with EmulatorProcess(datasets=n, latency_ms=latency_ms) as emulator:
            clean = run_child(_child_command(clean_dir, n, k, partition_size), env=emulator.connection_env())
            clean["ledger"] = _ledger(emulator)
        # Every batch call after those of the first half + 1 parts is held: the run stops at half (or half + 1,
        # if the part in progress was complete when the parent saw half) and cannot go further.
        hold = {
            "kind": "hang",
            "seconds": HOLD_SECONDS,
            "path": "/datasets/batch",
            "method": "POST",
            "count": -1,
            "after": sum(min_batch_calls(size, k) for size in sizes[: half + 1]),
        }
        with EmulatorProcess(datasets=n, latency_ms=latency_ms, faults=[hold]) as emulator:
            killed = _kill_at(resumed_dir, n, k, partition_size, half, emulator.connection_env())
        with EmulatorProcess(datasets=n, latency_ms=latency_ms) as emulator:
            retry = run_child(_child_command(resumed_dir, n, k, partition_size), env=emulator.connection_env())
            retry["ledger"] = _ledger(emulator)
        for child in (clean, retry):
            child.pop("_stderr", None)
        identical = (
            [path.name for path in _part_files(clean_dir)] == [path.name for path in _part_files(resumed_dir)]
            and clean["parts"] == retry["parts"]
            and all(_sha256(path) == _sha256(resumed_dir / path.name) for path in _part_files(clean_dir))
        )
        partial_after_retry = _partial_files(resumed_dir)
    batch_calls = clean["ledger"]["batch_calls"]
    limit = batch_calls * latency_ms / 1000 / MAX_IN_FLIGHT
    # The parts committed are the first ones (the calls after them were held): the retry fetches the rest.
    expected_retry_calls = sum(min_batch_calls(size, k) for size in sizes[killed["parts_at_kill"] :])
    retry_calls = retry["ledger"]["scored_calls"]
    return {
        "target": "retry after SIGKILL at 50 %: scored calls only for the missing parts, no .partial left, "
        "every part byte-identical to the clean run",
        "met": retry_calls <= expected_retry_calls and not partial_after_retry and identical,
        "datasets": n,
        "indicators": k,
        "latency_ms": latency_ms,
        "partition_size": partition_size,
        "parts": parts,
        "max_in_flight": MAX_IN_FLIGHT,
        "method": "operator execute in a fresh subprocess per run, flat Parquet directory; a fresh emulator "
        "process per run (same catalogue); the killed run is held after half its parts, then SIGKILLed",
        "clean": {
            "seconds": clean["seconds"],
            "latency_bound_seconds": round(limit, 3),
            "ratio_to_bound": round(clean["seconds"] / limit, 2) if limit else math.nan,
            "batch_calls": batch_calls,
            "min_batch_calls": min_batch_calls(n, k),
            "scored_calls": clean["ledger"]["scored_calls"],
            "emulator_max_in_flight": clean["ledger"]["max_in_flight"],
            "maxrss_after_imports_mb": clean["maxrss_after_imports_mb"],
            "maxrss_mb": clean["maxrss_mb"],
            "records": clean["manifest"].get("record_count"),
            "bytes": clean["bytes"],
        },
        "killed": killed,
        "retry": {
            "seconds": retry["seconds"],
            "scored_calls": retry_calls,
            "expected_scored_calls": expected_retry_calls,
            "time_vs_clean": round(retry["seconds"] / clean["seconds"], 2) if clean["seconds"] else math.nan,
            "calls_vs_clean": round(retry_calls / clean["ledger"]["scored_calls"], 2)
            if clean["ledger"]["scored_calls"]
            else math.nan,
            "maxrss_mb": retry["maxrss_mb"],
            "reused_parts": _count(retry["manifest"].get("reused_parts")),
            "fetched_parts": _count(retry["manifest"].get("fetched_parts")),
            "partial_files_left": len(partial_after_retry),
            "identical_to_clean": identical,
        },
    }


def _count(value: Any) -> int | None:
    """A manifest's part list (names) or count, as a count."""
    if isinstance(value, list):
        return len(value)
    return value if isinstance(value, int) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", nargs=4, metavar=("DIRECTORY", "N", "K", "PARTITION_SIZE"), required=True)
    args = parser.parse_args(argv)
    directory, n, k, partition_size = Path(args.child[0]), int(args.child[1]), int(args.child[2]), int(args.child[3])
    print(json.dumps(_child(directory, n, k, partition_size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
