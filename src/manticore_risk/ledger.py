"""The ledger: per user and asset an available and a held amount, plus the fees collected.

Every method moves money between places without creating or destroying any, except ``deposit`` and
``withdraw``, which also count the net amount brought in (``net_deposits``). Hence for every asset,
always and exactly: ``sum(available + held over users) + fees == net_deposits``.

Amounts are exact Decimals (see :mod:`.amounts`). The ledger does not check policy; callers check that
an amount is available before they ``hold`` it. Methods never raise for missing entries: a user or
asset is created on first use.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Final

from manticore_orderbook.model import no_mypyc_attr

from .amounts import ZERO, add, sub
from .errors import InsufficientFunds
from .units import add_units, from_units, pow10, to_units

if TYPE_CHECKING:  # what mypyc reads when it compiles (mypy_extensions is not needed at run time)
    from mypy_extensions import mypyc_attr

__all__ = ["NEAR_MAX", "NEAR_MIN", "Balance", "Ledger", "UserId"]

UserId = str | int

# Bound at run time without a branch on TYPE_CHECKING: mypyc compiles an ``else`` of that test as
# unreachable code (which raises when reached).
globals().setdefault("mypyc_attr", no_mypyc_attr)


#: The hot paths keep :attr:`Balance.near` within ``[-NEAR_MAX, NEAR_MAX]``, so that adding a hold or a
#: payment (each below ``NEAR_MAX`` in this market's units) to it, or its :attr:`Balance.floor`, stays a
#: machine integer of the compiled build (mypyc's ints are native while below 2**62 in magnitude;
#: beyond, Python ints: as exact, but each operation allocates an int object).
NEAR_MAX: Final = 2**60
#: ``-NEAR_MAX`` (a constant: interpreted, ``-NEAR_MAX`` would make an int object per test).
NEAR_MIN: Final = -(2**60)


# acyclic: its fields are ints, so no instance can be part of a reference cycle; the compiled class is
# then not tracked by the cyclic GC (no GC header, no traversal in each collection).
@mypyc_attr(acyclic=True)
class Balance:
    """One user's amounts of one asset: ``available`` (free to use) and ``held`` (reserved for orders).

    Kept as integer units (:mod:`.units`): ``avail`` and ``held_units`` count ``10**-exp`` of the asset;
    the Decimal properties convert (and widen ``exp`` when given a finer amount).

    The available amount is kept in two parts, ``avail == far + near``, so that a large balance (beyond
    ``NEAR_MAX`` units: 10**9 USD in a market counting 10**-10 USD) still moves by machine integers:
    ``near`` is what orders and trades change (:meth:`add_available`, :meth:`take_available`, kept
    within ``[-NEAR_MAX, NEAR_MAX]``); ``far`` is 0 unless the amount is beyond that range, and then
    holds its bulk, changing only when ``near`` would leave its range (it is then folded in).
    ``floor`` is ``min(far, NEAR_MAX)``: no larger than ``far`` and, unless ``far`` is a debt beyond
    ``-NEAR_MAX``, a machine integer, for :meth:`covers`' first test. Setting ``avail`` puts an amount
    within the range in ``near`` (``far`` 0) and any other in ``far`` (``near`` 0)."""

    __slots__ = ("exp", "far", "floor", "held_units", "near")

    def __init__(self, available: Decimal = ZERO, held: Decimal = ZERO) -> None:
        self.far = 0
        self.near = 0
        self.floor = 0
        self.held_units = 0
        self.exp = 0
        self.available = available
        self.held = held

    @property
    def avail(self) -> int:
        """The available amount in units of ``10**-exp`` (``far + near``)."""
        far = self.far
        return self.near if not far else far + self.near

    @avail.setter
    def avail(self, units: int) -> None:
        if NEAR_MIN <= units <= NEAR_MAX:
            self.far = 0
            self.near = units
            self.floor = 0
        else:
            self.far = units
            self.near = 0
            self.floor = units if units < NEAR_MAX else NEAR_MAX

    def add_available(self, units: int) -> None:
        """Add ``units`` (in this balance's units; negative: take) to the available amount."""
        near = self.near + units
        if NEAR_MIN <= near <= NEAR_MAX:
            self.near = near
        else:
            self.avail = self.far + near

    def take_available(self, units: int) -> None:
        """Take ``units`` (in this balance's units) from the available amount (the caller checked
        :meth:`covers`)."""
        near = self.near - units
        if NEAR_MIN <= near <= NEAR_MAX:
            self.near = near
        else:
            self.avail = self.far + near

    def covers(self, units: int) -> bool:
        """Whether ``units`` (in this balance's units) is at most the available amount: tested against
        ``near + floor`` first (machine integers; ``floor <= far``, so a yes is exact), then exactly
        against ``near + far``."""
        near = self.near
        return units <= near + self.floor or units <= near + self.far

    @property
    def available(self) -> Decimal:
        return from_units(self.avail, self.exp)

    @available.setter
    def available(self, value: Decimal) -> None:
        units, exp = to_units(value, self.exp)
        self.widen(exp)
        self.avail = units

    @property
    def held(self) -> Decimal:
        return from_units(self.held_units, self.exp)

    @held.setter
    def held(self, value: Decimal) -> None:
        units, exp = to_units(value, self.exp)
        self.widen(exp)
        self.held_units = units

    def widen(self, exp: int) -> None:
        """Count in ``10**-exp`` from now on (no-op unless ``exp`` is finer); no value changes."""
        if exp > self.exp:
            factor = pow10(exp - self.exp)
            self.avail *= factor
            self.held_units *= factor
            self.exp = exp

    def scale(self, exp: int) -> int:
        """The factor that turns an amount in ``10**-exp`` into this balance's units (1 when they are the
        same); a balance that counts coarser is widened to ``exp`` first (no value changes)."""
        if self.exp <= exp:
            if self.exp < exp:
                self.widen(exp)
            return 1
        return pow10(self.exp - exp)


class Ledger:
    """Balances by user then asset (insertion order), fees by asset, net deposits by asset."""

    __slots__ = ("_accounts", "fee_pools", "net_deposits")

    def __init__(self) -> None:
        self._accounts: dict[UserId, dict[str, Balance]] = {}
        #: Fees collected per asset, each in the ``available`` of a :class:`Balance` (its ``held`` is 0).
        self.fee_pools: dict[str, Balance] = {}
        self.net_deposits: dict[str, Decimal] = {}

    def replace_with(self, other: Ledger) -> None:
        """Take over ``other``'s contents (used to restore a state atomically). The tables stay the
        same objects (their contents are replaced), so a reference to :meth:`accounts` or :attr:`fee_pools`
        taken before stays valid."""
        self._accounts.clear()
        self._accounts.update(other._accounts)
        self.fee_pools.clear()
        self.fee_pools.update(other.fee_pools)
        self.net_deposits.clear()
        self.net_deposits.update(other.net_deposits)

    # ------------------------------------------------------------------ queries

    @property
    def fees(self) -> dict[str, Decimal]:
        """Fees collected so far per asset (a new dict)."""
        return {asset: pool.available for asset, pool in self.fee_pools.items()}

    def fee_pool(self, asset: str) -> Balance:
        """The pool of the fees collected in ``asset``, created (zero) if missing."""
        pool = self.fee_pools.get(asset)
        if pool is None:
            pool = self.fee_pools[asset] = Balance()
        return pool

    def accounts(self) -> dict[UserId, dict[str, Balance]]:
        """The live account table (read-only by convention)."""
        return self._accounts

    def balance(self, user_id: UserId, asset: str) -> Balance:
        """The user's balance of ``asset``, created (zero) if missing."""
        assets = self._accounts.get(user_id)
        if assets is None:
            assets = self._accounts[user_id] = {}
        balance = assets.get(asset)
        if balance is None:
            balance = assets[asset] = Balance()
        return balance

    def available(self, user_id: UserId, asset: str) -> Decimal:
        """The user's available amount of ``asset`` (0 if none); creates nothing."""
        balance = self._accounts.get(user_id, {}).get(asset)
        return ZERO if balance is None else balance.available

    def total(self, asset: str) -> Decimal:
        """Sum over users of available + held of ``asset``, plus the fees collected in it."""
        pool = self.fee_pools.get(asset)
        units, exp = (0, 0) if pool is None else (pool.avail, pool.exp)
        for assets in self._accounts.values():
            balance = assets.get(asset)
            if balance is not None:
                units, exp = add_units(units, exp, balance.avail + balance.held_units, balance.exp)
        return from_units(units, exp)

    def assets(self) -> list[str]:
        """Every asset the ledger has seen, in first-seen order."""
        seen: dict[str, None] = dict.fromkeys(self.net_deposits)
        for assets in self._accounts.values():
            seen.update(dict.fromkeys(assets))
        seen.update(dict.fromkeys(self.fee_pools))
        return list(seen)

    # ------------------------------------------------------------------ money in and out

    def deposit(self, user_id: UserId, asset: str, amount: Decimal) -> None:
        """Bring ``amount`` (> 0, checked by the caller) into the user's available balance."""
        balance = self.balance(user_id, asset)
        balance.available = add(balance.available, amount)
        self.net_deposits[asset] = add(self.net_deposits.get(asset, ZERO), amount)

    def withdraw(self, user_id: UserId, asset: str, amount: Decimal) -> None:
        """Take ``amount`` out of the user's available balance; ``InsufficientFunds`` (nothing changed)
        when less is available."""
        have = self.available(user_id, asset)
        if have < amount:
            raise InsufficientFunds(
                f"user {user_id!r} has {have} {asset} available, cannot withdraw {amount}"
            )
        balance = self.balance(user_id, asset)
        balance.available = sub(balance.available, amount)
        self.net_deposits[asset] = sub(self.net_deposits.get(asset, ZERO), amount)

    def external(self, asset: str, amount: Decimal) -> None:
        """Count ``amount`` of ``asset`` (negative: going out) that crossed the ledger's edge without a
        deposit or withdrawal: the side of a trade whose order has no user (it bypassed the risk
        manager). Like a deposit it moves ``net_deposits``, so conservation still holds exactly."""
        self.net_deposits[asset] = add(self.net_deposits.get(asset, ZERO), amount)

    # ------------------------------------------------------------------ moves inside the ledger

    def hold(self, user_id: UserId, asset: str, amount: Decimal) -> None:
        """Move ``amount`` from available to held (the caller made sure it is available)."""
        balance = self.balance(user_id, asset)
        balance.available = sub(balance.available, amount)
        balance.held = add(balance.held, amount)

    def release(self, user_id: UserId, asset: str, amount: Decimal) -> None:
        """Move ``amount`` from held back to available."""
        balance = self.balance(user_id, asset)
        balance.held = sub(balance.held, amount)
        balance.available = add(balance.available, amount)

    def spend_held(self, user_id: UserId, asset: str, amount: Decimal) -> None:
        """Remove ``amount`` from the user's held balance (it goes to a counterparty or the fees)."""
        balance = self.balance(user_id, asset)
        balance.held = sub(balance.held, amount)

    def spend_available(self, user_id: UserId, asset: str, amount: Decimal) -> None:
        """Remove ``amount`` from the user's available balance (settlement without a hold)."""
        balance = self.balance(user_id, asset)
        balance.available = sub(balance.available, amount)

    def credit(self, user_id: UserId, asset: str, amount: Decimal) -> None:
        """Add ``amount`` to the user's available balance (received from a counterparty)."""
        balance = self.balance(user_id, asset)
        balance.available = add(balance.available, amount)

    def collect_fee(self, asset: str, amount: Decimal) -> None:
        """Add ``amount`` (may be negative: a rebate paid out) to the fees collected in ``asset``."""
        pool = self.fee_pool(asset)
        pool.available = add(pool.available, amount)
