"""The benchmark script runs end to end at tiny sizes (benchmarks are not timed tests: no figure is asserted).

Two runs: every section but the dlt peer, then the dlt peer alone (importing dlt and running its pipeline six
times costs about as much as the other sections together). Each has a generous time limit that only detects a
hang: a busy CI machine must not fail it. dlt is in the test extra, so the second run never skips.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("calls", "overhead", "latency", "memory", "parse", "alternative")
README = REPO_ROOT / "benchmarks" / "README.md"


def _readme() -> str | None:
    return README.read_text(encoding="utf-8") if README.exists() else None


def _smoke(
    output: Path, sections: tuple[str, ...], budget: float = 240
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    only = [arg for section in sections for arg in ("--only", section)]
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "run.py"), "--smoke", *only, "--output", str(output)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=budget,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc, json.loads(output.read_text(encoding="utf-8"))


@pytest.mark.timeout(300)
def test_bench_smoke_writes_every_section(tmp_path: Path) -> None:
    readme_before = _readme()
    proc, results = _smoke(tmp_path / "latest.json", SECTIONS)

    assert set(SECTIONS) <= set(results["sections"])
    assert results["meta"]["profile"] == "smoke"
    assert results["meta"]["machine"]["cpu_count"] >= 1
    for name in SECTIONS:
        assert "target" in results["sections"][name] or name == "alternative", name
    # Call counts are exact, not timings: they hold at any size.
    assert results["sections"]["calls"]["met"]
    assert "| measurement | target | result | met |" in proc.stdout
    # A smoke run never rewrites the published figures.
    assert _readme() == readme_before


@pytest.mark.timeout(300)
def test_bench_smoke_dlt_peer(tmp_path: Path) -> None:
    readme_before = _readme()
    proc, results = _smoke(tmp_path / "latest.json", ("dlt",))

    dlt = results["sections"]["dlt"]
    assert dlt["datasets"] == 300
    assert "target" in dlt
    # Every variant ingested the 300 datasets in the minimum of 3 batch calls; dlt fetched one token.
    assert {name: calls["batch_calls"] for name, calls in dlt["calls"].items()} == {
        "operator": 3,
        "bare+write": 3,
        "dlt": 3,
    }
    assert {name: calls["datasets"] for name, calls in dlt["calls"].items()} == {
        "operator": 300,
        "bare+write": 300,
        "dlt": 300,
    }
    assert dlt["calls"]["dlt"]["token_requests"] == 1
    assert [case["fault"] for case in dlt["faults"]] == [
        "429 + Retry-After: 1",
        "503 once",
        "token revoked mid-run (401)",
    ]
    # Ours survives all three faults; dlt's outcome is reported, whatever it is.
    assert all(case["ours (hook get_datasets)"]["outcome"] == "complete" for case in dlt["faults"])
    assert all(case["dlt (RESTClient)"]["outcome"] for case in dlt["faults"])
    assert "**7. dlt peer**" in proc.stdout
    assert _readme() == readme_before


@pytest.mark.timeout(300)
def test_bench_smoke_ratelimit(tmp_path: Path) -> None:
    """Section 8 at N = 1,000: both runs complete, and every 429 the server sent is one the manifest counted."""
    readme_before = _readme()
    proc, results = _smoke(tmp_path / "latest.json", ("ratelimit",))

    section = results["sections"]["ratelimit"]
    assert (section["datasets"], section["server_limit"], section["min_batch_calls"]) == (1_000, 3, 10)
    assert "target" in section
    assert section["ledger_agrees"]
    adaptive, told = (section["runs"][name] for name in section["runs"])
    for run in adaptive + told:
        assert run["emulator_max_in_flight"] <= 3
        assert run["rate_limited_calls"] == run["ledger_429"]
        assert run["batch_calls"] == 10 + run["ledger_429"]  # each 429 was retried once more, nothing else
        assert 1 <= run["final_in_flight"] <= run["max_in_flight"]
    assert [run["max_in_flight"] for run in adaptive + told] == [8, 3]
    assert "**8. Server limit of 3 calls in flight**" in proc.stdout
    assert _readme() == readme_before


def test_bench_smoke_full_release(tmp_path: Path) -> None:
    """Section 8 at a tiny size: 2,000 datasets x 150 indicators (2 calls per batch of 100) in parts of at most
    400 datasets, a run SIGKILLed once half its parts are committed, then its retry.

    Call counts are exact at any size: the clean run makes the minimum of batch calls, the retry scores only
    the parts the killed run had not committed, and its parts equal the clean run's byte for byte.
    """
    readme_before = _readme()
    proc, results = _smoke(tmp_path / "latest.json", ("release",))

    release = results["sections"]["release"]
    assert (release["datasets"], release["indicators"], release["partition_size"]) == (2_000, 150, 400)
    parts = release["parts"]
    assert 5 <= parts <= 2_000 // 100  # content-defined parts: about half of partition_size, never more
    clean, killed, retry = release["clean"], release["killed"], release["retry"]
    assert clean["batch_calls"] == clean["min_batch_calls"] == clean["scored_calls"] == 40
    assert clean["records"] == 2_000 * 150
    assert clean["latency_bound_seconds"] == pytest.approx(40 * 0.010 / 8)
    assert clean["maxrss_mb"] > 0
    assert killed["returncode"] == -signal.SIGKILL  # no on_kill, no finally
    assert parts // 2 <= killed["parts_at_kill"] < parts
    assert 0 < retry["scored_calls"] == retry["expected_scored_calls"] < clean["scored_calls"]
    assert (retry["reused_parts"], retry["fetched_parts"]) == (killed["parts_at_kill"], parts - killed["parts_at_kill"])
    assert retry["partial_files_left"] == 0
    assert retry["identical_to_clean"] is True
    assert release["met"] is True
    # Issue 24's rows: client CPU and peak RSS against their targets, elapsed against its bounds (reported).
    assert [row["measurement"] for row in release["targets"]] == [
        "client CPU",
        "elapsed against its bounds",
        "peak RSS",
    ]
    assert [row["met"] is None for row in release["targets"]] == [False, True, False]
    assert "| 9. Full release, N=2,000, K=150: client CPU | <= 15 s |" in proc.stdout
    assert "**9. Full release**" in proc.stdout
    assert _readme() == readme_before


def _report_module() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_report", REPO_ROOT / "benchmarks" / "report.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _meta(command: str) -> dict[str, Any]:
    """The ``meta`` of a default-profile run of ``command`` on an idle 2-core machine."""
    return {
        "command": command,
        "date": "2026-11-28 22:00 UTC",
        "duration_s": 300.0,
        "profile": "default",
        "machine": {"cpu_count": 2, "usable_cpus": 2, "python": "3.11.7", "load_average_at_start": [1.0, 1.0, 1.0]},
    }


def test_a_release_only_run_rewrites_only_the_release_block_of_the_readme(tmp_path: Path) -> None:
    """`--only release --readme` (minutes on its own) must not wipe the figures of sections 1 to 7."""
    report = _report_module()
    readme = tmp_path / "README.md"
    readme.write_text(f"# Benchmarks\n\n{report.START}\nmain figures\n{report.END}\n", encoding="utf-8")
    meta = _meta("benchmarks/run.py --only release --readme")
    release = {
        "target": "t",
        "met": True,
        "datasets": 25_000,
        "indicators": 250,
        "latency_ms": 100.0,
        "partition_size": 1_000,
        "parts": 25,
        "max_in_flight": 8,
        "method": "m",
        "clean": {
            "seconds": 90.0,
            "latency_bound_seconds": 9.375,
            "ratio_to_bound": 9.6,
            "batch_calls": 750,
            "min_batch_calls": 750,
            "scored_calls": 750,
            "emulator_max_in_flight": 8,
            "maxrss_after_imports_mb": 150.0,
            "maxrss_mb": 200.0,
            "records": 6_250_000,
            "bytes": 70_000_000,
        },
        "killed": {"seconds_to_kill": 40.0, "returncode": -9, "parts_at_kill": 12, "partial_files_left": 1},
        "retry": {
            "seconds": 50.0,
            "scored_calls": 390,
            "expected_scored_calls": 390,
            "time_vs_clean": 0.56,
            "calls_vs_clean": 0.52,
            "maxrss_mb": 190.0,
            "reused_parts": 12,
            "fetched_parts": 13,
            "partial_files_left": 0,
            "identical_to_clean": True,
        },
    }
    report.update_readme(readme, {"meta": meta, "sections": {"release": release}})
    text = readme.read_text(encoding="utf-8")
    assert f"{report.START}\nmain figures\n{report.END}" in text
    block = text.split(report.RELEASE_START, 1)[1].split(report.RELEASE_END, 1)[0]
    assert "| 9. Full release, N=25,000, K=250, 100 ms |" in block
    assert "12 committed, 1 `.partial` left" in block
    assert "750 batch calls x 100 ms / 8 in flight = 9.375 s" in block


@pytest.mark.timeout(300)
def test_bench_smoke_columnar(tmp_path: Path) -> None:
    """Section 10 at 200 datasets x 150 indicators: both outputs and the floor measured, a ratio per output."""
    readme_before = _readme()
    proc, results = _smoke(tmp_path / "latest.json", ("columnar",))

    columnar = results["sections"]["columnar"]
    assert (columnar["datasets"], columnar["indicators"], columnar["rows"]) == (200, 150, 30_000)
    assert columnar["batch_calls"] == 4
    assert set(columnar["cpu_per_row_us"]) == {"parquet", "jsonl", "floor"}
    assert all(value > 0 for value in columnar["cpu_per_row_us"].values())
    limits = {"parquet": 2.5, "jsonl": 3.0}
    assert [target["output"] for target in columnar["targets"]] == list(limits)
    assert all(target["met"] == (target["ratio"] <= limits[target["output"]]) for target in columnar["targets"])
    assert all(size > 0 for size in columnar["bytes"].values())
    # A profile per output, by each thread's CPU clock: the shares of the profiled total.
    assert set(columnar["profile"]) == {"parquet", "jsonl"}
    assert all(0 < len(ranked) <= 12 for ranked in columnar["profile"].values())
    assert all(0 <= entry["share_pct"] <= 100 for ranked in columnar["profile"].values() for entry in ranked)
    assert "Where the parquet run's CPU goes" in proc.stdout
    assert columnar["emulator_ms_per_100x100_call"] > 0
    assert "| 10. Client CPU per scored row, parquet, N=200, K=150" in proc.stdout
    assert "**10. Client CPU per scored row**" in proc.stdout
    assert _readme() == readme_before


def test_a_columnar_only_run_rewrites_only_the_columnar_block_of_the_readme(tmp_path: Path) -> None:
    """`--only columnar --readme` fills its own block and leaves the main and the release blocks alone."""
    report = _report_module()
    readme = tmp_path / "README.md"
    readme.write_text(
        f"{report.START}\nmain\n{report.END}\n{report.RELEASE_START}\nrelease\n{report.RELEASE_END}\n"
        f"{report.COLUMNAR_START}\nplaceholder\n{report.COLUMNAR_END}\n",
        encoding="utf-8",
    )
    meta = _meta("benchmarks/run.py --only columnar --readme")
    columnar = {
        "target": "t",
        "met": False,
        "datasets": 2_000,
        "indicators": 250,
        "rows": 500_000,
        "rounds": 3,
        "batch_calls": 60,
        "method": "m",
        "cpu_per_row_us": {"parquet": 6.0, "jsonl": 1.5, "floor": 0.6},
        "ratios": {"parquet": 10.0, "jsonl": 2.5},
        "targets": [
            {"output": "parquet", "target": "<= 2.5x", "ratio": 10.0, "met": False},
            {"output": "jsonl", "target": "<= 3x", "ratio": 2.5, "met": True},
        ],
        "bytes": {"parquet": 1, "jsonl": 2, "floor": 3},
    }
    report.update_readme(readme, {"meta": meta, "sections": {"columnar": columnar}})
    text = readme.read_text(encoding="utf-8")
    assert f"{report.START}\nmain\n{report.END}" in text
    assert f"{report.RELEASE_START}\nrelease\n{report.RELEASE_END}" in text
    block = text.split(report.COLUMNAR_START, 1)[1].split(report.COLUMNAR_END, 1)[0]
    assert "6.0 us per row against the floor's 0.6 us: 10.0x | **MISSED** |" in block
    assert "1.5 us per row against the floor's 0.6 us: 2.5x | yes |" in block
    assert "placeholder" not in block
