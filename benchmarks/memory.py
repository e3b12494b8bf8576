"""Section 4: peak RSS of ingesting a large selection to a file vs a small one, each in a fresh process.

The child runs ``EcoinventDatasetsOperator.execute`` (JSON Lines, default max_in_flight=8) against the
emulator the parent started, and reports ``ru_maxrss``. ``ru_maxrss`` is a high-water mark that importing
Airflow may already have set (import-time transients), which would hide growth during the ingestion; so
the child also samples its current RSS every 5 ms during the ingestion and reports the growth over the
RSS before it. The target holds only if both differences stay under it. The difference between the two sizes is what the
ingestion holds in memory per dataset: a streaming client holds the ids (an int list, a few MB for 200k)
and a bounded window of batches, never the datasets.

Child entry point: ``python -m benchmarks.memory --child N K OUTPUT`` (connection from the environment).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks._common import maxrss_mb, run_children

if TYPE_CHECKING:
    from airflow_provider_ecoinvent.emulator.control import EmulatorProcess

TARGET_MB = 64.0


def _current_rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class _RssSampler(threading.Thread):
    """Samples this process's current RSS until stopped; ``peak_mb`` is the largest sample."""

    def __init__(self, interval: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak_mb = _current_rss_mb()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.peak_mb = max(self.peak_mb, _current_rss_mb())

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        self.peak_mb = max(self.peak_mb, _current_rss_mb())
        return self.peak_mb


def _child(n: int, k: int, output: Path) -> dict[str, Any]:
    from benchmarks._common import prepare_airflow_env

    prepare_airflow_env()
    # Import everything the run needs first, so the figure after imports is the baseline.
    import airflow_provider_ecoinvent.operators.ecoinvent  # noqa: F401
    from benchmarks import clients

    baseline = maxrss_mb()
    ids, indicators = list(range(1, n + 1)), list(range(1, k + 1))
    before = _current_rss_mb()
    sampler = _RssSampler()
    sampler.start()
    start = time.perf_counter()
    try:
        result = clients.operator_ingest(ids, indicators, output)
    finally:
        peak = sampler.stop()
    return {
        "datasets": n,
        "written": result.datasets,
        "bytes": output.stat().st_size,
        "seconds": round(time.perf_counter() - start, 3),
        "maxrss_after_imports_mb": round(baseline, 1),
        "maxrss_mb": round(maxrss_mb(), 1),
        "rss_before_ingest_mb": round(before, 1),
        "rss_peak_during_ingest_mb": round(peak, 1),
        "ingest_growth_mb": round(peak - before, 1),
    }


def run(
    emulator: EmulatorProcess, small: int, large: int, indicators: int, *, parallel: bool = False
) -> dict[str, Any]:
    """``parallel`` runs both children at once (smoke runs: peak RSS does not care, time does)."""
    env = emulator.connection_env()
    figures: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="ecoinvent-bench-memory-") as folder:
        commands = [
            ["-m", "benchmarks.memory", "--child", str(n), str(indicators), str(Path(folder) / f"{n}.jsonl")]
            for n in (small, large)
        ]
        for n, child in zip((small, large), run_children(commands, env=env, parallel=parallel), strict=True):
            child.pop("_stderr", None)
            if child["written"] != n:
                raise RuntimeError(f"memory child wrote {child['written']} of {n} datasets")
            figures[str(n)] = child
    difference = figures[str(large)]["maxrss_mb"] - figures[str(small)]["maxrss_mb"]
    growth = figures[str(large)]["ingest_growth_mb"] - figures[str(small)]["ingest_growth_mb"]
    return {
        "target": f"peak RSS({large}) - peak RSS({small}) < {TARGET_MB:g} MB",
        "met": difference < TARGET_MB and growth < TARGET_MB,
        "method": "each size in a fresh subprocess (operator execute, JSON Lines, max_in_flight=8); ru_maxrss",
        "indicators": indicators,
        "runs": figures,
        "difference_mb": round(difference, 1),
        "growth_difference_mb": round(growth, 1),
    }


def run_by_indicators(
    emulator: EmulatorProcess, n: int, indicator_sizes: tuple[int, ...], *, parallel: bool = False
) -> dict[str, Any]:
    """The same ``n`` datasets scored for each K in ``indicator_sizes``, each in a fresh process.

    K > 100 takes ceil(K / 100) calls per batch whose scores are merged per dataset; each slice counts
    against ``max_in_flight`` and waits compacted (16 bytes a score) for the batch's other slices, so what
    is held is about 8 decoded answers of 100 x 100 scores whatever K is. The growth during ingestion
    should stay flat as K grows (the file, of course, does not).
    """
    env = emulator.connection_env()
    figures: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="ecoinvent-bench-memory-k-") as folder:
        commands = [
            ["-m", "benchmarks.memory", "--child", str(n), str(k), str(Path(folder) / f"k{k}.jsonl")]
            for k in indicator_sizes
        ]
        for k, child in zip(indicator_sizes, run_children(commands, env=env, parallel=parallel), strict=True):
            child.pop("_stderr", None)
            if child["written"] != n:
                raise RuntimeError(f"memory child wrote {child['written']} of {n} datasets for K={k}")
            child["indicators"] = k
            figures[str(k)] = child
    # From K = 100 on, every call carries a full 100 x 100 answer: what is held then is set by the calls in
    # flight, and should not grow with K. Below 100 the answers are smaller, so K = 100 is the reference.
    reference = 100 if 100 in indicator_sizes and max(indicator_sizes) > 100 else min(indicator_sizes)
    largest = max(indicator_sizes)
    growth = figures[str(largest)]["ingest_growth_mb"] - figures[str(reference)]["ingest_growth_mb"]
    return {
        "target": f"RSS growth during ingestion, K={largest} vs K={reference}: < {TARGET_MB:g} MB",
        "met": growth < TARGET_MB,
        "datasets": n,
        "runs": figures,
        "growth_difference_mb": round(growth, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", nargs=3, metavar=("N", "K", "OUTPUT"), required=True)
    args = parser.parse_args(argv)
    n, k, output = int(args.child[0]), int(args.child[1]), Path(args.child[2])
    print(json.dumps(_child(n, k, output)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
