"""Helpers for the gateway protocol tests: a real Exchange served by CommandServer on its own event loop
thread, and ``manticore gateway`` processes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import nats
from nats.aio.client import Client

from manticore_api.server import ADMIN_CREDENTIALS
from manticore_cluster.natsconf import NatsOptions
from manticore_cluster.server import CommandServer
from manticore_matching import DEFAULT_MARKETS, DEFAULT_RISK_LIMITS, Exchange
from tests.api.support import start_healthy

from ..api.support import SignedClient, free_port
from .helpers import journal_factory

T = TypeVar("T")


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


class ServedShard:
    """An opened Exchange in ``data_dir`` served as shard ``shard`` by a CommandServer (or a subclass:
    ``server_class``) on a private loop thread; ``start_server``/``stop_server`` model gaining and
    losing the leadership. ``journal``: the exchange's journal is the shard's subject of that JetStream
    stream (the subjects then share its prefix); the file journal without it."""

    def __init__(
        self,
        nats_url: str,
        data_dir: Path,
        *,
        shard: str = "s1",
        prefix: str | None = None,
        server_class: type[CommandServer] = CommandServer,
        journal: NatsOptions | None = None,
    ) -> None:
        self.shard = shard
        self.prefix = journal.prefix if journal is not None else prefix or unique_prefix()
        self.exchange = Exchange(
            data_dir,
            markets=DEFAULT_MARKETS,
            risk_limits=DEFAULT_RISK_LIMITS,
            fsync=False,
            journal_factory=None if journal is None else journal_factory(journal, shard),
        )
        self.exchange.open()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.nc: Client = self.run(nats.connect(nats_url))
        self.server_class = server_class
        self.server: CommandServer | None = None
        self.batches: list[tuple[int, list[dict[str, Any]]]] = []
        self.exchange.add_batch_listener(lambda position, batch: self.batches.append((position, batch)))

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def call(self, function: Callable[[], T]) -> T:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(function())
            except BaseException as exc:
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return future.result(30)

    def start_server(self) -> CommandServer:
        server = self.server_class(self.nc, self.exchange, self.shard, self.prefix)
        self.run(server.start())
        self.server = server
        return server

    def stop_server(self) -> None:
        if self.server is not None:
            self.run(self.server.stop())
            self.server = None

    def request(self, subject_kind: str, body: bytes, timeout: float = 5) -> bytes:
        subject = f"{self.prefix}.{subject_kind}.{self.shard}"
        return self.run(self.nc.request(subject, body, timeout=timeout)).data

    def close(self) -> None:
        self.stop_server()
        self.run(self.nc.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.exchange.close()


class Gateway:
    """``manticore gateway`` in a subprocess (auth store and admin credentials in ``data_dir``)."""

    def __init__(
        self,
        nats_url: str,
        shard: ServedShard,
        data_dir: Path,
        *,
        request_timeout: float = 2.0,
        retry_deadline: float = 15.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"{data_dir.name}-gateway-{self.port}.log"
        self.command = [
            sys.executable,
            "-m",
            "manticore_api.cli",
            "gateway",
            "--nats",
            nats_url,
            "--shard",
            shard.shard,
            "--prefix",
            shard.prefix,
            "--port",
            str(self.port),
            "--data-dir",
            str(data_dir),
            "--request-timeout",
            str(request_timeout),
            "--retry-deadline",
            str(retry_deadline),
            "--log-level",
            "warning",
            *extra_args,
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = start_healthy(self.command, self.log, self.url, "gateway")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None

    def admin(self, http: httpx.Client) -> SignedClient:
        credentials = json.loads((self.data_dir / ADMIN_CREDENTIALS).read_text())
        return SignedClient(http, credentials["api_key"], credentials["api_secret"])
