"""The server benchmark's plumbing works: unique signed requests, wrk's Lua script, the paced client.

No speed is asserted: only that requests are accepted (signed ones are not refused as replayed or
stale) and that the report names what it measured.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks.server_orders import SCENARIOS, Trader, order_body, write_requests
from benchmarks.server_profile import layer_of

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_order_bodies_of_one_user_never_repeat(scenario: str) -> None:
    bodies = {json.dumps(order_body(scenario, counter, 3), sort_keys=True) for counter in range(1, 50_001)}
    assert len(bodies) == 50_000


def test_requests_file_continues_the_counter_of_earlier_files(tmp_path: Path) -> None:
    traders = [Trader("a", "key-a", "secret-a"), Trader("b", "key-b", "secret-b")]
    write_requests(tmp_path / "one.tsv", "resting", traders, 100)
    write_requests(tmp_path / "two.tsv", "resting", traders, 100, start=100)
    lines = (tmp_path / "one.tsv").read_text().splitlines() + (tmp_path / "two.tsv").read_text().splitlines()
    keyed_bodies = {(line.split("\t")[0], line.split("\t")[4]) for line in lines}
    assert len(keyed_bodies) == 200
    assert all(len(line.split("\t")) == 5 and len(line.split("\t")[2]) == 64 for line in lines)


def test_profile_layers_by_module_and_thread() -> None:
    assert layer_of("/x/site-packages/starlette/routing.py", "MainThread").startswith("starlette")
    assert layer_of("/x/src/manticore_risk/checks.py", "MainThread") == "risk"
    assert layer_of("/x/site-packages/sqlalchemy/sql/base.py", "MainThread").startswith("storage")
    assert layer_of("/usr/lib/python3.11/json/decoder.py", "manticore-journal").startswith("journal")
    assert layer_of("/usr/lib/python3.11/json/decoder.py", "MainThread") == "JSON"


def _tiny_run(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """A one-second ``benchmarks.server --quick`` run with two users, its JSON runs and report in
    ``tmp_path``."""
    outputs = ["--json", str(tmp_path / "runs.json"), "--out", str(tmp_path / "report.md")]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.server",
            "--quick",
            "--duration",
            "1",
            "--users",
            "2",
            *arguments,
            *outputs,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=230,
    )


@pytest.mark.timeout(240)
@pytest.mark.skipif(shutil.which("wrk") is None or shutil.which("taskset") is None, reason="needs wrk")
def test_a_tiny_server_benchmark_run_gets_its_signed_orders_acknowledged(tmp_path: Path) -> None:
    result = _tiny_run(tmp_path, "--targets", "signed_resting", "--paced", "signed_resting")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = {run["target"]: run for run in json.loads((tmp_path / "runs.json").read_text())}
    signed = runs["signed_resting"]
    assert signed["acknowledged"] > 0
    assert signed["other"] == {}, signed["other"]  # no 401 (replayed, stale) and no 4xx/5xx
    assert signed["exhausted"] == 0
    paced = signed["paced"]
    assert paced["acknowledged"] == paced["sent"], paced
    report = (tmp_path / "report.md").read_text()
    assert "vs FastAPI" in report and "paced" in report


@pytest.mark.timeout(240)
@pytest.mark.skipif(shutil.which("wrk") is None or shutil.which("taskset") is None, reason="needs wrk")
def test_a_tiny_websocket_run_gets_orders_acknowledged_and_reports_the_clients_cpu(tmp_path: Path) -> None:
    result = _tiny_run(tmp_path, "--targets", "ws_resting")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (ws,) = json.loads((tmp_path / "runs.json").read_text())
    assert ws["target"] == "ws_resting" and ws["acknowledged"] > 0, ws
    assert ws["other"] == {}, ws["other"]  # no error answers and no request left unanswered
    assert ws["client_cpu_us"] > 0 and 0 < ws["client_busy"] <= 1.5, ws
    assert "The WebSocket load client" in (tmp_path / "report.md").read_text()
