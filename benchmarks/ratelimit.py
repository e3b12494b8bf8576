"""Section 8: a server that limits concurrency. The emulator (its own process, ``--max-concurrency 3``,
``latency_ms`` per call) answers 429 with ``Retry-After: 0`` to any API call above 3 in flight.

The operator with its default ``max_in_flight=8`` (it must find the limit: halve on 429, grow back after a
run of successes) against the same operator configured with ``max_in_flight=3`` (told the limit), side by
side in each round. The ledger counts every 429 and the most calls served at once; the manifest's
``concurrency`` reports what the client saw, and both must agree.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from benchmarks import clients
from benchmarks._common import interleave, median, min_batch_calls, paired_ratio, summary

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_ecoinvent.emulator.control import EmulatorProcess

SERVER_LIMIT: Final = 3
DEFAULT_MAX_IN_FLIGHT: Final = 8
MAX_RATE_LIMITED_SHARE: Final = 0.10
MAX_WALL_RATIO: Final = 1.25
ADAPTIVE: Final = f"operator (default, max_in_flight={DEFAULT_MAX_IN_FLIGHT})"
TOLD: Final = f"operator (max_in_flight={SERVER_LIMIT})"


def run(emulator: EmulatorProcess, n: int, indicators: int, repeats: int) -> dict[str, Any]:
    config = emulator.stats()["config"]
    if int(config["max_concurrency"]) != SERVER_LIMIT:
        raise RuntimeError(f"the emulator must limit concurrency to {SERVER_LIMIT}, not {config['max_concurrency']}")
    ids = list(range(1, n + 1))
    indicator_ids = list(range(1, indicators + 1))
    runs: dict[str, list[dict[str, Any]]] = {ADAPTIVE: [], TOLD: []}
    with tempfile.TemporaryDirectory(prefix="ecoinvent-bench-ratelimit-") as folder:
        out = Path(folder)
        variants: dict[str, Callable[[], clients.RunResult]] = {
            ADAPTIVE: lambda: clients.operator_ingest(ids, indicator_ids, out / "adaptive.jsonl"),
            TOLD: lambda: clients.operator_ingest(ids, indicator_ids, out / "told.jsonl", max_in_flight=SERVER_LIMIT),
        }

        def record(name: str, result: clients.RunResult) -> None:
            if result.datasets != n or result.manifest is None:
                raise RuntimeError(f"{name}: {result.datasets} of {n} datasets")
            stats = emulator.stats()
            emulator.reset()
            runs[name].append(_one_run(result.manifest, stats))

        emulator.reset()
        timings = interleave(variants, repeats, after_each=record)
    adaptive = runs[ADAPTIVE][1:]  # the warm-up round is not timed; its figures are not reported either
    share = max(r["rate_limited_share"] for r in adaptive)
    wall_ratio = paired_ratio(timings[ADAPTIVE], timings[TOLD])
    agree = all(r["ledger_agrees"] for rs in runs.values() for r in rs)
    return {
        "target": (
            f"server limit {SERVER_LIMIT}, default max_in_flight {DEFAULT_MAX_IN_FLIGHT}: succeeds, 429s <= "
            f"{MAX_RATE_LIMITED_SHARE:.0%} of calls, wall <= {MAX_WALL_RATIO}x max_in_flight={SERVER_LIMIT}"
        ),
        "met": share <= MAX_RATE_LIMITED_SHARE and wall_ratio <= MAX_WALL_RATIO and agree,
        "datasets": n,
        "indicators": indicators,
        "latency_ms": float(config["latency_ms"]),
        "server_limit": SERVER_LIMIT,
        "rounds": repeats,
        "min_batch_calls": min_batch_calls(n),
        "variants": {name: summary(t) for name, t in timings.items()},
        "wall_ratio": wall_ratio,
        "max_rate_limited_share": round(share, 4),
        "ledger_agrees": agree,
        "runs": {name: rs[1:] for name, rs in runs.items()},
        "median_rate_limited_calls": {
            name: median([r["rate_limited_calls"] for r in rs[1:]]) for name, rs in runs.items()
        },
    }


def _one_run(manifest: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:
    """What one run did: the manifest's concurrency figures next to the ledger's."""
    figures = manifest["concurrency"]
    batch_calls = int(stats["requests"].get("POST /datasets/batch", 0))
    refused = int(stats["statuses"].get("429", 0))
    return {
        **figures,
        "batch_calls": batch_calls,
        "ledger_429": refused,
        "emulator_max_in_flight": int(stats["max_in_flight"]),
        "rate_limited_share": refused / batch_calls if batch_calls else 0.0,
        # Every 429 the server sent is one the client counted, and the server never served more than its limit.
        "ledger_agrees": refused == figures["rate_limited_calls"] and int(stats["max_in_flight"]) <= SERVER_LIMIT,
    }
