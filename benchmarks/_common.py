"""Shared helpers: the Airflow environment, timing, interleaving, medians and child processes."""

from __future__ import annotations

import gc
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
#: The API's page limit (contract section 4.1): one batch call returns at most 100 datasets.
PAGE_LIMIT: Final = 100
#: The emulator's default system model, and the one every benchmark pins.
SYSTEM_MODEL: Final = "cutoff"

_AIRFLOW_HOME: Path | None = None


def min_batch_calls(n: int, k: int = 0) -> int:
    """The fewest batch calls the API's limits allow for ``n`` datasets scored for ``k`` indicators:
    ceil(n / 100) x ceil(k / 100) (at most 100 datasets and 100 indicators per call; unscored: ceil(n / 100))."""
    return math.ceil(n / PAGE_LIMIT) * max(1, math.ceil(k / PAGE_LIMIT))


def maxrss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports kilobytes; macOS bytes, and the
    benchmarks target Linux CI)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def airflow_env() -> dict[str, str]:
    """Environment for a quiet, throw-away Airflow: a temporary home, no examples, warnings only."""
    global _AIRFLOW_HOME
    if _AIRFLOW_HOME is None:
        _AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="ecoinvent-bench-airflow-"))
    return {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }


def prepare_airflow_env() -> None:
    """Set :func:`airflow_env` in this process; call before anything imports ``airflow``."""
    os.environ.update(airflow_env())


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment of a benchmark child process: this repository importable, the same quiet Airflow."""
    env = dict(os.environ)
    env.update(airflow_env())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env.update(extra or {})
    return env


def run_child(args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 900) -> dict[str, Any]:
    """Run ``python args...`` and parse the last line of its stdout as JSON."""
    proc = subprocess.run(
        [sys.executable, *args],
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {args!r} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    result: dict[str, Any] = json.loads(lines[-1])
    result["_stderr"] = proc.stderr
    return result


def run_children(
    commands: Sequence[Sequence[str]], *, env: Mapping[str, str] | None = None, parallel: bool = False
) -> list[dict[str, Any]]:
    """:func:`run_child` for each command, in order; ``parallel`` (smoke runs only: it skews timings) at once."""
    if not parallel:
        return [run_child(command, env=env) for command in commands]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda command: run_child(command, env=env), commands))


@dataclass(frozen=True)
class Timing:
    """One timed run: wall-clock seconds and CPU seconds of this (client) process, all threads."""

    wall: float
    cpu: float


def attempt_under_fault(call: Callable[[], Any], expected: int, *, root_cause: bool = False) -> dict[str, Any]:
    """One run of a client under an injected fault: complete, incomplete (datasets short of ``expected``) or
    failed with its error; ``root_cause`` reports the innermost exception (dlt wraps the HTTP error in
    pipeline-step exceptions)."""
    start = time.perf_counter()
    try:
        result = call()
    except Exception as err:
        cause: BaseException = err
        while root_cause and cause.__cause__ is not None:
            cause = cause.__cause__
        return {
            "outcome": "failed",
            "error": f"{type(cause).__name__}: {str(cause)[:120]}",
            "seconds": round(time.perf_counter() - start, 2),
        }
    outcome = "complete" if result.datasets == expected else f"incomplete ({result.datasets}/{expected})"
    return {"outcome": outcome, "seconds": round(time.perf_counter() - start, 2)}


def timed(fn: Callable[[], Any]) -> tuple[Timing, Any]:
    """Run ``fn`` once after a garbage collection; the emulator's CPU time is not ours (other process)."""
    gc.collect()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = fn()
    return Timing(time.perf_counter() - wall0, time.process_time() - cpu0), result


def interleave(
    variants: Mapping[str, Callable[[], Any]],
    repeats: int,
    *,
    warmup: int = 1,
    after_each: Callable[[str, Any], None] | None = None,
) -> dict[str, list[Timing]]:
    """Run the variants round-robin (A, B, C, A, B, C...), ``repeats`` rounds after ``warmup`` discarded ones.

    The starting variant rotates every round, so no variant always runs right after the same other one.
    ``after_each(name, result)`` sees every result, warm-up included, outside the timed region.
    """
    names = list(variants)
    timings: dict[str, list[Timing]] = {name: [] for name in names}
    for round_index in range(warmup + repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            timing, result = timed(variants[name])
            if round_index >= warmup:
                timings[name].append(timing)
            if after_each is not None:
                after_each(name, result)
    return timings


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process so far (Linux ``/proc``; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    # After the command name: state is field 3, utime and stime are fields 14 and 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def summary(timings: Sequence[Timing]) -> dict[str, Any]:
    """Medians and the raw values of a variant's runs."""
    return {
        "runs": len(timings),
        "median_wall_s": round(median([t.wall for t in timings]), 4),
        "median_cpu_s": round(median([t.cpu for t in timings]), 4),
        "wall_s": [round(t.wall, 4) for t in timings],
        "cpu_s": [round(t.cpu, 4) for t in timings],
    }


def paired_ratio(ours: Sequence[Timing], theirs: Sequence[Timing], attribute: str = "wall") -> float:
    """Median over rounds of ours/theirs, each pair measured in the same round (robust to load drift)."""
    ratios = [getattr(a, attribute) / getattr(b, attribute) for a, b in zip(ours, theirs, strict=True)]
    return round(median(ratios), 3)


def as_dict(obj: Any) -> dict[str, Any]:
    return asdict(obj)


def machine() -> dict[str, Any]:
    """What the figures depend on: cores, Python, the load while the benchmark started."""
    import platform

    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in load],
    }
