"""Fixtures: private nats-server processes (never the shared one on 4222) and unique stream prefixes.

* ``nats_server`` (session): ``/usr/sbin/nats-server -js -a 127.0.0.1 -p <free port> -sd <tmp dir>``;
  yields its URL; killed by its pid at the end of the session (its store is a temporary directory).
* ``nats_options``: :class:`NatsOptions` on that server with a prefix of its own (``t<random>``), so no
  two tests share a stream or bucket; at the end it deletes the stream and bucket of that prefix only.
* ``nats_cluster`` (session, for tests marked ``slow``): three servers routed on loopback, JetStream on
  each; yields their URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from manticore_cluster.natsconf import NatsOptions

NATS_SERVER = os.environ.get("MANTICORE_TEST_NATS_SERVER", "/usr/sbin/nats-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nats-server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nats-server did not listen on {port} within {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Kill one server we started, by its pid."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(10)


class NatsServer:
    """One private nats-server process with JetStream; ``restart()`` keeps its store and port."""

    def __init__(self, store: Path, port: int | None = None, config: Path | None = None) -> None:
        self.store = store
        self.port = port or free_port()
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port)]
        if self.config is not None:  # the store directory is in the config
            args += ["-c", str(self.config)]
        else:
            args += ["-sd", str(self.store)]
        log_path = self.store.parent / f"nats-{self.port}.log"
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.port, self.process)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {log_path.read_text()[-2000:]}") from None

    def kill(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    if not os.path.exists(NATS_SERVER):
        pytest.skip(f"{NATS_SERVER} is not installed")
    root = tmp_path_factory.mktemp("nats")
    server = NatsServer(root / "store")
    server.start()
    try:
        yield server
    finally:
        server.kill()
        shutil.rmtree(root, ignore_errors=True)


async def _delete_prefix(options: NatsOptions) -> None:
    import nats

    nc = await nats.connect(list(options.servers), connect_timeout=2, max_reconnect_attempts=1)
    try:
        js = nc.jetstream()
        for name in (
            options.log_stream,
            f"KV_{options.lease_bucket}",
            f"OBJ_{options.prefix}_snapshots",
            f"KV_{options.prefix}_followers",
        ):
            with contextlib.suppress(Exception):
                await js.delete_stream(name)
    finally:
        await nc.close()


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def nats_options(nats_server: NatsServer) -> Iterator[NatsOptions]:
    options = NatsOptions(servers=(nats_server.url,), prefix=unique_prefix(), request_timeout=2.0)
    yield options
    if nats_server.process is not None and nats_server.process.poll() is None:
        asyncio.run(_delete_prefix(options))


@pytest.fixture(scope="session")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[NatsServer]]:
    if not os.path.exists(NATS_SERVER):
        pytest.skip(f"{NATS_SERVER} is not installed")
    root = tmp_path_factory.mktemp("nats-cluster")
    cluster_ports = [free_port() for _ in range(3)]
    routes = ", ".join(f"nats-route://127.0.0.1:{port}" for port in cluster_ports)
    servers = []
    for index, cluster_port in enumerate(cluster_ports):
        store = root / f"store{index}"
        store.mkdir()
        config = root / f"server{index}.conf"
        config.write_text(
            f'server_name: "n{index}"\n'
            f'jetstream {{ store_dir: "{store}" }}\n'
            f'cluster {{\n  name: "mc-test"\n  listen: "127.0.0.1:{cluster_port}"\n  routes: [{routes}]\n}}\n'
        )
        servers.append(NatsServer(store, config=config))
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.kill()
        shutil.rmtree(root, ignore_errors=True)
