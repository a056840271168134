"""Assemble a running exchange from command-line options: data directory, databases, markets, users.

Layout of the data directory (created on first start)::

    journal/                    the command journal (acknowledged commands; replayed on start)
    checkpoint.json             the last checkpoint (books, ledger, journal position)
    manticore.db                orders and trades (SQLite; unless --database-url)
    auth.db                     users, API keys, sessions (SQLite; unless --database-url)
    master.key                  the key that seals API secrets at rest (mode 0600)
    admin-credentials.json      the first admin's password and API key (mode 0600), written once
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from manticore_auth import AuthManager, load_or_create_master_key
from manticore_matching import DEFAULT_MARKETS, DEFAULT_RISK_LIMITS, Exchange, MarketConfig
from manticore_risk import RiskLimits

from .service import ExchangeService

__all__ = ["ServerOptions", "build_service"]

log = logging.getLogger("manticore_api")

ADMIN_CREDENTIALS = "admin-credentials.json"


@dataclass
class ServerOptions:
    """What ``manticore serve`` was asked for (see its ``--help``)."""

    data_dir: Path
    database_url: str | None = None
    markets: tuple[MarketConfig, ...] = DEFAULT_MARKETS
    require_auth: bool = True
    fsync: bool = True
    risk_limits: RiskLimits = DEFAULT_RISK_LIMITS


def build_service(options: ServerOptions) -> ExchangeService:
    """Open the exchange (restoring checkpoint and journal), the auth store, and the first admin."""
    data_dir = Path(options.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    exchange = Exchange(
        data_dir,
        markets=options.markets,
        storage_url=options.database_url,
        risk_limits=options.risk_limits,
        fsync=options.fsync,
    )
    exchange.open()
    try:
        auth_url = options.database_url or f"sqlite:///{data_dir / 'auth.db'}"
        auth = AuthManager(auth_url, master_key=load_or_create_master_key(data_dir / "master.key"))
        _bootstrap_admin(auth, data_dir)
    except BaseException:
        exchange.close()
        raise
    return ExchangeService(exchange, auth, require_auth=options.require_auth)


def _bootstrap_admin(auth: AuthManager, data_dir: Path) -> None:
    """On a store without users, create ``admin`` and write its credentials to a 0600 file (never to
    the log)."""
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
