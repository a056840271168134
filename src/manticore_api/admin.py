"""The admin commands behind ``manticore user add``, ``deposit``, ``api-key create`` and ``markets``.

:func:`connect` picks where a command runs:

* **offline** when no process holds the data directory: it locks the directory, opens the exchange
  and the auth store directly, and closes them cleanly (with a checkpoint) afterwards, so that the next
  ``manticore serve`` finds everything;
* **online** when a running server holds it: the command goes to that server's admin API, signed with
  the admin key of ``<data_dir>/admin-credentials.json``, at the address the server recorded in
  ``<data_dir>/server.json`` (or the ``url`` given).

Both give the same results (:class:`Admin`). Errors a user can cause raise :class:`AdminError` with a
message to print.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from manticore_auth import AuthError, AuthManager, User, current_timestamp, sign_request
from manticore_matching import (
    DataDirectoryLock,
    DataDirectoryLocked,
    Exchange,
    ExchangeError,
)

from .server import ADMIN_CREDENTIALS, SERVER_FILE, ServerOptions, open_data_dir, read_server_file

__all__ = ["Admin", "AdminError", "OfflineAdmin", "OnlineAdmin", "connect", "market_table"]

_TIMEOUT = 30.0


class AdminError(Exception):
    """An admin command failed; the message says why (and nothing was changed)."""


class Admin(Protocol):
    """What the admin commands can do, offline or through a server. ``user`` is a name or a user id.

    ``where`` describes the target for messages (``data directory ...`` or ``server at ...``)."""

    where: str

    def add_user(self, username: str, password: str, role: str) -> dict[str, str]:
        """Create a user and its first API key: ``user_id``, ``username``, ``role``, ``api_key``,
        ``api_secret``."""
        ...

    def deposit(self, user: str, asset: str, amount: str) -> dict[str, Any]:
        """Credit ``amount`` of ``asset`` (durable when this returns): ``user_id`` and ``balances``."""
        ...

    def create_api_key(self, user: str) -> dict[str, str]:
        """A new API key: ``user_id``, ``username``, ``api_key``, ``api_secret``."""
        ...

    def markets(self) -> list[dict[str, str]]:
        """Every market as :meth:`manticore_matching.MarketConfig.to_dict` gives it."""
        ...


class OfflineAdmin:
    """The admin commands on an opened exchange and auth store (the caller holds the directory)."""

    def __init__(self, exchange: Exchange, auth: AuthManager) -> None:
        self.exchange = exchange
        self.auth = auth
        self.where = f"data directory {exchange.data_dir}"

    def _user(self, user: str) -> User:
        found = self.auth.get_user(user) or self.auth.get_user_by_name(user)
        if found is None:
            raise AdminError(f"no user is named {user!r} or has that id")
        return found

    def add_user(self, username: str, password: str, role: str) -> dict[str, str]:
        try:
            user = self.auth.create_user(username, role, password=password)
        except AuthError as exc:
            raise AdminError(exc.message) from None
        credentials = self.auth.create_api_key(user.user_id)
        return {"user_id": user.user_id, "username": user.username, "role": user.role, **credentials}

    def deposit(self, user: str, asset: str, amount: str) -> dict[str, Any]:
        user_id = self._user(user).user_id
        try:
            receipt = self.exchange.deposit(user_id, asset, amount)
        except ExchangeError as exc:
            raise AdminError(exc.message) from None
        if not self.exchange.wait_durable(receipt.position):
            raise AdminError("the deposit could not be made durable in time")
        return {"user_id": user_id, **self.exchange.balances(user_id)}

    def create_api_key(self, user: str) -> dict[str, str]:
        found = self._user(user)
        credentials = self.auth.create_api_key(found.user_id)
        return {"user_id": found.user_id, "username": found.username, **credentials}

    def markets(self) -> list[dict[str, str]]:
        return [config.to_dict() for config in self.exchange.markets.values()]


class OnlineAdmin:
    """The admin commands through a running server's admin API, signed with an admin API key."""

    def __init__(self, url: str, api_key: str, api_secret: str) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.api_secret = api_secret
        self.where = f"server at {self.url}"

    def request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        """Send one signed request; its JSON answer, or AdminError with the server's message."""
        body = b"" if payload is None else json.dumps(payload).encode()
        stamp = current_timestamp()
        headers = {
            "X-MC-APIKEY": self.api_key,
            "X-MC-TIMESTAMP": stamp,
            "X-MC-SIGNATURE": sign_request(self.api_secret, stamp, method, path, body),
            "content-type": "application/json",
        }
        request = urllib.request.Request(
            self.url + path, data=body if payload is not None else None, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            try:
                error = json.load(exc)
                message = f"{error['message']} ({error['code']})"
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {exc.code}"
            raise AdminError(f"the server refused: {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AdminError(f"cannot reach the server at {self.url}: {reason}") from None

    def _user_path(self, user: str) -> str:
        return "/api/users/" + urllib.parse.quote(user, safe="")

    def add_user(self, username: str, password: str, role: str) -> dict[str, str]:
        payload = {"username": username, "password": password, "role": role}
        created: dict[str, str] = self.request("POST", "/api/users", payload)
        return {key: created[key] for key in ("user_id", "username", "role", "api_key", "api_secret")}

    def deposit(self, user: str, asset: str, amount: str) -> dict[str, Any]:
        user_id = self.request("GET", self._user_path(user))["user_id"]
        payload = {"user_id": user_id, "asset": asset, "amount": amount}
        answer: dict[str, Any] = self.request("POST", "/api/deposits", payload)
        return {"user_id": answer["user_id"], "balances": answer["balances"]}

    def create_api_key(self, user: str) -> dict[str, str]:
        created: dict[str, str] = self.request("POST", self._user_path(user) + "/api-keys")
        return {key: created[key] for key in ("user_id", "username", "api_key", "api_secret")}

    def markets(self) -> list[dict[str, str]]:
        markets: list[dict[str, str]] = self.request("GET", "/api/markets")["markets"]
        return markets


def _online(data_dir: Path, url: str) -> OnlineAdmin:
    path = data_dir / ADMIN_CREDENTIALS
    try:
        credentials = json.loads(path.read_text())
        return OnlineAdmin(url, credentials["api_key"], credentials["api_secret"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AdminError(f"cannot read the admin API key from {path}: {exc}") from None


@contextmanager
def connect(data_dir: Path, *, database_url: str | None = None, url: str | None = None) -> Iterator[Admin]:
    """The admin target for ``data_dir``: the server at ``url`` if given, else the server holding the
    directory (its ``server.json``), else the directory itself, opened and closed cleanly.

    Raises AdminError if there is no data directory, or it is held by a process that recorded no
    address (another admin command, or a server that is still starting: try again)."""
    data_dir = Path(data_dir)
    if url is not None:
        yield _online(data_dir, url)
        return
    if not data_dir.is_dir():
        raise AdminError(f"no data directory at {data_dir} (run `manticore serve` once, or pass --data-dir)")
    try:
        lock = DataDirectoryLock.acquire(data_dir)
    except DataDirectoryLocked as exc:
        server = read_server_file(data_dir)
        if server is None:
            raise AdminError(f"{exc}; no {SERVER_FILE} says where it listens (pass --url)") from None
        target: Admin = _online(data_dir, server["url"])
    else:
        with lock:
            # Only the markets the directory already has: a server started later adds its configured ones.
            options = ServerOptions(data_dir=data_dir, database_url=database_url, markets=())
            exchange, auth = open_data_dir(options, lock=lock)
            try:
                yield OfflineAdmin(exchange, auth)
            finally:
                try:
                    exchange.close()
                finally:
                    auth.close()
        return
    yield target


_MARKET_COLUMNS = (
    ("symbol", "symbol"),
    ("base", "base_asset"),
    ("quote", "quote_asset"),
    ("tick size", "tick_size"),
    ("lot size", "lot_size"),
    ("maker fee", "maker_fee_rate"),
    ("taker fee", "taker_fee_rate"),
)


def market_table(markets: list[dict[str, str]]) -> list[str]:
    """The lines of a plain-text table of ``markets`` (a header line first)."""
    if not markets:
        return ["no markets yet (a server creates its configured markets when it starts)"]
    rows = [tuple(title for title, _ in _MARKET_COLUMNS)]
    rows += [tuple(market[key] for _, key in _MARKET_COLUMNS) for market in markets]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_MARKET_COLUMNS))]
    lines = []
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return lines
