"""Deterministic workload generation, shared by every engine.

A workload is two lists of plain tuples ``(kind, side, price, quantity, order_id)``:

* ``prefill``: resting orders that build the starting book (applied before timing starts);
* ``ops``: the timed operations.

``kind`` is :data:`ADD` (a limit order that rests without trading), :data:`CANCEL` (cancel a live order;
``price`` and ``quantity`` are 0) or :data:`AGGRESSIVE` (a limit order priced through one or more levels
of the opposite side, so it trades and may rest its remainder). ``side`` is ``"buy"`` or ``"sell"``,
``price`` an integer number of ticks (tick size 1, so the integer *is* the price), ``quantity`` an
integer number of lots (lot size 1) and ``order_id`` a unique positive integer.

The user-convention workloads (``user_*``, the headline rows) use the same tuples on a finer grid: their
``meta["convention"]`` (see :data:`USER_CONVENTION`) says that a price is a number of cents (10,000.00 is
``1_000_000``) and a quantity a number of thousandths, that the adapters pass them as float, ``str`` or
``Decimal`` keyword arguments with a ``user_id`` and ``time_in_force="GTC"``, and that an aggressive order
is an IOC limit at its protection price (what it cannot fill is cancelled, never rests).

Workloads are generated with a seeded :class:`random.Random` while a small reference book
(:class:`ReferenceBook`, exact integer price-time priority) is kept in step, so that every cancel targets
an order that is really live at that moment and the expected final book (orders, quantities, trades) is
known. Engines are checked against it after the timed run.
"""

from __future__ import annotations

import bisect
import pickle
import random
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = [
    "ADD",
    "AGGRESSIVE",
    "CANCEL",
    "KIND_NAMES",
    "Op",
    "ReferenceBook",
    "Sizes",
    "Workload",
    "USER_CONVENTION",
    "build_all",
    "load",
]

ADD: Final = 0
CANCEL: Final = 1
AGGRESSIVE: Final = 2
KIND_NAMES: Final = ("add", "cancel", "aggressive")

#: ``(kind, side, price_ticks, quantity_lots, order_id)``.
Op = tuple[int, str, int, int, int]

_OPPOSITE: Final = {"buy": "sell", "sell": "buy"}

#: Largest quantity (lots) of an aggressive order in the mix; resting orders are 1..100 lots.
AGGRESSIVE_MAX_QTY = 250

#: How the user-convention workloads are called (``meta["convention"]``, plus ``numbers``: float, str or
#: decimal). Prices are integers of 10**-price_decimals (cents around 10,000.00), quantities integers of
#: 10**-quantity_decimals; resting orders are 0.001-2.000, aggressive ones up to 5.000.
USER_CONVENTION: Final = {
    "price_decimals": 2,
    "quantity_decimals": 3,
    "aggressive_time_in_force": "IOC",
    "users": 50,
}
_USER_MID: Final = 1_000_000  # 10,000.00 in cents
_USER_MAX_QTY: Final = 2_000
_USER_MAX_AGGRESSIVE: Final = 5_000


class ReferenceBook:
    """A plain, obviously-correct price-time-priority book on integers, used only while generating.

    Speed is secondary (it is never timed); it supports what the generators need: the best prices, the
    top ``k`` levels of a side with their quantities, uniform choice of a live order, and counts.
    """

    def __init__(self) -> None:
        self.levels: dict[str, dict[int, deque[int]]] = {"buy": {}, "sell": {}}
        self.prices: dict[str, list[int]] = {"buy": [], "sell": []}  # ascending on both sides
        self.orders: dict[int, list[Any]] = {}  # order_id -> [side, price, remaining quantity]
        self.live: list[int] = []
        self._live_pos: dict[int, int] = {}
        self.trades = 0  # maker fills (one per maker order touched by a taker)
        self.last_unfilled = 0  # quantity the last add did not fill (rested, or cancelled with ioc)

    # -- queries -------------------------------------------------------------------------------------
    def best(self, side: str) -> int | None:
        """Best price (ticks) of ``side``, or None when that side is empty."""
        prices = self.prices[side]
        if not prices:
            return None
        return prices[-1] if side == "buy" else prices[0]

    def top(self, side: str, k: int) -> list[int]:
        """The best ``k`` prices of ``side``, best first."""
        prices = self.prices[side]
        if side == "buy":
            return prices[: -k - 1 : -1] if k < len(prices) else prices[::-1]
        return prices[:k]

    def level_quantity(self, side: str, price: int) -> int:
        """Total resting quantity (lots) at ``price`` on ``side``."""
        orders = self.orders
        return sum(orders[oid][2] for oid in self.levels[side][price])

    def summary(self) -> dict[str, int]:
        """Counts that an engine's final book is compared against (orders, lots, levels, fills)."""
        out: dict[str, int] = {"trades": self.trades}
        for side, key in (("buy", "bid"), ("sell", "ask")):
            out[f"{key}_levels"] = len(self.prices[side])
            out[f"{key}_orders"] = sum(len(q) for q in self.levels[side].values())
            out[f"{key}_qty"] = sum(self.orders[oid][2] for q in self.levels[side].values() for oid in q)
        return out

    def level_count(self) -> int:
        """Number of price levels on both sides."""
        return len(self.prices["buy"]) + len(self.prices["sell"])

    # -- commands ------------------------------------------------------------------------------------
    def add(self, side: str, price: int, quantity: int, order_id: int, ioc: bool = False) -> int:
        """Match a limit order, rest any remainder (cancel it with ``ioc``); return the maker fills."""
        opposite = _OPPOSITE[side]
        opp_prices = self.prices[opposite]
        opp_levels = self.levels[opposite]
        fills = 0
        while quantity > 0 and opp_prices:
            best = opp_prices[0] if opposite == "sell" else opp_prices[-1]
            if (side == "buy" and best > price) or (side == "sell" and best < price):
                break
            queue = opp_levels[best]
            while quantity > 0 and queue:
                maker_id = queue[0]
                maker = self.orders[maker_id]
                traded = min(quantity, maker[2])
                maker[2] -= traded
                quantity -= traded
                fills += 1
                if maker[2] == 0:
                    queue.popleft()
                    del self.orders[maker_id]
                    self._drop_live(maker_id)
            if not queue:
                del opp_levels[best]
                if opposite == "sell":
                    opp_prices.pop(0)
                else:
                    opp_prices.pop()
        self.trades += fills
        self.last_unfilled = quantity
        if quantity > 0 and not ioc:
            levels = self.levels[side]
            queue_or_none = levels.get(price)
            if queue_or_none is None:
                queue_or_none = levels[price] = deque()
                bisect.insort(self.prices[side], price)
            queue_or_none.append(order_id)
            self.orders[order_id] = [side, price, quantity]
            self._live_pos[order_id] = len(self.live)
            self.live.append(order_id)
        return fills

    def cancel(self, order_id: int) -> bool:
        """Remove a live order; False when it is not live."""
        order = self.orders.pop(order_id, None)
        if order is None:
            return False
        side, price, _ = order
        queue = self.levels[side][price]
        queue.remove(order_id)
        if not queue:
            del self.levels[side][price]
            prices = self.prices[side]
            del prices[bisect.bisect_left(prices, price)]
        self._drop_live(order_id)
        return True

    def _drop_live(self, order_id: int) -> None:
        pos = self._live_pos.pop(order_id)
        last = self.live.pop()
        if last != order_id:
            self.live[pos] = last
            self._live_pos[last] = pos


@dataclass
class Workload:
    """One generated workload: the starting book, the timed operations and what must come out."""

    name: str
    title: str
    description: str
    prefill: list[Op]
    ops: list[Op]
    expected: dict[str, int]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (what is pickled for the workers)."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "prefill": self.prefill,
            "ops": self.ops,
            "expected": self.expected,
            "meta": self.meta,
        }

    def save(self, path: Path) -> None:
        """Write the workload as a pickle of plain tuples, lists and dicts."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            pickle.dump(self.to_dict(), fh, protocol=pickle.HIGHEST_PROTOCOL)


def load(path: Path) -> dict[str, Any]:
    """Read a workload written by :meth:`Workload.save` (plain data, see :meth:`Workload.to_dict`)."""
    with path.open("rb") as fh:
        data: dict[str, Any] = pickle.load(fh)
    return data


@dataclass(frozen=True)
class Sizes:
    """Sizes of every workload (counts of operations, orders and price levels)."""

    add_only_ops: int
    add_only_levels_per_side: int
    cancel_prefill: int
    cancel_ops: int
    cancel_levels_per_side: int
    mix_prefill: int
    mix_ops: int
    mix_levels_per_side: int
    deep_levels_per_side: int
    deep_rounds: int
    scale_small_levels: int
    scale_large_levels: int
    scale_ops: int

    @classmethod
    def full(cls) -> Sizes:
        """The sizes of the published run."""
        return cls(
            add_only_ops=20_000,
            add_only_levels_per_side=1_000,
            cancel_prefill=20_000,
            cancel_ops=20_000,
            cancel_levels_per_side=1_000,
            mix_prefill=2_000,
            mix_ops=30_000,
            mix_levels_per_side=250,
            deep_levels_per_side=2_000,
            deep_rounds=150,
            scale_small_levels=100,
            scale_large_levels=100_000,
            scale_ops=20_000,
        )

    @classmethod
    def quick(cls) -> Sizes:
        """Small sizes for the CI smoke run (seconds, not minutes)."""
        return cls(
            add_only_ops=2_000,
            add_only_levels_per_side=200,
            cancel_prefill=2_000,
            cancel_ops=2_000,
            cancel_levels_per_side=200,
            mix_prefill=300,
            mix_ops=3_000,
            mix_levels_per_side=50,
            deep_levels_per_side=300,
            deep_rounds=15,
            scale_small_levels=100,
            scale_large_levels=10_000,
            scale_ops=2_000,
        )


class _Gen:
    """A seeded generator that keeps a :class:`ReferenceBook` in step with the ops it emits."""

    def __init__(
        self, seed: int, mid: int, max_qty: int = 100, max_aggressive: int = AGGRESSIVE_MAX_QTY
    ) -> None:
        self.rng = random.Random(seed)
        self.book = ReferenceBook()
        self.mid = mid
        self.max_qty = max_qty
        self.max_aggressive = max_aggressive
        self.ioc_filled: dict[int, int] = {}  # order id -> quantity an IOC order filled
        self.next_id = 1
        self.last_swept: list[int] = []

    def _new_id(self) -> int:
        oid = self.next_id
        self.next_id += 1
        return oid

    def quantity(self) -> int:
        """A random order size, 1..max_qty lots (100 unless given)."""
        return self.rng.randint(1, self.max_qty)

    def band_add(self, levels_per_side: int) -> Op:
        """A resting add at a uniformly chosen level within ``levels_per_side`` ticks of the mid."""
        rng = self.rng
        side = "buy" if rng.random() < 0.5 else "sell"
        offset = 1 + rng.randrange(levels_per_side)
        price = self.mid - offset if side == "buy" else self.mid + offset
        return self.rest(side, price)

    def near_top_add(self) -> Op:
        """A resting add near the top of its side: usually joins or sits a few ticks behind the best."""
        rng = self.rng
        book = self.book
        side = "buy" if rng.random() < 0.5 else "sell"
        own, opp = book.best(side), book.best(_OPPOSITE[side])
        depth = int(rng.expovariate(1 / 6.0))
        improve = rng.random() < 0.05
        if side == "buy":
            anchor = own if own is not None else (opp - 1 if opp is not None else self.mid - 1)
            price = anchor + 1 if improve else anchor - depth
            if opp is not None and price >= opp:
                price = opp - 1
            price = max(price, 1)
        else:
            anchor = own if own is not None else (opp + 1 if opp is not None else self.mid + 1)
            price = anchor - 1 if improve else anchor + depth
            if opp is not None and price <= opp:
                price = opp + 1
        return self.rest(side, price)

    def rest(self, side: str, price: int) -> Op:
        """A resting add of a random quantity at ``price`` (must not cross)."""
        oid = self._new_id()
        qty = self.quantity()
        fills = self.book.add(side, price, qty, oid)
        if fills:  # pragma: no cover - generator bug guard
            raise AssertionError("a resting add traded")
        return (ADD, side, price, qty, oid)

    def cancel_random(self) -> Op | None:
        """Cancel a uniformly chosen live order (None when the book is empty)."""
        live = self.book.live
        if not live:
            return None
        oid = live[self.rng.randrange(len(live))]
        side = self.book.orders[oid][0]
        self.book.cancel(oid)
        return (CANCEL, side, 0, 0, oid)

    def aggressive(
        self, min_levels: int, max_levels: int, exact: bool = False, ioc: bool = False
    ) -> Op | None:
        """A limit order priced at the k-th best opposite level, k drawn uniformly from [min, max].

        With ``exact`` its quantity is exactly what rests on those k levels, so it empties all of them
        and nothing rests. Otherwise the quantity is drawn from 1..max_aggressive lots: it sweeps as
        far as that reaches (at most to the k-th level) and rests any remainder at its limit price, or
        with ``ioc`` cancels it (the k-th level's price is then its protection price).
        """
        rng = self.rng
        side = "buy" if rng.random() < 0.5 else "sell"
        opposite = _OPPOSITE[side]
        k = rng.randint(min_levels, max_levels)
        prices = self.book.top(opposite, k)
        if not prices:
            side, opposite = opposite, side
            prices = self.book.top(opposite, k)
            if not prices:
                return None
        if exact:
            qty = sum(self.book.level_quantity(opposite, p) for p in prices)
        else:
            qty = rng.randint(1, self.max_aggressive)
        self.last_swept = prices
        oid = self._new_id()
        self.book.add(side, prices[-1], qty, oid, ioc=ioc)
        if ioc:
            self.ioc_filled[oid] = qty - self.book.last_unfilled
        return (AGGRESSIVE, side, prices[-1], qty, oid)

    def sweep_fills(self, min_fills: int, max_fills: int) -> Op | None:
        """An IOC limit that empties whole levels until it has made ``min_fills``..``max_fills`` fills.

        The fill target is drawn uniformly; the order takes whole levels from the touch until their
        orders reach it (so it may make a few more, never fewer unless the side runs out), and its
        quantity is exactly what rests on them.
        """
        rng = self.rng
        side = "buy" if rng.random() < 0.5 else "sell"
        opposite = _OPPOSITE[side]
        target = rng.randint(min_fills, max_fills)
        book = self.book
        prices = book.prices[opposite]
        ordered = reversed(prices) if opposite == "buy" else iter(prices)
        swept: list[int] = []
        orders = 0
        for price in ordered:
            swept.append(price)
            orders += len(book.levels[opposite][price])
            if orders >= target:
                break
        if not swept:
            return None
        qty = sum(book.level_quantity(opposite, p) for p in swept)
        self.last_swept = swept
        oid = self._new_id()
        book.add(side, swept[-1], qty, oid, ioc=True)
        self.ioc_filled[oid] = qty
        return (AGGRESSIVE, side, swept[-1], qty, oid)

    def mix_op(self, ioc: bool = False) -> Op:
        """One op of the realistic mix: 60% resting adds, 30% cancels, 10% sweeps of 1-5 levels.

        With ``ioc`` the sweeps are IOC limits (their remainder is cancelled instead of resting).
        """
        r = self.rng.random()
        op: Op | None = None
        if r < 0.30:
            op = self.cancel_random()
        elif r < 0.40:
            op = self.aggressive(1, 5, ioc=ioc)
        return op if op is not None else self.near_top_add()


def _finish(
    gen: _Gen, name: str, title: str, description: str, prefill: list[Op], ops: list[Op], **meta: Any
) -> Workload:
    kinds = [0, 0, 0]
    for op in ops:
        kinds[op[0]] += 1
    meta.update(
        {
            "n_prefill": len(prefill),
            "n_ops": len(ops),
            "n_add": kinds[ADD],
            "n_cancel": kinds[CANCEL],
            "n_aggressive": kinds[AGGRESSIVE],
            "levels_after": gen.book.level_count(),
            "orders_after": len(gen.book.orders),
        }
    )
    return Workload(name, title, description, prefill, ops, gen.book.summary(), meta)


def add_only(sizes: Sizes, seed: int) -> Workload:
    """Resting limit adds into an empty book, spread uniformly over 2 x N levels around the mid."""
    gen = _Gen(seed, mid=15_000)
    ops = [gen.band_add(sizes.add_only_levels_per_side) for _ in range(sizes.add_only_ops)]
    return _finish(
        gen,
        "add_only",
        "add-only",
        f"{len(ops):,} resting limit adds into an empty book, uniform over "
        f"2 x {sizes.add_only_levels_per_side:,} price levels",
        [],
        ops,
        levels_before=0,
    )


def cancel_heavy(sizes: Sizes, seed: int) -> Workload:
    """A pre-filled book, then 80% cancels of random live orders and 20% resting adds."""
    gen = _Gen(seed, mid=15_000)
    prefill = [gen.band_add(sizes.cancel_levels_per_side) for _ in range(sizes.cancel_prefill)]
    levels_before = gen.book.level_count()
    ops: list[Op] = []
    for _ in range(sizes.cancel_ops):
        op = gen.cancel_random() if gen.rng.random() < 0.8 else None
        ops.append(op if op is not None else gen.band_add(sizes.cancel_levels_per_side))
    return _finish(
        gen,
        "cancel_heavy",
        "cancel-heavy",
        f"book pre-filled with {len(prefill):,} orders; then {len(ops):,} ops: 80% cancels of random "
        "live orders, 20% resting adds",
        prefill,
        ops,
        levels_before=levels_before,
    )


def _mix(gen: _Gen, n_ops: int, ioc: bool = False) -> list[Op]:
    return [gen.mix_op(ioc) for _ in range(n_ops)]


def mix(sizes: Sizes, seed: int) -> Workload:
    """The realistic mix on a moderately deep book."""
    gen = _Gen(seed, mid=15_000)
    prefill = [gen.band_add(sizes.mix_levels_per_side) for _ in range(sizes.mix_prefill)]
    levels_before = gen.book.level_count()
    ops = _mix(gen, sizes.mix_ops)
    return _finish(
        gen,
        "mix",
        "realistic mix",
        f"book pre-filled with {len(prefill):,} orders; then {len(ops):,} ops: ~60% resting adds near "
        "the top, ~30% cancels of random live orders, ~10% limit orders sweeping 1-5 levels",
        prefill,
        ops,
        levels_before=levels_before,
    )


def deep_sweeps(sizes: Sizes, seed: int) -> Workload:
    """Sweeps of 20-100 whole levels, each followed by adds that refill the swept levels."""
    gen = _Gen(seed, mid=15_000)
    rng = gen.rng
    n = sizes.deep_levels_per_side
    slots: list[tuple[str, int]] = []
    for i in range(1, n + 1):
        slots.extend([("buy", gen.mid - i)] * rng.randint(1, 3))
        slots.extend([("sell", gen.mid + i)] * rng.randint(1, 3))
    rng.shuffle(slots)
    prefill = [gen.rest(side, price) for side, price in slots]
    levels_before = gen.book.level_count()
    ops: list[Op] = []
    for _ in range(sizes.deep_rounds):
        sweep = gen.aggressive(20, 100, exact=True)
        if sweep is None:  # pragma: no cover - the book never empties thanks to the refills
            break
        ops.append(sweep)
        swept_side = _OPPOSITE[sweep[1]]
        for price in reversed(gen.last_swept):  # refill from the far level back to the touch
            for _ in range(rng.randint(1, 3)):
                ops.append(gen.rest(swept_side, price))
    return _finish(
        gen,
        "deep_sweeps",
        "deep sweeps",
        f"book of 2 x {n:,} levels (1-3 orders each); {sizes.deep_rounds} limit orders that each sweep "
        "20-100 whole levels, each followed by resting adds that refill the swept levels",
        prefill,
        ops,
        levels_before=levels_before,
    )


def scale(sizes: Sizes, seed: int, levels: int) -> Workload:
    """The realistic mix on a book that starts with ``levels`` price levels (one order each)."""
    mid = max(100_000, levels)
    gen = _Gen(seed, mid=mid)
    half = levels // 2
    slots = [("buy", mid - i) for i in range(1, half + 1)] + [("sell", mid + i) for i in range(1, half + 1)]
    gen.rng.shuffle(slots)  # a random insertion order: sorted insertion degrades unbalanced trees
    prefill = [gen.rest(side, price) for side, price in slots]
    levels_before = gen.book.level_count()
    ops = _mix(gen, sizes.scale_ops)
    return _finish(
        gen,
        f"scale_{levels}",
        f"mix @ {levels:,} levels",
        f"book pre-filled with {levels:,} price levels (one order each, inserted in random order); then "
        f"{len(ops):,} ops of the realistic mix",
        prefill,
        ops,
        levels_before=levels_before,
        scale_levels=levels,
    )


#: The user-convention mix with each kind of number input: workload name suffix and title.
USER_NUMBERS: Final = {"float": ("", "float"), "str": ("_str", "str"), "decimal": ("_decimal", "Decimal")}


def _user_meta(gen: _Gen, numbers: str) -> dict[str, Any]:
    """``convention`` plus ``ioc_filled`` (what each IOC order filled: for engines without IOC)."""
    return {"convention": {**USER_CONVENTION, "numbers": numbers}, "ioc_filled": dict(gen.ioc_filled)}


def user_mix(sizes: Sizes, seed: int, numbers: str) -> Workload:
    """The realistic mix called as the integration guide does, with ``numbers`` (float/str/decimal) inputs.

    The same ``seed`` gives the same order stream for every kind of number.
    """
    gen = _Gen(seed, mid=_USER_MID, max_qty=_USER_MAX_QTY, max_aggressive=_USER_MAX_AGGRESSIVE)
    prefill = [gen.band_add(sizes.mix_levels_per_side) for _ in range(sizes.mix_prefill)]
    levels_before = gen.book.level_count()
    ops = _mix(gen, sizes.mix_ops, ioc=True)
    suffix, label = USER_NUMBERS[numbers]
    return _finish(
        gen,
        f"user_mix{suffix}",
        f"user mix ({label})",
        f"the realistic mix as users call it: keyword arguments, {label} prices of two decimals around "
        f"10,000.00 and quantities of up to three decimals (0.001-2.000), a user_id and "
        f'time_in_force="GTC" on every order, aggressive orders (up to 5.000) as IOC limits at a '
        f"protection price 1-5 levels deep; book built with the defaults; {len(prefill):,} orders "
        f"pre-filled, then {len(ops):,} ops",
        prefill,
        ops,
        levels_before=levels_before,
        **_user_meta(gen, numbers),
    )


def user_deep_sweeps(sizes: Sizes, seed: int) -> Workload:
    """IOC limits that each make 100-400 fills, called as users do, each followed by refilling adds."""
    gen = _Gen(seed, mid=_USER_MID, max_qty=_USER_MAX_QTY, max_aggressive=_USER_MAX_AGGRESSIVE)
    rng = gen.rng
    n = sizes.deep_levels_per_side
    slots: list[tuple[str, int]] = []
    for i in range(1, n + 1):
        slots.extend([("buy", gen.mid - i)] * rng.randint(1, 3))
        slots.extend([("sell", gen.mid + i)] * rng.randint(1, 3))
    rng.shuffle(slots)
    prefill = [gen.rest(side, price) for side, price in slots]
    levels_before = gen.book.level_count()
    ops: list[Op] = []
    for _ in range(sizes.deep_rounds):
        sweep = gen.sweep_fills(100, 400)
        if sweep is None:  # pragma: no cover - the book never empties thanks to the refills
            break
        ops.append(sweep)
        swept_side = _OPPOSITE[sweep[1]]
        for price in reversed(gen.last_swept):
            for _ in range(rng.randint(1, 3)):
                ops.append(gen.rest(swept_side, price))
    return _finish(
        gen,
        "user_deep",
        "user deep sweeps",
        f"book of 2 x {n:,} levels (1-3 orders each), called as users do (float keyword arguments); "
        f"{sizes.deep_rounds} IOC limits that each make 100-400 fills (whole levels, exact quantity), "
        "each followed by resting adds that refill the swept levels",
        prefill,
        ops,
        levels_before=levels_before,
        **_user_meta(gen, "float"),
    )


def build_all(sizes: Sizes, seed: int = 20240601) -> list[Workload]:
    """Every workload of a run, in report order. Same ``sizes`` and ``seed`` give identical workloads."""
    return [
        *(user_mix(sizes, seed + 10, numbers) for numbers in USER_NUMBERS),
        user_deep_sweeps(sizes, seed + 11),
        add_only(sizes, seed + 1),
        cancel_heavy(sizes, seed + 2),
        mix(sizes, seed + 3),
        deep_sweeps(sizes, seed + 4),
        scale(sizes, seed + 5, sizes.scale_small_levels),
        scale(sizes, seed + 5, sizes.scale_large_levels),
    ]
