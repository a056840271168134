"""Scale of phase 1 of the NATS cluster (issue 18 point 5): gateways beside the embedded server, failover.

One invocation starts a private ``/usr/sbin/nats-server -js`` on a free port with a temporary store
(killed by its process id at the end; the shared server on 4222 is never touched) and measures, in
interleaved repeats (each repeat runs every configuration once, each on fresh processes and a fresh
stream prefix):

* ``embedded``: ``manticore serve`` (file journal, SQLite), as ``benchmarks.server``'s
  ``signed_resting`` target (the same :class:`benchmarks.server.Server` and wrk run);
* ``gateways-G`` for G = 1, 2, 4: one ``manticore shard`` leader (JetStream journal) and G stateless
  ``manticore gateway`` processes; the load is spread over the gateways' ports (one wrk per gateway,
  ``connections / G`` connections each, each with its own slice of the pre-signed requests).

Load: signed ``POST /api/orders`` of resting orders from funded users (``benchmarks/server_orders.py``,
replayed by wrk with ``benchmarks/server_wrk.lua``); only 201 answers count. Latency p50 / p99 are wrk's
closed-loop figures; with several wrk processes the report takes the worst p50 and the worst p99 of them
(percentiles of different runs cannot be merged exactly). CPU per acknowledged order is read from
``/proc`` for each process (shard, gateways, nats-server, embedded server).

Then the failover time: a shard leader and a warm standby (``--lease-ttl``) behind one gateway, a steady
open-loop load of signed orders (``--failover-rate``, sent by ``--failover-workers`` client threads);
the leader is killed with ``kill -9``; the time from the kill to the first 201 answer to a request *sent
after the kill* (only the new leader can have answered it) is one measurement; ``--failovers`` of them.
The longest wait of a request that was in flight at the kill is reported beside it (the gateway re-sends
it after its ``--request-timeout``, 5 s by default).

Every server-side process (nats-server, shard instances, gateways, the embedded server) is pinned to
``--server-cpu`` and the load generators to ``--load-cpu`` (taskset), so the embedded server and a
whole cluster get the same single core: on a 2-core machine the cluster figures show the cost of the
split, and the per-process CPU per order shows what more cores or machines would add.

Run: ``python -m benchmarks.cluster`` (``make bench-cluster``; ``--quick`` for a smoke run).
Exit status 1 when a run failed (the report still shows the others and the failure's reason).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from manticore_matching import load_markets

from .http_support import cpu_seconds, free_port, signed_headers
from .server import (
    CONFIG,
    ROOT,
    Run,
    Server,
    Settings,
    Target,
    ensure_wrk,
    measure_http,
    median_text,
    pinned,
    pool_size,
    run_wrk,
)
from .server_orders import Trader, order_body

NATS_SERVER = os.environ.get("MANTICORE_BENCH_NATS_SERVER", "/usr/sbin/nats-server")
CLI = ("-m", "manticore_api.cli")
SHARD = "main"

EMBEDDED = Target("embedded", "`manticore serve` (embedded, file journal)", "manticore", signed=True)


@dataclass
class ClusterRun(Run):
    """A :class:`Run` with the CPU per acknowledged order of each kind of process."""

    gateways: int = 0
    shard_cpu_us: float | None = None
    gateway_cpu_us: float | None = None  # all gateways together
    nats_cpu_us: float | None = None


@dataclass
class Failover:
    repeat: int
    seconds: float | None = None  # kill -> first 201 to a request sent after the kill
    takeover_s: float | None = None  # the new leader's own "takeover T s"
    in_flight_wait_s: float | None = None  # longest wait of a request in flight at the kill
    acknowledged_before: int = 0
    acknowledged_after: int = 0
    other: dict[str, int] = field(default_factory=dict)
    note: str = ""


# ---------------------------------------------------------------------------------------------- nats


class NatsServer:
    """A private ``nats-server -js`` on a free loopback port with its store in ``directory``."""

    def __init__(self, directory: Path, cpu: str | None) -> None:
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.log_path = directory / "nats.log"
        argv = [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(directory / "store")]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(pinned(cpu, argv), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.05)
        self.kill()
        raise RuntimeError("nats-server did not listen within 15 s")

    def kill(self) -> None:
        """SIGKILL by pid (ours only)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


# ---------------------------------------------------------------------------------------------- cluster


def _stop(process: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait()


class Cluster(Server):
    """A shard (``instances`` processes: the first to win the lease leads) and ``gateways`` gateways
    on a fresh stream prefix; as a :class:`Server` its ``url`` is the first gateway's and its ``data``
    the gateways' shared auth store (so :meth:`Server.setup_traders` funds users through it)."""

    def __init__(
        self,
        settings: Settings,
        workdir: Path,
        nats: NatsServer,
        name: str,
        *,
        gateways: int,
        instances: int = 1,
        lease_ttl: float = 5.0,
        split: bool = False,
    ) -> None:
        # Server.__init__ starts `manticore serve`: set the fields it would, start the cluster instead.
        self.target = EMBEDDED
        self.settings = settings
        self.traders: list[Trader] = []
        self.counter = 0
        self.root = workdir / name
        self.root.mkdir()
        self.data = self.root / "gateway"
        self.log_path = self.root / "shard-0.log"
        prefix = "cb" + uuid.uuid4().hex[:10]
        config = self.root / "bench.toml"
        config.write_text(CONFIG)
        common = ["--nats", nats.url, "--prefix", prefix]
        self.shards: list[subprocess.Popen[bytes]] = []
        self.shard_logs: list[Path] = []
        self.gateways: list[subprocess.Popen[bytes]] = []
        self.ports = [free_port() for _ in range(gateways)]
        self.urls = [f"http://127.0.0.1:{port}" for port in self.ports]
        self.url = self.urls[0]
        self.port = self.ports[0]
        routing: list[str] = []
        shard_name = SHARD
        if split:  # phase 2: an account shard and one market shard with every market
            symbols = ",".join(market.symbol for market in load_markets(config))
            routing = ["--market-shard", f"m0={symbols}"]
            argv = [settings.python, *CLI, "shard", *common, "--name", "m0", "--role", "market"]
            argv += [
                "--data-dir",
                str(self.root / "m0"),
                "--lease-ttl",
                str(lease_ttl),
                "--config",
                str(config),
            ]
            self.shard_logs.append(self.root / "m0.log")
            self.shards.append(self._spawn(argv, self.shard_logs[-1]))
            shard_name = "acct"
        try:
            for index in range(instances):
                argv = [
                    settings.python,
                    *CLI,
                    "shard",
                    *common,
                    "--name",
                    shard_name,
                    *(["--role", "account", *routing] if split else []),
                ]
                argv += ["--data-dir", str(self.root / f"shard-{index}"), "--lease-ttl", str(lease_ttl)]
                argv += ["--config", str(config)]
                self.shard_logs.append(self.root / f"shard-{index}.log")
                self.shards.append(self._spawn(argv, self.shard_logs[-1]))
            for index, port in enumerate(self.ports):
                argv = [settings.python, *CLI, "gateway", *common, "--shard", shard_name, "--port", str(port)]
                argv += routing
                argv += ["--data-dir", str(self.data), "--log-level", "warning"]
                self.gateways.append(self._spawn(argv, self.root / f"gateway-{index}.log"))
                self._wait_healthy(index)  # the first creates the admin of the shared auth store
        except BaseException:
            self.stop()
            raise

    def _spawn(self, argv: list[str], log_path: Path) -> subprocess.Popen[bytes]:
        with log_path.open("ab") as log:
            return subprocess.Popen(
                pinned(self.settings.server_cpu, argv), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    def _wait_healthy(self, index: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.gateways[index].poll() is not None:
                log = (self.root / f"gateway-{index}.log").read_text()[-2000:]
                raise RuntimeError(f"gateway-{index} exited: {log}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.urls[index] + "/api/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"gateway-{index} not healthy after {timeout} s: {self.shard_text(0)[-2000:]}")

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Every gateway was healthy (a leader answered) when the constructor returned."""

    def shard_text(self, index: int) -> str:
        path = self.shard_logs[index]
        return path.read_text(errors="replace") if path.exists() else ""

    def leader(self) -> int | None:
        """The index of the running instance that logged that it leads, if any."""
        for index, process in enumerate(self.shards):
            if process.poll() is None and ": leader " in self.shard_text(index):
                return index
        return None

    def cpu_of(self) -> dict[str, float]:
        """CPU seconds so far of the running shard instances and of all gateways."""
        return {
            "shard": sum(cpu_seconds(p.pid) for p in self.shards if p.poll() is None),
            "gateways": sum(cpu_seconds(p.pid) for p in self.gateways),
        }

    def stop(self) -> None:
        for process in self.gateways + self.shards:
            _stop(process)


@contextlib.contextmanager
def cluster_serving(
    settings: Settings, workdir: Path, nats: NatsServer, name: str, **kw: Any
) -> Iterator[Cluster]:
    cluster = Cluster(settings, workdir, nats, name, **kw)
    try:
        cluster.setup_traders(settings.users)
        yield cluster
    finally:
        cluster.stop()
        if settings.keep_logs is not None:
            settings.keep_logs.mkdir(parents=True, exist_ok=True)
            shutil.copytree(
                cluster.root,
                settings.keep_logs / name,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("*.db*", "shard-?", "gateway"),
            )
        shutil.rmtree(cluster.root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- loads


@dataclass(frozen=True)
class _Endpoint:
    url: str


def spread_wrk(
    wrk: str, settings: Settings, cluster: Cluster, requests: Path, seconds: float
) -> list[dict[str, Any]]:
    """One wrk per gateway at the same time, ``connections / G`` connections each; gateway i gets
    lines i, i+G, ... of ``requests``. Returns each wrk's result."""
    count = len(cluster.urls)
    lines = requests.read_text().splitlines()
    files = []
    for index in range(count):
        part = requests.with_name(f"{requests.stem}-{index}.tsv")
        part.write_text("\n".join(lines[index::count]) + "\n")
        files.append(part)
    each = dataclasses.replace(settings, connections=max(1, settings.connections // count))
    results: list[dict[str, Any] | BaseException] = [RuntimeError("not run")] * count

    def one(index: int) -> None:
        try:
            results[index] = run_wrk(wrk, each, _Endpoint(cluster.urls[index]), files[index], seconds)  # type: ignore[arg-type]
        except BaseException as exc:  # reported below
            results[index] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        if isinstance(result, BaseException):
            raise RuntimeError(f"wrk failed: {result}")
    return [r for r in results if isinstance(r, dict)]


def measure_cluster(
    wrk: str,
    gateways: int,
    settings: Settings,
    workdir: Path,
    nats: NatsServer,
    repeat: int,
    split: bool = False,
) -> ClusterRun:
    name = f"split-{gateways}" if split else f"gateways-{gateways}"
    run = ClusterRun(name, repeat, gateways=gateways)
    with cluster_serving(
        settings, workdir, nats, f"{name}-{repeat}", gateways=gateways, split=split
    ) as cluster:
        warm = spread_wrk(
            wrk, settings, cluster, cluster.requests_file(workdir / "warm.tsv", 30_000), settings.warmup
        )
        warm_rate = sum(w["status"].get("201", 0) for w in warm) / max(warm[0]["duration_us"] / 1e6, 1e-9)
        requests = cluster.requests_file(
            workdir / "load.tsv", pool_size(EMBEDDED, warm_rate, settings.duration)
        )
        before, nats_before = cluster.cpu_of(), cpu_seconds(nats.process.pid)
        results = spread_wrk(wrk, settings, cluster, requests, settings.duration)
        after, nats_after = cluster.cpu_of(), cpu_seconds(nats.process.pid)
        statuses: dict[str, int] = {}
        for result in results:
            for key, value in result["status"].items():
                statuses[str(key)] = statuses.get(str(key), 0) + int(value)
            for key, value in result["errors"].items():
                if value and key != "status":
                    statuses[f"socket {key}"] = statuses.get(f"socket {key}", 0) + int(value)
            run.exhausted += int(result["exhausted"])
        run.acknowledged = statuses.pop("201", 0)
        run.other = {k: v for k, v in statuses.items() if v}
        run.seconds = max(r["duration_us"] for r in results) / 1e6
        run.rate = run.acknowledged / run.seconds if run.seconds else 0.0
        run.p50_ms = max(r["latency_us"]["p50"] for r in results) / 1000
        run.p99_ms = max(r["latency_us"]["p99"] for r in results) / 1000
        if run.acknowledged:
            per = 1e6 / run.acknowledged
            run.shard_cpu_us = (after["shard"] - before["shard"]) * per
            run.gateway_cpu_us = (after["gateways"] - before["gateways"]) * per
            run.nats_cpu_us = (nats_after - nats_before) * per
            run.cpu_us = run.shard_cpu_us + run.gateway_cpu_us + run.nats_cpu_us
    return run


def measure_embedded(wrk: str, settings: Settings, workdir: Path, repeat: int) -> ClusterRun:
    plain = measure_http(wrk, EMBEDDED, dataclasses.replace(settings, paced=()), workdir, repeat)
    return ClusterRun(**{f.name: getattr(plain, f.name) for f in dataclasses.fields(Run)})


# ---------------------------------------------------------------------------------------------- failover


class SteadyLoad:
    """An open-loop load of signed resting orders through ``url``: a pacer makes one order due every
    ``1 / rate`` seconds; ``workers`` client threads (one HTTP connection each) send the due orders,
    each as soon as a worker is free, so that requests keep being sent while some wait for an answer.
    Every answer is recorded as (sent, answered, status), monotonic seconds (status 0: no answer)."""

    def __init__(self, url: str, traders: list[Trader], rate: float, workers: int) -> None:
        self.url = url
        self.traders = traders
        self.interval = 1.0 / rate
        self.answers: list[tuple[float, float, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._due: queue.Queue[int] = queue.Queue()
        self._threads = [threading.Thread(target=self._pace, daemon=True)]
        self._threads += [threading.Thread(target=self._send, daemon=True) for _ in range(workers)]

    def __enter__(self) -> SteadyLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(70)

    def _pace(self) -> None:
        number = 0
        due = time.monotonic()
        while not self._stop.is_set():
            number += 1
            self._due.put(number)
            due += self.interval
            time.sleep(max(0.0, due - time.monotonic()))

    def _send(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            while not self._stop.is_set():
                try:
                    number = self._due.get(timeout=0.1)
                except queue.Empty:
                    continue
                user = number % len(self.traders)
                trader = self.traders[user]
                # counters far above the wrk runs' so no body repeats one sent before by this user
                body = json.dumps(
                    order_body("resting", 10_000_000 + number // len(self.traders), user),
                    separators=(",", ":"),
                ).encode()
                headers = signed_headers(trader.api_key, trader.api_secret, "POST", "/api/orders", body)
                sent = time.monotonic()
                try:
                    status = http.post("/api/orders", content=body, headers=headers).status_code
                except httpx.HTTPError:
                    status = 0
                with self._lock:
                    self.answers.append((sent, time.monotonic(), status))

    def first_ack_sent_after(self, moment: float) -> float | None:
        with self._lock:
            times = [answered for sent, answered, status in self.answers if sent > moment and status == 201]
        return min(times) if times else None

    def longest_wait_of_requests_in_flight_at(self, moment: float) -> float | None:
        with self._lock:
            waits = [answered - sent for sent, answered, _status in self.answers if sent <= moment < answered]
        return max(waits) if waits else None


def measure_failover(
    settings: Settings,
    workdir: Path,
    nats: NatsServer,
    repeat: int,
    lease_ttl: float,
    rate: float,
    workers: int,
) -> Failover:
    result = Failover(repeat)
    with cluster_serving(
        settings, workdir, nats, f"failover-{repeat}", gateways=1, instances=2, lease_ttl=lease_ttl
    ) as cluster:
        leader = cluster.leader()
        if leader is None:
            raise RuntimeError("no instance logged that it leads")
        standby = 1 - leader
        with SteadyLoad(cluster.url, cluster.traders, rate, workers) as load:
            time.sleep(max(1.0, settings.warmup))
            killed = time.monotonic()
            os.kill(cluster.shards[leader].pid, signal.SIGKILL)
            cluster.shards[leader].wait(10)
            deadline = killed + lease_ttl + 60
            while time.monotonic() < deadline and load.first_ack_sent_after(killed) is None:
                time.sleep(0.02)
            time.sleep(0.5)
        result.in_flight_wait_s = load.longest_wait_of_requests_in_flight_at(killed)
        first = load.first_ack_sent_after(killed)
        result.seconds = None if first is None else first - killed
        for _sent, answered, status in load.answers:
            if status == 201:
                if answered < killed:
                    result.acknowledged_before += 1
                else:
                    result.acknowledged_after += 1
            else:
                result.other[str(status)] = result.other.get(str(status), 0) + 1
        text = cluster.shard_text(standby)
        marker = text.rfind("takeover ")
        if marker >= 0:
            with contextlib.suppress(ValueError):
                result.takeover_s = float(text[marker + 9 :].split()[0].rstrip("s),"))
        if first is None:
            result.note = f"failed: no order acknowledged within {lease_ttl + 60:.0f} s of the kill"
    return result


# ---------------------------------------------------------------------------------------------- report


def report(
    runs: list[ClusterRun], failovers: list[Failover], header: list[str], lease_ttl: float, rate: float
) -> str:
    by: dict[str, list[ClusterRun]] = {}
    for run in runs:
        by.setdefault(run.target, []).append(run)
    lines = [*header, ""]
    lines.append(
        "| configuration | acknowledged orders/s, median [min-max] | p50 / p99 ms | other answers "
        "| CPU µs per order: total | shard | gateways | nats-server | vs embedded |"
    )
    lines.append("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    embedded_rates = [r.rate for r in by.get("embedded", []) if r.rate]
    embedded = statistics.median(embedded_rates) if embedded_rates else None
    for name, chosen in by.items():
        if name == "embedded":
            label = EMBEDDED.label
        elif name.startswith("split"):
            label = f"account shard + 1 market shard + {chosen[0].gateways} gateway(s)"
        else:
            label = f"1 shard leader + {chosen[0].gateways} gateway(s)"
        rates = [r.rate for r in chosen if r.rate]
        other: dict[str, int] = {}
        for run in chosen:
            for key, value in run.other.items():
                other[key] = other.get(key, 0) + value
            if run.exhausted:
                other["pool exhausted"] = other.get("pool exhausted", 0) + run.exhausted
            if run.note.startswith("failed"):
                other["failed runs"] = other.get("failed runs", 0) + 1
        other_text = ", ".join(f"{k}: {v}" for k, v in sorted(other.items())) or "none"
        if not rates:
            lines.append(f"| {label} | n/a | | {other_text} | | | | | |")
            continue

        def cell(values: list[float | None]) -> str:
            return median_text([v for v in values if v is not None])

        p50 = median_text([r.p50_ms for r in chosen if r.p50_ms is not None], 1)
        p99 = median_text([r.p99_ms for r in chosen if r.p99_ms is not None], 1)
        versus = f"{statistics.median(rates) / embedded:.2f}x" if embedded else "n/a"
        embedded_row = name == "embedded"
        lines.append(
            f"| {label} | {median_text(rates)} | {p50} / {p99} | {other_text} "
            f"| {cell([r.cpu_us for r in chosen])} "
            f"| {'-' if embedded_row else cell([r.shard_cpu_us for r in chosen])} "
            f"| {'-' if embedded_row else cell([r.gateway_cpu_us for r in chosen])} "
            f"| {'-' if embedded_row else cell([r.nats_cpu_us for r in chosen])} | {versus} |"
        )
    shard_us = [r.shard_cpu_us for r in runs if r.shard_cpu_us]
    gateway_us = [r.gateway_cpu_us for r in runs if r.gateway_cpu_us and r.gateways == 1]
    if shard_us and gateway_us:
        shard = statistics.median(shard_us)
        gateway = statistics.median(gateway_us)
        lines += [
            "",
            f"Shard leader CPU per acknowledged order (all cluster runs): {median_text(shard_us)} µs, so one "
            f"core of the shard alone would carry about {1e6 / shard:,.0f} orders/s; one gateway: "
            f"{median_text(gateway_us)} µs per order (G = 1 runs), about {1e6 / gateway:,.0f} orders/s per "
            "gateway core.",
        ]
    if failovers:
        times = [f.seconds for f in failovers if f.seconds is not None]
        takeovers = [f.takeover_s for f in failovers if f.takeover_s is not None]
        lines += [
            "",
            f"Failover (leader + standby, lease TTL {lease_ttl:g} s, one gateway, {rate:g} orders/s):",
            "",
        ]
        lines.append(
            "| repeat | kill -> first 201 to a request sent after the kill, s | new leader's takeover, s "
            "| longest wait of a request in flight at the kill, s | 201 before / after the kill "
            "| other answers |"
        )
        lines.append("|---:|---:|---:|---:|---|---|")
        for f in failovers:
            answers = ", ".join(f"{k}: {v}" for k, v in sorted(f.other.items())) or "none"
            seconds = "n/a" if f.seconds is None else f"{f.seconds:.2f}"
            takeover = "n/a" if f.takeover_s is None else f"{f.takeover_s:.2f}"
            waited = "n/a" if f.in_flight_wait_s is None else f"{f.in_flight_wait_s:.2f}"
            lines.append(
                f"| {f.repeat} | {seconds} | {takeover} | {waited} "
                f"| {f.acknowledged_before} / {f.acknowledged_after} "
                f"| {answers} {f.note} |"
            )
        lines += [
            "",
            f"**Failover time: {median_text(times, 2)} s** (median [min-max], lease TTL {lease_ttl:g} s).",
        ]
        if takeovers:
            lines[-1] += f" Takeover logged by the new leader: {median_text(takeovers, 2)} s."
    return "\n".join(lines) + "\n"


def header_lines(settings: Settings, wrk: str, repeats: int, gateways: list[int]) -> list[str]:
    version = subprocess.run([NATS_SERVER, "--version"], capture_output=True, text=True, check=False)
    wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    wrk_line = (wrk_version.stdout or wrk_version.stderr).splitlines()[0:1]
    compiled = subprocess.run(
        [settings.python, "-c", "import manticore_orderbook as m; print(m.COMPILED)"],
        capture_output=True,
        text=True,
        check=False,
    )
    build = "compiled (mypyc)" if compiled.stdout.strip() == "True" else "pure Python"
    load = os.getloadavg()
    return [
        f"Cluster benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {repeats} interleaved "
        f"repeats of embedded and G = {', '.join(map(str, gateways))} gateways, {settings.duration:g} s per "
        f"run after {settings.warmup:g} s warm-up, {settings.users} funded users, "
        f"{settings.connections} connections in all, signed POST /api/orders (resting).",
        f"Python {sys.version.split()[0]}, order book {build} ({settings.python}); "
        f"{version.stdout.strip() or 'nats-server'} (private, R1); "
        f"{wrk_line[0] if wrk_line else 'wrk'}; every server process (nats-server, shard, gateways, embedded "
        f"server) on CPU {settings.server_cpu}, load generators on CPU {settings.load_cpu}; "
        f"{os.cpu_count()} CPUs; load average {load[0]:.2f} / {load[1]:.2f} / "
        f"{load[2]:.2f} at start.",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before each run")
    parser.add_argument("--connections", type=int, default=64, help="in all (split over the gateways)")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--gateways", default="1,2,4", help="comma-separated gateway counts")
    parser.add_argument("--failovers", type=int, default=3, help="failover measurements (0: none)")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter whose installed manticore runs the servers (make bench-cluster: .venv-run, the "
        "README's compiled install)",
    )
    parser.add_argument("--lease-ttl", type=float, default=5.0, help="of the failover's shard instances")
    parser.add_argument("--failover-rate", type=float, default=200.0, help="orders/s of the steady load")
    parser.add_argument("--failover-workers", type=int, default=32, help="client threads of the steady load")
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--load-cpu", default="1")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1 repeat, G = 1, 2, 2 s runs, 1 failover (TTL 1 s)"
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="also measure phase 2: an account shard + one market shard + G gateways (rows split-G)",
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep-logs", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.duration, args.warmup = 1, min(args.duration, 2.0), 1.0
        args.gateways, args.failovers, args.lease_ttl = (
            "1,2",
            min(args.failovers, 1),
            min(args.lease_ttl, 1.0),
        )
    if args.duration > 25 or args.warmup > 25:
        parser.error("--duration and --warmup at most 25 s (signed requests go stale after 30 s)")
    if not os.path.exists(NATS_SERVER):
        raise SystemExit(f"{NATS_SERVER} is not installed")
    gateways = [int(g) for g in args.gateways.split(",") if g]
    pin = not args.no_pin and shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    settings = Settings(
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        users=args.users,
        ws_window=0,
        paced=(),
        python=args.python,
        server_cpu=args.server_cpu if pin else None,
        load_cpu=args.load_cpu if pin else None,
        server_args=(),
        keep_logs=args.keep_logs,
    )
    wrk = ensure_wrk()
    header = header_lines(settings, wrk, args.repeats, gateways)
    runs: list[ClusterRun] = []
    failovers: list[Failover] = []
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as directory:
        workdir = Path(directory)
        (workdir / "nats").mkdir()
        nats = NatsServer(workdir / "nats", settings.server_cpu)
        try:
            for repeat in range(1, args.repeats + 1):
                split_names = [f"split-{g}" for g in gateways] if args.split else []
                for name in ["embedded", *(f"gateways-{g}" for g in gateways), *split_names]:
                    try:
                        if name == "embedded":
                            run = measure_embedded(wrk, settings, workdir, repeat)
                        else:
                            run = measure_cluster(
                                wrk,
                                int(name.split("-")[1]),
                                settings,
                                workdir,
                                nats,
                                repeat,
                                split=name.startswith("split"),
                            )
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        run = ClusterRun(name, repeat, note=f"failed: {str(exc)[:300]}")
                        if name != "embedded":
                            run.gateways = int(name.split("-")[1])
                    runs.append(run)
                    rate = "n/a" if run.rate is None else f"{run.rate:,.0f}/s"
                    print(
                        f"repeat {repeat} {name}: {rate} acknowledged {run.other or ''} {run.note}",
                        flush=True,
                    )
            for repeat in range(1, args.failovers + 1):
                try:
                    failover = measure_failover(
                        settings,
                        workdir,
                        nats,
                        repeat,
                        args.lease_ttl,
                        args.failover_rate,
                        args.failover_workers,
                    )
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    failover = Failover(repeat, note=f"failed: {str(exc)[:300]}")
                failovers.append(failover)
                print(f"failover {repeat}: {failover.seconds} s {failover.note}", flush=True)
        finally:
            nats.kill()
    text = report(runs, failovers, header, args.lease_ttl, args.failover_rate)
    print()
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"runs": [r.__dict__ for r in runs], "failovers": [f.__dict__ for f in failovers]}, indent=2
            )
        )
    failed = [r.note for r in runs if r.note.startswith("failed")]
    failed += [f.note for f in failovers if f.note.startswith("failed")]
    for note in failed:
        print(note, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
