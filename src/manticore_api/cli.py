"""The ``manticore`` command line: ``manticore serve`` runs the exchange server; ``user add``,
``deposit``, ``api-key create`` and ``markets`` administer a data directory (see
:mod:`manticore_api.admin`)."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

import manticore_orderbook
from manticore_matching import DEFAULT_MARKETS, ConfigError, load_markets, load_risk_limits
from manticore_matching.background import DEFAULT_CHECKPOINT_SPACING
from manticore_matching.journal import SERVING_COMMIT_INTERVAL

from . import admin
from .security import is_loopback
from .server import ServerOptions, StartError, run_server

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])


def _order_book_build() -> str:
    compiled = getattr(manticore_orderbook, "COMPILED", False)
    return "compiled with mypyc" if compiled else "pure Python"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    package_name="manticore",
    prog_name="manticore",
    message=f"%(prog)s %(version)s (order book: {_order_book_build()})",
)
def main() -> None:
    """Manticore: an exchange core - order books, risk, storage, API."""


_DATA_DIR_HELP = "Journal, checkpoint, SQLite databases and keys."
_DATABASE_URL_HELP = (
    "SQLAlchemy URL for orders, trades and users, e.g. postgresql+psycopg://user@host/db or "
    "mysql+pymysql://user@host/db (MariaDB/MySQL) (default: SQLite files in the data directory)."
)


def _data_dir_option(function: F) -> F:
    return click.option(
        "--data-dir",
        default="./manticore-data",
        show_default=True,
        type=click.Path(file_okay=False, path_type=Path),
        help=_DATA_DIR_HELP,
    )(function)


def _database_url_option(function: F) -> F:
    return click.option("--database-url", default=None, help=_DATABASE_URL_HELP)(function)


def _ws_compression_option(function: F) -> F:
    """--ws-compression, for serve and gateway."""
    return click.option(
        "--ws-compression",
        is_flag=True,
        help="Offer WebSocket compression (permessage-deflate) to clients that ask for it (off by "
        "default: it costs CPU for every frame of every connection).",
    )(function)


def _checkpoint_every_option(help_text: str) -> Callable[[F], F]:
    """--checkpoint-every (100,000 records by default), for serve and shard."""
    return click.option(
        "--checkpoint-every", default=100_000, show_default=True, type=click.IntRange(min=0), help=help_text
    )


def _admin_options(function: F) -> F:
    """--data-dir, --database-url, --url and --json for the admin commands."""
    function = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(function)
    function = click.option(
        "--url",
        default=None,
        help="Talk to the server at this URL (default: the server holding the data directory, as its "
        "server.json says; none: work on the directory directly).",
    )(function)
    return _data_dir_option(_database_url_option(function))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@_data_dir_option
@_database_url_option
@click.option(
    "--config",
    "config_path",
    default=None,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="TOML file with [[markets]] tables and an optional [risk] table (default: built-in BTC/USD, "
    "ETH/USD, ETH/BTC; 10% price band, 500 open orders and 100 orders/s per user).",
)
@click.option(
    "--no-auth",
    is_flag=True,
    help="Development only: accept requests without credentials (refused on non-loopback addresses).",
)
@click.option(
    "--demo",
    is_flag=True,
    help="Local demo: demo users alice and bob (well-known passwords, printed) and simulated traders "
    "keeping the markets alive (refused on non-loopback addresses).",
)
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning"])
)
@click.option(
    "--access-log",
    is_flag=True,
    help="Log a line per HTTP request (off by default: it costs several percent of a request).",
)
@_ws_compression_option
@_checkpoint_every_option(
    "Write a checkpoint in the background after this many journal records (a restart replays at most "
    "that many); 0: only when the server stops."
)
@click.option(
    "--journal-commit-interval",
    default=SERVING_COMMIT_INTERVAL,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds between the starts of two journal write rounds at least, while commands arrive "
    "concurrently: the journal gathers the commands of that interval into one synced write (an order "
    "is still acknowledged only once durable; a client sending one command at a time is not held "
    "back); 0: the next round starts as soon as the last ends.",
)
@click.option(
    "--checkpoint-spacing",
    default=DEFAULT_CHECKPOINT_SPACING,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds at least between the end of a background checkpoint and the start of the next one "
    "(the next one waits when it falls due sooner); 0: it starts as soon as it is due.",
)
def serve(
    host: str,
    port: int,
    data_dir: Path,
    database_url: str | None,
    config_path: Path | None,
    no_auth: bool,
    demo: bool,
    log_level: str,
    access_log: bool,
    ws_compression: bool,
    checkpoint_every: int,
    journal_commit_interval: float,
    checkpoint_spacing: float,
) -> None:
    """Run the exchange server (REST + WebSocket + web page) until interrupted (Ctrl-C).

    One server per data directory: a second one on a directory in use exits at once (status 1)."""
    if no_auth and not is_loopback(host):
        raise click.UsageError(f"refusing to serve without authentication on non-loopback address {host}")
    if demo and not is_loopback(host):
        raise click.UsageError(
            f"refusing to run the demo (well-known passwords) on non-loopback address {host}"
        )
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = ServerOptions(
        data_dir=data_dir,
        database_url=database_url,
        require_auth=not no_auth,
        checkpoint_every=checkpoint_every,
        journal_commit_interval=journal_commit_interval,
        checkpoint_spacing=checkpoint_spacing,
    )
    if config_path is not None:
        try:
            options.markets = load_markets(config_path)
            options.risk_limits = load_risk_limits(config_path)
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None
    try:
        run_server(
            options,
            host=host,
            port=port,
            log_level=log_level,
            demo=demo,
            echo=click.echo,
            access_log=access_log,
            ws_compression=ws_compression,
        )
    except StartError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--nats", "nats_url", required=True, help="NATS server URL(s), comma-separated.")
@click.option("--shard", required=True, help="The shard whose leader serves this gateway.")
@click.option("--prefix", default="mc", show_default=True, help="NATS subject prefix of the cluster.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option(
    "--data-dir",
    default="./manticore-data",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The auth store (auth.db, master.key) unless --database-url names one, and the first admin's "
    "credentials (admin-credentials.json). A gateway keeps no other state.",
)
@click.option(
    "--database-url",
    default=None,
    help="SQLAlchemy URL of the shared auth store (users, keys, sessions) (default: auth.db in the "
    "data directory).",
)
@click.option(
    "--no-auth",
    is_flag=True,
    help="Development only: accept requests without credentials (refused on non-loopback addresses).",
)
@click.option(
    "--request-timeout",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="Seconds one attempt waits for the shard's answer.",
)
@click.option(
    "--retry-deadline",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="Seconds a request is retried while no shard leader answers (then 503).",
)
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning"])
)
@click.option(
    "--market-shard",
    "market_shards",
    multiple=True,
    help="Phase 2, repeatable: NAME=SYMBOL[,SYMBOL...]; --shard is then the account shard.",
)
@_ws_compression_option
def gateway(
    nats_url: str,
    shard: str,
    prefix: str,
    host: str,
    port: int,
    data_dir: Path,
    database_url: str | None,
    no_auth: bool,
    request_timeout: float,
    retry_deadline: float,
    log_level: str,
    market_shards: tuple[str, ...],
    ws_compression: bool,
) -> None:
    """Run a stateless gateway: the REST + WebSocket API of SHARD, whose leader runs on NATS
    (docs/scale-out.md). Any number may run at once; the data directory holds only the shared auth
    store (auth.db, master.key) unless --database-url names one."""
    if no_auth and not is_loopback(host):
        raise click.UsageError(f"refusing to serve without authentication on non-loopback address {host}")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from manticore_cluster.gateway import GatewayOptions, run_gateway  # imported here: it needs nats

    options = GatewayOptions(
        nats_url=nats_url,
        shard=shard,
        prefix=prefix,
        data_dir=data_dir,
        database_url=database_url,
        require_auth=not no_auth,
        attempt_timeout=request_timeout,
        deadline=retry_deadline,
        market_shards=_symbol_owners(market_shards) or None,
    )
    try:
        run_gateway(
            options, host=host, port=port, log_level=log_level, echo=click.echo, ws_compression=ws_compression
        )
    except (OSError, ValueError) as exc:  # ConnectionError, a taken port, a bad prefix or shard name
        raise click.ClickException(f"cannot start the gateway: {exc or type(exc).__name__}") from None


ADMIN_HELP_EPILOG = (
    "Works on the data directory directly when no server runs on it, or through the running "
    "server's admin API (signed with the admin key in admin-credentials.json) when one does."
)


def _run_admin(
    data_dir: Path, database_url: str | None, url: str | None, action: Callable[[admin.Admin], Any]
) -> Any:
    try:
        with admin.connect(data_dir, database_url=database_url, url=url) as target:
            return action(target)
    except admin.AdminError as exc:
        raise click.ClickException(str(exc)) from None


def _emit(result: Any, as_json: bool, lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        for line in lines:
            click.echo(line)


@main.group()
def user() -> None:
    """Manage users."""


@user.command("add", epilog=ADMIN_HELP_EPILOG)
@click.argument("name")
@click.option(
    "--password",
    "ask_password",
    is_flag=True,
    help="Ask for the password (typed twice, not shown) instead of generating one.",
)
@click.option("--role", default="trader", show_default=True, type=click.Choice(["trader", "admin"]))
@_admin_options
def user_add(
    name: str,
    ask_password: bool,
    role: str,
    data_dir: Path,
    database_url: str | None,
    url: str | None,
    as_json: bool,
) -> None:
    """Create the user NAME and its first API key; print its id, key and secret (and the password
    when generated): the secret and a generated password are shown only this once."""
    if ask_password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = secrets.token_urlsafe(12)
    created = _run_admin(data_dir, database_url, url, lambda target: target.add_user(name, password, role))
    lines = [
        f"user_id: {created['user_id']}",
        f"username: {created['username']}",
        f"role: {created['role']}",
    ]
    if not ask_password:
        lines.append(f"password: {password}")
        created = {**created, "password": password}
    lines += [f"api_key: {created['api_key']}", f"api_secret: {created['api_secret']}"]
    _emit(created, as_json, lines)


@main.command(epilog=ADMIN_HELP_EPILOG)
@click.argument("user_name_or_id", metavar="USER")
@click.argument("asset")
@click.argument("amount")
@_admin_options
def deposit(
    user_name_or_id: str,
    asset: str,
    amount: str,
    data_dir: Path,
    database_url: str | None,
    url: str | None,
    as_json: bool,
) -> None:
    """Credit AMOUNT of ASSET to USER (a username or user id); print the new balance."""
    result = _run_admin(
        data_dir, database_url, url, lambda target: target.deposit(user_name_or_id, asset, amount)
    )
    balance = result["balances"].get(asset, {"available": "0", "held": "0"})
    who = (
        result["user_id"]
        if user_name_or_id == result["user_id"]
        else f"{user_name_or_id} ({result['user_id']})"
    )
    line = f"{asset} of {who}: available {balance['available']}, held {balance['held']}"
    _emit(result, as_json, [line])


@main.group("api-key")
def api_key() -> None:
    """Manage API keys."""


@api_key.command("create", epilog=ADMIN_HELP_EPILOG)
@click.argument("user_name_or_id", metavar="USER")
@_admin_options
def api_key_create(
    user_name_or_id: str, data_dir: Path, database_url: str | None, url: str | None, as_json: bool
) -> None:
    """Create an API key for USER (a username or user id); its secret is printed only this once."""
    created = _run_admin(data_dir, database_url, url, lambda target: target.create_api_key(user_name_or_id))
    lines = [
        f"user_id: {created['user_id']}",
        f"api_key: {created['api_key']}",
        f"api_secret: {created['api_secret']}",
    ]
    _emit(created, as_json, lines)


@main.command(epilog=ADMIN_HELP_EPILOG)
@_admin_options
def markets(data_dir: Path, database_url: str | None, url: str | None, as_json: bool) -> None:
    """List the markets with tick size, lot size and fee rates."""
    found: list[dict[str, str]] = _run_admin(data_dir, database_url, url, lambda target: target.markets())
    _emit({"markets": found}, as_json, admin.market_table(found))


# ---------------------------------------------------------------------- scale-out (docs/scale-out.md)


def _nats_options(nats_url: str, prefix: str, replicas: int) -> Any:
    from manticore_cluster.natsconf import ClusterConfigError, NatsOptions

    servers = tuple(url.strip() for url in nats_url.split(",") if url.strip())
    try:
        return NatsOptions(servers=servers, prefix=prefix, replicas=replicas)
    except ClusterConfigError as exc:
        raise click.UsageError(str(exc)) from None


def _markets_and_limits(config_path: Path | None) -> dict[str, Any]:
    if config_path is None:
        return {}
    try:
        return {"markets": load_markets(config_path), "risk_limits": load_risk_limits(config_path)}
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def _symbol_owners(entries: tuple[str, ...]) -> dict[str, str]:
    """``NAME=SYMBOL[,SYMBOL...]`` options as symbol -> shard name."""
    owners: dict[str, str] = {}
    for entry in entries:
        name, _, listed = entry.partition("=")
        for symbol in (part.strip() for part in listed.split(",") if part.strip()):
            owners[symbol] = name.strip()
    return owners


def _split_roles(
    role: str, configured: dict[str, Any], symbols: str | None, shards: tuple[str, ...]
) -> dict[str, Any]:
    """The shard options of a phase-2 role: a market shard's own markets, an account shard's routing."""

    markets = {config.symbol: config for config in configured.get("markets", DEFAULT_MARKETS)}
    if role == "market" and symbols:
        wanted = [symbol.strip() for symbol in symbols.split(",") if symbol.strip()]
        unknown = [symbol for symbol in wanted if symbol not in markets]
        if unknown:
            raise click.UsageError(f"--markets: not configured: {', '.join(unknown)}")
        configured = {**configured, "markets": tuple(markets[symbol] for symbol in wanted)}
    if role == "account":
        routing: dict[str, tuple[Any, str]] = {}
        for symbol, shard_name in _symbol_owners(shards).items():
            if symbol not in markets:
                raise click.UsageError(f"--market-shard: {symbol} is not configured")
            routing[symbol] = (markets[symbol], shard_name)
        if not routing:
            raise click.UsageError("an account shard needs --market-shard NAME=SYMBOL[,SYMBOL...]")
        configured = {**configured, "routing": routing}
    return configured


_NATS_HELP = "NATS server URL(s), comma-separated (the seeds of a cluster)."
_PREFIX_HELP = "Name prefix of the streams, subjects and buckets of this Manticore cluster."
_SHARD_CONFIG_HELP = "TOML file with [[markets]] and [risk], as for serve (every instance the same)."


@main.command()
@click.option("--nats", "nats_url", required=True, help=_NATS_HELP)
@click.option("--name", default="main", show_default=True, help="The shard's name (log subject, lease key).")
@click.option(
    "--data-dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="This instance's own directory: lock, checkpoint, SQLite read model.",
)
@click.option("--prefix", default="mc", show_default=True, help=_PREFIX_HELP)
@click.option(
    "--lease-ttl",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds without renewal after which the leader's lease expires and a standby takes over.",
)
@click.option(
    "--replicas", default=1, show_default=True, type=click.IntRange(1, 5), help="Log copies (R3: 3)."
)
@_database_url_option
@click.option(
    "--config",
    "config_path",
    default=None,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help=_SHARD_CONFIG_HELP,
)
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning"])
)
@_checkpoint_every_option(
    "Write a checkpoint (and publish it as a snapshot) after this many log records; 0: on stop only."
)
@click.option(
    "--snapshots-keep",
    default=3,
    show_default=True,
    type=click.IntRange(min=0),
    help="Snapshots of the shard kept in the Object Store bucket <prefix>_snapshots; a starting "
    "instance restores the newest valid one newer than its checkpoint. 0: no snapshots.",
)
@click.option(
    "--log-retention/--no-log-retention",
    default=False,
    show_default=True,
    help="Purge the shard's log below the oldest kept snapshot after each upload (needs snapshots; "
    "a storage writer must not lag behind that snapshot, see docs/scale-out.md).",
)
@click.option(
    "--role",
    default="whole",
    show_default=True,
    type=click.Choice(["whole", "market", "account"]),
    help="whole: every market and the ledger (phase 1); market: books of --markets funded by the account "
    "shard; account: balances and holds, routing to the market shards of --market-shard.",
)
@click.option(
    "--markets", "market_symbols", default=None, help="Market role: the symbols it owns (comma-separated)."
)
@click.option(
    "--market-shard",
    "market_shards",
    multiple=True,
    help="Account role, repeatable: NAME=SYMBOL[,SYMBOL...], the market shard owning those markets.",
)
def shard(
    nats_url: str,
    name: str,
    data_dir: Path,
    prefix: str,
    lease_ttl: float,
    replicas: int,
    database_url: str | None,
    config_path: Path | None,
    log_level: str,
    checkpoint_every: int,
    snapshots_keep: int,
    log_retention: bool,
    role: str,
    market_symbols: str | None,
    market_shards: tuple[str, ...],
) -> None:
    """Run one instance of a shard: follow its log as a warm standby, lead once it holds the lease.

    Exit status: 0 after SIGTERM/Ctrl-C (checkpoint written, lease released), 3 lease lost, 4 fenced
    off by another instance, 5 log unreadable or journal failed; 1 if the data directory is in use."""
    from manticore_cluster.shard import ShardOptions, run_shard
    from manticore_matching import DataDirectoryLocked

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        options = ShardOptions(
            nats=_nats_options(nats_url, prefix, replicas),
            name=name,
            data_dir=data_dir,
            lease_ttl=lease_ttl,
            storage_url=database_url,
            checkpoint_every=checkpoint_every,
            snapshots_keep=snapshots_keep,
            log_retention=log_retention,
            role=role,
            **_split_roles(role, _markets_and_limits(config_path), market_symbols, market_shards),
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        status = run_shard(options)
    except DataDirectoryLocked as exc:
        raise click.ClickException(str(exc)) from None
    raise SystemExit(status)


@main.command("storage-writer")
@click.option("--nats", "nats_url", required=True, help=_NATS_HELP)
@click.option("--shard", default="main", show_default=True, help="The shard whose log is followed.")
@click.option(
    "--database-url",
    required=True,
    help="The read model's SQLAlchemy URL (sqlite:///..., postgresql+psycopg://..., mysql+pymysql://...).",
)
@click.option(
    "--data-dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The writer's own directory: its lock and local checkpoint.",
)
@click.option("--prefix", default="mc", show_default=True, help=_PREFIX_HELP)
@click.option(
    "--replicas",
    default=1,
    show_default=True,
    type=click.IntRange(1, 5),
    help="Copies of the log, as its shard instances were given (R3: 3).",
)
@click.option(
    "--name",
    "follower_name",
    default="storage",
    show_default=True,
    help="This writer's name among the shard's followers (log retention keeps what it still needs).",
)
@click.option(
    "--snapshots/--no-snapshots",
    default=True,
    show_default=True,
    help="Start from the newest snapshot at or below the database's position when it is newer than "
    "the local checkpoint.",
)
@click.option(
    "--config",
    "config_path",
    default=None,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The shard's TOML file (its [risk] limits are used).",
)
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning"])
)
def storage_writer(
    nats_url: str,
    shard: str,
    database_url: str,
    data_dir: Path,
    prefix: str,
    replicas: int,
    follower_name: str,
    snapshots: bool,
    config_path: Path | None,
    log_level: str,
) -> None:
    """Keep the SQL read model (orders, trades, markets) of one shard by following its log: the rows
    an embedded exchange writes, committed with the log position they reach, so a restart (or kill -9)
    resumes with nothing lost and nothing written twice. It never writes to the log or campaigns.

    Exit status: 0 after SIGTERM/Ctrl-C, 5 if the log cannot be followed, 1 if the data directory is
    in use."""
    from manticore_cluster.storage_writer import StorageWriterOptions, run_storage_writer
    from manticore_matching import DataDirectoryLocked

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    limits = _markets_and_limits(config_path).get("risk_limits")
    try:
        options = StorageWriterOptions(
            nats=_nats_options(nats_url, prefix, replicas),
            shard=shard,
            database_url=database_url,
            data_dir=data_dir,
            snapshots=snapshots,
            name=follower_name,
            **({"risk_limits": limits} if limits is not None else {}),
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        status = run_storage_writer(options)
    except DataDirectoryLocked as exc:
        raise click.ClickException(str(exc)) from None
    raise SystemExit(status)


@main.command()
@click.option("--nats", "nats_url", default="nats://127.0.0.1:4222", show_default=True, help=_NATS_HELP)
@click.option(
    "--gateways", default=1, show_default=True, type=click.IntRange(0, 64), help="Gateway processes."
)
@click.option(
    "--standbys", default=1, show_default=True, type=click.IntRange(0, 16), help="Standby instances."
)
@click.option(
    "--data-dir",
    default="./manticore-cluster",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Parent of each shard instance's directory (shard-0, shard-1, ...).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the gateways listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="First gateway's port."
)
@click.option("--prefix", default="mc", show_default=True, help=_PREFIX_HELP)
@click.option("--name", default="main", show_default=True, help="The shard's name.")
@click.option("--lease-ttl", default=5.0, show_default=True, type=click.FloatRange(min=0.1))
@click.option(
    "--config",
    "config_path",
    default=None,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help=_SHARD_CONFIG_HELP,
)
@click.option(
    "--no-auth",
    is_flag=True,
    help="Development only: gateways accept requests without credentials (loopback addresses only).",
)
@click.option(
    "--market-shards",
    default=0,
    show_default=True,
    type=click.IntRange(0, 16),
    help="Phase 2: split the configured markets over this many market shards beside an account shard "
    "(--name); 0: one whole shard (phase 1).",
)
@click.option(
    "--storage-writer/--no-storage-writer",
    default=True,
    show_default=True,
    help="Keep the SQL read model (orders, trades, markets) like serve: a storage writer per shard with "
    "orders follows its log into DATA_DIR/read-model.db (split: read-model-m<j>.db per market shard).",
)
def cluster(
    market_shards: int,
    storage_writer: bool,
    nats_url: str,
    gateways: int,
    standbys: int,
    data_dir: Path,
    host: str,
    port: int,
    prefix: str,
    name: str,
    lease_ttl: float,
    config_path: Path | None,
    no_auth: bool,
) -> None:
    """Start a local cluster to try: one shard (a leader and STANDBYS standbys), GATEWAYS gateways on
    consecutive ports and a storage writer (the SQL read model), as child processes; a shard instance
    or storage writer that exits is started again. Ctrl-C stops them all."""
    from manticore_cluster.local import LocalCluster, plan

    _nats_options(nats_url, prefix, 1)  # validate before starting anything
    if no_auth and not is_loopback(host):
        raise click.UsageError(f"refusing to serve without authentication on non-loopback address {host}")
    cluster_plan = plan(
        nats_url=nats_url,
        data_dir=data_dir,
        standbys=standbys,
        gateways=gateways,
        host=host,
        port=port,
        prefix=prefix,
        shard=name,
        lease_ttl=lease_ttl,
        config_path=config_path,
        gateway_args=["--no-auth"] if no_auth else [],
        market_shards=market_shards,
        symbols=[
            config.symbol for config in _markets_and_limits(config_path).get("markets", DEFAULT_MARKETS)
        ],
        storage_writer=storage_writer,
    )
    raise SystemExit(LocalCluster(cluster_plan, echo=click.echo).run())


if __name__ == "__main__":  # pragma: no cover
    main()
