"""The fast paths decide, hold and settle exactly as the general paths do.

``check_and_reserve`` approves and holds a plain limit order without the general parsing, and ``on_event``
settles a trade between two tracked limit orders without the general settlement; everything else goes to
the general paths. A random stream (every order type, cancels, modifies, expiries, clears) runs twice:
once through ``check_order`` + ``reserve`` with the trade fast path switched off, once through
``check_and_reserve`` with it on. Decisions, the exported state and every invariant must agree after each
command.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_orderbook import EventType, InvalidOrderError, OrderBook, TimeInForce
from manticore_orderbook.enums import Side
from manticore_risk import Decision, RiskLimits, RiskManager
from manticore_risk.ledger import NEAR_MAX
from manticore_risk.units import from_units

from .support import MARKETS, START, Clock, Exchange, new_book, verify
from .test_properties import LIMITS, SYMBOLS, Run, make_stream

D = Decimal


def general_handler(risk: RiskManager) -> Callable[[object, dict[str, Any]], None]:
    """``risk.on_event`` with every trade settled by the general settlement (no trade fast path). A
    handler rather than a subclass: the mypyc build's ``RiskManager`` cannot be subclassed."""
    settle = risk._settlement.on_event
    on_event = risk.on_event
    trade = EventType.TRADE_EXECUTED

    def handler(event_type: object, data: dict[str, Any]) -> None:
        if event_type is trade:
            settle(event_type, data)
        else:
            on_event(event_type, data)

    return handler


@dataclass
class GeneralExchange(Exchange):
    """The test pipeline (``check_order`` then ``reserve``) on a manager without the trade fast path."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.risk = RiskManager(limits=self.limits)
        self.handler = general_handler(self.risk)
        for symbol, book in self.books.items():
            manager = book.event_manager
            manager.unsubscribe_all(manager.handlers[0][0])  # the first manager's on_event
            base, quote = MARKETS[symbol][:2]
            self.risk.register_market(symbol=symbol, base_asset=base, quote_asset=quote, book=book)
            manager.subscribe_all(self.handler)


@dataclass
class FastExchange(Exchange):
    """The exchange's pipeline: ``check_and_reserve``, then the book (``release_unplaced`` if it refuses)."""

    def place(
        self,
        order_id: str,
        symbol: str,
        user: str,
        side: str,
        order_type: str,
        price: Any,
        quantity: Any,
        **kw: Any,
    ) -> Decision:
        risk_kw = {k: kw[k] for k in ("stop_price", "time_in_force", "self_trade_prevention") if k in kw}
        decision = self.risk.check_and_reserve(
            order_id,
            user_id=user,
            symbol=symbol,
            side=side,
            order_type=order_type,
            price=price,
            quantity=quantity,
            now=kw.get("now", self.clock.now),
            **risk_kw,
        )
        if not decision["approved"]:
            return decision
        book_kw = {k: v for k, v in kw.items() if k != "now"}
        try:
            self.books[symbol].add_order(
                side,
                None if price is None else str(price),
                str(quantity),
                order_id=order_id,
                user_id=user,
                order_type=order_type,
                **{k: (str(v) if isinstance(v, Decimal) else v) for k, v in book_kw.items()},
            )
        except InvalidOrderError:
            assert self.risk.release_unplaced(order_id)
        return decision


def test_the_general_exchange_really_has_no_trade_fast_path() -> None:
    """The comparison below means something only if the two exchanges differ where claimed."""
    ex = GeneralExchange()
    for symbol in SYMBOLS:
        handlers = ex.books[symbol].event_manager.handlers
        assert all(h == (ex.handler,) for h in handlers[:-1])  # ERROR (last) also has the test's
    ex.deposit("u1", "USD", "1000")
    ex.deposit("u2", "BTC", "10")
    assert ex.place("s", "BTC/USD", "u2", "sell", "limit", D("100"), D("1"))["approved"]
    assert ex.place("b", "BTC/USD", "u1", "buy", "limit", D("100"), D("1"))["approved"]
    assert ex.risk.fees_collected() == {"USD": D("0.3")}  # settled, by the general path
    verify(ex)


@settings(max_examples=120, deadline=None)
def _agree_on_stream(fast: Run, general: Run, seed: int, length: int) -> None:
    """Run the same random stream through both exchanges: the same answers, valid state after every
    step, the same risk state and balances."""
    for n, command in enumerate(make_stream(seed, length)):
        assert fast.step(n, command) == general.step(n, command)
        verify(fast.ex)
        verify(general.ex)
        assert fast.ex.risk.export_state() == general.ex.risk.export_state()
        for user in ("u1", "u2", "u3"):
            assert fast.ex.risk.balances(user) == general.ex.risk.balances(user)


@given(seed=st.integers(0, 2**32), length=st.integers(1, 150))
def test_fast_and_general_paths_agree_on_random_streams(seed: int, length: int) -> None:
    general = Run(GeneralExchange(limits=LIMITS))
    fast = Run(FastExchange(limits=LIMITS))
    _agree_on_stream(fast, general, seed, length)


def _short_of_funds() -> FastExchange:
    """An exchange where u1 holds 100 USD and u2 1 BTC (enough for 0.1 BTC at 100, not for 1)."""
    ex = FastExchange(limits=LIMITS)
    ex.deposit("u1", "USD", "100")
    ex.deposit("u2", "BTC", "1")
    return ex


def _funded_u1() -> FastExchange:
    """An exchange where u1 holds 1,000 USD and 10 BTC."""
    ex = FastExchange(limits=LIMITS)
    ex.deposit("u1", "USD", "1000")
    ex.deposit("u1", "BTC", "10")
    return ex


def test_fast_path_rejections_are_the_general_paths() -> None:
    """Every way a plain limit order can fail gives the general path's code and changes nothing."""
    ex = _short_of_funds()
    before = ex.risk.export_state()
    cases = [
        (("BTC/USD", "u1", "buy", "limit", D("100.25"), D("0.1")), "invalid"),  # off the tick grid
        (("BTC/USD", "u1", "buy", "limit", D("100"), D("0.05")), "invalid"),  # off the lot grid
        (("BTC/USD", "u1", "buy", "limit", D("-100"), D("1")), "invalid"),
        (("BTC/USD", "u1", "buy", "limit", D("NaN"), D("1")), "invalid"),
        (("BTC/USD", "u1", "buy", "limit", D("100"), D("Infinity")), "invalid"),
        (("BTC/USD", "u1", "buy", "limit", D("100"), D("20")), "max_notional"),
        (("BTC/USD", "u1", "buy", "limit", D("100"), D("1")), "insufficient_balance"),
        (("BTC/USD", "u2", "sell", "limit", D("100"), D("2")), "insufficient_balance"),
        (("XXX/USD", "u1", "buy", "limit", D("100"), D("0.1")), "unknown_market"),
        (("BTC/USD", "u3", "buy", "limit", D("100"), D("0.1")), "insufficient_balance"),
    ]
    for args, code in cases:
        decision = ex.place("o", *args)
        assert decision["code"] == code, (args, decision)
        assert ex.risk.export_state() == before
    assert ex.place("o", "BTC/USD", "u1", "buy", "limit", D("100"), D("0.1"))["approved"]
    verify(ex)


def test_a_price_band_rejection_on_the_fast_path_names_the_reference() -> None:
    ex = FastExchange(limits=LIMITS)
    for user in ("u1", "u2"):
        ex.deposit(user, "USD", "10000")
        ex.deposit(user, "BTC", "10")
    assert ex.place("s", "BTC/USD", "u2", "sell", "limit", D("100"), D("1"))["approved"]
    assert ex.place("b", "BTC/USD", "u1", "buy", "limit", D("100"), D("1"))["approved"]
    inside = ex.place("in", "BTC/USD", "u1", "buy", "limit", D("94"), D("1"))
    assert inside["approved"], inside  # 6% band around the last trade 100: 94 is its edge
    outside = ex.place("out", "BTC/USD", "u1", "buy", "limit", D("93.5"), D("1"))
    assert outside["code"] == "price_band" and "reference price 100" in outside["reason"]
    verify(ex)


def test_event_types_risk_ignores_change_nothing() -> None:
    ex = FastExchange()
    ex.deposit("u1", "USD", "1000")
    before = ex.risk.export_state()
    for event_type in (EventType.ORDER_FILLED, EventType.PRICE_LEVEL_CHANGED):
        ex.risk.on_event(event_type, {"symbol": "BTC/USD", "sequence": 10**9})
    assert ex.risk.export_state() == before
    assert ex.place("o", "BTC/USD", "u1", "buy", "limit", D("100"), D("1"))["approved"]  # seq not moved
    verify(ex)


def test_event_types_are_the_ones_settlement_handles() -> None:
    """RiskManager.EVENT_TYPES (what a caller may subscribe to instead of everything) is exactly the
    set of types on_event acts on; a subscription to them only settles like subscribe_all."""
    risk = RiskManager()
    assert set(RiskManager.EVENT_TYPES) == set(risk._settlement._handlers)
    assert len(RiskManager.EVENT_TYPES) == len(set(RiskManager.EVENT_TYPES))


def test_subscribing_to_event_types_only_settles_like_subscribe_all() -> None:
    runs = []
    for only_needed in (False, True):
        ex = FastExchange(limits=LIMITS)
        if only_needed:
            for book in ex.books.values():
                manager = book.event_manager
                manager.unsubscribe_all(ex.risk.on_event)
                for event_type in RiskManager.EVENT_TYPES:
                    manager.subscribe(event_type, ex.risk.on_event)
        run = Run(ex)
        for n, command in enumerate(make_stream(7, 120)):
            run.step(n, command)
            verify(ex)
        runs.append(ex.risk.export_state())
    assert runs[0] == runs[1]


def test_every_spelling_of_a_decimal_holds_the_same() -> None:
    """The fast path reads ``str`` of the Decimals (exponents and extra zeros go to the exact division):
    each spelling of the same price and quantity is approved with the same hold as the plain one, and
    a price it reads but off the tick grid (100.3 on a 0.5 grid) is the general path's rejection."""
    plain = (D("100"), D("0.2"))
    spellings = [(D("1E+2"), D("2E-1")), (D("100.000"), D("0.20")), (D("1.000E+2"), D("0.2000000"))]
    for is_buy in (True, False):
        side = "buy" if is_buy else "sell"
        states = []
        for price, quantity in [plain, *spellings]:
            ex = _funded_u1()
            decision = ex.place("o", "BTC/USD", "u1", side, "limit", price, quantity)
            assert decision["approved"], (price, quantity, decision)
            verify(ex)
            states.append(ex.risk.export_state())
        assert all(state == states[0] for state in states), side
        ex = _funded_u1()
        before = ex.risk.export_state()
        assert ex.place("o", "BTC/USD", "u1", side, "limit", D("100.3"), D("0.2"))["code"] == "invalid"
        assert ex.risk.export_state() == before


def test_strings_decide_and_hold_as_their_decimals() -> None:
    """The exchange passes its record's decimal strings: the fast path reads plain ones in units, the
    general path every other spelling; either way the decision and the hold are the Decimal's. Every
    rejection of the Decimal test above, given as strings, is the same rejection and changes nothing."""
    for is_buy in (True, False):
        side = "buy" if is_buy else "sell"
        states = []
        for price, quantity in [(D("100"), D("0.2")), ("100", "0.2"), ("100.00", "0.20"), ("1E+2", " 0.2 ")]:
            ex = _funded_u1()
            decision = ex.risk.check_and_reserve(
                "o",
                user_id="u1",
                symbol="BTC/USD",
                side=side,
                order_type="limit",
                price=price,
                quantity=quantity,
                now=ex.clock.now,
            )
            assert decision["approved"], (price, quantity, decision)
            states.append(ex.risk.export_state())
        assert all(state == states[0] for state in states), side
    ex = _short_of_funds()
    before = ex.risk.export_state()
    cases = [
        (("u1", "buy", "100.25", "0.1"), "invalid"),
        (("u1", "buy", "100.3", "0.1"), "invalid"),  # read in units, off the 0.5 tick grid
        (("u1", "buy", "100", "0.05"), "invalid"),
        (("u1", "buy", "-100", "1"), "invalid"),
        (("u1", "buy", "NaN", "1"), "invalid"),
        (("u1", "buy", "100", "Infinity"), "invalid"),
        (("u1", "buy", "100", "20"), "max_notional"),
        (("u1", "buy", "100", "1"), "insufficient_balance"),
        (("u2", "sell", "100", "2"), "insufficient_balance"),
    ]
    for (user, side, price, quantity), code in cases:
        decision = ex.risk.check_and_reserve(
            "o",
            user_id=user,
            symbol="BTC/USD",
            side=side,
            order_type="limit",
            price=price,
            quantity=quantity,
            now=ex.clock.now,
        )
        assert decision["code"] == code, (price, quantity, decision)
        assert ex.risk.export_state() == before


def test_a_markets_own_quantity_limit_applies_on_the_fast_path() -> None:
    """The per-order limits the fast path reads from the market: the market's own when it was registered
    with some (here a quantity cap of 1), the manager's otherwise (here none)."""
    ex = FastExchange(limits=LIMITS)
    risk = RiskManager(limits=LIMITS)
    risk.register_market(
        symbol="BTC/USD",
        base_asset="BTC",
        quote_asset="USD",
        book=ex.books["BTC/USD"],
        limits=RiskLimits(max_order_quantity=D("1")),
    )
    risk.register_market(symbol="ETH/USD", base_asset="ETH", quote_asset="USD", book=ex.books["ETH/USD"])
    risk.deposit("u1", "BTC", "10")
    risk.deposit("u1", "ETH", "10")
    for symbol, quantity, code in (
        ("BTC/USD", "1.5", "max_quantity"),
        ("BTC/USD", D("1.5"), "max_quantity"),
        ("BTC/USD", "1", ""),
        ("ETH/USD", "1.5", ""),
    ):
        decision = risk.check_and_reserve(
            f"o-{symbol}-{quantity}",
            user_id="u1",
            symbol=symbol,
            side="sell",
            order_type="limit",
            price="100",
            quantity=quantity,
            now=START,
        )
        assert decision["code"] == code, (symbol, quantity, decision)


_SIDES = ("buy", "sell", "BUY", "SELL", "Buy", "sElL", " buy", "buy ", "bid", "", Side.BUY, Side.SELL)
_TIFS = (None, "GTC", "gtc", "IOC", "ioc", "FOK", "fok", "GTD", "Gtc", "GTC ", "", TimeInForce.GTC)


def _bare_manager() -> RiskManager:
    """A manager over the two test markets (books without orders), u1 funded in every asset (more than
    the open-order limit of :data:`LIMITS` can hold)."""
    clock = Clock()
    risk = RiskManager(limits=LIMITS)
    for symbol, (base, quote, *_rest) in MARKETS.items():
        risk.register_market(symbol=symbol, base_asset=base, quote_asset=quote, book=new_book(symbol, clock))
    for asset in ("USD", "BTC", "ETH"):
        risk.deposit("u1", asset, "100000")
    return risk


@settings(max_examples=150, deadline=None)
@given(
    orders=st.lists(
        st.tuples(
            st.sampled_from(_SIDES),
            st.sampled_from(_TIFS),
            st.sampled_from(("BTC/USD", "ETH/USD", "XXX/USD")),
            st.sampled_from(("100", "100.5", "100.25", "1E+2")),
            st.sampled_from(("0.1", "1", "0.05")),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_side_time_in_force_and_market_spellings_decide_as_the_general_path(
    orders: list[tuple[Any, Any, str, str, str]],
) -> None:
    """The fast path's vocabularies (sides and times in force compared as strings, the last market
    remembered): any spelling, in any sequence of markets (each symbol a new string object), gives the
    decision and the hold of ``check_order`` + ``reserve``, and a refused spelling changes nothing."""
    fast, general = _bare_manager(), _bare_manager()
    for n, (side, tif, symbol, price, quantity) in enumerate(orders):
        args: dict[str, Any] = {
            "user_id": "u1",
            "symbol": "".join(symbol),  # equal to the registered symbol, not the same object
            "side": side,
            "order_type": "limit",
            "price": price,
            "quantity": quantity,
            "time_in_force": tif,
            "now": START + n,
        }
        decision = fast.check_and_reserve(f"o{n}", **args)
        expected = general.check_order(**args)
        if expected["approved"]:
            general.reserve(f"o{n}", **args)
        assert decision == expected, (side, tif, symbol)
        assert fast.export_state() == general.export_state()
        fast.check_invariants()


def test_fills_of_users_without_the_proceeds_asset_settle_as_the_general_path() -> None:
    """An order linked at check time to the balance its fills pay into (the other asset of its market)
    when the user has one, lazily when not: a user who gets that asset only after placing (a deposit
    between the order and its fill), one who never had it, and one who had it, over two markets whose
    events alternate (on different grids, so that one market's units taken for the other's would show),
    all settle as the general settlement."""

    def books(clock: Clock) -> dict[str, OrderBook]:
        return {
            "BTC/USD": new_book("BTC/USD", clock),
            "ETH/USD": new_book("ETH/USD", clock, tick_size="0.01", lot_size="0.001"),
        }

    fast_clock, general_clock = Clock(), Clock()
    fast = FastExchange(limits=LIMITS, clock=fast_clock, books=books(fast_clock))
    general = GeneralExchange(limits=LIMITS, clock=general_clock, books=books(general_clock))
    for ex in (fast, general):
        ex.deposit("buyer", "USD", "100000")  # no BTC, no ETH yet
        ex.deposit("seller", "BTC", "100")  # no USD yet
        ex.deposit("seller", "ETH", "100")
        ex.deposit("both", "USD", "100000")
        ex.deposit("both", "BTC", "100")
    steps: list[tuple[str, ...]] = [
        ("place", "b1", "BTC/USD", "buyer", "buy", "100", "2"),
        ("place", "e1", "ETH/USD", "buyer", "buy", "50", "2"),
        ("deposit", "buyer", "BTC", "1"),  # after b1 was placed, before its fill
        ("place", "s1", "BTC/USD", "seller", "sell", "100", "1"),
        ("place", "s2", "ETH/USD", "seller", "sell", "50", "1"),
        ("place", "x1", "BTC/USD", "both", "sell", "100", "0.5"),
        ("place", "x2", "BTC/USD", "both", "buy", "101", "3"),
        ("place", "s3", "BTC/USD", "seller", "sell", "101", "2.5"),
        ("place", "s4", "ETH/USD", "seller", "sell", "50.01", "1.005"),
        ("place", "e2", "ETH/USD", "buyer", "buy", "50.02", "0.505"),
    ]
    for step in steps:
        results = []
        for ex in (fast, general):
            if step[0] == "deposit":
                ex.deposit(*step[1:])
                results.append(None)
            else:
                order_id, symbol, user, side, price, quantity = step[1:]
                results.append(ex.place(order_id, "".join(symbol), user, side, "limit", price, quantity))
            verify(ex)
        assert results[0] == results[1], step
        assert fast.risk.export_state() == general.risk.export_state(), step
    assert fast.books["BTC/USD"].counters()[1] > 0 and fast.books["ETH/USD"].counters()[1] > 0
    for user in ("buyer", "seller", "both"):
        assert fast.risk.balances(user) == general.risk.balances(user)


def test_the_open_order_limit_counts_each_time_in_force_as_the_general_path() -> None:
    """With the user at ``max_open_orders`` (8 resting orders), one more order of each time-in-force
    spelling is decided (an order that can rest refused, IOC and FOK exempt) as by the general path."""
    for tif in (None, "GTC", "gtc", "IOC", "ioc", "FOK", "fok"):
        fast, general = _bare_manager(), _bare_manager()
        for n in range(9):
            args: dict[str, Any] = {
                "user_id": "u1",
                "symbol": "BTC/USD",
                "side": "buy",
                "order_type": "limit",
                "price": "100",
                "quantity": "1",
                "time_in_force": tif if n == 8 else "GTC",
                "now": START + n,
            }
            decision = fast.check_and_reserve(f"o{n}", **args)
            expected = general.check_order(**args)
            if expected["approved"]:
                general.reserve(f"o{n}", **args)
            assert decision == expected, (tif, n)
            assert fast.export_state() == general.export_state()
        assert decision["code"] == ("" if tif and tif.upper() in ("IOC", "FOK") else "max_open_orders")


def test_fees_after_a_restore_go_to_the_restored_ledgers_pool() -> None:
    """The trade fast path links its market's fee pool on the first trade; ``restore_state`` replaces the
    ledger's pools, so the fees of a trade after a restore must land in the restored ledger's pool
    (counted by ``fees_collected``, money conserved), not in the pool linked before it."""
    ex = FastExchange(limits=LIMITS)
    ex.deposit("a", "USD", "100000")
    ex.deposit("b", "BTC", "100")
    for round_ in ("1", "2"):
        assert ex.place(f"s{round_}", "BTC/USD", "b", "sell", "limit", "100", "1")["approved"]
        assert ex.place(f"b{round_}", "BTC/USD", "a", "buy", "limit", "100", "1")["approved"]
        verify(ex)
        if round_ == "1":
            fees = ex.risk.fees_collected()["USD"]
            assert fees == D("0.3")  # 100 x (0.001 + 0.002)
            ex.risk.restore_state(ex.risk.export_state())
    assert ex.books["BTC/USD"].counters()[1] == 2
    assert ex.risk.fees_collected()["USD"] == 2 * fees
    assert ex.risk.total("USD") == D("100000")


def test_sweeps_through_levels_settle_each_trade_at_its_own_price() -> None:
    """The trade fast path remembers the last trade's price string and its units (a sweep's trades at
    one level share the level's string): sweeps through several levels, several makers per level, then
    a trade back at an earlier level's price, settle as the general settlement after every order."""
    fast, general = FastExchange(limits=LIMITS), GeneralExchange(limits=LIMITS)
    for ex in (fast, general):
        for user in ("m1", "m2", "m3"):
            ex.deposit(user, "USD", "100000")
            ex.deposit(user, "BTC", "100")
        ex.deposit("t", "USD", "100000")
        ex.deposit("t", "BTC", "100")
    steps = [
        ("a1", "m1", "sell", "100", "0.5"),
        ("a2", "m2", "sell", "100", "0.3"),
        ("a3", "m3", "sell", "100.5", "0.4"),
        ("a4", "m1", "sell", "101", "0.6"),
        ("a5", "m2", "sell", "101", "0.2"),
        ("t1", "t", "buy", "101", "1.9"),  # four trades: 100, 100, 100.5, 101 (then 101 again)
        ("b1", "m3", "buy", "99.5", "1"),
        ("b2", "m1", "buy", "99", "1"),
        ("t2", "t", "sell", "99", "1.5"),  # 99.5, then 99
        ("b3", "m2", "buy", "99.5", "0.7"),
        ("t3", "t", "sell", "99.5", "0.7"),  # 99.5 again, after 99
    ]
    for order_id, user, side, price, quantity in steps:
        results = [
            ex.place(order_id, "BTC/USD", user, side, "limit", price, quantity) for ex in (fast, general)
        ]
        assert results[0] == results[1] and results[0]["approved"], order_id
        for ex in (fast, general):
            verify(ex)
        assert fast.risk.export_state() == general.risk.export_state(), order_id
    assert fast.books["BTC/USD"].counters()[1] == 8
    for user in ("m1", "m2", "m3", "t"):
        assert fast.risk.balances(user) == general.risk.balances(user)


#: Available amounts, in the finest units the markets count each asset in, that the random streams
#: below start from: at the edge of ``Balance.near``'s range (the fast paths then fold it into
#: ``far`` and back), at mypyc's machine-integer bound 2**62, and far beyond (10**9 USD counts 10**15
#: units here, 10**19 in the benchmark's market).
_WHALES = (NEAR_MAX, 2**62, 10**19, 10**25)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    length=st.integers(1, 120),
    whale=st.sampled_from(_WHALES),
    offsets=st.lists(st.integers(-(10**10), 10**10), min_size=9, max_size=9),
)
def test_fast_and_general_paths_agree_for_balances_beyond_machine_integers(
    seed: int, length: int, whale: int, offsets: list[int]
) -> None:
    """The random streams of the test above, every user first funded with amounts around the edges of
    the ledger's two-part available amounts (``Balance.far`` and ``near``): decisions, exported state
    and balances agree with the general paths (Decimal arithmetic on the whole amount) after each
    command, and the invariants hold against the test's own record."""
    general = Run(GeneralExchange(limits=LIMITS))
    fast = Run(FastExchange(limits=LIMITS))
    markets = fast.ex.risk._markets.values()
    exps = {
        a: max(m.quote_exp if a == m.quote else m.quantity_exp for m in markets if a in (m.base, m.quote))
        for a in ("USD", "BTC", "ETH")
    }
    offset = iter(offsets)
    for user in ("u1", "u2", "u3"):
        for asset, exp in exps.items():
            amount = from_units(whale + next(offset), exp)
            general.ex.deposit(user, asset, amount)
            fast.ex.deposit(user, asset, amount)
    _agree_on_stream(fast, general, seed, length)


def test_an_order_id_used_again_after_its_order_ended_finds_the_new_order() -> None:
    """The manager finds the order it just placed by the identity of its id (``OrderRegistry.placed``);
    once that order ends (here by a cancel, settled by the general path), the same id object used again
    for a new order (placed by the general path: GTD) must find the new one: its ORDER_ADDED marks it
    announced (``release_unplaced`` then refuses it) and notes its expiry."""
    ex = _funded_u1()
    order_id = "".join(["x", "1"])  # one string object for every use below
    assert ex.place(order_id, "BTC/USD", "u1", "buy", "limit", D("100"), D("1"))["approved"]
    assert ex.risk._registry.placed is ex.risk._registry.by_id[order_id]
    assert ex.books["BTC/USD"].cancel_order(order_id)
    assert ex.risk._registry.placed is None
    expiry = ex.clock.now + 5
    decision = ex.place(
        order_id, "BTC/USD", "u1", "buy", "limit", D("99"), D("2"), time_in_force="GTD", expiry_time=expiry
    )
    assert decision["approved"]
    again = ex.risk._registry.by_id[order_id]
    assert again.seen and again.expiry == expiry
    assert not ex.risk.release_unplaced(order_id)
    assert ex.risk.orders("u1")[0]["price"] == "99"
    verify(ex)


def test_a_refused_fast_path_order_leaves_no_trace_of_its_id() -> None:
    """The fast path inserts a new order's id before the rate limit, its last check: a refusal there
    takes it out again (the general path then words the rejection), and an id already tracked is the
    general path's ValueError; the exported state is unchanged either way."""
    ex = FastExchange(limits=RiskLimits(rate_limit_orders=1, rate_limit_window=10.0))
    ex.deposit("u1", "USD", "1000")
    assert ex.place("a", "BTC/USD", "u1", "buy", "limit", D("100"), D("1"))["approved"]
    before = ex.risk.export_state()
    decision = ex.place("b", "BTC/USD", "u1", "buy", "limit", D("100"), D("1"))
    assert decision["code"] == "rate_limited"
    assert ex.risk.export_state() == before and "b" not in ex.risk._registry.by_id
    try:
        ex.risk.check_and_reserve(
            "a",
            user_id="u1",
            symbol="BTC/USD",
            side="buy",
            order_type="limit",
            price="1",
            quantity="1",
            now=ex.clock.now + 20,
        )
    except ValueError:
        pass
    else:
        raise AssertionError("an id already tracked must raise")
    assert ex.risk.export_state() == before
    verify(ex)


def _split(balance: Any, far: int) -> None:
    """Re-split a balance's available amount as ``far`` + the rest (a state folds can leave)."""
    total = balance.avail
    balance.far, balance.near, balance.floor = far, total - far, min(far, NEAR_MAX)
    assert balance.avail == total and -NEAR_MAX <= balance.near <= NEAR_MAX


def test_trades_fold_large_balances_as_the_general_settlement() -> None:
    """Balances whose ``near`` part is one trade from the edge of its range while ``far`` holds a large
    amount (the seller's quote, the buyer's base, the buyer's quote hold): the trade fast path folds them
    and ends where the general settlement does."""
    runs = []
    for kind in (FastExchange, GeneralExchange):
        ex = kind()
        balances = ex.risk._ledger.accounts
        for user in ("u1", "u2"):
            for asset, exp in (("USD", 6), ("BTC", 1)):
                ex.deposit(user, asset, from_units(2**62 + NEAR_MAX - 3, exp))
                _split(balances()[user][asset], 2**62)
        ex.deposit("u3", "USD", from_units(2**62 - NEAR_MAX + 10**7, 6))  # near: 10 USD above its floor
        _split(balances()["u3"]["USD"], 2**62)
        ex.place("s1", "BTC/USD", "u1", "sell", "limit", D("100"), D("2"))
        ex.place("b1", "BTC/USD", "u2", "buy", "limit", D("101"), D("1.5"))  # takes 1.5 at 100
        ex.place("b2", "BTC/USD", "u3", "buy", "limit", D("100"), D("0.5"))  # its hold folds u3's USD
        runs.append(ex)
    fast, general = runs
    for user in ("u1", "u2", "u3"):
        assert fast.risk.balances(user) == general.risk.balances(user)
    assert fast.risk.export_state() == general.risk.export_state()
    verify(fast)
    verify(general)
