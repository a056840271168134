"""The processes of :mod:`benchmarks.cluster`: a private nats-server, and one configuration under test
(the embedded server, or shards and gateways) on fresh data directories and a fresh stream prefix.

Every process is started by this module, pinned with taskset when asked, and stopped by its own
process id (SIGTERM, then SIGKILL after a grace period); nothing else on the machine is signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from .cluster_load import FUNDING, SYMBOLS, config_text, write_requests
from .http_support import cpu_seconds, free_port
from .server import ROOT, Server, Settings, Target, pinned

__all__ = ["EMBEDDED", "Deployment", "NatsServer", "Topology", "deployed", "market_owners"]

NATS_SERVER = os.environ.get("MANTICORE_BENCH_NATS_SERVER", "/usr/sbin/nats-server")
CLI = ("-m", "manticore_api.cli")

EMBEDDED = Target("embedded", "`manticore serve` (embedded, file journal)", "manticore", signed=True)


@dataclass(frozen=True)
class Topology:
    """One configuration: ``kind`` embedded, whole (phase 1: one shard with every market) or split
    (phase 2: an account shard and ``market_shards`` market shards); ``gateways`` gateways (none for
    embedded); ``instances`` instances of the whole or account shard and ``market_instances`` of each
    market shard (a leader and standbys; failover runs)."""

    kind: str
    gateways: int = 0
    market_shards: int = 0
    instances: int = 1
    market_instances: int = 1

    @property
    def name(self) -> str:
        if self.kind == "embedded":
            return "embedded"
        if self.kind == "whole":
            return f"whole-{self.gateways}"
        return f"split-{self.gateways}/{self.market_shards}"

    @property
    def label(self) -> str:
        if self.kind == "embedded":
            return EMBEDDED.label
        if self.kind == "whole":
            return f"1 whole shard + {self.gateways} gateway(s)"
        return f"account shard + {self.market_shards} market shard(s) + {self.gateways} gateway(s)"


def market_owners(symbols: tuple[str, ...], shards: int) -> dict[str, list[str]]:
    """Market shard name (``m0`` ..) -> the symbols it owns, dealt round robin (as ``manticore
    cluster`` deals them)."""
    owned: dict[str, list[str]] = {f"m{j}": [] for j in range(shards)}
    for index, symbol in enumerate(symbols):
        owned[f"m{index % shards}"].append(symbol)
    return {name: listed for name, listed in owned.items() if listed}


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

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def kill(self) -> None:
        """SIGKILL by pid (ours only)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def stop_all(processes: list[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM to each running process (by pid), wait up to ``grace`` seconds for all, SIGKILL the rest."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in running:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait()


class Deployment(Server):
    """One configuration's processes. As a :class:`Server`, ``url`` is the first entry point and
    ``data`` the directory holding ``admin-credentials.json`` (the embedded server's, or the gateways'
    shared auth store), so :meth:`Server.setup_traders` creates and funds users through it.

    Process names: ``serve``; ``shard-<i>`` (whole shard instances), ``acct-0``, ``m<j>-0``;
    ``gateway-<i>``. :meth:`cpu_of` sums CPU by kind (the part of the name before the first digit or
    dash)."""

    def __init__(
        self,
        settings: Settings,
        workdir: Path,
        name: str,
        topology: Topology,
        nats: NatsServer | None = None,
        *,
        lease_ttl: float = 5.0,
        symbols: tuple[str, ...] = SYMBOLS,
    ) -> None:
        # Server.__init__ starts one `manticore serve`: set the fields it would, start ours instead.
        self.target = EMBEDDED
        self.settings = settings
        self.topology = topology
        self.symbols = symbols
        self.traders = []
        self.counter = 0
        self.root = workdir / name.replace("/", "x")
        self.root.mkdir()
        self.config = self.root / "bench.toml"
        self.config.write_text(config_text(symbols))
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        # groups of instances (a shard's leader and standbys): one of each must log ": leader " before use
        self.leaders: list[list[str]] = []
        python = settings.python
        try:
            if topology.kind == "embedded":
                self.data = self.root / "data"
                port = free_port()
                self.urls = [f"http://127.0.0.1:{port}"]
                argv = [python, *CLI, "serve", "--port", str(port), "--data-dir", str(self.data)]
                self._spawn("serve", [*argv, "--config", str(self.config)])
                self._wait_healthy("serve", self.urls[0])
            else:
                assert nats is not None
                self._start_cluster(python, nats, lease_ttl)
        except BaseException:
            self.stop()
            raise
        self.url = self.urls[0]
        self.port = int(self.url.rsplit(":", 1)[1])
        self.log_path = self.logs.get("shard-0", self.logs.get("serve", self.root / "none.log"))

    def _start_cluster(self, python: str, nats: NatsServer, lease_ttl: float) -> None:
        topology = self.topology
        common = ["--nats", nats.url, "--prefix", "cb" + uuid.uuid4().hex[:10], "--config", str(self.config)]
        shard_args = ["--lease-ttl", str(lease_ttl), "--log-level", "info"]
        routing: list[str] = []
        account = "main"
        if topology.kind == "split":
            account = "acct"
            for shard, listed in market_owners(self.symbols, topology.market_shards).items():
                routing += ["--market-shard", f"{shard}={','.join(listed)}"]
                group = [f"{shard}-{index}" for index in range(topology.market_instances)]
                for name in group:
                    argv = [python, *CLI, "shard", *common, "--name", shard, "--role", "market"]
                    argv += ["--markets", ",".join(listed), "--data-dir", str(self.root / name), *shard_args]
                    self._spawn(name, argv)
                self.leaders.append(group)
        group = [f"acct-{i}" if topology.kind == "split" else f"shard-{i}" for i in range(topology.instances)]
        for name in group:
            argv = [python, *CLI, "shard", *common, "--name", account, *shard_args]
            argv += ["--data-dir", str(self.root / name)]
            if topology.kind == "split":
                argv += ["--role", "account", *routing]
            self._spawn(name, argv)
        self.leaders.append(group)
        self.data = self.root / "gateway"
        self.urls = []
        for index in range(topology.gateways):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            argv = [python, *CLI, "gateway", *common[:4], "--shard", account, "--port", str(port), *routing]
            argv += ["--data-dir", str(self.data), "--log-level", "warning"]
            self._spawn(f"gateway-{index}", argv)
            self._wait_healthy(f"gateway-{index}", url)  # the first creates the shared store's admin
            self.urls.append(url)
        self._wait_leaders()

    def _spawn(self, name: str, argv: list[str]) -> None:
        self.logs[name] = self.root / f"{name}.log"
        with self.logs[name].open("ab") as log:
            self.processes[name] = subprocess.Popen(
                pinned(self.settings.server_cpu, argv), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    def text(self, name: str) -> str:
        path = self.logs.get(name)
        return path.read_text(errors="replace") if path is not None and path.exists() else ""

    def _check_running(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited ({process.returncode}): {self.text(name)[-1500:]}")

    def _wait_healthy(self, name: str, url: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_running()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{name} not healthy after {timeout} s: {self.text(name)[-1500:]}")

    def _wait_leaders(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_running()
            if all(self.leader(group[0].rsplit("-", 1)[0]) for group in self.leaders):
                return
            time.sleep(0.1)
        missing = [group for group in self.leaders if not self.leader(group[0].rsplit("-", 1)[0])]
        raise RuntimeError(f"no leader after {timeout} s: {missing}")

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Every entry point was healthy (and every shard led) when the constructor returned."""

    def leader(self, shard: str = "shard") -> str | None:
        """The name of a running instance of ``shard`` (``shard``: the whole shard, ``acct``, ``m0`` ..)
        that logged that it leads, if any."""
        for name, process in self.processes.items():
            if name.rsplit("-", 1)[0] == shard and process.poll() is None and ": leader " in self.text(name):
                return name
        return None

    def cpu_of(self) -> dict[str, float]:
        """CPU seconds so far by kind of process: serve, shard, acct, m (market shards), gateway."""
        totals: dict[str, float] = {}
        for name, process in self.processes.items():
            kind = name.split("-")[0].rstrip("0123456789")
            totals[kind] = totals.get(kind, 0.0) + cpu_seconds(process.pid)
        return totals

    def _fund(self, http: httpx.Client, admin: dict[str, str] | None, user_id: str) -> None:
        for asset, amount in FUNDING:
            self._admin(http, admin, "/api/deposits", {"user_id": user_id, "asset": asset, "amount": amount})

    def requests_file(self, path: Path, count: int) -> Path:
        """A fresh requests file of ``count`` orders spread over the markets (signed now)."""
        write_requests(path, self.traders, count, start=self.counter, symbols=self.symbols)
        self.counter += count
        return path

    def admin(self) -> dict[str, str]:
        credentials: dict[str, str] = json.loads((self.data / "admin-credentials.json").read_text())
        return credentials

    def stop(self) -> None:
        gateways = [p for name, p in self.processes.items() if name.startswith("gateway")]
        stop_all(gateways, 10.0)
        stop_all(list(self.processes.values()), 20.0)


@contextlib.contextmanager
def deployed(
    settings: Settings,
    workdir: Path,
    name: str,
    topology: Topology,
    nats: NatsServer | None,
    *,
    lease_ttl: float = 5.0,
) -> Iterator[Deployment]:
    """A started configuration with its traders set up; stopped (and its directories removed) on exit;
    logs copied to ``settings.keep_logs`` when set."""
    deployment = Deployment(settings, workdir, name, topology, nats, lease_ttl=lease_ttl)
    try:
        deployment.setup_traders(settings.users)
        yield deployment
    finally:
        deployment.stop()
        if settings.keep_logs is not None:
            settings.keep_logs.mkdir(parents=True, exist_ok=True)
            for log_name, path in deployment.logs.items():
                if path.exists():
                    shutil.copy(path, settings.keep_logs / f"{deployment.root.name}-{log_name}.log")
        shutil.rmtree(deployment.root, ignore_errors=True)
