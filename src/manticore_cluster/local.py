"""``manticore cluster``: a whole local cluster as child processes, for trying it on one machine.

:func:`plan` lists the processes (one shard leader candidate per instance directory, gateways on
consecutive ports, and a storage writer per shard that keeps a read model); :class:`LocalCluster`
starts them, restarts a shard instance or storage writer that exits on its own (a fenced or deposed
leader comes back as a standby, as a service manager would do it), and stops them all - SIGTERM, then
SIGKILL after a grace period - when asked (Ctrl-C) or when a gateway cannot run.

Every child is addressed by its process id only; nothing else on the machine is signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Child", "ClusterPlan", "LocalCluster", "plan", "read_model_url"]

#: ``python -m manticore_api.cli``: the same interpreter and package as the parent.
CLI = (sys.executable, "-m", "manticore_api.cli")


@dataclass
class Child:
    """One child process: its name (``shard-0``, ``gateway-1``...), command line, restart policy."""

    name: str
    argv: list[str]
    restart: bool
    #: A gateway's port: the next child starts once it accepts connections (the first gateway creates
    #: the shared auth store's first admin; the others find it).
    port: int | None = None
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None


@dataclass(frozen=True)
class ClusterPlan:
    """What ``manticore cluster`` runs: ``shards`` (leader candidate + standbys), ``gateways`` and
    ``writers`` (storage writers), started in that order."""

    shards: tuple[Child, ...] = field(default_factory=tuple)
    gateways: tuple[Child, ...] = field(default_factory=tuple)
    writers: tuple[Child, ...] = field(default_factory=tuple)

    @property
    def children(self) -> tuple[Child, ...]:
        return self.shards + self.gateways + self.writers


def read_model_url(data_dir: Path, shard: str, *, split: bool) -> str:
    """The SQLite URL of the read model the local cluster's storage writer of ``shard`` keeps:
    ``<data_dir>/read-model.db`` for the whole shard, ``<data_dir>/read-model-<shard>.db`` for each
    market shard of a split cluster (one database per log: a database records one log position)."""
    name = f"read-model-{shard}.db" if split else "read-model.db"
    return f"sqlite:///{(data_dir / name).resolve()}"


def plan(
    *,
    nats_url: str,
    data_dir: Path,
    standbys: int,
    gateways: int,
    host: str,
    port: int,
    prefix: str,
    shard: str,
    lease_ttl: float,
    config_path: Path | None,
    gateway_args: Sequence[str] = (),
    market_shards: int = 0,
    symbols: Sequence[str] = (),
    storage_writer: bool = True,
) -> ClusterPlan:
    """The processes of a local cluster: shard instances ``shard-0`` .. ``shard-<standbys>`` with data
    directories ``<data_dir>/shard-<i>`` (whichever wins the lease leads), and gateways
    ``gateway-0`` .. listening on ``port``, ``port + 1``, ..., sharing the auth store in
    ``<data_dir>/gateway`` (``gateway_args`` are added to each).

    With ``market_shards`` M > 0 (phase 2) the markets ``symbols`` are dealt round-robin to market
    shards ``m0`` .. ``m<M-1>`` (instances ``m<j>-<i>``), ``shard`` is the account shard (instances
    ``shard-<i>``), each with ``standbys`` standbys, and the gateways route to them.

    With ``storage_writer`` (the default) a ``manticore storage-writer`` follows the log of each shard
    that has orders and trades - the whole shard (child ``storage-<shard>``), or each market shard of a
    split cluster (``storage-m<j>``; the account shard keeps no SQL read model) - into the SQLite
    database :func:`read_model_url`, with its own directory ``<data_dir>/storage-<shard>``; it is
    restarted like a shard instance when it exits."""
    common = ["--nats", nats_url, "--prefix", prefix]
    config = ["--config", str(config_path)] if config_path is not None else []
    split_args: list[str] = []
    market_children: list[Child] = []
    owned: dict[str, list[str]] = {}
    if market_shards > 0:
        owned = {f"m{j}": [] for j in range(market_shards)}
        for index, symbol in enumerate(symbols):
            owned[f"m{index % market_shards}"].append(symbol)
        owned = {name: listed for name, listed in owned.items() if listed}
        for name, listed in owned.items():
            split_args += ["--market-shard", f"{name}={','.join(listed)}"]
            for index in range(standbys + 1):
                market_children.append(
                    Child(
                        f"{name}-{index}",
                        [
                            *CLI,
                            "shard",
                            *common,
                            "--name",
                            name,
                            "--role",
                            "market",
                            "--markets",
                            ",".join(listed),
                            "--data-dir",
                            str(data_dir / f"{name}-{index}"),
                            "--lease-ttl",
                            str(lease_ttl),
                            *config,
                        ],
                        restart=True,
                    )
                )
    account_args = ["--role", "account", *split_args] if split_args else []
    shards = tuple(market_children) + tuple(
        Child(
            f"shard-{index}",
            [
                *CLI,
                "shard",
                *common,
                "--name",
                shard,
                "--data-dir",
                str(data_dir / f"shard-{index}"),
                "--lease-ttl",
                str(lease_ttl),
                *config,
                *account_args,
            ],
            restart=True,
        )
        for index in range(standbys + 1)
    )
    gateway_children = tuple(
        Child(
            f"gateway-{index}",
            [
                *CLI,
                "gateway",
                *common,
                "--shard",
                shard,
                "--host",
                host,
                "--port",
                str(port + index),
                "--data-dir",
                str(data_dir / "gateway"),
                *split_args,
                *gateway_args,
            ],
            restart=False,
            port=port + index,
        )
        for index in range(gateways)
    )
    followed = list(owned) if market_shards > 0 else [shard]
    writers = tuple(
        Child(
            f"storage-{name}",
            [
                *CLI,
                "storage-writer",
                *common,
                "--shard",
                name,
                "--database-url",
                read_model_url(data_dir, name, split=market_shards > 0),
                "--data-dir",
                str(data_dir / f"storage-{name}"),
                *config,
            ],
            restart=True,
        )
        for name in (followed if storage_writer else [])
    )
    return ClusterPlan(shards, gateway_children, writers)


class LocalCluster:
    """Runs a :class:`ClusterPlan`'s children until :meth:`stop`.

    Args:
        cluster_plan: the children.
        echo: where progress lines go (the terminal).
        restart_delay: seconds before a shard instance that exited is started again.
        grace: seconds a child gets between SIGTERM and SIGKILL at :meth:`stop`.
    """

    def __init__(
        self,
        cluster_plan: ClusterPlan,
        *,
        echo: Callable[[str], None] = print,
        restart_delay: float = 1.0,
        grace: float = 10.0,
    ) -> None:
        self.plan = cluster_plan
        self.echo = echo
        self.restart_delay = restart_delay
        self.grace = grace
        self._stopping = False

    def start(self, *, ready_timeout: float = 60.0) -> None:
        """Start every child: shards first, so that the gateways find a leader soon; each gateway once
        the previous one listens (at most ``ready_timeout`` seconds each)."""
        for child in self.plan.children:
            self._spawn(child)
            if child.port is not None:
                self._wait_listening(child, ready_timeout)

    def _wait_listening(self, child: Child, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        host = self._host_of(child)
        while time.monotonic() < deadline:
            assert child.process is not None and child.port is not None
            if child.process.poll() is not None:
                return  # poll() reports it
            with contextlib.suppress(OSError), socket.create_connection((host, child.port), timeout=0.2):
                return
            time.sleep(0.1)
        self.echo(f"{child.name} does not listen on port {child.port} after {timeout} s")

    @staticmethod
    def _host_of(child: Child) -> str:
        host = child.argv[child.argv.index("--host") + 1] if "--host" in child.argv else "127.0.0.1"
        return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)

    def _spawn(self, child: Child) -> None:
        # Its own process group: Ctrl-C reaches the parent only, which stops the children in order.
        child.process = subprocess.Popen(child.argv, start_new_session=True)
        child.started_at = time.monotonic()
        self.echo(f"started {child.name} (pid {child.process.pid}): {' '.join(child.argv[3:])}")

    def poll(self) -> bool:
        """Look after the children once: restart shard instances that exited (after ``restart_delay``).
        False when a gateway has exited (the cluster cannot serve as asked)."""
        healthy = True
        for child in self.plan.children:
            process = child.process
            if process is None or process.poll() is None:
                continue
            code = process.returncode
            if not child.restart:
                self.echo(f"{child.name} (pid {process.pid}) exited with status {code}")
                healthy = False
                child.process = None
                continue
            if time.monotonic() - child.started_at < self.restart_delay:
                continue
            self.echo(f"{child.name} (pid {process.pid}) exited with status {code}; starting it again")
            child.restarts += 1
            self._spawn(child)
        return healthy

    def run(self, *, poll_interval: float = 0.5) -> int:
        """Start, then look after the children until SIGINT/SIGTERM or a gateway exits; stop them all.
        Returns 0 after a requested stop, 1 when a gateway failed."""
        stop_requested = False

        def request_stop(_signum: int, _frame: object) -> None:
            nonlocal stop_requested
            stop_requested = True

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            healthy = True
            while not stop_requested and healthy:
                time.sleep(poll_interval)
                healthy = self.poll()
            return 0 if healthy else 1
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def stop(self) -> None:
        """SIGTERM to every running child (gateways, shards, then storage writers, which read the log
        to its end before they stop), wait up to ``grace`` seconds, SIGKILL what is left; each by its
        process id."""
        self._stopping = True
        order = self.plan.gateways + self.plan.shards + self.plan.writers
        running = [child for child in order if child.process is not None and child.process.poll() is None]
        for child in running:
            assert child.process is not None
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.echo(f"{child.name} (pid {child.process.pid}) did not stop in time: killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.process.pid, signal.SIGKILL)
                child.process.wait()
            self.echo(f"stopped {child.name} (status {child.process.returncode})")
