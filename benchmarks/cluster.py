"""Scale of the NATS cluster (issue 18 point 5): acknowledged orders/s and latency against the number of
gateways and market shards, beside the embedded server, plus the failover time.

One invocation starts a private ``/usr/sbin/nats-server -js`` on a free port with a temporary store
(killed by its process id at the end; the shared server on 4222 is never touched) and measures, in
interleaved repeats (each repeat runs every configuration once, each on fresh processes, data
directories and stream prefix):

* ``embedded``: ``manticore serve`` (file journal, SQLite);
* ``whole-G`` (``--whole``, default G = 1): phase 1, one shard leader holding every market and G
  gateways;
* ``split-G/M`` (``--scale``, default 1/1, 2/2, 4/4): phase 2, an account shard, M market shards (the
  markets dealt round robin: with 4 markets and M = 4 each market shard owns one) and G gateways.

Every configuration is given the same four markets (BTC/USD, ETH/USD, SOL/USD, XRP/USD) and the same
load: signed ``POST /api/orders`` of resting limit orders from funded users, as users send them,
spread evenly over the markets (every user trades every market; ``benchmarks/cluster_load.py``),
pre-signed and replayed by one wrk whose threads are dealt round robin over the gateways' ports
(``benchmarks/cluster_wrk.lua``), ``--connections`` in all. Only 201 answers count (an order is answered
201 once its command is durable). p50 / p99 are wrk's closed-loop latency over every request of the
run (one histogram for all gateways). CPU per acknowledged order is read from ``/proc`` for each kind
of process (account shard, whole or market shards, gateways, nats-server, embedded server).

Then the failover time, for each of ``--failover-kinds``: ``whole``, a whole shard's leader and a warm
standby; ``account`` and ``market``, a split cluster (an account shard, one market shard) where the
named shard has a leader and a warm standby (``--lease-ttl``); one gateway and a steady open-loop load
of signed orders (``--failover-rate``, sent on time whatever the answers, up to
``--failover-connections`` in flight); the leader is killed with ``kill -9``; the time from the kill to
the first 201 answer to a request *sent after the kill* (only the new leader can have answered it) is
one measurement; ``--failovers`` of each kind. The longest wait of a request that was in flight at the
kill is reported beside it (the gateway re-sends it after its ``--request-timeout``, 5 s by default).

CPUs: every server-side process (nats-server, shards, gateways, the embedded server) runs on
``--server-cpu`` (default ``0,1``: the whole machine, so that more market shards and gateways can use
more cores) and wrk and the failover client on ``--load-cpu`` (default 1, shared with the servers);
``--server-cpu 0`` gives every configuration the same single core (the phase-1 reports' method).

Run: ``python -m benchmarks.cluster`` (``make bench-cluster``; ``--quick`` for a smoke run).
Exit status 1 when a run failed (the report still shows the others and the failure's reason).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .cluster_load import SYMBOLS, run_wrk_over
from .cluster_procs import EMBEDDED, NATS_SERVER, NatsServer, Topology, deployed, market_owners
from .http_support import signed_headers
from .server import Run, Settings, ensure_wrk, median_text, pool_size
from .server_orders import Trader, order_body


@dataclass
class ClusterRun(Run):
    """A :class:`Run` of one configuration, with the CPU per acknowledged order of each kind of process
    (``shard_cpu_us``: the whole shard, or every market shard together)."""

    kind: str = "embedded"
    gateways: int = 0
    market_shards: int = 0
    shard_cpu_us: float | None = None
    account_cpu_us: float | None = None
    gateway_cpu_us: float | None = None
    nats_cpu_us: float | None = None
    #: 201 answers of the measured run by gateway (wrk thread t talks to gateway t mod G)
    acknowledged_by_gateway: list[int] = field(default_factory=list)
    #: price levels in each market's book after the run (resting orders: > 0 once it got orders)
    book_levels: dict[str, int] = field(default_factory=dict)


#: What a failover run kills -> (the configuration, the name of the killed shard's instance group).
FAILOVER_TOPOLOGIES = {
    "whole": (Topology("whole", gateways=1, instances=2), "shard"),
    "account": (Topology("split", gateways=1, market_shards=1, instances=2), "acct"),
    "market": (Topology("split", gateways=1, market_shards=1, market_instances=2), "m0"),
}


@dataclass
class Failover:
    repeat: int
    shard: str = "whole"  # a key of FAILOVER_TOPOLOGIES: whose leader was killed
    seconds: float | None = None  # kill -> first 201 to a request sent after the kill
    takeover_s: float | None = None  # the new leader's own "takeover T s"
    in_flight_wait_s: float | None = None  # longest wait of a request in flight at the kill
    acknowledged_before: int = 0
    acknowledged_after: int = 0
    other: dict[str, int] = field(default_factory=dict)
    note: str = ""


# ---------------------------------------------------------------------------------------------- load


def measure(
    wrk: str, topology: Topology, settings: Settings, workdir: Path, nats: NatsServer, repeat: int
) -> ClusterRun:
    """One run of ``topology``: warm-up, then ``settings.duration`` seconds of measured load."""
    run = ClusterRun(
        topology.name,
        repeat,
        kind=topology.kind,
        gateways=topology.gateways,
        market_shards=topology.market_shards,
    )
    cluster = topology.kind != "embedded"
    with deployed(settings, workdir, f"{topology.name}-{repeat}", topology, nats if cluster else None) as d:
        warming = d.requests_file(workdir / "warm.tsv", 30_000)
        warm = run_wrk_over(wrk, d.urls, warming, settings.warmup, settings.connections, settings.load_cpu)
        warm_rate = warm["status"].get("201", 0) / max(warm["duration_us"] / 1e6, 1e-9)
        count = pool_size(EMBEDDED, warm_rate, settings.duration)
        requests = d.requests_file(workdir / "load.tsv", count)
        before, nats_before = d.cpu_of(), nats.cpu() if cluster else 0.0
        result = run_wrk_over(
            wrk, d.urls, requests, settings.duration, settings.connections, settings.load_cpu
        )
        after, nats_after = d.cpu_of(), nats.cpu() if cluster else 0.0
        run.book_levels = book_levels(d.url, d.symbols)
    run.acknowledged_by_gateway = [0] * max(1, topology.gateways)
    for thread, created in enumerate(result.get("created", [])):
        run.acknowledged_by_gateway[thread % len(run.acknowledged_by_gateway)] += int(created)
    statuses = {str(k): int(v) for k, v in result["status"].items()}
    run.acknowledged = statuses.pop("201", 0)
    run.other = {k: v for k, v in statuses.items() if v}
    run.other.update({f"socket {k}": int(v) for k, v in result["errors"].items() if v and k != "status"})
    run.exhausted = int(result["exhausted"])
    run.seconds = result["duration_us"] / 1e6
    run.rate = run.acknowledged / run.seconds if run.seconds else 0.0
    run.p50_ms = result["latency_us"]["p50"] / 1000
    run.p99_ms = result["latency_us"]["p99"] / 1000
    if run.acknowledged:
        per = 1e6 / run.acknowledged

        def used(*kinds: str) -> float:
            return sum(after.get(kind, 0.0) - before.get(kind, 0.0) for kind in kinds) * per

        run.cpu_us = used(*after) + (nats_after - nats_before) * per
        if cluster:
            run.shard_cpu_us = used("shard", "m")
            run.account_cpu_us = used("acct") if topology.kind == "split" else None
            run.gateway_cpu_us = used("gateway")
            run.nats_cpu_us = (nats_after - nats_before) * per
    return run


def book_levels(url: str, symbols: tuple[str, ...]) -> dict[str, int]:
    """Bid + ask price levels of each market's book (as the API shows them), read through ``url``."""
    levels = {}
    with httpx.Client(base_url=url, timeout=30) as http:
        for symbol in symbols:
            answer = http.get("/api/orderbook", params={"symbol": symbol})
            book = answer.json() if answer.status_code == 200 else {}
            levels[symbol] = len(book.get("bids", [])) + len(book.get("asks", []))
    return levels


# ---------------------------------------------------------------------------------------------- failover


class SteadyLoad:
    """A truly open-loop load of signed resting orders through ``url``: one order is sent every
    ``1 / rate`` seconds whatever the answers to earlier ones (an asyncio client in its own thread, up
    to ``connections`` requests in flight, each on its own connection), so that requests sent after a
    kill are not held back behind requests waiting for a dead leader. Every answer is recorded as
    (sent, answered, status), monotonic seconds (status 0: no answer)."""

    def __init__(self, url: str, traders: list[Trader], rate: float, connections: int) -> None:
        self.url = url
        self.traders = traders
        self.interval = 1.0 / rate
        self.connections = connections
        self.answers: list[tuple[float, float, int]] = []
        #: requests that got no HTTP answer, by the client's exception
        self.errors: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> SteadyLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(90)

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.connections, max_keepalive_connections=self.connections)
        async with httpx.AsyncClient(base_url=self.url, timeout=60, limits=limits) as http:
            sending: set[asyncio.Task[None]] = set()
            number = 0
            due = time.monotonic()
            while not self._stop.is_set():
                number += 1
                task = asyncio.create_task(self._send(http, number))
                sending.add(task)
                task.add_done_callback(sending.discard)
                due += self.interval
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            if sending:
                await asyncio.wait(sending, timeout=75)

    async def _send(self, http: httpx.AsyncClient, number: int) -> None:
        user = number % len(self.traders)
        trader = self.traders[user]
        # counters far above the wrk runs' so no body repeats one sent before by this user
        body = json.dumps(
            order_body("resting", 10_000_000 + number // len(self.traders), user), separators=(",", ":")
        ).encode()
        headers = signed_headers(trader.api_key, trader.api_secret, "POST", "/api/orders", body)
        sent = time.monotonic()
        try:
            status = (await http.post("/api/orders", content=body, headers=headers)).status_code
        except httpx.HTTPError as exc:
            status = 0
            with self._lock:
                self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
        with self._lock:
            self.answers.append((sent, time.monotonic(), status))

    def acknowledged(self) -> int:
        """How many 201 answers so far."""
        with self._lock:
            return sum(1 for _sent, _answered, status in self.answers if status == 201)

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
    connections: int,
    shard: str = "whole",
) -> Failover:
    """Kill the leader of ``shard`` (a key of :data:`FAILOVER_TOPOLOGIES`) under a steady load and time
    the first acknowledgement of an order sent after the kill (only the standby can give it)."""
    result = Failover(repeat, shard)
    topology, group = FAILOVER_TOPOLOGIES[shard]
    name = f"failover-{shard}-{repeat}"
    with deployed(settings, workdir, name, topology, nats, lease_ttl=lease_ttl) as cluster:
        leader = cluster.leader(group)
        if leader is None:
            raise RuntimeError(f"no instance of {group} logged that it leads")
        standby = f"{group}-1" if leader == f"{group}-0" else f"{group}-0"
        with SteadyLoad(cluster.url, cluster.traders, rate, connections) as load:
            time.sleep(max(1.0, settings.warmup))
            # Kill under acknowledged load: on a busy machine the first answers can take longer.
            deadline = time.monotonic() + 30
            while not load.acknowledged() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not load.acknowledged():
                raise RuntimeError("no order acknowledged within 30 s before the kill")
            killed = time.monotonic()
            os.kill(cluster.processes[leader].pid, signal.SIGKILL)
            cluster.processes[leader].wait(10)
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
            elif status:
                result.other[str(status)] = result.other.get(str(status), 0) + 1
        for error, count in load.errors.items():
            result.other[f"no answer ({error})"] = count
        text = cluster.text(standby)
        marker = text.rfind("takeover ")
        if marker >= 0:
            with contextlib.suppress(ValueError):
                result.takeover_s = float(text[marker + 9 :].split()[0].rstrip("s),"))
        if first is None:
            result.note = f"failed: no order acknowledged within {lease_ttl + 60:.0f} s of the kill"
    return result


# ---------------------------------------------------------------------------------------------- report


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _versus(rate: float | None, base: float | None) -> str:
    return f"{rate / base:.2f}x" if rate and base else "n/a"


def _base_of(name: str) -> str | None:
    """The row a configuration's "vs 1/1" compares with: its kind's smallest configuration."""
    if name.startswith("split-"):
        return "split-1/1"
    if name.startswith("whole-"):
        return "whole-1"
    return None


def report(
    runs: list[ClusterRun], failovers: list[Failover], header: list[str], lease_ttl: float, rate: float
) -> str:
    """The markdown report: one row per configuration (medians over the repeats), the scale summary,
    the failover table."""
    by: dict[str, list[ClusterRun]] = {}
    for run in runs:
        by.setdefault(run.target, []).append(run)
    medians = {name: _median([r.rate for r in chosen if r.rate]) for name, chosen in by.items()}
    lines = [*header, ""]
    lines.append(
        "| configuration | G / M | acknowledged orders/s, median [min-max] | vs 1/1 | vs embedded "
        "| p50 / p99 ms, median | other answers | cores busy | CPU µs per order: total | account shard "
        "| whole or market shards | gateways | nats-server |"
    )
    lines.append("|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for name, chosen in by.items():
        first = chosen[0]
        label = Topology(first.kind, first.gateways, first.market_shards).label
        shape = "-" if first.kind == "embedded" else f"{first.gateways} / {first.market_shards or 1}"
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
            lines.append(f"| {label} | {shape} | n/a | | | | {other_text} | | | | | | |")
            continue

        def cell(values: list[float | None]) -> str:
            present = [v for v in values if v is not None]
            return median_text(present) if present else "-"

        base = _base_of(name)
        p50 = _median([r.p50_ms for r in chosen])
        p99 = _median([r.p99_ms for r in chosen])
        lines.append(
            f"| {label} | {shape} | {median_text(rates)} "
            f"| {_versus(medians[name], medians.get(base)) if base else '-'} "
            f"| {_versus(medians[name], medians.get('embedded'))} "
            f"| {p50 or 0:.1f} / {p99 or 0:.1f} | {other_text} "
            f"| {median_text([r.rate * r.cpu_us / 1e6 for r in chosen if r.rate and r.cpu_us], 2)} "
            f"| {cell([r.cpu_us for r in chosen])} "
            f"| {cell([r.account_cpu_us for r in chosen])} | {cell([r.shard_cpu_us for r in chosen])} "
            f"| {cell([r.gateway_cpu_us for r in chosen])} | {cell([r.nats_cpu_us for r in chosen])} |"
        )
    lines += _ceilings(runs)
    if failovers:
        lines += _failover_lines(failovers, lease_ttl, rate)
    return "\n".join(lines) + "\n"


def _ceilings(runs: list[ClusterRun]) -> list[str]:
    """What one core of each kind of process would carry, from its CPU per order."""
    notes = []
    account = _median([r.account_cpu_us for r in runs if r.kind == "split"])
    if account:
        notes.append(
            f"account shard {account:,.0f} µs per order (all split runs): one core of it carries about "
            f"{1e6 / account:,.0f} orders/s, whatever the number of market shards"
        )
    for shards in sorted({r.market_shards for r in runs if r.kind == "split"}):
        market = _median([r.shard_cpu_us for r in runs if r.kind == "split" and r.market_shards == shards])
        if market:
            notes.append(
                f"M = {shards}: market shards {market:,.0f} µs per order (all together; each handles "
                f"1/{shards} of the orders, so {shards} core(s) of them would carry about "
                f"{shards * 1e6 / market:,.0f} orders/s)"
            )
    whole = _median([r.shard_cpu_us for r in runs if r.kind == "whole"])
    if whole:
        notes.append(f"whole shard {whole:,.0f} µs per order: about {1e6 / whole:,.0f} orders/s per core")
    gateway = _median([r.gateway_cpu_us for r in runs if r.kind != "embedded"])
    if gateway:
        notes.append(
            f"gateways {gateway:,.0f} µs per order (all runs): about {1e6 / gateway:,.0f} orders/s per core"
        )
    if not notes:
        return []
    return [
        "",
        "Cores busy = acknowledged orders/s x CPU per order of the server processes (nats-server included), "
        "median of the repeats. CPU per acknowledged order (medians): " + "; ".join(notes) + ".",
    ]


def _failover_lines(failovers: list[Failover], lease_ttl: float, rate: float) -> list[str]:
    lines = [
        "",
        f"Failover (the killed shard's leader + one standby, lease TTL {lease_ttl:g} s, one gateway, "
        f"{rate:g} orders/s; whole: one shard with every market; account / market: an account shard and "
        "one market shard, the named one with a standby):",
        "",
    ]
    lines.append(
        "| leader killed | repeat | kill -> first 201 to a request sent after the kill, s "
        "| new leader's takeover, s | longest wait of a request in flight at the kill, s "
        "| 201 before / after the kill | other answers |"
    )
    lines.append("|---|---:|---:|---:|---:|---|---|")
    for f in failovers:
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(f.other.items())) or "none"
        seconds = "n/a" if f.seconds is None else f"{f.seconds:.2f}"
        takeover = "n/a" if f.takeover_s is None else f"{f.takeover_s:.2f}"
        waited = "n/a" if f.in_flight_wait_s is None else f"{f.in_flight_wait_s:.2f}"
        lines.append(
            f"| {f.shard} | {f.repeat} | {seconds} | {takeover} | {waited} "
            f"| {f.acknowledged_before} / {f.acknowledged_after} | {answers} {f.note} |"
        )
    lines.append("")
    for shard in dict.fromkeys(f.shard for f in failovers):
        of = [f for f in failovers if f.shard == shard]
        times = [f.seconds for f in of if f.seconds is not None]
        takeovers = [f.takeover_s for f in of if f.takeover_s is not None]
        line = f"**Failover time, {shard} shard: {median_text(times, 2)} s** (median [min-max])."
        if takeovers:
            line += f" Takeover logged by the new leader: {median_text(takeovers, 2)} s."
        lines += [line, ""]
    return lines[:-1]


def header_lines(settings: Settings, wrk: str, repeats: int, topologies: list[Topology]) -> list[str]:
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
    names = ", ".join(t.name for t in topologies)
    split = [t for t in topologies if t.kind == "split"]
    owners = "; ".join(
        f"M = {t.market_shards}: "
        + ", ".join(
            f"{shard} {'+'.join(listed)}" for shard, listed in market_owners(SYMBOLS, t.market_shards).items()
        )
        for t in split
    )
    return [
        f"Cluster benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {repeats} interleaved "
        f"repeats of {names}; {settings.duration:g} s per run after {settings.warmup:g} s warm-up, "
        f"{settings.users} funded users, {settings.connections} connections in all (dealt round robin "
        f"over the gateways), signed POST /api/orders (resting limit orders) spread evenly over "
        f"{', '.join(SYMBOLS)}." + (f" Market shards own: {owners}." if owners else ""),
        f"Python {sys.version.split()[0]}, order book {build} ({settings.python}); "
        f"{version.stdout.strip() or 'nats-server'} (private, R1); "
        f"{wrk_line[0] if wrk_line else 'wrk'}; server processes on CPU(s) {settings.server_cpu or 'any'}, "
        f"load generators on CPU(s) {settings.load_cpu or 'any'}; {os.cpu_count()} CPUs; load average "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at start.",
    ]


# ---------------------------------------------------------------------------------------------- main


def topologies_of(whole: str, scale: str) -> list[Topology]:
    """``embedded``, then ``whole-G`` for each G of ``whole`` and ``split-G/M`` for each ``G/M`` of
    ``scale`` (comma-separated; empty: none)."""
    chosen = [Topology("embedded")]
    chosen += [Topology("whole", gateways=int(g)) for g in whole.split(",") if g.strip()]
    for entry in (e.strip() for e in scale.split(",") if e.strip()):
        gateways, _, shards = entry.partition("/")
        chosen.append(Topology("split", gateways=int(gateways), market_shards=int(shards or gateways)))
    for topology in chosen:
        if topology.kind != "embedded" and topology.gateways < 1:
            raise ValueError(f"{topology.name}: at least one gateway")
        if topology.kind == "split" and not 1 <= topology.market_shards <= len(SYMBOLS):
            raise ValueError(f"{topology.name}: 1 to {len(SYMBOLS)} market shards ({len(SYMBOLS)} markets)")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before each run")
    parser.add_argument("--connections", type=int, default=64, help="in all (dealt over the gateways)")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument(
        "--whole", default="1", help="phase-1 rows: gateway counts in front of one whole shard ('' for none)"
    )
    parser.add_argument(
        "--scale",
        default="1/1,2/2,4/4",
        help="phase-2 rows: GATEWAYS/MARKET_SHARDS beside one account shard, comma-separated ('' for none)",
    )
    parser.add_argument("--failovers", type=int, default=3, help="failover measurements per kind (0: none)")
    parser.add_argument(
        "--failover-kinds",
        default=",".join(FAILOVER_TOPOLOGIES),
        help="whose leader the failover runs kill, comma-separated: "
        + ", ".join(FAILOVER_TOPOLOGIES)
        + " (a whole shard; the account or the market shard of a split cluster)",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter whose installed manticore runs the servers (make bench-cluster: .venv-run, the "
        "README's compiled install)",
    )
    parser.add_argument("--lease-ttl", type=float, default=5.0, help="of the failover's shard instances")
    parser.add_argument("--failover-rate", type=float, default=200.0, help="orders/s of the steady load")
    parser.add_argument(
        "--failover-connections", type=int, default=2000, help="most requests of the steady load in flight"
    )
    parser.add_argument("--server-cpu", default="0,1", help="taskset CPU list of every server process")
    parser.add_argument("--load-cpu", default="1", help="taskset CPU list of the load generators")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 repeat, 2 s runs, --scale 1/1,2/2, 1 failover (TTL 1 s)",
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep-logs", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.duration, args.warmup = 1, min(args.duration, 2.0), 1.0
        args.scale, args.failovers, args.lease_ttl = (
            "1/1,2/2",
            min(args.failovers, 1),
            min(args.lease_ttl, 1.0),
        )
    if args.duration > 25 or args.warmup > 25:
        parser.error("--duration and --warmup at most 25 s (signed requests go stale after 30 s)")
    try:
        topologies = topologies_of(args.whole, args.scale)
    except ValueError as exc:
        parser.error(str(exc))
    failover_kinds = [kind.strip() for kind in args.failover_kinds.split(",") if kind.strip()]
    unknown = [kind for kind in failover_kinds if kind not in FAILOVER_TOPOLOGIES]
    if unknown:
        parser.error(f"--failover-kinds: unknown {', '.join(unknown)}")
    if not os.path.exists(NATS_SERVER):
        raise SystemExit(f"{NATS_SERVER} is not installed")
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
    header = header_lines(settings, wrk, args.repeats, topologies)
    runs: list[ClusterRun] = []
    failovers: list[Failover] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as directory:
        workdir = Path(directory)
        (workdir / "nats").mkdir()
        nats = NatsServer(workdir / "nats", settings.server_cpu)
        try:
            for repeat in range(1, args.repeats + 1):
                for topology in topologies:
                    try:
                        run = measure(wrk, topology, settings, workdir, nats, repeat)
                    except (RuntimeError, subprocess.TimeoutExpired, httpx.HTTPError) as exc:
                        run = ClusterRun(
                            topology.name,
                            repeat,
                            kind=topology.kind,
                            gateways=topology.gateways,
                            market_shards=topology.market_shards,
                            note=f"failed: {str(exc)[:300]}",
                        )
                    runs.append(run)
                    rate = "n/a" if run.rate is None else f"{run.rate:,.0f}/s"
                    print(
                        f"[{time.monotonic() - started:5.0f} s] repeat {repeat} {topology.name}: {rate} "
                        f"acknowledged, p50/p99 {run.p50_ms} / {run.p99_ms} ms {run.other or ''} {run.note}",
                        flush=True,
                    )
            for repeat in range(1, args.failovers + 1):
                for kind in failover_kinds:
                    try:
                        failover = measure_failover(
                            settings,
                            workdir,
                            nats,
                            repeat,
                            args.lease_ttl,
                            args.failover_rate,
                            args.failover_connections,
                            kind,
                        )
                    except (RuntimeError, subprocess.TimeoutExpired, httpx.HTTPError) as exc:
                        failover = Failover(repeat, kind, note=f"failed: {str(exc)[:300]}")
                    failovers.append(failover)
                    print(
                        f"[{time.monotonic() - started:5.0f} s] failover {repeat} ({kind}): "
                        f"{failover.seconds} s {failover.note}",
                        flush=True,
                    )
        finally:
            nats.kill()
    text = report(runs, failovers, header, args.lease_ttl, args.failover_rate)
    text += f"\nWhole benchmark: {time.monotonic() - started:.0f} s.\n"
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
