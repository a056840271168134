"""Demo mode (``manticore serve --demo``): demo accounts and simulated traders that keep markets alive.

For local use only: the demo accounts have well-known passwords. :func:`prepare_demo` creates (if
missing) the users ``alice`` and ``bob`` with the passwords of :data:`DEMO_PASSWORDS`, funded once when
they are created, and the bot users ``mm-1`` (market maker) and ``taker-1`` (taker), topped up at every
start. :class:`Simulation` then runs, as one asyncio task per market on the server's loop, a market maker
that keeps a ladder of quotes on both sides of a slowly drifting fair price and a taker that crosses the
spread every second or so. The bots call the :class:`~manticore_matching.Exchange` directly, so their
commands go through the same risk checks and the same journal as any user's; a market has a handful of
commands per second at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from fastapi import FastAPI

from manticore_auth import AuthManager
from manticore_matching import Exchange, ExchangeError, MarketConfig, ServiceUnavailable

from .service import ExchangeService

__all__ = [
    "BOT_USERS",
    "DEMO_PASSWORDS",
    "DemoAccount",
    "Simulation",
    "install_simulation",
    "prepare_demo",
    "start_demo",
]

log = logging.getLogger("manticore_api.demo")

DEMO_PASSWORDS: dict[str, str] = {"alice": "alice-demo-password", "bob": "bob-demo-password"}
BOT_USERS = ("mm-1", "taker-1")

# What a demo user gets when created, and what a bot is topped up to at each start (per asset;
# assets not listed get _OTHER_FUNDS).
_DEMO_FUNDS = {"USD": Decimal(100_000), "BTC": Decimal(5), "ETH": Decimal(50)}
_BOT_FUNDS = {"USD": Decimal(10_000_000), "BTC": Decimal(300), "ETH": Decimal(5_000)}
_OTHER_FUNDS = Decimal(1_000_000)


@dataclass(frozen=True)
class MarketProfile:
    """How the bots trade one market: the fair price they start from and their typical order size."""

    reference_price: Decimal
    quantity: Decimal


# The default markets' reference prices; other markets start at their last trade or mid price.
DEFAULT_PROFILES: dict[str, MarketProfile] = {
    "BTC/USD": MarketProfile(Decimal("30000"), Decimal("0.05")),
    "ETH/USD": MarketProfile(Decimal("2000"), Decimal("0.5")),
    "ETH/BTC": MarketProfile(Decimal("0.066"), Decimal("0.5")),
}


@dataclass(frozen=True)
class DemoAccount:
    """A demo user: name, password (well known, printed in the banner) and user id."""

    username: str
    password: str
    user_id: str


def _funds(table: dict[str, Decimal], asset: str) -> Decimal:
    return table.get(asset, _OTHER_FUNDS)


def _assets(exchange: Exchange) -> list[str]:
    assets: set[str] = set()
    for config in exchange.markets.values():
        assets.update((config.base_asset, config.quote_asset))
    return sorted(assets)


def _total(exchange: Exchange, user_id: str, asset: str) -> Decimal:
    entry = exchange.balances(user_id)["balances"].get(asset)
    if entry is None:
        return Decimal(0)
    return Decimal(entry["available"]) + Decimal(entry["held"])


def _user_id(auth: AuthManager, username: str, password: str | None) -> tuple[str, bool]:
    """The user's id, creating the user (role trader) if missing; True when created now."""
    user = auth.get_user_by_name(username)
    if user is not None:
        return user.user_id, False
    return auth.create_user(username, password=password).user_id, True


def prepare_demo(exchange: Exchange, auth: AuthManager) -> tuple[list[DemoAccount], dict[str, str]]:
    """Create the demo users and the bots if missing and fund them; wait until the deposits are durable.

    Demo users are funded once, when created (their later balances are theirs to trade); bots are topped
    up to their working balance at every start. Returns the demo accounts and ``{bot name: user id}``.
    """
    last = 0
    accounts = []
    for username, password in DEMO_PASSWORDS.items():
        user_id, created = _user_id(auth, username, password)
        accounts.append(DemoAccount(username, password, user_id))
        if created:
            for asset in _assets(exchange):
                last = exchange.deposit(user_id, asset, _funds(_DEMO_FUNDS, asset)).position
    bots = {}
    for name in BOT_USERS:
        user_id, _ = _user_id(auth, name, None)
        bots[name] = user_id
        for asset in _assets(exchange):
            missing = _funds(_BOT_FUNDS, asset) - _total(exchange, user_id, asset)
            if missing > 0:
                last = exchange.deposit(user_id, asset, missing).position
    if last:
        exchange.wait_durable(last)
    return accounts, bots


def _floor(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_FLOOR) * step


def _ceil(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_CEILING) * step


class MarketBots:
    """The market maker and the taker of one market (state only; :meth:`step` issues the commands).

    The fair price follows a random walk that reverts slowly to the reference. The maker quotes
    ``levels`` prices each side on a coarse grid (``quote_step``, about 0.04% of the price) around it:
    the best bid is the grid price below the fair price and the best ask one step above. At each step it
    cancels quotes that left that ladder and places the missing ones (at most ``max_changes`` commands),
    so a calm market costs nothing. The taker then, with probability ``take_probability``, sends an IOC
    limit order at the best opposite price, leaning towards the fair price.
    """

    levels = 10
    max_changes = 4
    take_probability = 0.7

    def __init__(
        self,
        exchange: Exchange,
        config: MarketConfig,
        profile: MarketProfile,
        maker: str,
        taker: str,
        rng: random.Random,
    ) -> None:
        self.exchange = exchange
        self.config = config
        self.maker = maker
        self.taker = taker
        self.rng = rng
        self.reference = profile.reference_price
        trades = exchange.recent_trades(config.symbol, 1)
        self.fair = Decimal(trades[0]["price"]) if trades else self.reference
        self.quote_step = max(config.tick_size, _floor(self.reference * Decimal("0.0004"), config.tick_size))
        self.quantity = max(config.lot_size, _floor(profile.quantity, config.lot_size))
        self.commands = 0
        self.quoted = False  # the first step places the whole ladder

    # ------------------------------------------------------------------ one step

    def step(self) -> int:
        """Move the fair price, requote, maybe take; return how many commands were sent."""
        before = self.commands
        drift = (self.reference - self.fair) * Decimal("0.002")
        shock = self.fair * Decimal(str(round(self.rng.gauss(0.0, 0.0006), 8)))
        self.fair = max(self.quote_step * 10, self.fair + drift + shock)
        self._requote()
        if self.rng.random() < self.take_probability:
            self._take()
        return self.commands - before

    def _ladder(self) -> tuple[list[Decimal], list[Decimal]]:
        best_bid = _ceil(self.fair, self.quote_step) - self.quote_step
        best_ask = best_bid + 2 * self.quote_step
        bids = [best_bid - i * self.quote_step for i in range(self.levels)]
        asks = [best_ask + i * self.quote_step for i in range(self.levels)]
        return [p for p in bids if p > 0], asks

    def _requote(self) -> None:
        bids, asks = self._ladder()
        wanted = {("buy", price) for price in bids} | {("sell", price) for price in asks}
        have: dict[tuple[str, Decimal], str] = {}
        stale: list[str] = []
        for order in self.exchange.open_orders(self.maker, self.config.symbol):
            key = (order["side"], Decimal(order["price"]))
            if key in wanted and key not in have:
                have[key] = order["order_id"]
            else:
                stale.append(order["order_id"])
        limit = self.max_changes if self.quoted else 2 * self.levels
        self.quoted = True
        changes = 0
        for order_id in stale[:limit]:
            self._send(functools.partial(self.exchange.cancel_order, self.maker, order_id))
            changes += 1
        missing = sorted(wanted - set(have), key=lambda key: abs(key[1] - self.fair))
        for side, price in missing[: max(0, limit - changes)]:
            size = self.quantity * self.rng.randint(1, 8)
            place = functools.partial(
                self.exchange.place_order,
                self.maker,
                self.config.symbol,
                side,
                size,
                price=price,
                order_type="post_only",
            )
            self._send(place, fund=self.maker)

    def _take(self) -> None:
        snapshot = self.exchange.get_snapshot(self.config.symbol, 1)
        if not snapshot["bids"] or not snapshot["asks"]:
            return
        best_bid = Decimal(snapshot["bids"][0]["price"])
        best_ask = Decimal(snapshot["asks"][0]["price"])
        mid = (best_bid + best_ask) / 2
        buy_chance = 0.5 + max(-0.3, min(0.3, float((self.fair - mid) / self.quote_step) * 0.15))
        side = "buy" if self.rng.random() < buy_chance else "sell"
        price = best_ask if side == "buy" else best_bid
        size = self.quantity * self.rng.randint(1, 4)
        self._send(
            lambda: self.exchange.place_order(
                self.taker, self.config.symbol, side, size, price=price, time_in_force="IOC"
            ),
            fund=self.taker,
        )

    def _send(self, command: Callable[[], Any], fund: str | None = None) -> None:
        """Run one command; a refusal is normal for a bot (the book moved), and a bot short of funds is
        topped up for the next step."""
        self.commands += 1
        try:
            command()
        except ServiceUnavailable:
            raise
        except ExchangeError as exc:
            if fund is not None and getattr(exc, "code", "") == "insufficient_balance":
                self._top_up(fund)
            else:
                log.debug("demo bot command refused on %s: %s", self.config.symbol, exc)

    def _top_up(self, user_id: str) -> None:
        for asset in (self.config.base_asset, self.config.quote_asset):
            missing = _funds(_BOT_FUNDS, asset) - _total(self.exchange, user_id, asset)
            if missing > 0:
                self.exchange.deposit(user_id, asset, missing)
                self.commands += 1


class Simulation:
    """Runs :class:`MarketBots` for every market with a known or discoverable price, as asyncio tasks.

    ``interval`` is the mean time between two steps of one market (each step is a few commands).
    :meth:`start` needs a running loop; :meth:`stop` cancels the tasks and waits for them.
    """

    def __init__(
        self,
        exchange: Exchange,
        bots: dict[str, str],
        *,
        interval: float = 1.0,
        seed: int | None = None,
        profiles: dict[str, MarketProfile] | None = None,
    ) -> None:
        self.exchange = exchange
        self.interval = interval
        self.rng = random.Random(seed)
        self.markets: list[MarketBots] = []
        for symbol, config in exchange.markets.items():
            profile = (profiles or DEFAULT_PROFILES).get(symbol) or self._discover(symbol, config)
            if profile is None:
                log.info("demo: no reference price for %s, no bots there", symbol)
                continue
            self.markets.append(
                MarketBots(exchange, config, profile, bots["mm-1"], bots["taker-1"], self.rng)
            )
        self._tasks: list[asyncio.Task[None]] = []

    def _discover(self, symbol: str, config: MarketConfig) -> MarketProfile | None:
        trades = self.exchange.recent_trades(symbol, 1)
        if trades:
            price = Decimal(trades[0]["price"])
        else:
            snapshot = self.exchange.get_snapshot(symbol, 1)
            if not snapshot["bids"] or not snapshot["asks"]:
                return None
            price = (Decimal(snapshot["bids"][0]["price"]) + Decimal(snapshot["asks"][0]["price"])) / 2
        return MarketProfile(price, config.lot_size * 100)

    def start(self) -> None:
        for bots in self.markets:
            name = f"manticore-demo-{bots.config.symbol}"
            self._tasks.append(asyncio.create_task(self._run(bots), name=name))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _run(self, bots: MarketBots) -> None:
        await asyncio.sleep(self.rng.uniform(0.1, self.interval))
        while True:
            try:
                bots.step()
                delay = self.rng.uniform(0.5, 1.5) * self.interval
            except ServiceUnavailable:
                log.error("demo bots paused on %s: the journal cannot write", bots.config.symbol)
                delay = 10 * self.interval
            except Exception:
                log.exception("demo bot step failed on %s", bots.config.symbol)
                delay = 5 * self.interval
            await asyncio.sleep(delay)


def install_simulation(app: FastAPI, simulation: Simulation) -> None:
    """Run ``simulation`` inside ``app``'s lifespan: started after the app's own start-up (the exchange
    service is attached to the loop then) and stopped before its shutdown."""
    inner: Callable[[Any], AbstractAsyncContextManager[Any]] = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with inner(application) as state:
            simulation.start()
            try:
                yield state
            finally:
                await simulation.stop()

    app.router.lifespan_context = lifespan


def start_demo(app: FastAPI, service: ExchangeService, echo: Callable[[str], None]) -> Simulation:
    """Demo mode for ``manticore serve --demo``: prepare the demo users and bots, print the demo
    credentials with ``echo``, and run the simulation within ``app``'s lifespan."""
    accounts, bots = prepare_demo(service.exchange, service.auth)
    simulation = Simulation(service.exchange, bots)
    install_simulation(app, simulation)
    logins = ", ".join(f"{account.username} / {account.password}" for account in accounts)
    symbols = ", ".join(bots.config.symbol for bots in simulation.markets) or "none"
    echo(f"Demo mode (local use only): sign in as {logins}; simulated traders on {symbols}")
    return simulation
