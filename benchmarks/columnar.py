"""Section 10: the client's CPU per scored row against the floor, msgspec decoding the same answers.

Issue 24's ratios, measured side by side in one run: N datasets x K indicators (2,000 x 250), zero latency,
the emulator in its own process (its CPU is not the client's). Three variants run interleaved round-robin
(the starting variant rotates every round, one warm-up round discarded):

* **parquet**: ``EcoinventDatasetsOperator`` writing a flat Parquet dataset directory;
* **jsonl**: the same operator writing nested JSON Lines into a dataset directory;
* **floor**: the same batch answers (one ``POST /datasets/batch`` per 100 ids and per slice of at most 100
  indicators, as the operator asks them) fetched with a bare ``requests`` loop, and only their decoding
  to Python objects by ``msgspec.json.decode`` timed: what no client can do without.

A variant's figure is this process's CPU time (all threads) over the N x K scored rows; a ratio is the
median over rounds of variant / floor measured in the same round. Targets: parquet at most 2.5x the floor,
JSON Lines at most 3x. The bytes each output took are reported next to its speed. After the rounds, one
more run of each output under cProfile (every thread) names the functions the client's CPU goes to.
"""

from __future__ import annotations

import gc
import math
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from benchmarks._common import PAGE_LIMIT, SYSTEM_MODEL, median, process_cpu_seconds

if TYPE_CHECKING:
    from airflow_provider_ecoinvent.emulator.control import EmulatorProcess

#: Issue 24's targets: client CPU per scored row at most this many times the floor's.
TARGETS: Final = {"parquet": 2.5, "jsonl": 3.0}
#: Layout and format of each output (both into a dataset directory, default partition size).
OUTPUTS: Final = {"parquet": ("flat", "parquet"), "jsonl": ("nested", "jsonl")}


def _output_bytes(directory: Path) -> int:
    """Bytes of the committed parts (bookkeeping under ``_parts/`` and temporary files left out)."""
    return sum(path.stat().st_size for path in directory.glob("part-*") if path.is_file())


def _operator_cpu(n: int, k: int, output: str) -> tuple[float, int]:
    """Client CPU seconds of one operator run into a fresh dataset directory, and the bytes it wrote."""
    from benchmarks import clients
    from benchmarks.release import task_context

    with tempfile.TemporaryDirectory(prefix="ecoinvent-bench-columnar-") as folder:
        cpu0 = time.process_time()
        layout, file_format = OUTPUTS[output]
        result = clients.operator_ingest(
            range(1, n + 1),
            range(1, k + 1),
            Path(folder).as_uri() + "/",
            context=task_context(1),
            layout=layout,
            format=file_format,
        )
        cpu = time.process_time() - cpu0
        if result.datasets != n:
            raise RuntimeError(f"{output}: {result.datasets} datasets written, {n} expected")
        return cpu, _output_bytes(Path(folder))


def _floor_cpu(emulator: EmulatorProcess, version: str, n: int, k: int) -> tuple[float, int]:
    """CPU seconds msgspec takes to decode the answers the operator gets (fetching untimed), and their bytes."""
    import msgspec
    import requests

    from benchmarks.clients import BareClient

    token = BareClient(emulator, version).token
    decode = msgspec.json.decode
    cpu = 0.0
    size = 0
    params: dict[str, str | int] = {"from": 0, "limit": PAGE_LIMIT, "version": version, "system_model": SYSTEM_MODEL}
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        for start in range(1, n + 1, PAGE_LIMIT):
            ids = list(range(start, min(start + PAGE_LIMIT, n + 1)))
            for first in range(1, k + 1, PAGE_LIMIT):
                body = {"dataset_ids": ids, "indicator_ids": list(range(first, min(first + PAGE_LIMIT, k + 1)))}
                response = session.post(f"{emulator.api_url}/datasets/batch", params=params, json=body, timeout=60)
                response.raise_for_status()
                answer = response.content
                size += len(answer)
                cpu0 = time.process_time()
                decoded = decode(answer)
                cpu += time.process_time() - cpu0
                del decoded
    return cpu, size


def _emulator_cpu_per_call(emulator: EmulatorProcess, version: str, n: int, calls: int = 20) -> float:
    """The emulator's CPU seconds per batch call of 100 datasets x 100 indicators (the most a call holds),
    the pages of ids 1..N in turn, calls one after the other: what one call costs the server, so that a
    reader can tell the client's CPU from the emulator's in section 9."""
    import requests

    from benchmarks.clients import BareClient

    token = BareClient(emulator, version).token
    params: dict[str, str | int] = {"from": 0, "limit": PAGE_LIMIT, "version": version, "system_model": SYSTEM_MODEL}
    pages = max(1, n // PAGE_LIMIT)
    if emulator.process is None:
        raise RuntimeError("the emulator process is not running")
    pid = emulator.process.pid
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        cpu0 = process_cpu_seconds(pid)
        for call in range(calls):
            first = 1 + (call % pages) * PAGE_LIMIT
            body = {"dataset_ids": list(range(first, first + PAGE_LIMIT)), "indicator_ids": list(range(1, 101))}
            response = session.post(f"{emulator.api_url}/datasets/batch", params=params, json=body, timeout=60)
            response.raise_for_status()
        return (process_cpu_seconds(pid) - cpu0) / calls


def _rounds(emulator: EmulatorProcess, version: str, n: int, k: int, repeats: int) -> list[dict[str, float]]:
    """CPU seconds of each variant per round (warm-up round dropped), and the bytes of the last round."""
    names = ["parquet", "jsonl", "floor"]
    rounds: list[dict[str, float]] = []
    for index in range(1 + repeats):
        shift = index % len(names)
        figures: dict[str, float] = {}
        for name in names[shift:] + names[:shift]:
            if name == "floor":
                figures[name], figures[f"{name}_bytes"] = _floor_cpu(emulator, version, n, k)
            else:
                gc.collect()
                figures[name], figures[f"{name}_bytes"] = _operator_cpu(n, k, name)
        if index:
            rounds.append(figures)
    return rounds


def profile_output(n: int, k: int, output: str, top: int = 12) -> list[dict[str, Any]]:
    """Where one operator run's CPU goes: cProfile in every thread (the fetching threads too), timed by each
    thread's CPU clock (waits cost nothing), the ``top`` functions by own time with their share of the
    profiled total. Profiling slows the run: read the shares, not the seconds."""
    import cProfile
    import pstats
    import sys
    import threading

    profilers = [cProfile.Profile(time.thread_time)]

    def start_in_thread(*_: Any) -> None:
        """Each thread started while profiling replaces this hook by a profiler of its own."""
        sys.setprofile(None)
        profiler = cProfile.Profile(time.thread_time)
        profilers.append(profiler)
        profiler.enable()

    gc.collect()
    threading.setprofile(start_in_thread)
    profilers[0].enable()
    try:
        _operator_cpu(n, k, output)
    finally:
        profilers[0].disable()
        threading.setprofile(None)
    stats = pstats.Stats(profilers[0])
    for profiler in profilers[1:]:
        profiler.disable()
        stats.add(profiler)
    entries: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in entries.values()) or 1.0
    ranked = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:top]
    return [
        {
            "function": f"{name} ({Path(filename).name}:{line})" if line else name,
            "own_s": round(entry[2], 3),
            "share_pct": round(entry[2] / total * 100, 1),
        }
        for (filename, line, name), entry in ranked
    ]


def run(emulator: EmulatorProcess, n: int, k: int, repeats: int, version: str) -> dict[str, Any]:
    """The three variants of the module docstring; figures per scored row and ratios to the floor."""
    rows = n * k
    rounds = _rounds(emulator, version, n, k, repeats)
    per_row_us = {name: round(median([r[name] for r in rounds]) / rows * 1e6, 3) for name in (*OUTPUTS, "floor")}
    ratios = {
        name: round(median([r[name] / r["floor"] for r in rounds if r["floor"] > 0]), 2) if rounds else math.nan
        for name in OUTPUTS
    }
    targets = [
        {
            "output": name,
            "target": f"client CPU per scored row <= {limit:g}x the msgspec decode floor",
            "ratio": ratios[name],
            "met": bool(ratios[name] <= limit),
        }
        for name, limit in TARGETS.items()
    ]
    return {
        "target": "client CPU per scored row: flat Parquet <= 2.5x, nested JSON Lines <= 3x the msgspec decode floor",
        "met": all(t["met"] for t in targets),
        "datasets": n,
        "indicators": k,
        "rows": rows,
        "rounds": len(rounds),
        "batch_calls": math.ceil(n / PAGE_LIMIT) * math.ceil(k / PAGE_LIMIT),
        "method": "operator execute in this process into a fresh dataset directory (default partition size, 8 in "
        "flight), zero latency, emulator in its own process; floor: msgspec.json.decode of the same answers, "
        "fetched untimed; interleaved rounds, paired ratios (median over rounds)",
        "cpu_per_row_us": per_row_us,
        "ratios": ratios,
        "targets": targets,
        "bytes": {name: int(rounds[-1][f"{name}_bytes"]) for name in (*OUTPUTS, "floor")} if rounds else {},
        "cpu_s": {name: [round(r[name], 4) for r in rounds] for name in (*OUTPUTS, "floor")},
        "profile": {name: profile_output(n, k, name) for name in OUTPUTS},
        "emulator_ms_per_100x100_call": round(_emulator_cpu_per_call(emulator, version, n) * 1000, 2),
    }
