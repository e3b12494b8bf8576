"""Section 3: latency-bound ingestion. The emulator sleeps ``latency_ms`` on every API call (in its own
handler thread, so concurrent calls overlap as on a real server).

Ours with their default concurrency (max_in_flight=8: the operator's default; the hook is given 8) against
the sequential bare loop. The emulator's ledger records the most API calls it served at once; it must never
exceed 8.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks import clients
from benchmarks._common import interleave, median, min_batch_calls, paired_ratio, process_cpu_seconds, summary

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_ecoinvent.emulator.control import EmulatorProcess

TARGET_SPEEDUP = 6.0
MAX_IN_FLIGHT = 8


def run(emulator: EmulatorProcess, n: int, indicators: int, repeats: int, version: str) -> dict[str, Any]:
    latency_ms = float(emulator.stats()["config"]["latency_ms"])
    bare = clients.BareClient(emulator, version)
    ids = list(range(1, n + 1))
    indicator_ids = list(range(1, indicators + 1))
    peaks: dict[str, list[int]] = {}
    server_cpu: dict[str, list[float]] = {}
    assert emulator.process is not None
    pid = emulator.process.pid
    with tempfile.TemporaryDirectory(prefix="ecoinvent-bench-latency-") as folder:
        out = Path(folder)
        variants: dict[str, Callable[[], clients.RunResult]] = {
            "hook (max_in_flight=8)": lambda: clients.hook_fetch(ids, indicator_ids, max_in_flight=MAX_IN_FLIGHT),
            "operator (default, 8)": lambda: clients.operator_ingest(ids, indicator_ids, out / "op.jsonl"),
            "bare sequential": lambda: bare.fetch(ids, indicator_ids),
        }

        def record(name: str, result: clients.RunResult) -> None:
            if result.datasets != n:
                raise RuntimeError(f"{name}: {result.datasets} of {n} datasets")
            peaks.setdefault(name, []).append(int(emulator.stats()["max_in_flight"]))
            emulator.reset()
            now = process_cpu_seconds(pid)
            server_cpu.setdefault(name, []).append(now - last_cpu[0])
            last_cpu[0] = now

        emulator.reset()
        last_cpu = [process_cpu_seconds(pid)]
        timings = interleave(variants, repeats, after_each=record)
    hook_speedup = round(1 / paired_ratio(timings["hook (max_in_flight=8)"], timings["bare sequential"]), 2)
    operator_speedup = round(1 / paired_ratio(timings["operator (default, 8)"], timings["bare sequential"]), 2)
    ours_peak = max(max(peaks["hook (max_in_flight=8)"]), max(peaks["operator (default, 8)"]))
    calls = min_batch_calls(n)
    # With zero client and server cost: sequential = (calls + 0) x latency; 8 in flight = ceil(calls/8) x
    # latency, plus the one /versions call ours makes first. The gap to these bounds is service time.
    ideal_sequential = calls * latency_ms / 1000
    ideal_ours = (math.ceil(calls / MAX_IN_FLIGHT) + 1) * latency_ms / 1000
    return {
        "target": f">= {TARGET_SPEEDUP}x faster than the sequential bare loop, max_in_flight <= {MAX_IN_FLIGHT}",
        "met": hook_speedup >= TARGET_SPEEDUP and operator_speedup >= TARGET_SPEEDUP and ours_peak <= MAX_IN_FLIGHT,
        "datasets": n,
        "indicators": indicators,
        "latency_ms": latency_ms,
        "rounds": repeats,
        "variants": {name: summary(t) for name, t in timings.items()},
        "speedup": {"hook": hook_speedup, "operator": operator_speedup},
        "emulator_max_in_flight": {name: max(values) for name, values in peaks.items()},
        # CPU the emulator process burnt per run (median; warm-up included): on a small machine the
        # emulator's own service time, serialised by its GIL, bounds how fast any concurrent client can go.
        "emulator_cpu_s": {name: round(median(values), 3) for name, values in server_cpu.items()},
        "ideal_seconds": {
            "sequential (latency only)": round(ideal_sequential, 3),
            "8 in flight (latency only, + /versions)": round(ideal_ours, 3),
            "ideal speedup": round(ideal_sequential / ideal_ours, 2),
        },
    }
