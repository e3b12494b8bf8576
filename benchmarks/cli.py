"""``benchmarks/run.py``: run every measurement in one process, against emulators in their own processes.

Writes ``benchmarks/results/latest.json`` and prints a Markdown report, which is also written between the
markers in ``benchmarks/README.md`` (not with ``--smoke``, which only proves the script works).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from benchmarks._common import REPO_ROOT, machine, prepare_airflow_env

SECTIONS: Final = (
    "calls",
    "overhead",
    "latency",
    "memory",
    "parse",
    "alternative",
    "dlt",
    "ratelimit",
    "release",
    "columnar",
)
DEFAULT_OUTPUT: Final = REPO_ROOT / "benchmarks" / "results" / "latest.json"
README: Final = REPO_ROOT / "benchmarks" / "README.md"


@dataclass(frozen=True)
class Profile:
    """How big and how often: ``default`` (make bench), ``full`` (adds N=100,000), ``smoke`` (CI, tiny)."""

    name: str
    indicators: int = 3
    calls_cases: tuple[tuple[int, int], ...] = (
        (1, 3),
        (100, 3),
        (101, 3),
        (2_501, 0),
        (2_501, 31),
        (10_000, 3),
        (250, 250),
        (250, 600),
    )
    overhead_sizes: tuple[int, ...] = (10_000,)
    overhead_repeats: dict[int, int] = field(default_factory=lambda: {10_000: 7, 100_000: 3})
    overhead_skipped: tuple[int, ...] = (100_000,)
    latency_n: int = 10_000
    latency_ms: float = 50.0
    latency_repeats: int = 3
    memory_sizes: tuple[int, int] = (10_000, 200_000)
    #: Memory as K grows: the same N datasets scored for each K (K > 100 takes ceil(K / 100) calls a batch).
    memory_indicator_sizes: tuple[int, ...] = (3, 100, 250, 600)
    memory_indicator_datasets: int = 1_000
    parse_repeats: int = 10
    alternative_n: int = 300
    #: Section 7, the dlt peer: N for the timed runs, their rounds, and N for the three faults.
    dlt_n: int = 10_000
    dlt_repeats: int = 3
    dlt_fault_n: int = 300
    #: Section 8, a server limit of 3 calls in flight: N, rounds (latency_ms per call, as in section 3).
    ratelimit_n: int = 10_000
    ratelimit_repeats: int = 3
    #: Section 9, a full release: N datasets x K indicators at this latency, parts of this many datasets.
    release_datasets: int = 25_000
    release_indicators: int = 250
    release_latency_ms: float = 100.0
    release_partition_size: int = 1_000
    #: Section 10, client CPU per scored row against the msgspec floor: N datasets x K indicators, rounds.
    columnar_datasets: int = 2_000
    columnar_indicators: int = 250
    columnar_repeats: int = 3

    @property
    def catalogue_size(self) -> int:
        return max(
            max(n for n, _ in self.calls_cases),
            max(self.overhead_sizes),
            max(self.memory_sizes),
            self.alternative_n,
            self.dlt_n,
        )


PROFILES: Final = {
    "default": Profile("default"),
    "full": Profile("full", overhead_sizes=(10_000, 100_000), overhead_skipped=()),
    "smoke": Profile(
        "smoke",
        calls_cases=((1, 3), (101, 3), (250, 0), (101, 150)),
        overhead_sizes=(300,),
        overhead_repeats={300: 1},
        overhead_skipped=(),
        latency_n=300,
        latency_ms=20.0,
        latency_repeats=1,
        memory_sizes=(200, 1_000),
        memory_indicator_sizes=(3, 150),
        memory_indicator_datasets=100,
        parse_repeats=1,
        alternative_n=300,
        dlt_n=300,
        dlt_repeats=1,
        ratelimit_n=1_000,
        ratelimit_repeats=1,
        # About 10 parts of about 200 datasets, 2 calls per batch (K > 100): the kill and the retry, tiny.
        release_datasets=2_000,
        release_indicators=150,
        release_latency_ms=10.0,
        release_partition_size=400,
        columnar_datasets=200,
        columnar_indicators=150,
        columnar_repeats=1,
    ),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: proves the script works (CI)")
    size.add_argument("--full", action="store_true", help="also N=100,000 in the overhead section (minutes more)")
    parser.add_argument(
        "--only", choices=SECTIONS, action="append", help="run only this section (repeatable); default: all"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results (default: %(default)s)")
    parser.add_argument(
        "--readme",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write the table into benchmarks/README.md (default: yes, except with --smoke or --only)",
    )
    return parser.parse_args(argv)


def _log(message: str) -> float:
    """Log progress; returns the 1-minute load average, kept with each section (the machine is shared)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"[bench {time.strftime('%H:%M:%S')}] {message} (load {load:.2f})", file=sys.stderr, flush=True)
    return round(load, 2)


def run(profile: Profile, sections: tuple[str, ...]) -> dict[str, Any]:
    prepare_airflow_env()
    from airflow_provider_ecoinvent.emulator import EmulatorProcess
    from benchmarks import alternative, calls, clients, dlt_peer, latency, memory, overhead, parse, ratelimit, release

    results: dict[str, Any] = {}
    needs_main = {"calls", "overhead", "memory", "alternative", "dlt"} & set(sections)
    if needs_main:
        with EmulatorProcess(datasets=profile.catalogue_size) as emulator:
            clients.use_emulator(emulator)
            version = str(emulator.stats()["latest"])
            if "calls" in sections:
                load = _log("1. calls")
                results["calls"] = calls.run(emulator, profile.calls_cases, version)
                results["calls"]["load_average_at_start"] = load
            if "overhead" in sections:
                load = _log(f"2. overhead, N={profile.overhead_sizes}")
                results["overhead"] = overhead.run(
                    emulator,
                    profile.overhead_sizes,
                    profile.overhead_repeats,
                    profile.indicators,
                    version,
                )
                results["overhead"]["skipped"] = list(profile.overhead_skipped)
                results["overhead"]["load_average_at_start"] = load
            if "memory" in sections:
                load = _log(f"4. memory, N={profile.memory_sizes}")
                results["memory"] = memory.run(
                    emulator, *profile.memory_sizes, profile.indicators, parallel=profile.name == "smoke"
                )
                _log(f"4b. memory as K grows, K={profile.memory_indicator_sizes}")
                results["memory"]["by_indicators"] = memory.run_by_indicators(
                    emulator,
                    profile.memory_indicator_datasets,
                    profile.memory_indicator_sizes,
                    parallel=profile.name == "smoke",
                )
                results["memory"]["met"] = results["memory"]["met"] and results["memory"]["by_indicators"]["met"]
                results["memory"]["load_average_at_start"] = load
            if "alternative" in sections:
                load = _log("6. http provider under faults")
                results["alternative"] = alternative.run(emulator, profile.alternative_n, version)
                results["alternative"]["load_average_at_start"] = load
            if "dlt" in sections:
                load = _log(f"7. dlt peer, N={profile.dlt_n}, faults at N={profile.dlt_fault_n}")
                results["dlt"] = dlt_peer.run(
                    emulator, profile.dlt_n, profile.dlt_repeats, profile.indicators, version, profile.dlt_fault_n
                )
                results["dlt"]["load_average_at_start"] = load
    if "latency" in sections:
        load = _log(f"3. latency {profile.latency_ms} ms, N={profile.latency_n}")
        with EmulatorProcess(datasets=profile.latency_n, latency_ms=profile.latency_ms) as emulator:
            clients.use_emulator(emulator)
            version = str(emulator.stats()["latest"])
            results["latency"] = latency.run(
                emulator, profile.latency_n, profile.indicators, profile.latency_repeats, version
            )
            results["latency"]["load_average_at_start"] = load
    if "ratelimit" in sections:
        load = _log(
            f"8. server limit of {ratelimit.SERVER_LIMIT} in flight, {profile.latency_ms} ms, N={profile.ratelimit_n}"
        )
        with EmulatorProcess(
            datasets=profile.ratelimit_n, latency_ms=profile.latency_ms, max_concurrency=ratelimit.SERVER_LIMIT
        ) as emulator:
            clients.use_emulator(emulator)
            results["ratelimit"] = ratelimit.run(
                emulator, profile.ratelimit_n, profile.indicators, profile.ratelimit_repeats
            )
            results["ratelimit"]["load_average_at_start"] = load
    if "release" in sections:
        load = _log(
            f"9. full release, N={profile.release_datasets}, K={profile.release_indicators}, "
            f"{profile.release_latency_ms} ms"
        )
        results["release"] = release.run(
            profile.release_datasets,
            profile.release_indicators,
            profile.release_latency_ms,
            profile.release_partition_size,
        )
        results["release"]["load_average_at_start"] = load
    if "columnar" in sections:
        results["columnar"] = _run_columnar(profile)
    if "parse" in sections:
        load = _log("5. DAG parse")
        results["parse"] = parse.run(profile.parse_repeats, quick=profile.name == "smoke")
        results["parse"]["load_average_at_start"] = load
    return results


def _run_columnar(profile: Profile) -> dict[str, Any]:
    """Section 10 against an emulator of its own (zero latency, a catalogue of exactly N datasets)."""
    from airflow_provider_ecoinvent.emulator import EmulatorProcess
    from benchmarks import clients, columnar

    n, k = profile.columnar_datasets, profile.columnar_indicators
    load = _log(f"10. client CPU per scored row vs the msgspec floor, N={n}, K={k}")
    with EmulatorProcess(datasets=n) as emulator:
        clients.use_emulator(emulator)
        result = columnar.run(emulator, n, k, profile.columnar_repeats, str(emulator.stats()["latest"]))
    result["load_average_at_start"] = load
    return result


def _all_met(sections: dict[str, Any]) -> bool:
    """Every section's target and every row of its ``targets`` (rows without one, ``met`` None, aside)."""
    return all(
        section.get("met", True) and all(row["met"] is not False for row in section.get("targets", []))
        for section in sections.values()
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    profile = PROFILES["smoke" if args.smoke else "full" if args.full else "default"]
    sections = tuple(s for s in SECTIONS if not args.only or s in args.only)
    command = "make bench" if argv is None and not sys.argv[1:] else shlex.join(["benchmarks/run.py", *sys.argv[1:]])
    started = time.perf_counter()
    meta: dict[str, Any] = {
        "command": command,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "profile": profile.name,
        "machine": machine(),
    }
    _log(f"profile {profile.name}, {meta['machine']['cpu_count']} cores, sections {', '.join(sections)}")
    section_results = run(profile, sections)
    meta["duration_s"] = round(time.perf_counter() - started, 1)
    results = {
        "meta": meta,
        "all_targets_met": _all_met(section_results),
        "sections": section_results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    from benchmarks.report import render, update_readme

    markdown = render(results)
    print(markdown)
    write_readme = args.readme if args.readme is not None else not (args.smoke or args.only)
    if write_readme:
        update_readme(README, results)
    _log(f"done in {meta['duration_s']} s; results in {args.output}")
    return 0
