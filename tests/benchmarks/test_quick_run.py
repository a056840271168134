"""The benchmark harness keeps working: a quick run of our engine completes and checks its books."""

from __future__ import annotations

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
    assert "mix" in report.read_text()
