"""The benchmark script runs end to end at tiny sizes (benchmarks are not timed tests: no figure is asserted).

Two runs: every section but the dlt peer, then the dlt peer alone (importing dlt and running its pipeline six
times costs about as much as the other sections together). Each has a generous time limit that only detects a
hang: a busy CI machine must not fail it. dlt is in the test extra, so the second run never skips.
"""

from __future__ import annotations

import json
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
