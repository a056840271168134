"""The Binance-vs-native benchmark script runs end to end on a tiny load and every order is accepted on both
surfaces (no figure is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_binance_surface_benchmark_quick_run() -> None:
    command = [sys.executable, "-m", "benchmarks.binance_surface", "--clients", "2", "--orders", "5"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240, check=True)
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["native", "binance"]
    assert all(line.endswith("0 not accepted []") for line in lines[1:]), result.stdout
