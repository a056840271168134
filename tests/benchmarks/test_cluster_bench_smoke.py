"""The cluster benchmark's plumbing works: a private nats-server, a whole shard and gateways, an account
shard with one and two market shards, each acknowledging signed orders spread over their gateways'
ports and over every market, and a failover of each kind of shard (whole, account, market) that the
standby answers.

No speed is asserted: only that orders are acknowledged (none refused as replayed or stale), that every
configuration was measured and that the failover was observed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NATS_SERVER = "/usr/sbin/nats-server"


@pytest.mark.timeout(300)
@pytest.mark.skipif(
    shutil.which("wrk") is None or shutil.which("taskset") is None or not os.path.exists(NATS_SERVER),
    reason="needs wrk, taskset and nats-server",
)
def test_a_tiny_cluster_benchmark_run_acknowledges_orders_and_sees_a_failover(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.cluster",
            "--quick",
            "--duration",
            "1",
            "--users",
            "2",
            "--json",
            str(tmp_path / "runs.json"),
            "--out",
            str(tmp_path / "report.md"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=290,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = json.loads((tmp_path / "runs.json").read_text())
    runs = {run["target"]: run for run in data["runs"]}
    assert set(runs) == {"embedded", "whole-1", "split-1/1", "split-2/2"}
    for run in runs.values():
        assert run["acknowledged"] > 0, run
        assert run["other"] == {}, run  # no 401 (replayed, stale), no 4xx/5xx, no socket errors
        assert run["exhausted"] == 0, run
    for name in ("whole-1", "split-1/1", "split-2/2"):
        assert runs[name]["shard_cpu_us"] > 0 and runs[name]["gateway_cpu_us"] > 0, runs[name]
    for name in ("split-1/1", "split-2/2"):  # the account shard worked for every order
        assert runs[name]["account_cpu_us"] > 0, runs[name]
    assert (runs["split-2/2"]["gateways"], runs["split-2/2"]["market_shards"]) == (2, 2)
    for run in runs.values():  # the load reached every market (so every market shard) ...
        assert set(run["book_levels"]) == {"BTC/USD", "ETH/USD", "SOL/USD", "XRP/USD"}, run
        assert min(run["book_levels"].values()) > 0, run
    # ... and every gateway acknowledged orders
    assert len(runs["split-2/2"]["acknowledged_by_gateway"]) == 2
    assert min(runs["split-2/2"]["acknowledged_by_gateway"]) > 0, runs["split-2/2"]
    failovers = {failover["shard"]: failover for failover in data["failovers"]}
    assert sorted(failovers) == ["account", "market", "whole"]
    for failover in failovers.values():  # each kind of leader was killed and its standby answered
        assert failover["seconds"] is not None and failover["seconds"] > 0, failover
        assert failover["acknowledged_before"] > 0 and failover["acknowledged_after"] > 0, failover
    report = (tmp_path / "report.md").read_text()
    for kind in failovers:
        assert f"Failover time, {kind} shard" in report
    assert "account shard + 2 market shard(s) + 2 gateway(s)" in report
