"""Assemble a running exchange from command-line options: data directory, databases, markets, users.

Layout of the data directory (created on first start)::

    LOCK                        held (flock) by the one process that has the directory open; its PID
    server.json                 the running server's address (while it runs; removed at shutdown)
    journal/                    the command journal (acknowledged commands; replayed on start)
    checkpoint.json             the last checkpoint (books, ledger, journal position)
    manticore.db                orders and trades (SQLite; unless --database-url)
    auth.db                     users, API keys, sessions (SQLite; unless --database-url)
    master.key                  the key that seals API secrets at rest (mode 0600)
    admin-credentials.json      the first admin's password and API key (mode 0600), written once
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from manticore_auth import AuthManager, load_or_create_master_key
from manticore_matching import (
    DEFAULT_MARKETS,
    DEFAULT_RISK_LIMITS,
    DataDirectoryLock,
    DataDirectoryLocked,
    Exchange,
    MarketConfig,
)
from manticore_matching.background import DEFAULT_CHECKPOINT_SPACING
from manticore_matching.journal import SERVING_COMMIT_INTERVAL
from manticore_risk import RiskLimits
from manticore_storage import DatabaseInUse

from .app import create_app
from .fastpath import ExchangeApp
from .gcpolicy import GcPolicy
from .service import ExchangeService
from .simulation import start_demo

__all__ = [
    "ADMIN_CREDENTIALS",
    "SERVER_FILE",
    "ServerOptions",
    "StartError",
    "bind_socket",
    "bootstrap_admin",
    "open_auth",
    "build_service",
    "http_protocol",
    "open_data_dir",
    "read_server_file",
    "remove_server_file",
    "run_server",
    "write_server_file",
]

log = logging.getLogger("manticore_api")

ADMIN_CREDENTIALS = "admin-credentials.json"
SERVER_FILE = "server.json"


@dataclass
class ServerOptions:
    """What ``manticore serve`` was asked for (see its ``--help``)."""

    data_dir: Path
    database_url: str | None = None
    markets: tuple[MarketConfig, ...] = DEFAULT_MARKETS
    require_auth: bool = True
    fsync: bool = True
    risk_limits: RiskLimits = DEFAULT_RISK_LIMITS
    #: Journal records between automatic (background) checkpoints; 0: only when the server stops.
    checkpoint_every: int = 100_000
    #: Seconds between the starts of two journal write rounds at least while commands arrive
    #: concurrently (the journal's group commit; see ``Journal``'s ``commit_interval``).
    journal_commit_interval: float = SERVING_COMMIT_INTERVAL
    #: Seconds at least between the end of a background checkpoint and the fork of the next one.
    checkpoint_spacing: float = DEFAULT_CHECKPOINT_SPACING


def http_protocol() -> Any:
    """The ``http`` of ``manticore serve``'s uvicorn config: :class:`~manticore_api.protocol.ServingProtocol`
    (uvicorn's httptools protocol that frees an upgraded connection's parser and writes checked response
    heads itself), or ``"auto"`` when httptools is not installed (uvicorn's h11 protocol, as it is)."""
    try:
        from .protocol import ServingProtocol
    except ImportError:  # pragma: no cover - httptools is a dependency of the server
        return "auto"
    return ServingProtocol


class StartError(Exception):
    """``manticore serve`` cannot start (data directory in use, address in use); nothing in the data
    directory was read or written."""


#: uvicorn's WebSocket implementation: the sans-I/O one over the ``websockets`` library's protocol
#: (frames parsed in ``data_received``). uvicorn's default, the library's deprecated asyncio protocol,
#: leaves a reference cycle per closed connection, which the serving GC policy (refreeze) could keep
#: forever; the CPU per order measured the same (docs/performance.md, session 14 (h2)). The same
#: library, limits (``ws_max_size``, pings, permessage-deflate) and back-pressure (reading pauses
#: while the app has messages to read).
WS_PROTOCOL = "websockets-sansio"

#: The largest WebSocket message a client may send, in bytes (larger ones close the connection: 1009).
WS_MAX_SIZE = 64 * 1024


def uvicorn_config(
    app: Any,
    host: str,
    port: int,
    log_level: str,
    *,
    access_log: bool = False,
    ws_compression: bool = False,
) -> uvicorn.Config:
    """How ``manticore serve`` and ``manticore gateway`` run ``app`` under uvicorn.

    ``access_log``: uvicorn's line per request (off by default: it cost ~8% of a request's CPU).
    ``ws_compression``: offer WebSocket permessage-deflate to clients that ask for it (off by default:
    the server then compresses every frame once per connection, a market-data frame once per
    subscriber; measured ~5 µs of CPU per order request and its answer, ~5% of a WebSocket order).
    HTTP is :func:`http_protocol`'s. uvicorn's proxy-headers middleware (``X-Forwarded-For`` /
    ``-Proto`` from ``FORWARDED_ALLOW_IPS``, default loopback) applies to every request; an
    :class:`~manticore_api.fastpath.ExchangeApp` applies it itself, past its order-entry fast path,
    unless the access log (which prints the client address) is on.
    """
    inside = isinstance(app, ExchangeApp) and not access_log
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        ws_max_size=WS_MAX_SIZE,
        access_log=access_log,
        ws_per_message_deflate=ws_compression,
        http=http_protocol(),
        ws=WS_PROTOCOL,
        proxy_headers=not inside,
    )
    if inside:
        app.trust_forwarded_headers(config.forwarded_allow_ips)
    return config


def run_server(
    options: ServerOptions,
    *,
    host: str,
    port: int,
    log_level: str = "info",
    demo: bool = False,
    echo: Callable[[str], None] = print,
    access_log: bool = False,
    ws_compression: bool = False,
) -> None:
    """Serve until interrupted: lock the data directory, bind the port, only then open the exchange.

    ``access_log`` and ``ws_compression``: see :func:`uvicorn_config`.

    The order makes a failed start harmless: a second server on a directory in use stops at the lock,
    one whose port is taken stops before it opens anything, and one whose ``--database-url`` another
    exchange writes stops when its exchange opens, all with :class:`StartError`. While
    it runs, ``server.json`` in the data directory tells the admin commands where it listens.
    """
    data_dir = Path(options.data_dir)
    try:
        lock = DataDirectoryLock.acquire(data_dir)
    except DataDirectoryLocked as exc:
        raise StartError(str(exc)) from None
    with lock:
        try:
            sock = bind_socket(host, port)
        except OSError as exc:
            raise StartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        with sock:
            _serve(
                sock,
                options,
                lock,
                host=host,
                log_level=log_level,
                demo=demo,
                echo=echo,
                access_log=access_log,
                ws_compression=ws_compression,
            )


def _serve(
    sock: socket.socket,
    options: ServerOptions,
    lock: DataDirectoryLock,
    *,
    host: str,
    log_level: str,
    demo: bool,
    echo: Callable[[str], None],
    access_log: bool,
    ws_compression: bool,
) -> None:
    port = int(sock.getsockname()[1])
    try:
        service = build_service(options, lock=lock)
    except DatabaseInUse as exc:
        raise StartError(str(exc)) from None
    serving = False
    try:
        # Freeze what start-up built and raise the collector's thresholds once serving starts.
        app = create_app(service, gc_policy=GcPolicy())
        if demo:
            start_demo(app, service, echo)
        credentials = Path(options.data_dir) / ADMIN_CREDENTIALS
        echo(f"Manticore on {client_url(host, port)}  (API docs: /docs; admin credentials: {credentials})")
        config = uvicorn_config(
            app, host, port, log_level, access_log=access_log, ws_compression=ws_compression
        )
        write_server_file(options.data_dir, host, port)
        try:
            serving = True
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            remove_server_file(options.data_dir)
    finally:
        # The app's shutdown has closed the exchange (with a checkpoint) unless it never started.
        service.exchange.close(checkpoint=serving)
        service.auth.close()


def build_service(options: ServerOptions, *, lock: DataDirectoryLock | None = None) -> ExchangeService:
    """Open the exchange (restoring checkpoint and journal), the auth store, and the first admin.

    ``lock``: the caller's held lock on ``options.data_dir`` (it stays the caller's to release);
    without one the exchange takes it and releases it when closed. Raises
    :class:`~manticore_matching.DataDirectoryLocked` when another process holds the directory."""
    exchange, auth = open_data_dir(options, lock=lock)
    return ExchangeService(exchange, auth, require_auth=options.require_auth)


def open_data_dir(
    options: ServerOptions, *, lock: DataDirectoryLock | None = None
) -> tuple[Exchange, AuthManager]:
    """The opened exchange and auth store of a data directory, with the first admin created.

    The exchange locks the directory (or checks ``lock``) before anything there is read or written:
    :class:`~manticore_matching.DataDirectoryLocked` when another process holds it. Close the
    exchange (which writes a checkpoint) and the auth store when done."""
    data_dir = Path(options.data_dir)
    exchange = Exchange(
        data_dir,
        markets=options.markets,
        storage_url=options.database_url,
        risk_limits=options.risk_limits,
        fsync=options.fsync,
        checkpoint_every=options.checkpoint_every,
        lock=lock,
        journal_commit_interval=options.journal_commit_interval,
        checkpoint_spacing=options.checkpoint_spacing,
    )
    exchange.open()
    try:
        auth = open_auth(data_dir, options.database_url)
    except BaseException:
        exchange.close(checkpoint=False)
        raise
    return exchange, auth


def open_auth(data_dir: Path, database_url: str | None) -> AuthManager:
    """The auth store (``database_url``, default ``auth.db`` in ``data_dir``) with the first admin
    created; its secrets are sealed with ``data_dir/master.key`` (created on first use)."""
    auth_url = database_url or f"sqlite:///{data_dir / 'auth.db'}"
    auth = AuthManager(auth_url, master_key=load_or_create_master_key(data_dir / "master.key"))
    try:
        bootstrap_admin(auth, data_dir)
    except BaseException:
        auth.close()
        raise
    return auth


def bootstrap_admin(auth: AuthManager, data_dir: Path) -> None:
    """On a store without users, create ``admin`` and write its credentials to ``data_dir`` in a 0600
    file (never to the log)."""
    if auth.list_users():
        return
    password = secrets.token_urlsafe(18)
    user = auth.create_user("admin", role="admin", password=password)
    credentials: dict[str, Any] = {
        "username": "admin",
        "user_id": user.user_id,
        "password": password,
        **auth.create_api_key(user.user_id, label="bootstrap"),
    }
    path = data_dir / ADMIN_CREDENTIALS
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(credentials, handle, indent=2)
    log.warning("created the first admin user; its password and API key are in %s", path)


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (0: any free port), not yet listening. OSError if the
    address is in use or cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not SO_REUSEPORT: one owner
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def client_url(host: str, port: int) -> str:
    """The URL a client on this machine uses to reach a server listening on ``host``:``port``."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    return f"http://{host}:{port}"


def write_server_file(data_dir: Path, host: str, port: int) -> None:
    """Record the running server's address (``url``, ``host``, ``port``, ``pid``) in ``server.json``,
    where the admin commands find it (write it only while holding the directory's lock)."""
    content = {"url": client_url(host, port), "host": host, "port": port, "pid": os.getpid()}
    path = Path(data_dir) / SERVER_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(content, indent=2) + "\n")
    os.replace(temporary, path)


def remove_server_file(data_dir: Path) -> None:
    """Remove ``server.json`` (at a clean shutdown, before the lock is released)."""
    with contextlib.suppress(FileNotFoundError):
        (Path(data_dir) / SERVER_FILE).unlink()


def read_server_file(data_dir: Path) -> dict[str, Any] | None:
    """The running server's record from ``server.json``, or None if there is none (or it is damaged)."""
    try:
        content = json.loads((Path(data_dir) / SERVER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) and isinstance(content.get("url"), str) else None
