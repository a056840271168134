"""benchmarks.binance_streams keeps working: a small run delivers every trade to every subscriber with
gap-free depth diffs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(240)
def test_quick_stream_benchmark_delivers_everything() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.binance_streams", "--subscribers", "3", "--trades", "12"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=230,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "3 subscribers x 12 trades" in result.stdout
    assert "0 trade events missing" in result.stdout and ", 0 gaps in U/u" in result.stdout
