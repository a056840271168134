"""Acknowledged orders per second through the real server, beside the HTTP stack alone (issue 17).

One invocation measures, in interleaved repeats (each repeat runs every target once, in order, each
on a fresh server and data directory):

* ``raw_asgi``: a raw ASGI callable (``benchmarks/reference_apps/raw_asgi.py``) answering the JSON
  POST, and ``fastapi``: a bare FastAPI app with a pydantic order model
  (``reference_apps/fastapi_app.py``); both under uvicorn with uvloop, httptools and no access log;
* ``signed_resting`` / ``signed_crossing``: ``manticore serve`` (its defaults) with signed
  ``POST /api/orders`` (unique requests signed just before each run; the server accepts timestamps up
  to 30 s old and none from before it started), orders that rest, or a crossing mix that fills between
  several funded users; ``noauth_resting``: the same server with ``--no-auth``;
* ``ws_resting``: WebSocket order entry (``order.place`` on ``/ws``, issue 17 point 2) from a
  pipelined client; "n/a" when the server does not support it.

The HTTP load generator is ``wrk`` (``benchmarks/server_wrk.lua`` replays the pre-generated requests;
64 connections) for the maximum rate; only 201 answers count, others are reported apart. Then, on
the same server, the open-loop paced client (``benchmarks/server_client.py``) sends at half of that
rate and reports latency percentiles from each request's due time, and the server's GC pauses over
that run from ``GET /api/metrics/gc`` (n/a when the server has no such endpoint), the journal's
``fsync`` rounds per second and records per round over it (``manticore_journal_batches`` and
``manticore_journal_durable`` from ``GET /metrics``), and whether an
automatic checkpoint was installed during it: ``manticore serve`` runs with ``--checkpoint-every
20000`` here (``--checkpoint-every``; the server's default is 100,000), so that every paced window,
which sends more records than that at this machine's rates, holds at least one background
checkpoint; the report names the checkpoint positions before and after each window. The server is
pinned to one core and every load generator to the other (taskset). Server CPU per acknowledged
request is read from ``/proc/PID/stat``.

Every server gets a config (``--config``) with the default market and price band but a
10,000,000-order rate limit and open-order limit, so the per-user limits of the defaults (100 orders/s,
500 open orders) do not refuse the load.

Run: ``python -m benchmarks.server`` (``make bench-server``; ``--help`` for options; ``--quick`` for a
smoke run). Needs Linux (``/proc``); installs Debian's ``wrk`` with apt-get when missing (as root).
Exit status 1 when a run failed (the report still shows the others and the failure's reason).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .http_support import cpu_seconds, free_port, signed_headers
from .server_orders import Trader, write_requests

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "server_wrk.lua"
_CHECKPOINT_POSITION = re.compile(rb'"position"\s*:\s*(\d+)')
_JOURNAL_SERIES = re.compile(r"^manticore_journal_(batches|durable) (\S+)$", re.MULTILINE)

CONFIG = """\
[[markets]]
symbol = "BTC/USD"
base_asset = "BTC"
quote_asset = "USD"
tick_size = "0.01"
lot_size = "0.00001"
maker_fee_rate = "0.001"
taker_fee_rate = "0.002"

[risk]
price_band = "0.10"
max_open_orders = 10000000
rate_limit_orders = 10000000
rate_limit_window = 1.0
"""


@dataclass(frozen=True)
class Target:
    """One thing to measure."""

    name: str
    label: str
    app: str  # raw_asgi, fastapi or manticore
    scenario: str = "resting"
    signed: bool = False
    transport: str = "http"  # http or ws


REFERENCE_MODULES = {"raw_asgi": "raw_asgi", "fastapi": "fastapi_app"}

TARGETS = (
    Target("raw_asgi", "raw ASGI callable (uvicorn + uvloop + httptools), JSON POST", "raw_asgi"),
    Target("fastapi", "FastAPI + pydantic model POST", "fastapi"),
    Target("signed_resting", "`manticore serve`, signed POST /api/orders, resting", "manticore", signed=True),
    Target(
        "signed_crossing",
        "`manticore serve`, signed POST /api/orders, crossing mix",
        "manticore",
        scenario="crossing",
        signed=True,
    ),
    Target("noauth_resting", "`manticore serve --no-auth`, POST /api/orders, resting", "manticore"),
    Target(
        "ws_resting",
        "`manticore serve`, WebSocket order.place (signed auth), resting",
        "manticore",
        signed=True,
        transport="ws",
    ),
)


@dataclass
class Settings:
    duration: float
    warmup: float
    connections: int
    users: int
    ws_window: int
    paced: tuple[str, ...]
    python: str
    server_cpu: str | None
    load_cpu: str | None
    server_args: tuple[str, ...]
    keep_logs: Path | None
    checkpoint_every: int = 100_000
    timeline: Path | None = None
    paced_rate: float | None = None


@dataclass
class Run:
    """One measurement of one target in one repeat."""

    target: str
    repeat: int
    rate: float | None = None
    acknowledged: int = 0
    other: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    cpu_us: float | None = None
    client_cpu_us: float | None = None  # the load client's own CPU per acknowledged request (WebSocket)
    client_busy: float | None = None  # the share of its core the load client used (WebSocket)
    exhausted: int = 0
    note: str = ""
    paced: dict[str, Any] | None = None
    gc: dict[str, Any] | None = None


# ---------------------------------------------------------------------------------------------- tools


def ensure_wrk() -> str:
    """The path of wrk; installs Debian's package when it is missing and we are root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (Debian) and run again")
    print("installing wrk with apt-get ...", flush=True)
    if subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("apt-get did not install wrk")
    return found


def pinned(cpu: str | None, command: list[str]) -> list[str]:
    """``command`` run on core ``cpu`` (taskset), or unpinned when cpu is None."""
    return ["taskset", "-c", cpu, *command] if cpu is not None else command


def median_text(values: list[float], digits: int = 0) -> str:
    """``median [min-max]`` of ``values`` (or n/a)."""
    if not values:
        return "n/a"
    fmt = f"{{:,.{digits}f}}"
    middle = fmt.format(statistics.median(values))
    if len(values) == 1:
        return middle
    return f"{middle} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


# ---------------------------------------------------------------------------------------------- servers


class Server:
    """One server process (reference app or ``manticore serve``) on a fresh port and data directory."""

    def __init__(
        self,
        target: Target,
        settings: Settings,
        workdir: Path,
        log_name: str,
        entry: tuple[str, ...] = ("-m", "manticore_api.cli"),
    ) -> None:
        """Start the server (``entry``: how the interpreter runs the ``manticore`` command line)."""
        self.target = target
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = workdir / f"data-{log_name}"
        self.log_path = workdir / f"{log_name}.log"
        self.traders: list[Trader] = []
        self.counter = 0  # requests written so far (keeps every order body of a user distinct)
        python = settings.python
        if target.app == "manticore":
            config = workdir / "bench.toml"
            config.write_text(CONFIG)
            command = [python, *entry, "serve", "--port", str(self.port)]
            command += ["--data-dir", str(self.data), "--config", str(config)]
            command += ["--checkpoint-every", str(settings.checkpoint_every), *settings.server_args]
            if not target.signed:
                command.append("--no-auth")
        else:
            command = [
                python,
                "-m",
                "uvicorn",
                f"benchmarks.reference_apps.{REFERENCE_MODULES[target.app]}:app",
            ]
            command += ["--host", "127.0.0.1", "--port", str(self.port), "--loop", "uvloop"]
            command += ["--http", "httptools", "--no-access-log", "--log-level", "warning"]
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            pinned(settings.server_cpu, command), cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        path = "/api/health" if self.target.app == "manticore" else "/"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: see {self.log_path}\n{self.log_path.read_text()[-2000:]}")
            try:
                httpx.get(self.url + path, timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def setup_traders(self, count: int) -> None:
        """Create and fund ``count`` traders (manticore), or name them (reference apps)."""
        if self.target.app != "manticore":
            self.traders = [Trader(f"t{n}") for n in range(count)]
            return
        with httpx.Client(base_url=self.url, timeout=60) as http:
            if self.target.signed:
                admin = json.loads((self.data / "admin-credentials.json").read_text())
                for n in range(count):
                    created = self._admin(http, admin, "/api/users", {"username": f"t{n}"})
                    self.traders.append(Trader(f"t{n}", created["api_key"], created["api_secret"]))
                    self._fund(http, admin, created["user_id"])
            else:
                for n in range(count):
                    self.traders.append(Trader(f"t{n}"))
                    self._fund(http, None, f"t{n}")

    def _admin(self, http: httpx.Client, admin: dict[str, str] | None, path: str, payload: object) -> Any:
        body = json.dumps(payload).encode()
        headers = {"content-type": "application/json"}
        if admin is not None:
            headers = signed_headers(admin["api_key"], admin["api_secret"], "POST", path, body)
        response = http.post(path, content=body, headers=headers)
        if response.status_code != 201:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
        return response.json()

    def _fund(self, http: httpx.Client, admin: dict[str, str] | None, user_id: str) -> None:
        for asset, amount in (("USD", "1000000000000"), ("BTC", "10000000")):
            self._admin(http, admin, "/api/deposits", {"user_id": user_id, "asset": asset, "amount": amount})

    def requests_file(self, path: Path, count: int) -> Path:
        """A fresh requests file of ``count`` orders (signed now)."""
        write_requests(path, self.target.scenario, self.traders, count, start=self.counter)
        self.counter += count
        return path

    def checkpoint_position(self) -> int | None:
        """The journal position of the data directory's checkpoint file (0: none yet; None: not a
        manticore server). Reads only the head of the file, where ``position`` is written."""
        if self.target.app != "manticore":
            return None
        try:
            with (self.data / "checkpoint.json").open("rb") as file:
                head = file.read(4096)
        except FileNotFoundError:
            return 0
        found = _CHECKPOINT_POSITION.search(head)
        if found is None:
            raise RuntimeError(f"no position at the head of {self.data / 'checkpoint.json'}")
        return int(found.group(1))

    def journal_counters(self) -> tuple[float, float] | None:
        """``(manticore_journal_batches, manticore_journal_durable)`` from ``GET /metrics`` (the
        journal's group commits, i.e. its fsync rounds, and its durable position), or None when the
        server has no such series."""
        if self.target.app != "manticore":
            return None
        try:
            response = httpx.get(self.url + "/metrics", timeout=10)
        except httpx.TransportError:
            return None
        if response.status_code != 200:
            return None
        found = dict(_JOURNAL_SERIES.findall(response.text))
        try:
            return float(found["batches"]), float(found["durable"])
        except (KeyError, ValueError):
            return None

    def gc_metrics(self) -> dict[str, Any] | None:
        """``GET /api/metrics/gc`` (issue 17 interface 1), or None when the server has none."""
        if self.target.app != "manticore":
            return None
        try:
            response = httpx.get(self.url + "/api/metrics/gc", timeout=10)
        except httpx.TransportError:
            return None
        if response.status_code != 200:
            return None
        try:
            data = response.json()
        except ValueError:
            return None
        return data if isinstance(data, dict) and "pauses" in data else None


@contextlib.contextmanager
def serving(
    target: Target,
    settings: Settings,
    workdir: Path,
    name: str,
    entry: tuple[str, ...] = ("-m", "manticore_api.cli"),
) -> Iterator[Server]:
    """A started server with its traders set up; stopped (and its data directory removed) on exit."""
    server = Server(target, settings, workdir, name, entry)
    try:
        server.wait_ready()
        server.setup_traders(settings.users)
        yield server
    finally:
        server.stop()
        if settings.keep_logs is not None:
            settings.keep_logs.mkdir(parents=True, exist_ok=True)
            shutil.copy(server.log_path, settings.keep_logs / server.log_path.name)
        shutil.rmtree(server.data, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- loads


def run_wrk(wrk: str, settings: Settings, server: Server, requests: Path, seconds: float) -> dict[str, Any]:
    command = [wrk, "-t1", f"-c{settings.connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    command += ["-s", str(LUA), server.url, "--", str(requests), "1"]
    done = subprocess.run(
        pinned(settings.load_cpu, command), capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("WRKJSON "):
            result: dict[str, Any] = json.loads(line[8:])
            return result
    raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}")


def run_client(settings: Settings, arguments: list[str], timeout: float) -> dict[str, Any]:
    command = pinned(settings.load_cpu, [sys.executable, "-m", "benchmarks.server_client", *arguments])
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"client failed: {done.stderr[-1500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def pool_size(target: Target, rate_guess: float, seconds: float) -> int:
    """How many requests to pre-generate for ``seconds`` of load: enough for 3x the rate seen in the
    warm-up when they are signed (a signed request cannot be sent twice), else a pool wrk cycles."""
    if not target.signed:
        return 20_000
    return int(min(2_000_000, max(20_000, 3 * rate_guess * seconds)))


def measure_http(wrk: str, target: Target, settings: Settings, workdir: Path, repeat: int) -> Run:
    run = Run(target.name, repeat)
    with serving(target, settings, workdir, f"{target.name}-{repeat}") as server:
        warm = run_wrk(
            wrk, settings, server, server.requests_file(workdir / "warm.tsv", 30_000), settings.warmup
        )
        warm_rate = warm["status"].get("201", 0) / max(warm["duration_us"] / 1e6, 1e-9)
        count = pool_size(target, warm_rate, settings.duration)
        requests = server.requests_file(workdir / "load.tsv", count)
        cpu_before = server.cpu()
        result = run_wrk(wrk, settings, server, requests, settings.duration)
        cpu_used = server.cpu() - cpu_before
        run.seconds = result["duration_us"] / 1e6
        statuses = {str(k): int(v) for k, v in result["status"].items()}
        run.acknowledged = statuses.pop("201", 0)
        run.other = {k: v for k, v in statuses.items() if v}
        errors = {k: v for k, v in result["errors"].items() if v and k != "status"}
        if errors:
            run.other.update({f"socket {k}": v for k, v in errors.items()})
        run.rate = run.acknowledged / run.seconds if run.seconds else 0.0
        run.p50_ms = result["latency_us"]["p50"] / 1000
        run.p99_ms = result["latency_us"]["p99"] / 1000
        run.cpu_us = cpu_used / run.acknowledged * 1e6 if run.acknowledged else None
        run.exhausted = int(result["exhausted"]) if target.signed else 0
        if target.name in settings.paced and run.rate:
            rate = settings.paced_rate if settings.paced_rate else run.rate / 2
            run.paced, run.gc = measure_paced(target, settings, workdir, server, rate)
    return run


def checkpoint_cell(paced: dict[str, Any]) -> str:
    """The report's cell for the checkpoint file's positions around a paced window (n/a: a reference
    app)."""
    before, after = paced.get("checkpoint_positions") or (None, None)
    if before is None or after is None:
        return "n/a"
    return f"{before:,} -> {after:,}" + (" (installed in window)" if after != before else "")


def journal_cell(paced: dict[str, Any]) -> str:
    """The report's cell for the journal's fsync rounds per second over a paced window and the
    records each made durable on average (n/a: a reference app or no ``/metrics``)."""
    journal = paced.get("journal")
    if not journal:
        return "n/a"
    per_round = journal["records_per_round"]
    return f"{journal['rounds_per_s']:,.0f} ({'n/a' if per_round is None else f'{per_round:.1f}'})"


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` itself (all its threads; not its child processes,
    so not a background checkpoint's forked writer), from /proc; 0 for a process that is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def core_busy_seconds(cpu: str | None) -> tuple[float, float] | None:
    """(busy, total) seconds of CPU ``cpu`` since boot from /proc/stat (busy: everything but idle and
    I/O wait, whoever ran: the server's threads, its forked checkpoint writers, its storage writer
    process, anything else); None when the server is not pinned to one CPU or there is no /proc."""
    if cpu is None or not cpu.isdigit():
        return None
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, *values = line.split()
        if name == f"cpu{cpu}":
            ticks = [int(value) for value in values[:8]]
            idle = ticks[3] + ticks[4]
            scale = os.sysconf("SC_CLK_TCK")
            return (sum(ticks) - idle) / scale, sum(ticks) / scale
    return None


def server_cpu_cell(paced: dict[str, Any]) -> str:
    """The report's cell for the serving process's CPU over a paced window (its threads, not its
    child processes): microseconds per acknowledged request and the share of one core (n/a when the
    window acknowledged nothing), then how busy the server's core was over the window (every process
    on it: the forked checkpoint writers too) when the server is pinned."""
    cpu = paced.get("server_cpu")
    if not cpu:
        return "n/a"
    core = f"; core {paced['core_busy'] * 100:.0f}% busy" if paced.get("core_busy") is not None else ""
    return f"{cpu['us_per_request']:,.0f} ({cpu['share'] * 100:.0f}%{core})"


def measure_paced(
    target: Target, settings: Settings, workdir: Path, server: Server, rate: float
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    count = max(1, int(rate * settings.duration))
    requests = server.requests_file(workdir / "paced.tsv", count)
    gc_before = server.gc_metrics()
    journal_before = server.journal_counters()
    checkpoint_before = server.checkpoint_position()
    cpu_before = process_cpu_seconds(server.process.pid)
    core_before = core_busy_seconds(settings.server_cpu)
    arguments = ["paced", "--url", server.url, "--requests", str(requests), "--rate", f"{rate:.3f}"]
    arguments += ["--connections", str(settings.connections)]
    if settings.timeline is not None:
        settings.timeline.mkdir(parents=True, exist_ok=True)
        arguments += ["--timeline", str(settings.timeline / f"{server.log_path.stem}.json")]
    paced = run_client(settings, arguments, timeout=settings.duration * 3 + 120)
    cpu_used = process_cpu_seconds(server.process.pid) - cpu_before
    core_after = core_busy_seconds(settings.server_cpu)
    if core_before is not None and core_after is not None and core_after[1] > core_before[1]:
        paced["core_busy"] = (core_after[0] - core_before[0]) / (core_after[1] - core_before[1])
    if paced.get("seconds") and paced.get("acknowledged"):
        paced["server_cpu"] = {
            "us_per_request": cpu_used / paced["acknowledged"] * 1e6,
            "share": cpu_used / paced["seconds"],
        }
    gc_after = server.gc_metrics()
    journal_after = server.journal_counters()
    paced["checkpoint_positions"] = [checkpoint_before, server.checkpoint_position()]
    if journal_before is not None and journal_after is not None and paced.get("seconds"):
        rounds = journal_after[0] - journal_before[0]
        records = journal_after[1] - journal_before[1]
        paced["journal"] = {
            "rounds_per_s": rounds / paced["seconds"],
            "records_per_round": records / rounds if rounds else None,
        }
    gc: dict[str, Any] | None = None
    if gc_before is not None and gc_after is not None:
        gc = {
            "pauses": gc_after["pauses"] - gc_before["pauses"],
            "pauses_over_10ms": gc_after["pauses_over_10ms"] - gc_before["pauses_over_10ms"],
            "total_pause_ms": round(gc_after["total_pause_ms"] - gc_before["total_pause_ms"], 3),
            "max_pause_ms_since_start": gc_after["max_pause_ms"],
            "collections": [
                a - b for a, b in zip(gc_after["collections"], gc_before["collections"], strict=False)
            ],
        }
    return paced, gc


def measure_ws(target: Target, settings: Settings, workdir: Path, repeat: int) -> Run:
    run = Run(target.name, repeat)
    with serving(target, settings, workdir, f"{target.name}-{repeat}") as server:
        users = workdir / "ws-users.json"
        users.write_text(
            json.dumps(
                [{"api_key": t.api_key, "api_secret": t.api_secret, "user": t.user} for t in server.traders]
            )
        )
        base = ["ws", "--url", server.url, "--users", str(users), "--window", str(settings.ws_window)]
        base += ["--scenario", target.scenario]
        warm = run_client(settings, [*base, "--duration", str(settings.warmup)], settings.warmup + 120)
        if not warm.get("supported"):
            run.note = "n/a: no WebSocket order entry (" + "; ".join(warm.get("error", []))[:120] + ")"
            return run
        cpu_before = server.cpu()
        result = run_client(settings, [*base, "--duration", str(settings.duration)], settings.duration + 120)
        cpu_used = server.cpu() - cpu_before
        statuses = {str(k): int(v) for k, v in result["status"].items()}
        run.acknowledged = statuses.pop("201", 0)
        run.other = {k: v for k, v in statuses.items() if v}
        run.seconds = result["seconds"]
        run.rate = run.acknowledged / run.seconds if run.seconds else 0.0
        run.p50_ms = result["latency_ms"]["p50"]
        run.p99_ms = result["latency_ms"]["p99"]
        run.cpu_us = cpu_used / run.acknowledged * 1e6 if run.acknowledged else None
        client_cpu = result.get("client_cpu_s")
        if client_cpu is not None and run.acknowledged and run.seconds:
            run.client_cpu_us = client_cpu / run.acknowledged * 1e6
            run.client_busy = client_cpu / run.seconds
    return run


# ---------------------------------------------------------------------------------------------- report


def in_process_reports(timeout: float) -> list[str]:
    """The output of the in-process benchmarks of the exchange and of risk, when they exist.

    Risk runs 25 interleaved repeats, not its default 5: its figure for risk's own code is the
    difference of two medians (book + risk minus book + events), and with 5 repeats one slow stretch
    of the machine moved it from 0.98x to 1.10x or 0.20x of the book (session 26); ~30 s more.
    """
    lines: list[str] = []
    extra = {"exchange": [], "risk": ["--repeats", "25"]}
    for module in ("exchange", "risk"):
        if not (ROOT / "benchmarks" / f"{module}.py").exists():
            lines.append(f"* `python -m benchmarks.{module}`: not present in this tree (n/a)")
            continue
        command = [sys.executable, "-m", f"benchmarks.{module}", *extra[module]]
        try:
            done = subprocess.run(
                command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
            )
            output = (done.stdout + done.stderr).strip()
        except subprocess.TimeoutExpired:
            output = f"timed out after {timeout:.0f} s"
        lines.append(f"* `python -m benchmarks.{module}`:")
        lines += ["", "```", *output.splitlines()[-30:], "```", ""]
    return lines


def report(runs: list[Run], settings: Settings, header: list[str]) -> str:
    by: dict[str, list[Run]] = {}
    for run in runs:
        by.setdefault(run.target, []).append(run)

    def rates(name: str) -> list[float]:
        return [r.rate for r in by.get(name, []) if r.rate]

    def median_rate(name: str) -> float | None:
        values = rates(name)
        return statistics.median(values) if values else None

    fastapi = median_rate("fastapi")
    raw = median_rate("raw_asgi")
    lines = [*header, ""]
    lines.append(
        "| what | acknowledged (201) req/s, median [min-max] | other answers (total) | p50 / p99 ms "
        "| server CPU µs per request | vs FastAPI | vs raw ASGI |"
    )
    lines.append("|---|---:|---|---:|---:|---:|---:|")
    for target in TARGETS:
        chosen = by.get(target.name)
        if not chosen:
            continue
        if not rates(target.name):
            note = next((r.note for r in chosen if r.note), "n/a")
            lines.append(f"| {target.label} | {note} | | | | | |")
            continue
        other: dict[str, int] = {}
        for run in chosen:
            for key, value in run.other.items():
                other[key] = other.get(key, 0) + value
            if run.exhausted:
                other["pool exhausted"] = other.get("pool exhausted", 0) + run.exhausted
            if run.note.startswith("failed"):
                other["failed runs"] = other.get("failed runs", 0) + 1
        other_text = ", ".join(f"{k}: {v}" for k, v in sorted(other.items())) or "none"
        p50 = median_text([r.p50_ms for r in chosen if r.p50_ms is not None], 1)
        p99 = median_text([r.p99_ms for r in chosen if r.p99_ms is not None], 1)
        cpu = median_text([r.cpu_us for r in chosen if r.cpu_us is not None])
        rate = statistics.median(rates(target.name))
        vs_fastapi = f"{rate / fastapi:.2f}x" if fastapi else "n/a"
        vs_raw = f"{rate / raw:.2f}x" if raw else "n/a"
        lines.append(
            f"| {target.label} | {median_text(rates(target.name))} | {other_text} | {p50} / {p99} | {cpu} "
            f"| {vs_fastapi} | {vs_raw} |"
        )
    lines.append("")
    lines.append(
        "p50 / p99 above: wrk's closed-loop latencies at the maximum rate "
        f"({settings.connections} connections; the WebSocket row: reply time with "
        f"{settings.ws_window} requests in flight per connection)."
    )
    signed = median_rate("signed_resting")
    if signed and fastapi:
        verdict = "PASS" if signed / fastapi >= 0.75 else "FAIL"
        lines.append("")
        lines.append(
            f"**Signed POST /api/orders (resting) vs bare FastAPI: {signed / fastapi:.2f}x** "
            f"(target >= 0.75x: {verdict}; stretch >= 1.0x)"
            + (f"; vs raw ASGI {signed / raw:.2f}x" if raw else "")
            + "."
        )
    cpu_signed = [r.cpu_us for r in by.get("signed_resting", []) if r.cpu_us]
    cpu_fastapi = [r.cpu_us for r in by.get("fastapi", []) if r.cpu_us]
    if cpu_signed and cpu_fastapi:
        implied = statistics.median(cpu_fastapi) / statistics.median(cpu_signed)
        lines.append(
            f"By server CPU per acknowledged request (steadier than req/s on a busy machine): signed resting "
            f"{statistics.median(cpu_signed):,.0f} µs vs FastAPI {statistics.median(cpu_fastapi):,.0f} µs, "
            f"**{implied:.2f}x** the FastAPI rate when both are CPU-bound on their core "
            f"(target >= 0.75x: {'PASS' if implied >= 0.75 else 'FAIL'})."
        )
    ws = median_rate("ws_resting")
    if ws and signed:
        verdict = "PASS" if ws / signed >= 2 else "FAIL"
        lines.append(
            f"**WebSocket order entry vs signed REST: {ws / signed:.2f}x** (target >= 2x: {verdict})."
        )
    client_cpu = [r.client_cpu_us for r in by.get("ws_resting", []) if r.client_cpu_us is not None]
    client_busy = [r.client_busy for r in by.get("ws_resting", []) if r.client_busy is not None]
    if client_cpu and client_busy:
        lines.append(
            "The WebSocket load client (Python, pinned to the other core) used "
            f"{statistics.median(client_cpu):,.0f} µs of CPU per acknowledged order, "
            f"{statistics.median(client_busy):.0%} of its core (near 100%, "
            "the client and not the server would bound the WebSocket rate)."
        )
    paced_runs = [r for r in runs if r.paced is not None]
    if paced_runs:
        lines += [
            "",
            "Open-loop paced client at "
            + (
                f"{settings.paced_rate:,.0f} requests/s"
                if settings.paced_rate
                else "half of the same repeat's maximum rate"
            )
            + " (latency from due time; server CPU: the serving process's own CPU time over the window, per "
            "acknowledged request and as a share of the window; its core busy: the share of the server's "
            "CPU that anything used over the paced client's run, its forked checkpoint writers included):",
            "",
        ]
        lines.append(
            "| what | repeat | rate asked | acknowledged | other answers | p50 / p99 / p99.9 / max ms "
            "| GC pauses (over 10 ms) | GC total ms | GC max pause ms (since start) "
            "| checkpoint position before -> after | journal fsync rounds/s (records per round) "
            "| server CPU µs per request (share; its core busy) |"
        )
        lines.append("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        label = {t.name: t.label for t in TARGETS}
        for run in paced_runs:
            assert run.paced is not None
            p = run.paced
            status = dict(p["status"])
            status.pop("201", None)
            other_text = ", ".join(f"{k}: {v}" for k, v in sorted(status.items())) or "none"
            lat = p["latency_ms"]
            lat_text = " / ".join(
                "n/a" if lat[k] is None else f"{lat[k]:.1f}" for k in ("p50", "p99", "p999", "max")
            )
            if run.gc is None:
                gc_cells = "n/a | n/a | n/a"
            else:
                gc_cells = (
                    f"{run.gc['pauses']} ({run.gc['pauses_over_10ms']}) | {run.gc['total_pause_ms']:.1f} "
                    f"| {run.gc['max_pause_ms_since_start']:.1f}"
                )
            lines.append(
                f"| {label[run.target]} | {run.repeat} | {p['rate_asked']:,.0f}/s | {p['acknowledged']:,} "
                f"| {other_text} | {lat_text} | {gc_cells} | {checkpoint_cell(p)} | {journal_cell(p)} "
                f"| {server_cpu_cell(p)} |"
            )
        p99s = [r.paced["latency_ms"]["p99"] for r in paced_runs if r.target == "signed_resting" and r.paced]
        p99s = [v for v in p99s if v is not None]
        if p99s:
            verdict = "PASS" if statistics.median(p99s) < 20 else "FAIL"
            lines.append("")
            lines.append(
                f"**p99 at half the maximum rate, signed resting: {median_text(p99s, 1)} ms** "
                f"(target < 20 ms: {verdict})."
            )
        gcs = [r.gc for r in paced_runs if r.target == "signed_resting"]
        if gcs and all(g is not None for g in gcs):
            over = sum(g["pauses_over_10ms"] for g in gcs if g is not None)
            lines.append(
                f"**GC pauses over 10 ms under that load: {over}** "
                f"(target 0: {'PASS' if over == 0 else 'FAIL'})."
            )
        elif gcs:
            lines.append("**GC pauses under that load: n/a** (the server has no `GET /api/metrics/gc`).")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- main


def machine_header(settings: Settings, wrk: str, repeats: int) -> list[str]:
    version = subprocess.run(
        [
            settings.python,
            "-c",
            "import manticore_orderbook as m, sys; print(sys.version.split()[0], m.COMPILED)",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    wrk_line = (wrk_version.stdout or wrk_version.stderr).splitlines()[0:1]
    load = os.getloadavg()
    build = "compiled (mypyc)" if version[1:] == ["True"] else "pure Python"
    return [
        f"Server benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {repeats} interleaved "
        f"repeats, {settings.duration:g} s per run after {settings.warmup:g} s warm-up, {settings.users} "
        f"funded users, {settings.connections} connections.",
        f"Python {version[0] if version else '?'}, order book {build}; {wrk_line[0] if wrk_line else 'wrk'}; "
        f"server on CPU {settings.server_cpu}, load on CPU {settings.load_cpu}; {os.cpu_count()} CPUs, "
        f"load average {load[0]:.2f} at start.",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before each run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--users", type=int, default=8, help="funded traders per manticore server")
    parser.add_argument(
        "--ws-window", type=int, default=64, help="WebSocket requests in flight per connection"
    )
    parser.add_argument(
        "--targets", default=",".join(t.name for t in TARGETS), help="comma-separated subset of the targets"
    )
    parser.add_argument(
        "--paced", default="signed_resting,fastapi", help="targets that also get the paced run at half rate"
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter of the servers (make bench-server: .venv-run's, the compiled book as make run)",
    )
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--load-cpu", default="1")
    parser.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    parser.add_argument("--server-arg", action="append", default=[], help="extra argument of manticore serve")
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=20_000,
        help="manticore serve's --checkpoint-every: below the records of one paced window, so that "
        "background checkpoints fall inside it (the server's own default is 100,000)",
    )
    parser.add_argument(
        "--no-in-process", action="store_true", help="skip benchmarks.exchange / benchmarks.risk"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 repeat of at most 2 s, 1 s warm-up, no in-process benchmarks",
    )
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    parser.add_argument("--json", type=Path, help="write the raw runs as JSON here")
    parser.add_argument("--keep-logs", type=Path, help="copy the server logs into this directory")
    parser.add_argument(
        "--paced-rate",
        type=float,
        help="pace at this many requests/s instead of half of the repeat's maximum rate (comparisons "
        "at one rate on a machine whose maximum rate moves with other loads)",
    )
    parser.add_argument(
        "--timeline",
        type=Path,
        help="write each paced window's per-request [due, sent, answered, status] (CLOCK_MONOTONIC "
        "seconds) to DIR/<target>-<repeat>.json",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.duration, args.warmup = 1, min(args.duration, 2.0), 1.0
    if args.duration > 25 or args.warmup > 25:
        parser.error(
            "--duration and --warmup at most 25 s: signed requests are generated just before a run and "
            "the server refuses timestamps older than 30 s"
        )
    names = [n for n in args.targets.split(",") if n]
    unknown = set(names) - {t.name for t in TARGETS}
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    pin = not args.no_pin and shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    settings = Settings(
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        users=args.users,
        ws_window=args.ws_window,
        paced=tuple(n for n in args.paced.split(",") if n),
        python=args.python,
        server_cpu=args.server_cpu if pin else None,
        load_cpu=args.load_cpu if pin else None,
        server_args=tuple(args.server_arg),
        keep_logs=args.keep_logs,
        checkpoint_every=args.checkpoint_every,
        timeline=args.timeline,
        paced_rate=args.paced_rate,
    )
    wrk = ensure_wrk()
    targets = [t for t in TARGETS if t.name in names]
    runs: list[Run] = []
    ws_supported = True
    with tempfile.TemporaryDirectory(prefix="bench-server-") as directory:
        workdir = Path(directory)
        for repeat in range(1, args.repeats + 1):
            for target in targets:
                try:
                    if target.transport == "ws":
                        if not ws_supported:
                            continue
                        run = measure_ws(target, settings, workdir, repeat)
                        ws_supported = not run.note
                    else:
                        run = measure_http(wrk, target, settings, workdir, repeat)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:  # report it, go on
                    run = Run(target.name, repeat, note=f"failed: {str(exc)[:300]}")
                runs.append(run)
                rate = "n/a" if run.rate is None else f"{run.rate:,.0f}/s"
                extra = f" paced p99 {run.paced['latency_ms']['p99']} ms" if run.paced else ""
                if run.paced and run.paced.get("journal"):
                    extra += f", journal fsync rounds/s (records per round) {journal_cell(run.paced)}"
                if run.paced and run.paced.get("server_cpu"):
                    extra += f", server CPU µs per request (share) {server_cpu_cell(run.paced)}"
                print(
                    f"repeat {repeat} {target.name}: {rate} acknowledged {run.other or ''}{extra} {run.note}",
                    flush=True,
                )
    text = report(runs, settings, machine_header(settings, wrk, args.repeats))
    if not args.no_in_process and not args.quick:
        text += "\nIn-process benchmarks (no HTTP):\n\n" + "\n".join(in_process_reports(900)) + "\n"
    print()
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps([run.__dict__ for run in runs], indent=2))
    failed = [run for run in runs if run.note.startswith("failed")]
    for run in failed:
        print(f"repeat {run.repeat} {run.target} {run.note}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
