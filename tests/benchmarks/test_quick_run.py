"""The benchmark harness keeps working: a quick run of our engine completes and checks its books.

It covers every workload, the user-convention ones (keyword calls; float, str and Decimal inputs; IOC
sweeps) included: a run that fails or mismatches the reference book exits non-zero.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(240)
def test_quick_benchmark_of_our_engine_runs_and_verifies_its_books(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--quick",
            "--engines",
            "ours",
            "--no-memory",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=230,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = tmp_path / "benchmarks.md"
    assert report.exists(), sorted(p.name for p in tmp_path.iterdir())
    text = report.read_text()
    assert "## Headline: the book called the way users call it" in text
    for row in (
        "| user mix (float) |",
        "| user mix (str) |",
        "| user mix (Decimal) |",
        "| user deep sweeps |",
    ):
        assert row in text
    assert "user mix (float) + subscriber" in text
    assert "| realistic mix |" in text
    results = json.loads((ROOT / "benchmarks" / ".build" / "results-quick.json").read_text())
    user_runs = [r for r in results["runs"] if r["workload"].startswith("user_")]
    assert user_runs and all(r["keywords"] and not r["problems"] for r in user_runs)
