"""Helpers of the shard tests: shard instances as real processes, and a NATS client of the gateway
protocol that sees every reply (so a test can tell who answered what, and whether a zombie did)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from manticore_cluster import protocol
from manticore_cluster.natsconf import NatsOptions
from tests.matching.exchange_streams import MARKETS

#: Every shard process of a test uses this lease TTL (seconds).
LEASE_TTL = 1.0


def write_config(path: Path) -> Path:
    """The test markets, and risk limits that a load generator does not run into."""
    lines = []
    for market in MARKETS:
        lines.append("[[markets]]")
        lines += [f'{key} = "{value}"' for key, value in market.to_dict().items()]
        lines.append("")
    lines += [
        "[risk]",
        "max_open_orders = 100000",
        "rate_limit_orders = 100000",
        "rate_limit_window = 1.0",
        "",
    ]
    path.write_text("\n".join(lines))
    return path


class ShardProcess:
    """``manticore shard`` as a child process; its log goes to ``<data_dir>.log``."""

    def __init__(
        self,
        options: NatsOptions,
        data_dir: Path,
        config: Path,
        *,
        name: str = "main",
        extra_args: tuple[str, ...] = (),
        command: tuple[str, ...] = ("manticore_api.cli",),
    ) -> None:
        self.extra_args = extra_args
        #: the module run with ``python -m`` and its first arguments, before ``shard <options>``
        self.command = command
        self.options = options
        self.data_dir = data_dir
        self.config = config
        self.name = name
        self.log_path = data_dir.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> ShardProcess:
        argv = [
            sys.executable,
            "-m",
            *self.command,
            "shard",
            "--nats",
            ",".join(self.options.servers),
            "--prefix",
            self.options.prefix,
            "--name",
            self.name,
            "--data-dir",
            str(self.data_dir),
            "--lease-ttl",
            str(LEASE_TTL),
            "--config",
            str(self.config),
            *self.extra_args,
        ]
        handle = self.log_path.open("ab")
        self.process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT)
        handle.close()
        self.started_at = time.monotonic()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for(self, needle: str, timeout: float = 20.0) -> float:
        """Wait until the log contains ``needle``; return the monotonic time it was seen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text():
                return time.monotonic()
            if self.process is not None and self.process.poll() is not None and needle not in self.text():
                raise AssertionError(
                    f"shard exited ({self.process.returncode}) before {needle!r}:\n{self.text()}"
                )
            time.sleep(0.02)
        raise AssertionError(f"{needle!r} not in the shard's log after {timeout} s:\n{self.text()}")

    @property
    def leading(self) -> bool:
        return ": leader " in self.text()

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout: float = 20.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> None:
        """SIGKILL if still running (teardown)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGCONT)
                os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@contextlib.contextmanager
def shard_processes(*shards: ShardProcess) -> Iterator[tuple[ShardProcess, ...]]:
    try:
        yield shards
    finally:
        for shard in shards:
            shard.stop()


class NoLeader(Exception):
    """Nobody subscribed the command subject when the request arrived (no leader at that moment)."""


class ProtocolClient:
    """Requests of the gateway protocol on a NATS connection of its own, each with a private inbox:
    every reply a request gets is recorded (``replies[cmd]``), not just the first."""

    def __init__(self, options: NatsOptions, shard: str = "main") -> None:
        self.options = options
        self.cmd_subject = protocol.cmd_subject(options.prefix, shard)
        self.query_subject = protocol.query_subject(options.prefix, shard)
        self.replies: dict[str, list[tuple[float, bytes]]] = {}
        self._numbers = itertools.count(1)
        self._session = uuid.uuid4().hex[:12]
        self._nc: Any = None
        self._waiters: dict[str, asyncio.Future[bytes]] = {}

    async def __aenter__(self) -> ProtocolClient:
        import nats

        self._nc = await nats.connect(list(self.options.servers), max_reconnect_attempts=-1)
        self._inbox_prefix = self._nc.new_inbox()
        await self._nc.subscribe(f"{self._inbox_prefix}.*", cb=self._on_reply)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._nc.close()

    async def _on_reply(self, msg: Any) -> None:
        cmd = msg.subject.rsplit(".", 1)[1]
        if msg.headers and msg.headers.get("Status") == "503":  # the server: nobody subscribes
            waiter = self._waiters.pop(cmd, None)
            if waiter is not None and not waiter.done():
                waiter.set_exception(NoLeader(cmd))
            return
        self.replies.setdefault(cmd, []).append((time.monotonic(), bytes(msg.data)))
        waiter = self._waiters.pop(cmd, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(bytes(msg.data))

    def new_cmd(self) -> str:
        """A request id unique across clients (the leader remembers command ids across connections)."""
        return f"c{self._session}-{next(self._numbers)}"

    async def send(self, op: str, args: dict[str, Any], *, cmd: str, retry: bool = False) -> None:
        """Publish a command without waiting for anything."""
        body = protocol.encode_request(cmd, op, args, retry=retry)
        await self._nc.publish(self.cmd_subject, body, reply=f"{self._inbox_prefix}.{cmd}")
        await self._nc.flush()

    async def command(
        self,
        op: str,
        args: dict[str, Any],
        *,
        cmd: str | None = None,
        retry: bool = False,
        timeout: float = 3.0,
    ) -> Any:
        """Send a command and wait for its first reply: the decoded result (or the exchange error it
        describes raised); asyncio.TimeoutError when nothing answered in ``timeout`` seconds, NoLeader
        when nobody subscribed."""
        cmd = cmd or self.new_cmd()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiters[cmd] = future
        try:
            await self.send(op, args, cmd=cmd, retry=retry)
            data = await asyncio.wait_for(future, timeout)
        finally:
            self._waiters.pop(cmd, None)
        return protocol.decode_reply(data)

    async def query(self, op: str, args: dict[str, Any], timeout: float = 5.0) -> Any:
        body = protocol.encode_request(self.new_cmd(), op, args)
        reply = await self._nc.request(self.query_subject, body, timeout=timeout)
        return protocol.decode_reply(reply.data)

    async def wait_for_leader(self, timeout: float = 20.0) -> None:
        """Until a leader answers a read."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                await self.query("markets", {}, timeout=0.5)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
