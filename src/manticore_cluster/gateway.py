"""A stateless gateway: today's native REST/WebSocket API (:mod:`manticore_api`) over a remote shard.

:class:`GatewayService` is the API's :class:`~manticore_api.service.ExchangeService` with a
:class:`~.remote.RemoteExchange` in place of the exchange: the routes, validation, authentication,
error mapping and answers are the embedded server's own code. What differs:

* ``durable(position)`` waits for the command's ticket: the leader answers a command once it is
  durable, or with its error, which is raised here (so a refusal reaches the client after the round
  trip instead of at the call; REST answers the same status and body; WebSocket order entry answers
  it in order with the accepted ones);
* stream messages come from the shard's market-data subject (the leader publishes them in journal
  order once durable), and are fanned out by the same :class:`~manticore_api.streams.StreamHub`;
* there is no expiry timer (the leader runs it) and no data directory lock: any number of gateways
  may serve one shard. The auth store (users, keys, sessions) is shared: ``--database-url`` (e.g.
  PostgreSQL) or the SQLite ``auth.db`` and ``master.key`` of ``--data-dir``; a gateway that finds
  the store without users creates the first admin as ``manticore serve`` does (credentials in
  ``admin-credentials.json`` of its data directory): start one gateway first on a new store;
* the Binance-compatible surface is mounted as on ``manticore serve``; what it reads beside the native
  API (risk limits, stored trades, a storage flush) comes from the leader (:mod:`.gateway_binance`);
* ``GET /api/health`` adds ``components.shard`` (the leader answered, and the gateway's retry count)
  and is degraded (503) while no leader answers.

This module imports :mod:`manticore_api` (the one package that does); ``manticore gateway`` imports it
only when run.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import uvicorn

from manticore_api.app import create_app
from manticore_api.server import bind_socket, client_url, open_auth, uvicorn_config
from manticore_api.service import ExchangeService
from manticore_auth import AuthManager
from manticore_matching import Exchange, ExchangeError

from .gateway_binance import RemoteTradeHistory
from .gateway_reads import RemoteReads
from .remote import RemoteExchange

__all__ = ["GatewayOptions", "GatewayService", "build_gateway", "run_gateway"]

log = logging.getLogger("manticore_cluster")


class GatewayService(ExchangeService):
    """The API's service over ``remote`` (see the module doc). ``remote`` must be open; :meth:`stop`
    closes it and the auth store is the caller's to close."""

    def __init__(self, remote: RemoteExchange, auth: AuthManager, *, require_auth: bool = True) -> None:
        # The API is typed against Exchange; RemoteExchange has the methods the native API calls
        # (tests/cluster run the native API's answers through it).
        super().__init__(cast(Exchange, remote), auth, require_auth=require_auth)
        self.remote = remote

    def _to_hub(self, batch: list[dict[str, Any]]) -> None:
        """A durable batch to the WebSocket fan-out, the account shard's ``balances`` messages
        (:mod:`.account_feed`) without their ``transfer`` flag: the embedded server's frame shape."""
        if batch and "transfer" in batch[0]:
            batch = [{key: value for key, value in message.items() if key != "transfer"} for message in batch]
        self._from_journal_thread(batch)

    def trade_history(self) -> RemoteTradeHistory:
        """The Binance surface's reads from the leader (:mod:`.gateway_binance`)."""
        return RemoteTradeHistory(self.remote)

    def make_reads(self) -> RemoteReads:
        """Reads awaited on the loop (:mod:`.gateway_reads`): a read never blocks the loop."""
        return RemoteReads(cast(RemoteExchange, self.exchange))

    async def start(self) -> None:
        """Attach the market-data feed to the running loop's stream hub."""
        self._loop = asyncio.get_running_loop()
        self.remote.add_listener(self._to_hub)

    async def stop(self) -> None:
        """Close the streams and the NATS connection."""
        await self.hub.close()
        self.remote.remove_listener(self._to_hub)
        await asyncio.get_running_loop().run_in_executor(None, self.remote.close)

    async def durable(self, position: int, timeout: float = 30.0) -> None:
        """Wait for command ticket ``position``'s answer; raise the leader's error (``timeout`` is the
        remote exchange's deadline, which always ends the wait)."""
        await self.remote.wait_ticket(position)

    def is_durable(self, position: int) -> bool:
        """True once ticket ``position`` was answered successfully (see ``RemoteExchange.ticket_done``)."""
        return self.remote.ticket_done(position)

    def health(self) -> dict[str, Any]:
        """The embedded report read from the leader, plus ``components.shard``; degraded (with the
        reason) while no leader answers."""
        shard = {"name": self.remote.shard, "retries": self.remote.retries}
        try:
            report = super().health()
        except ExchangeError as exc:
            return {
                "status": "degraded",
                "components": {
                    "shard": {**shard, "ok": False, "message": exc.message},
                    "streams": {"connections": self.hub.connection_count},
                },
                "uptime_seconds": round(time.time() - self.started_at, 3),
            }
        report["components"]["shard"] = {**shard, "ok": True}
        return report


@dataclass
class GatewayOptions:
    """What ``manticore gateway`` was asked for (see its ``--help``)."""

    nats_url: str  # one URL, or several comma-separated
    shard: str
    prefix: str = "mc"
    data_dir: Path = Path("./manticore-data")
    database_url: str | None = None
    require_auth: bool = True
    attempt_timeout: float = 5.0
    deadline: float = 30.0
    loop_deadline: float = 2.0
    #: phase 2: symbol -> market shard; ``shard`` is then the account shard
    market_shards: dict[str, str] | None = None


def build_gateway(options: GatewayOptions) -> GatewayService:
    """Connect to NATS and open the shared auth store; the service to serve (its app closes the
    connection at shutdown; close ``service.auth`` after)."""
    servers = [url.strip() for url in options.nats_url.split(",") if url.strip()]
    timing: dict[str, Any] = {
        "attempt_timeout": options.attempt_timeout,
        "deadline": options.deadline,
        "loop_deadline": options.loop_deadline,
    }
    remote: RemoteExchange
    if options.market_shards:
        from .routed_gateway import RoutedExchange

        remote = RoutedExchange(servers, options.shard, options.prefix, options.market_shards, **timing)
    else:
        remote = RemoteExchange(servers, options.shard, options.prefix, **timing)
    remote.open()
    try:
        data_dir = Path(options.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        auth = open_auth(data_dir, options.database_url)
    except BaseException:
        remote.close()
        raise
    return GatewayService(remote, auth, require_auth=options.require_auth)


def run_gateway(
    options: GatewayOptions,
    *,
    host: str,
    port: int,
    log_level: str = "info",
    echo: Any = print,
    ws_compression: bool = False,
) -> None:
    """Serve the native API over shard ``options.shard`` until interrupted. OSError if the port is
    taken (nothing was started then). ``ws_compression``: see
    :func:`manticore_api.server.uvicorn_config`."""
    sock: socket.socket = bind_socket(host, port)
    with sock:
        port = int(sock.getsockname()[1])
        service = build_gateway(options)
        try:
            app = create_app(service)
            echo(f"Manticore gateway for shard {options.shard} on {client_url(host, port)}")
            config = uvicorn_config(app, host, port, log_level, ws_compression=ws_compression)
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            service.remote.close()
            service.auth.close()
