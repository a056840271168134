"""The integer units of the ledger (``manticore_risk.units``) against their Decimal definition.

Balances, holds, open quantities, limit prices and fees are kept as ``units x 10**-exp`` (ints); these
tests check the conversions and the arithmetic on them against plain Decimal arithmetic, and a random
stream of deposits (of any precision), crossing limit orders, cancels and withdrawals against a Decimal
model of every user's money computed from the book's own trade events.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_orderbook import EventType
from manticore_risk import COMPILED, InsufficientFunds
from manticore_risk import units as units_module
from manticore_risk.ledger import NEAR_MAX, Balance
from manticore_risk.units import add_units, from_units, parse_units, read_units, same_amount, to_units

from .support import EXACT, MARKETS, Exchange, margin_of, verify

D = Decimal

amounts = st.decimals(
    allow_nan=False, allow_infinity=False, min_value=-(10**12), max_value=10**12, places=None
)
exps = st.integers(0, 14)


def value(units: int, exp: int) -> Decimal:
    return EXACT.multiply(D(units), EXACT.power(D(10), -exp))


@given(amount=amounts, exp=exps)
def test_to_units_is_exact_and_never_narrows(amount: Decimal, exp: int) -> None:
    units, got = to_units(amount, exp)
    assert got >= exp
    assert value(units, got) == amount
    assert from_units(units, got) == amount


@given(amount=amounts, exp=exps)
def test_parse_units_reads_plain_decimal_strings_exactly(amount: Decimal, exp: int) -> None:
    text = format(amount, "f")
    units = parse_units(text, exp)
    places = max(0, -amount.as_tuple().exponent)  # type: ignore[operator]
    if places > exp:
        assert units is None
    else:
        assert units is not None and value(units, exp) == amount


@settings(max_examples=1000)
@given(text=st.text(alphabet="0123456789.-+_ eE\u0665\u00b2", max_size=12), exp=exps)
def test_parse_units_never_misreads_a_string(text: str, exp: int) -> None:
    """Any string: either None (the caller then uses Decimal) or exactly Decimal's reading of it."""
    units = parse_units(text, exp)
    if units is not None:
        assert value(units, exp) == D(text)


@settings(max_examples=1000)
@given(text=st.text(alphabet="0123456789.-+_ eE\u0665\u00b2", max_size=24), exp=exps)
def test_both_readings_of_parse_units_agree(text: str, exp: int) -> None:
    """parse_units reads with a character loop when compiled and with string methods (``_parse_long``)
    when interpreted or beyond 64 bits: both give the same answer for any string, and that answer is
    None or exactly Decimal's reading."""
    units = units_module._parse_long(text, exp)
    assert units == parse_units(text, exp)
    if units is not None:
        assert value(units, exp) == D(text)


@given(amount=amounts, exp=exps)
def test_the_string_method_reading_reads_plain_decimal_strings_exactly(amount: Decimal, exp: int) -> None:
    text = format(amount, "f")
    units = units_module._parse_long(text, exp)
    places = max(0, -amount.as_tuple().exponent)  # type: ignore[operator]
    assert units == (None if places > exp else units_module.parse_units(text, exp))
    if units is not None:
        assert value(units, exp) == amount


@settings(max_examples=1000)
@given(text=st.text(alphabet="0123456789.-+_ eE\u0665\u00b2", max_size=24), exp=exps)
def test_read_units_is_parse_units_as_a_pair(text: str, exp: int) -> None:
    """read_units (the hot paths' reading, a native pair when compiled) answers ``(units, True)`` exactly
    where parse_units answers ``units``, and ``(0, False)`` where it answers None: any string, both
    readings (the character loop up to 18 characters, the string methods beyond and when interpreted)."""
    units = parse_units(text, exp)
    assert read_units(text, exp) == ((0, False) if units is None else (units, True))


def test_read_units_reads_what_the_book_prints() -> None:
    """The book's exact strings: prices, quantities, fees (negative: a maker rebate), scaled to the units;
    what parse_units refuses is refused."""
    assert read_units("10000.25", 2) == (1_000_025, True)
    assert read_units("0.12345", 5) == (12_345, True)
    assert read_units("-0.0500000000", 10) == (-500_000_000, True)
    assert read_units("7", 3) == (7_000, True)
    assert read_units("0.001", 10) == (10_000_000, True)
    assert read_units("1" * 20, 2) == (int("1" * 20) * 100, True)  # beyond 64 bits: the string methods
    for text in ("1.234", "1e3", "", "-", "1.", ".5", "+1", "1_0", " 1", "\u0665"):
        assert read_units(text, 2) == (0, False), text


def test_the_units_module_knows_whether_it_is_compiled() -> None:
    """parse_units chooses its reading by ``_NATIVE``: it must be the package's COMPILED."""
    assert units_module._NATIVE is COMPILED


@given(a=st.integers(-(10**20), 10**20), ea=exps, b=st.integers(-(10**20), 10**20), eb=exps)
def test_add_units_and_same_amount_match_decimal(a: int, ea: int, b: int, eb: int) -> None:
    units, exp = add_units(a, ea, b, eb)
    assert exp == max(ea, eb)
    assert value(units, exp) == EXACT.add(value(a, ea), value(b, eb))
    assert same_amount(a, ea, b, eb) == (value(a, ea) == value(b, eb))


@given(steps=st.lists(st.tuples(st.booleans(), amounts), max_size=12))
def test_a_balance_reads_back_every_amount_it_was_given(steps: list[tuple[bool, Decimal]]) -> None:
    """Setting a finer amount widens the balance's unit; no earlier amount changes."""
    balance = Balance()
    available = held = D(0)
    for is_available, amount in steps:
        if is_available:
            balance.available = available = amount
        else:
            balance.held = held = amount
        assert balance.available == available and balance.held == held
    exp = balance.exp
    assert balance.scale(exp) == 1 and balance.exp == exp
    if exp:
        assert balance.scale(exp - 1) == 10 and balance.exp == exp  # finer already: scaled, not narrowed
    assert balance.scale(exp + 2) == 1 and balance.exp == exp + 2  # coarser: widened
    assert balance.available == available and balance.held == held


# ---------------------------------------------------------------------- the whole manager vs a Decimal model


class Model:
    """Every user's total (available + held) per asset, from deposits, withdrawals and the book's trade
    events alone, in Decimal."""

    def __init__(self, exchange: Exchange) -> None:
        self.totals: dict[tuple[str, str], Decimal] = {}
        self.fees: dict[str, Decimal] = {}
        for symbol, book in exchange.books.items():
            base, quote = MARKETS[symbol][:2]

            def on_trade(_type: object, data: dict[str, Any], base: str = base, quote: str = quote) -> None:
                self.trade(base, quote, data)

            book.event_manager.subscribe(EventType.TRADE_EXECUTED, on_trade)

    def move(self, user: str, asset: str, amount: Decimal) -> None:
        key = (user, asset)
        self.totals[key] = EXACT.add(self.totals.get(key, D(0)), amount)

    def trade(self, base: str, quote: str, data: dict[str, Any]) -> None:
        price, quantity = D(data["price"]), D(data["quantity"])
        maker_fee, taker_fee = D(data["maker_fee"]), D(data["taker_fee"])
        notional = EXACT.multiply(price, quantity)
        buyer_is_maker = data["buy_order_id"] == data["maker_order_id"]
        buyer = data["maker_user_id"] if buyer_is_maker else data["taker_user_id"]
        seller = data["taker_user_id"] if buyer_is_maker else data["maker_user_id"]
        buyer_fee, seller_fee = (maker_fee, taker_fee) if buyer_is_maker else (taker_fee, maker_fee)
        self.move(buyer, quote, -EXACT.add(notional, buyer_fee))
        self.move(buyer, base, quantity)
        self.move(seller, base, -quantity)
        self.move(seller, quote, EXACT.subtract(notional, seller_fee))
        self.fees[quote] = EXACT.add(self.fees.get(quote, D(0)), EXACT.add(maker_fee, taker_fee))


order = st.tuples(
    st.just("order"),
    st.sampled_from(("u1", "u2", "u3")),
    st.sampled_from(tuple(MARKETS)),
    st.booleans(),
    st.integers(180, 220),  # price in ticks of 0.5
    st.integers(1, 40),  # quantity in lots of 0.1
)
command = st.one_of(
    order,
    order,
    order,
    st.tuples(
        st.just("deposit"),
        st.sampled_from(("u1", "u2", "u3")),
        st.sampled_from(("USD", "BTC", "ETH")),
        st.one_of(
            st.integers(1, 10**6).map(D),
            st.decimals(min_value=D("0.000000000001"), max_value=10**6, places=12),
        ),
    ),
    st.tuples(
        st.just("withdraw"),
        st.sampled_from(("u1", "u2", "u3")),
        st.sampled_from(("USD", "BTC", "ETH")),
        st.decimals(min_value=D("0.001"), max_value=10**3, places=3),
    ),
    st.tuples(st.just("cancel"), st.integers(0, 10**6)),
)


#: A first deposit per user and asset: whole units, a fraction's digits and its decimal places (up to 12:
#: finer than any market's units, so that balances widen).
first = st.tuples(
    st.integers(10**3, 10**6), st.one_of(st.just(0), st.integers(0, 10**12)), st.integers(0, 12)
)


@settings(max_examples=40, deadline=None)
@given(firsts=st.lists(first, min_size=9, max_size=9), commands=st.lists(command, min_size=20, max_size=60))
def test_balances_match_a_decimal_model_after_every_step(
    firsts: list[tuple[int, int, int]], commands: list[tuple[Any, ...]]
) -> None:
    """Deposits of up to 12 places (finer than the markets' units: balances widen, trades then take the
    general settlement), crossing limit orders on the fast paths, cancels, withdrawals: after every step
    each user's available + held equals the Decimal model, held equals the holds of the live orders,
    the fees equal the model's, and money is conserved (``verify``)."""
    ex = Exchange()
    model = Model(ex)
    placed: list[str] = []
    users_assets = [(u, a) for u in ("u1", "u2", "u3") for a in ("USD", "BTC", "ETH")]
    firsts_ = [
        ("deposit", u, a, EXACT.add(whole, value(fraction, places)))
        for (u, a), (whole, fraction, places) in zip(users_assets, firsts, strict=True)
    ]
    for n, cmd in enumerate([*firsts_, *commands]):
        if cmd[0] == "deposit":
            _, user, asset, amount = cmd
            ex.deposit(user, asset, amount)
            model.move(user, asset, amount)
        elif cmd[0] == "withdraw":
            _, user, asset, amount = cmd
            try:
                ex.withdraw(user, asset, amount)
            except InsufficientFunds:
                continue
            model.move(user, asset, -amount)
        elif cmd[0] == "order":
            _, user, symbol, is_buy, ticks, lots = cmd
            order_id = f"o{n}"
            price, quantity = D(ticks) / 2, D(lots) / 10
            decision = ex.risk.check_and_reserve(
                order_id,
                user_id=user,
                symbol=symbol,
                side="buy" if is_buy else "sell",
                order_type="limit",
                price=price,
                quantity=quantity,
                now=ex.clock.now,
            )
            if decision["approved"]:
                ex.books[symbol].add_order(
                    "buy" if is_buy else "sell", str(price), str(quantity), order_id=order_id, user_id=user
                )
                placed.append(order_id)
        elif placed:
            order_id = placed[cmd[1] % len(placed)]
            for book in ex.books.values():
                if order_id in book:
                    book.cancel_order(order_id)
        verify(ex)
        for (user, asset), total in model.totals.items():
            amounts_ = ex.risk.balances(user).get(asset, {"available": "0", "held": "0"})
            got = EXACT.add(D(amounts_["available"]), D(amounts_["held"]))
            assert got == total, (n, user, asset, got, total)
        fees = ex.risk.fees_collected()
        for asset, fee in model.fees.items():
            assert fees.get(asset, D(0)) == fee, (asset, fees, model.fees)
        for order in ex.risk.orders():
            book = ex.books[order["symbol"]]
            if order["side"] == "buy":
                need = EXACT.multiply(
                    EXACT.multiply(D(order["price"]), D(order["open_quantity"])), margin_of(book)
                )
            else:
                need = D(order["open_quantity"])
            assert D(order["hold"]) == need, order


def test_parse_units_refuses_what_is_not_a_plain_decimal() -> None:
    """The native digit loop (and its long-string fallback) reads ``-``, ASCII digits and one point
    between digits, and nothing else: the caller then takes the Decimal path."""
    for text in (
        "",
        "-",
        ".",
        "5.",
        ".5",
        "-.5",
        "--5",
        "+5",
        " 5",
        "5 ",
        "1_0",
        "1e3",
        "1E+3",
        "5-",
        "1.2.3",
        "\u0665",
        "1\u00b2",
        "NaN",
        "-Infinity",
        "1" * 19 + ".",
        "1" * 19 + "x",
        "-" + "1" * 25 + ".5.5",
    ):
        assert parse_units(text, 6) is None, text


def test_parse_units_reads_short_and_long_strings_exactly() -> None:
    """Both sides of the 64-bit limit of the digit loop (18 characters), negative and zero included."""
    cases = {
        "0": 0,
        "-0": 0,
        "007.50": 7_500_000,
        "-0.001": -1_000,
        "999999999999999999": 999999999999999999 * 10**6,
        "99999999999.999999": 99999999999999999,
        "9" * 19: int("9" * 19) * 10**6,
        "-" + "9" * 30 + ".123456": -int("9" * 30 + "123456"),
        "1" * 13 + ".12": int("1" * 13 + "12") * 10**4,
    }
    for text, units in cases.items():
        assert parse_units(text, 6) == units, text
        assert value(units, 6) == D(text)
    assert parse_units("1.1234567", 6) is None  # more places than the units
    assert parse_units("1" * 20 + ".1234567", 6) is None


#: Amounts of units around the edges of a balance's two parts (``Balance.near``'s range, mypyc's
#: machine integers at 2**62, 64-bit integers) and far beyond them.
_EDGES = [0, 1, NEAR_MAX - 1, NEAR_MAX, NEAR_MAX + 1, 2 * NEAR_MAX, 2**62 - 1, 2**62, 2**63, 10**19, 10**30]
edge_units = st.one_of(
    st.sampled_from(_EDGES + [-e for e in _EDGES]),
    st.integers(-(2**64), 2**64),
    st.integers(-(10**6), 10**6),
    st.builds(lambda e, d: e + d, st.sampled_from(_EDGES + [-e for e in _EDGES]), st.integers(-1000, 1000)),
)


@settings(max_examples=400)
@given(
    start=edge_units,
    steps=st.lists(
        st.tuples(st.sampled_from(("add", "take", "covers", "set", "widen", "held")), edge_units),
        max_size=30,
    ),
)
def test_a_balances_two_parts_move_as_one_integer(start: int, steps: list[tuple[str, int]]) -> None:
    """``avail == far + near`` after every move, ``near`` within its range, ``floor`` never above
    ``far``; the hot paths' ``covers`` answers ``units <= avail`` exactly, and the Decimal amount is
    the integer's, whatever the size (a plain int model)."""
    balance = Balance()
    balance.avail = model = start
    for op, units in steps:
        if op == "add":
            balance.add_available(units)
            model += units
        elif op == "take":
            balance.take_available(units)
            model -= units
        elif op == "covers":
            assert balance.covers(units) is (units <= model)
        elif op == "set":
            balance.avail = model = units
        elif op == "widen":
            places = units % 3
            balance.widen(balance.exp + places)
            model *= 10**places
        else:
            balance.held = from_units(abs(units), balance.exp)  # held is separate: avail unchanged
        assert balance.avail == model
        assert -NEAR_MAX <= balance.near <= NEAR_MAX
        assert balance.floor <= balance.far and balance.floor <= NEAR_MAX
        assert balance.far or balance.floor == 0
        assert balance.available == from_units(model, balance.exp)
