"""The account shard's state machine: balances, holds sent to market shards, and their settlements.

Phase 2 of docs/scale-out.md. The account shard owns every user's money; market shards own books.
An order command is checked here (balance, ``max_open_orders``, the rate limit, the client order id),
its funds are moved from ``available`` into ``transit`` and the command is journaled as a ``route``
record; the route is then sent to the market shard owning the symbol (:meth:`AccountState.message`),
which credits the funding, runs the command, sweeps back what it does not hold and answers with
settlements (:mod:`manticore_matching.routed`). A ``settle`` record applies them: the swept amounts
return to ``available``, the market shard's holds are mirrored per shard, user and asset.

So per user and asset ``held = transit + sum over market shards of their held``, and for every asset
``sum(available + held) + the market shards' fees == deposits - withdrawals`` once every settlement is
applied (:mod:`manticore_cluster.conservation` checks it).

Deterministic: a live command builds a record (``*_record`` methods: they check, change nothing, and
raise the exchange's errors) and :meth:`AccountState.apply` applies it; a replay applies the same
records. Records carry their clock reading ``ts`` and journal position ``n``; the order id of a place
is ``MC-<n>``, unique over all market shards because there is one account log.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from decimal import Decimal
from typing import Any

from manticore_matching import InvalidCommand, MarketConfig, OrderNotFound, OrderRejected, UnknownMarket
from manticore_matching.commands import (
    ORDER_ID,
    check_client_order_id,
    check_user_id,
    modify_args,
    order_args,
    transfer_args,
)
from manticore_orderbook import OrderType, TimeInForce, rules
from manticore_risk import RiskLimits
from manticore_risk.amounts import amount_str
from manticore_risk.rate_limit import RateLimiter
from manticore_risk.tracking import limit_hold

__all__ = ["AccountState", "margin_of"]

ZERO = Decimal(0)
#: How many answered routes' settlements are kept for answering retries.
RESULTS_KEPT = 10_000


def margin_of(config: MarketConfig) -> Decimal:
    """``1 + max(maker fee, taker fee, 0)``: what a buy holds per unit of notional (as RiskManager)."""
    return Decimal(1) + max(config.maker_fee_rate, config.taker_fee_rate, ZERO)


def _can_rest(args: dict[str, Any]) -> bool:
    kind = OrderType(args["order_type"].upper())
    tif = TimeInForce(args["time_in_force"])
    return rules.is_stop(kind) or rules.may_rest(kind, tif, args["price"] is not None)


def _add(table: dict[str, dict[str, Decimal]], user: str, asset: str, amount: Decimal) -> None:
    assets = table.setdefault(user, {})
    assets[asset] = assets.get(asset, ZERO) + amount


class AccountState:
    """The account shard's state (see the module docstring).

    Args:
        name: the account shard's name (the ``source`` of its routes).
        markets: every market: symbol -> (config, name of the market shard owning it).
        limits: ``max_open_orders`` and the rate limit are applied here (per-order limits that need a
            book are the market shard's).
    """

    def __init__(
        self, name: str, markets: dict[str, tuple[MarketConfig, str]], limits: RiskLimits | None = None
    ) -> None:
        self.name = name
        self.markets = dict(markets)
        self.limits = limits or RiskLimits()
        self.position = 0
        self.available: dict[str, dict[str, Decimal]] = {}
        self.transit: dict[str, dict[str, Decimal]] = {}
        #: market shard -> user -> asset -> what that shard holds (as its last applied settlement said)
        self.mirror: dict[str, dict[str, dict[str, Decimal]]] = {}
        self.net: dict[str, Decimal] = {}
        #: route position -> the route (user, shard, funding, action), until its settlement is applied
        self.routes: dict[int, dict[str, Any]] = {}
        #: live order id -> {user_id, symbol, shard, side, price, quantity, client_order_id, rests}
        self.orders: dict[str, dict[str, Any]] = {}
        self.names: dict[tuple[str, str], str] = {}
        #: market shard -> seq of the last settlement applied
        self.applied: dict[str, int] = {}
        #: route position -> its settlement (the market's answer), the most recent RESULTS_KEPT
        self.results: OrderedDict[int, dict[str, Any]] = OrderedDict()
        #: (user, client order id) -> position of the most recent place routed under that name, the
        #: most recent RESULTS_KEPT (a retried place is recognised by it even when it was refused)
        self.routed_names: OrderedDict[tuple[str, str], int] = OrderedDict()
        self.limiter: RateLimiter | None = None
        if self.limits.rate_limit_orders is not None and self.limits.rate_limit_window is not None:
            self.limiter = RateLimiter(self.limits.rate_limit_orders, self.limits.rate_limit_window)

    # ------------------------------------------------------------------ reads

    def balances(self, user_id: str) -> dict[str, dict[str, str]]:
        """``{asset: {"available", "held"}}`` (held = in transit + held on market shards)."""
        assets: dict[str, dict[str, str]] = {}
        for asset in self._assets_of(user_id):
            assets[asset] = {
                "available": amount_str(self._available(user_id, asset)),
                "held": amount_str(self.held(user_id, asset)),
            }
        return assets

    def _assets_of(self, user: str) -> list[str]:
        found: dict[str, None] = dict.fromkeys(self.available.get(user, {}))
        found.update(dict.fromkeys(self.transit.get(user, {})))
        for held in self.mirror.values():
            found.update(dict.fromkeys(held.get(user, {})))
        return list(found)

    def users(self) -> list[str]:
        """Every user with a balance, in transit or held."""
        found: dict[str, None] = dict.fromkeys(self.available)
        found.update(dict.fromkeys(self.transit))
        for held in self.mirror.values():
            found.update(dict.fromkeys(held))
        return list(found)

    def _available(self, user: str, asset: str) -> Decimal:
        return self.available.get(user, {}).get(asset, ZERO)

    def held(self, user: str, asset: str) -> Decimal:
        """In transit plus held on every market shard."""
        total = self.transit.get(user, {}).get(asset, ZERO)
        for held in self.mirror.values():
            total += held.get(user, {}).get(asset, ZERO)
        return total

    def touched_users(self, record: dict[str, Any]) -> list[str]:
        """The users whose balances applying ``record`` changes (call it before :meth:`apply`): the
        user of a deposit, withdrawal or funded route; every user a settlement reports and the user of
        the funded route it ends."""
        op = record["op"]
        if op == "deposit" or op == "withdraw":
            return [record["user_id"]]
        if op == "route":
            return [record["user_id"]] if record["funding"] else []
        users: dict[str, None] = {}
        for entry in record.get("entries", ()):
            users.update(dict.fromkeys(entry["users"]))
            routed = entry["routed"]
            route = None if routed is None or routed[0] != self.name else self.routes.get(int(routed[1]))
            if route is not None and route["funding"]:
                users[route["user_id"]] = None
        return list(users)

    def open_orders(self, user: str) -> int:
        """The user's live orders that rest, with the places in transit that can rest."""
        live = sum(1 for order in self.orders.values() if order["user_id"] == user and order["rests"])
        moving = sum(
            1
            for route in self.routes.values()
            if route["user_id"] == user and route["action"]["kind"] == "place" and route["rests"]
        )
        return live + moving

    def message(self, position: int) -> dict[str, Any]:
        """The message that sends the pending route at ``position`` to its market shard: the arguments
        of ``Exchange.routed`` with ``shard`` naming the destination. ``below``: every route to that
        shard at or below it is settled; ``acked``: the last settlement of that shard applied here."""
        route = self.routes[position]
        shard = route["shard"]
        pending = [n for n, other in self.routes.items() if other["shard"] == shard]
        return {
            "shard": shard,
            "source": self.name,
            "source_n": position,
            "below": min(pending) - 1 if pending else self.position,
            "acked": self.applied.get(shard, 0),
            "user_id": route["user_id"],
            "funding": {asset: str(amount) for asset, amount in route["funding"].items()},
            "action": route["action"],
        }

    def outbox(self) -> list[dict[str, Any]]:
        """Every pending route's message, oldest first (what a new leader resends)."""
        return [self.message(position) for position in sorted(self.routes)]

    # ------------------------------------------------------------------ commands -> records

    def transfer_record(
        self, now: float, op: str, user_id: object, asset: object, amount: object
    ) -> dict[str, Any]:
        """A ``deposit`` or ``withdraw`` record; InvalidCommand for bad arguments, OrderRejected
        (``insufficient_balance``) for a withdrawal above the available balance."""
        user, name, value = transfer_args(user_id, asset, amount)
        if op == "withdraw" and value > self._available(user, name):
            raise OrderRejected(
                f"insufficient {name}: withdrawing {value} {name}, "
                f"you have {self._available(user, name)} available",
                "insufficient_balance",
            )
        if op not in ("deposit", "withdraw"):
            raise InvalidCommand(f"unknown transfer {op!r}")
        return {"op": op, "ts": now, "user_id": user, "asset": name, "amount": str(value)}

    def place_record(
        self,
        now: float,
        position: int,
        user_id: object,
        symbol: object,
        side: object,
        quantity: object,
        price: object = None,
        order_type: object = "limit",
        time_in_force: object = None,
        expiry_time: object = None,
        stop_price: object = None,
        displayed_quantity: object = None,
        trail_value: object = None,
        trail_is_percent: object = False,
        self_trade_prevention: object = None,
        client_order_id: object = None,
    ) -> dict[str, Any]:
        """The ``route`` record of a new order to be journaled at ``position`` (its id is ``MC-<position>``).

        Checks as the exchange does those that need no book: arguments on the market's grid, the client
        order id, ``max_open_orders``, the rate limit, the funds. Raises UnknownMarket, InvalidCommand,
        OrderRejected; changes nothing."""
        if not isinstance(symbol, str) or symbol not in self.markets:
            raise UnknownMarket(f"there is no market {str(symbol)[:64]!r}")
        config, shard = self.markets[symbol]
        args = order_args(
            config,
            side,
            quantity,
            price,
            order_type,
            time_in_force,
            expiry_time,
            stop_price,
            displayed_quantity,
            trail_value,
            trail_is_percent,
            self_trade_prevention,
        )
        user = check_user_id(user_id)
        client_id = check_client_order_id(client_order_id)
        if client_id is not None and self._name_taken(user, client_id):
            raise InvalidCommand(
                f"client_order_id {client_id!r} is already used by one of your open orders",
                "duplicate_client_order_id",
            )
        is_buy = args["side"] == "buy"
        kind = OrderType(args["order_type"].upper())
        reason = rules.unbounded_buy_reason(kind, is_buy, args["price"] is not None)
        if reason is not None:
            raise OrderRejected(reason, "unsupported_order")
        rests = _can_rest(args)
        max_open = self.limits.max_open_orders
        if max_open is not None and rests and self.open_orders(user) >= max_open:
            raise OrderRejected(f"you already have the maximum of {max_open} open orders", "max_open_orders")
        self._check_rate(user, now)
        quantity_value = Decimal(args["quantity"])
        if not is_buy:
            asset, need = config.base_asset, quantity_value
        elif args["price"] is not None:
            asset, need = (
                config.quote_asset,
                limit_hold(Decimal(args["price"]), quantity_value, margin_of(config)),
            )
        else:  # a market buy: everything available; the market shard sweeps back what it does not hold
            asset, need = config.quote_asset, self._available(user, config.quote_asset)
            if need <= 0:
                raise OrderRejected(
                    f"insufficient {asset}: this market buy needs {asset}, you have 0 available",
                    "insufficient_balance",
                )
        self._check_funds(user, asset, need)
        action = {
            "kind": "place",
            "symbol": symbol,
            "order_id": f"MC-{position}",
            "client_order_id": client_id,
            **args,
        }
        return self._route(now, user, shard, {asset: need}, action, rests)

    def cancel_record(
        self, now: float, user_id: str | None, order_id: object = None, client_order_id: object = None
    ) -> dict[str, Any]:
        """The ``route`` record of a cancel of ``user_id``'s live order (by id, or by client order id);
        OrderNotFound when this user has no such live order (any user's for ``user_id`` None)."""
        order_id = self._owned(user_id, order_id, client_order_id)
        order = self.orders[order_id]
        action = {"kind": "cancel", "symbol": order["symbol"], "order_id": order_id}
        return self._route(now, order["user_id"], order["shard"], {}, action, False)

    def modify_record(
        self,
        now: float,
        user_id: str | None,
        order_id: object,
        new_price: object = None,
        new_quantity: object = None,
        new_expiry_time: object = None,
    ) -> dict[str, Any]:
        """The ``route`` record of a modify. The funding is the largest increase of the order's hold the
        modify can need whatever has filled (the market shard sweeps back the excess); the rate limit
        applies. OrderNotFound, InvalidCommand, OrderRejected."""
        order_id = self._owned(user_id, order_id, None)
        order = self.orders[order_id]
        config, shard = self.markets[order["symbol"]]
        price, quantity, expiry = modify_args(config, new_price, new_quantity, new_expiry_time)
        user = order["user_id"]
        self._check_rate(user, now)
        old_q = Decimal(order["quantity"])
        new_q = quantity if quantity is not None else old_q
        funding: dict[str, Decimal] = {}
        if order["side"] == "sell":
            if new_q > old_q:
                funding[config.base_asset] = new_q - old_q
        elif order["price"] is not None:
            old_p = Decimal(order["price"])
            new_p = price if price is not None else old_p
            margin = margin_of(config)
            filled = min(old_q, new_q)
            increase = max(
                limit_hold(new_p, new_q, margin) - limit_hold(old_p, old_q, margin),
                limit_hold(new_p, new_q - filled, margin) - limit_hold(old_p, old_q - filled, margin),
            )
            if increase > 0:
                funding[config.quote_asset] = increase
        for asset, amount in funding.items():
            self._check_funds(user, asset, amount)
        action = {
            "kind": "modify",
            "symbol": order["symbol"],
            "order_id": order_id,
            "new_price": None if price is None else str(price),
            "new_quantity": None if quantity is None else str(quantity),
            "new_expiry_time": expiry,
        }
        return self._route(now, user, shard, funding, action, False)

    def settle_record(self, now: float, entries: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The ``settle`` record of the settlements among ``entries`` that apply next (per market shard
        in ``prev``/``seq`` order, each once); None when none does. Entries are the market shards'
        (:mod:`manticore_matching.routed`), in any order, possibly repeated."""
        last = dict(self.applied)
        chosen: list[dict[str, Any]] = []
        remaining = [entry for entry in entries if isinstance(entry, dict) and "seq" in entry]
        progress = True
        while progress:
            progress = False
            for entry in list(remaining):
                source = entry["source"]
                if entry["seq"] <= last.get(source, 0):
                    remaining.remove(entry)
                elif entry["prev"] == last.get(source, 0):
                    chosen.append(entry)
                    last[source] = entry["seq"]
                    remaining.remove(entry)
                    progress = True
        if not chosen:
            return None
        return {"op": "settle", "ts": now, "entries": chosen}

    # ------------------------------------------------------------------ apply

    def apply(self, record: dict[str, Any]) -> None:
        """Apply a journaled record at its position ``n`` (live right after ``*_record``, and in replay)."""
        op = record["op"]
        n = int(record["n"])
        if op == "deposit" or op == "withdraw":
            amount = Decimal(record["amount"])
            sign = 1 if op == "deposit" else -1
            _add(self.available, record["user_id"], record["asset"], sign * amount)
            self.net[record["asset"]] = self.net.get(record["asset"], ZERO) + sign * amount
        elif op == "route":
            user = record["user_id"]
            funding = {asset: Decimal(amount) for asset, amount in record["funding"].items()}
            for asset, amount in funding.items():
                _add(self.available, user, asset, -amount)
                _add(self.transit, user, asset, amount)
            action = record["action"]
            if self.limiter is not None and action["kind"] in ("place", "modify"):
                self.limiter.record(user, float(record["ts"]))
            name = action.get("client_order_id")
            if action["kind"] == "place" and isinstance(name, str):
                self.routed_names.pop((user, name), None)
                self.routed_names[(user, name)] = n
                while len(self.routed_names) > RESULTS_KEPT:
                    self.routed_names.popitem(last=False)
            self.routes[n] = {
                "user_id": user,
                "shard": record["shard"],
                "funding": funding,
                "action": action,
                "rests": record["rests"],
            }
        elif op == "settle":
            for entry in record["entries"]:
                self._apply_settlement(entry)
        else:
            raise ValueError(f"record {n}: unknown operation {op!r}")
        self.position = n

    def _apply_settlement(self, entry: dict[str, Any]) -> None:
        source = entry["source"]
        if entry["seq"] <= self.applied.get(source, 0) or entry["prev"] != self.applied.get(source, 0):
            raise ValueError(f"settlement {source}:{entry['seq']} out of order")
        held = self.mirror.setdefault(source, {})
        for user, assets in entry["users"].items():
            for asset, amounts in assets.items():
                _add(self.available, user, asset, Decimal(amounts["returned"]))
                held.setdefault(user, {})[asset] = Decimal(amounts["held"])
        routed = entry["routed"]
        if routed is not None and routed[0] == self.name:
            route = self.routes.pop(int(routed[1]), None)
            if route is not None:
                for asset, amount in route["funding"].items():
                    _add(self.transit, route["user_id"], asset, -amount)
                if entry["error"] is None:
                    self._route_done(route)
            self.results[int(routed[1])] = entry
            while len(self.results) > RESULTS_KEPT:
                self.results.popitem(last=False)
        for order_id in entry["ended"]:
            order = self.orders.pop(order_id, None)
            if order is not None and order["client_order_id"] is not None:
                self.names.pop((order["user_id"], order["client_order_id"]), None)
        self.applied[source] = entry["seq"]

    def _route_done(self, route: dict[str, Any]) -> None:
        action = route["action"]
        if action["kind"] == "place":
            order_id = action["order_id"]
            self.orders[order_id] = {
                "user_id": route["user_id"],
                "symbol": action["symbol"],
                "shard": route["shard"],
                "side": action["side"],
                "price": action["price"],
                "quantity": action["quantity"],
                "client_order_id": action["client_order_id"],
                "rests": route["rests"],
            }
            if action["client_order_id"] is not None:
                self.names[(route["user_id"], action["client_order_id"])] = order_id
        elif action["kind"] == "modify":
            order = self.orders.get(action["order_id"])
            if order is not None:
                if action["new_price"] is not None:
                    order["price"] = action["new_price"]
                if action["new_quantity"] is not None:
                    order["quantity"] = action["new_quantity"]

    # ------------------------------------------------------------------ helpers

    def _route(
        self,
        now: float,
        user: str,
        shard: str,
        funding: dict[str, Decimal],
        action: dict[str, Any],
        rests: bool,
    ) -> dict[str, Any]:
        return {
            "op": "route",
            "ts": now,
            "user_id": user,
            "shard": shard,
            "funding": {asset: str(amount) for asset, amount in funding.items()},
            "action": action,
            "rests": rests,
        }

    def _name_taken(self, user: str, client_id: str) -> bool:
        if (user, client_id) in self.names:
            return True
        return any(
            route["user_id"] == user
            and route["action"]["kind"] == "place"
            and route["action"]["client_order_id"] == client_id
            for route in self.routes.values()
        )

    def _owned(self, user_id: str | None, order_id: object, client_order_id: object) -> str:
        if order_id is None and isinstance(user_id, str) and isinstance(client_order_id, str):
            found = self.names.get((user_id, client_order_id))
            if found is None:
                raise OrderNotFound(f"no open order with client_order_id {client_order_id[:64]!r}")
            order_id = found
        if not isinstance(order_id, str) or not ORDER_ID.match(order_id):
            raise OrderNotFound(f"order {str(order_id)[:64]!r} not found")
        order = self.orders.get(order_id)
        if order is None or (user_id is not None and order["user_id"] != user_id):
            raise OrderNotFound(f"order {order_id!r} not found")
        if any(route["action"].get("order_id") == order_id for route in self.routes.values()):
            # one command per order in flight: its market shard answers them in order anyway
            raise OrderRejected(f"order {order_id!r} has a command in flight; try again", "order_busy")
        return order_id

    def _check_rate(self, user: str, now: float) -> None:
        limiter = self.limiter
        if limiter is None or limiter.allows(user, now):
            return
        wait = limiter.retry_after(user, now)
        raise OrderRejected(
            f"too many orders: at most {limiter.limit} per {limiter.window:g} seconds; "
            f"try again in {wait:.3g} s",
            "rate_limited",
            retry_after=wait,
            rate_limit=limiter.limit,
        )

    def _check_funds(self, user: str, asset: str, need: Decimal) -> None:
        have = self._available(user, asset)
        if need > have:
            raise OrderRejected(
                f"insufficient {asset}: needs {need} {asset}, you have {max(have, ZERO)} {asset} available",
                "insufficient_balance",
            )

    # ------------------------------------------------------------------ state

    def copy(self) -> AccountState:
        """An independent copy (for checking what applying more settlements would give)."""
        return copy.deepcopy(self)

    def export(self) -> dict[str, Any]:
        """The state as JSON types, for checkpoints and comparisons (``results`` left out: they are
        answers, not state)."""

        def table(values: dict[str, dict[str, Decimal]]) -> dict[str, dict[str, str]]:
            return {
                user: {asset: str(amount) for asset, amount in assets.items()}
                for user, assets in values.items()
            }

        return {
            "position": self.position,
            "available": table(self.available),
            "transit": table(self.transit),
            "mirror": {shard: table(held) for shard, held in self.mirror.items()},
            "net": {asset: str(amount) for asset, amount in self.net.items()},
            "routes": [
                [n, {**route, "funding": {a: str(v) for a, v in route["funding"].items()}}]
                for n, route in self.routes.items()
            ],
            "orders": copy.deepcopy(self.orders),
            "applied": dict(self.applied),
            "limiter": [] if self.limiter is None else self.limiter.export(),
        }

    def load(self, state: dict[str, Any]) -> None:
        """Replace the state with an :meth:`export` (a checkpoint's); answers kept for retries are not
        in it."""

        def table(values: dict[str, dict[str, str]]) -> dict[str, dict[str, Decimal]]:
            return {
                user: {asset: Decimal(amount) for asset, amount in assets.items()}
                for user, assets in values.items()
            }

        self.position = int(state["position"])
        self.available = table(state["available"])
        self.transit = table(state["transit"])
        self.mirror = {shard: table(held) for shard, held in state["mirror"].items()}
        self.net = {asset: Decimal(amount) for asset, amount in state["net"].items()}
        self.routes = {
            int(n): {**route, "funding": {a: Decimal(v) for a, v in route["funding"].items()}}
            for n, route in state["routes"]
        }
        self.orders = {order_id: dict(order) for order_id, order in state["orders"].items()}
        self.names = {
            (order["user_id"], order["client_order_id"]): order_id
            for order_id, order in self.orders.items()
            if order["client_order_id"] is not None
        }
        self.applied = {shard: int(seq) for shard, seq in state["applied"].items()}
        self.results = OrderedDict()
        self.routed_names = OrderedDict()
        if self.limiter is not None:
            self.limiter.load([(user, [float(t) for t in times]) for user, times in state["limiter"]])

    def check_invariants(self) -> None:
        """AssertionError on a negative amount or a name index that disagrees with the live orders."""
        for name, values in (("available", self.available), ("transit", self.transit)):
            for user, assets in values.items():
                for asset, amount in assets.items():
                    assert amount >= 0, f"{user!r} {asset}: {name} {amount} < 0"
        for (user, name), order_id in self.names.items():
            order = self.orders.get(order_id)
            assert order is not None and order["user_id"] == user and order["client_order_id"] == name
