"""The benchmark script runs end to end at tiny sizes (benchmarks are not timed tests: no figure is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("calls", "overhead", "latency", "memory", "parse", "alternative")


@pytest.mark.timeout(300)
def test_bench_smoke_writes_every_section(tmp_path: Path) -> None:
    output = tmp_path / "latest.json"
    readme = REPO_ROOT / "benchmarks" / "README.md"
    readme_before = readme.read_text(encoding="utf-8") if readme.exists() else None

    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "run.py"), "--smoke", "--output", str(output)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,  # a hang detector, not a speed claim: the figures of a smoke run are not judged
        check=False,
    )

    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads(output.read_text(encoding="utf-8"))
    assert set(SECTIONS) <= set(results["sections"])
    assert results["meta"]["profile"] == "smoke"
    assert results["meta"]["machine"]["cpu_count"] >= 1
    for name in SECTIONS:
        assert "target" in results["sections"][name] or name == "alternative", name
    # Call counts are exact, not timings: they hold at any size.
    assert results["sections"]["calls"]["met"]
    assert "| measurement | target | result | met |" in proc.stdout
    # A smoke run never rewrites the published figures.
    assert (readme.read_text(encoding="utf-8") if readme.exists() else None) == readme_before
