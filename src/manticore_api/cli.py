"""The ``manticore`` command line: ``manticore serve`` runs the exchange server."""

from __future__ import annotations

import logging
from pathlib import Path

import click
import uvicorn

from manticore_matching import ConfigError, load_markets, load_risk_limits

from .app import create_app
from .security import is_loopback
from .server import ADMIN_CREDENTIALS, ServerOptions, build_service
from .simulation import start_demo

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option("0.1.0", prog_name="manticore")
def main() -> None:
    """Manticore: an exchange core - order books, risk, storage, API."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option(
    "--data-dir",
    default="./manticore-data",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Journal, checkpoint, SQLite databases and keys.",
)
@click.option(
    "--database-url",
    default=None,
    help="SQLAlchemy URL for orders, trades and users, e.g. postgresql+psycopg://user@host/db or "
    "mysql+pymysql://user@host/db (MariaDB/MySQL) (default: SQLite files in the data directory).",
)
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
def serve(
    host: str,
    port: int,
    data_dir: Path,
    database_url: str | None,
    config_path: Path | None,
    no_auth: bool,
    demo: bool,
    log_level: str,
) -> None:
    """Run the exchange server (REST + WebSocket + web page) until interrupted."""
    if no_auth and not is_loopback(host):
        raise click.UsageError(f"refusing to serve without authentication on non-loopback address {host}")
    if demo and not is_loopback(host):
        raise click.UsageError(
            f"refusing to run the demo (well-known passwords) on non-loopback address {host}"
        )
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = ServerOptions(data_dir=data_dir, database_url=database_url, require_auth=not no_auth)
    if config_path is not None:
        try:
            options.markets = load_markets(config_path)
            options.risk_limits = load_risk_limits(config_path)
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None
    service = build_service(options)
    credentials = data_dir / ADMIN_CREDENTIALS
    click.echo(f"Manticore on http://{host}:{port}  (API docs: /docs; admin credentials: {credentials})")
    app = create_app(service)
    if demo:
        start_demo(app, service, click.echo)
    uvicorn.run(app, host=host, port=port, log_level=log_level, ws_max_size=64 * 1024)


if __name__ == "__main__":  # pragma: no cover
    main()
