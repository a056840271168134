"""Applying a journal record's command to the risk manager and a book, the same live and in replay.

A record (built by :mod:`.commands`) is the whole command: these functions read nothing else, so that
the replay of a record reproduces exactly what the live command did. They raise the exchange's errors
(:class:`~manticore_matching.errors.InvalidCommand`, ``OrderRejected``, ``OrderNotFound``) and leave
the book and the ledger unchanged when they do.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from manticore_orderbook import OrderBook, OrderBookError
from manticore_risk import Decision, RiskError, RiskManager

from .commands import risk_args
from .errors import InvalidCommand, OrderNotFound, OrderRejected
from .journal import JournalCorrupt, decoded_keys

__all__ = [
    "check_replayed",
    "fingerprint",
    "fingerprint_matches",
    "modify",
    "place",
    "place_plain",
    "replay",
    "replay_place",
    "transfer",
]

# A replayed place record's keys, as the journal's decoding holds them (lookups by identity): see
# decoded_keys. Every other dict's lookups with them find what lookups with the literal names find.
(
    _ORDER_ID,
    _USER_ID,
    _SYMBOL,
    _SIDE,
    _ORDER_TYPE,
    _PRICE,
    _QUANTITY,
    _STOP_PRICE,
    _TIME_IN_FORCE,
    _SELF_TRADE_PREVENTION,
    _TS,
    _TRAIL_VALUE,
    _TRAIL_IS_PERCENT,
    _DISPLAYED_QUANTITY,
    _EXPIRY_TIME,
    _CLIENT_ORDER_ID,
    _CHECK,
    _SEQ,
) = decoded_keys(
    "order_id",
    "user_id",
    "symbol",
    "side",
    "order_type",
    "price",
    "quantity",
    "stop_price",
    "time_in_force",
    "self_trade_prevention",
    "ts",
    "trail_value",
    "trail_is_percent",
    "displayed_quantity",
    "expiry_time",
    "client_order_id",
    "check",
    "seq",
)


def place(risk: RiskManager, book: OrderBook, record: dict[str, Any], *, check: bool) -> None:
    """Hold the funds of a ``place`` record's order and send it to ``book``: after risk's checks in the
    same call when ``check`` (a live command), without them in replay (the record was approved)."""
    order_id = record["order_id"]
    try:
        if check:
            decision = _check_and_reserve(risk, record)
            if not decision["approved"]:
                raise OrderRejected.from_decision(decision)
        else:
            risk.reserve(order_id, **risk_args(record))
    except RiskError as exc:
        raise OrderRejected(str(exc), getattr(exc, "code", None) or "insufficient_balance") from None
    except ValueError as exc:
        raise InvalidCommand(str(exc)) from None
    _to_book(risk, book, record)


def place_plain(
    risk: RiskManager,
    book: OrderBook,
    order_id: str,
    user_id: str,
    symbol: str,
    side: str,
    price: str,
    quantity: str,
    client_order_id: str | None,
    now: float,
) -> None:
    """:func:`place` with ``check=True`` of a plain GTC limit order's ``place`` record (order type
    ``limit``, time in force ``GTC``, no expiry, stop, trail, display size or self-trade prevention),
    given its fields: the same risk call, book call and errors, without reading them from the record
    and without :func:`place`'s two inner calls (``Exchange.place_order``'s most frequent order)."""
    try:
        decision = risk.check_and_reserve_positional(  # check_and_reserve's arguments by position
            order_id, user_id, symbol, side, "limit", price, quantity, None, now, "GTC", None
        )
        if not decision["approved"]:
            raise OrderRejected.from_decision(decision)
    except RiskError as exc:
        raise OrderRejected(str(exc), getattr(exc, "code", None) or "insufficient_balance") from None
    except ValueError as exc:
        raise InvalidCommand(str(exc)) from None
    try:
        # _to_book's call of a plain limit order: positional, the order type None (the book's fast path).
        book.add_order(
            side,
            price,
            quantity,
            order_id,
            "GTC",
            None,
            user_id,
            None,
            None,
            None,
            False,
            None,
            None,
            client_order_id,
        )
    except OrderBookError as exc:
        risk.release_unplaced(order_id)
        raise InvalidCommand(str(exc)) from None


def replay_place(risk: RiskManager, book: OrderBook, record: dict[str, Any]) -> None:
    """Replay a ``place`` record: hold its funds as its approval did and count it against the user's
    rate limit, send it to ``book``, then :func:`check_replayed`.

    An approval of ``check_and_reserve`` holds exactly what ``reserve`` holds and counts the order
    against the rate limit exactly as ``count_command`` does, and its fast path costs less than
    ``reserve``'s general one; so the replay asks for it first. When it refuses (the limits are not
    the ones the record was approved under) it has changed nothing, and the record, approved when it
    was journaled, is held without the checks and counted, as before.

    The steps of :func:`_check_and_reserve`, :func:`_to_book` and :func:`check_replayed`, written out
    in one frame (it runs for almost every replayed record); a book refusal and a divergence go to
    the same code as theirs."""
    order_id = record[_ORDER_ID]
    user_id = record[_USER_ID]
    side = record[_SIDE]
    order_type = record[_ORDER_TYPE]
    price = record[_PRICE]
    quantity = record[_QUANTITY]
    stop_price = record[_STOP_PRICE]
    time_in_force = record[_TIME_IN_FORCE]
    self_trade_prevention = record[_SELF_TRADE_PREVENTION]
    ts = record[_TS]
    try:
        decision = risk.check_and_reserve_positional(
            order_id,
            user_id,
            record[_SYMBOL],
            side,
            order_type,
            price,
            quantity,
            stop_price,
            ts,
            time_in_force,
            self_trade_prevention,
        )
        if not decision["approved"]:
            risk.reserve(order_id, **risk_args(record))
            risk.count_command(user_id, float(ts))  # the rate limit's window
    except RiskError as exc:
        raise OrderRejected(str(exc), getattr(exc, "code", None) or "insufficient_balance") from None
    except ValueError as exc:
        raise InvalidCommand(str(exc)) from None
    trail_value = record[_TRAIL_VALUE]
    trail_is_percent = record[_TRAIL_IS_PERCENT]
    displayed_quantity = record[_DISPLAYED_QUANTITY]
    if (
        stop_price is None
        and trail_value is None
        and trail_is_percent is False
        and displayed_quantity is None
        and (order_type == "limit" if price is not None else order_type == "market")
    ):
        order_type = None  # as in _to_book: the type the book infers, for its fast path
    try:
        book.add_order(  # positional, as in _to_book
            side,
            price,
            quantity,
            order_id,
            time_in_force,
            record[_EXPIRY_TIME],
            user_id,
            order_type,
            stop_price,
            trail_value,
            trail_is_percent,
            displayed_quantity,
            self_trade_prevention,
            record.get(_CLIENT_ORDER_ID),
        )
    except OrderBookError as exc:
        risk.release_unplaced(order_id)
        raise InvalidCommand(str(exc)) from None
    # check_replayed's test, written out: a list equals the fingerprint's iff fingerprint_matches (a
    # decoded record's check is a list or absent; anything else is unequal to a list, as there).
    if book.sequence != record.get(_SEQ) or record.get(_CHECK) != [len(book), book.counters()[1]]:
        check_replayed(book, record)


def _check_and_reserve(risk: RiskManager, record: dict[str, Any]) -> Decision:
    """``risk.check_and_reserve`` of a ``place`` record: the arguments of :func:`risk_args`, by
    position (``check_and_reserve_positional``: no keyword dictionary built and unpacked, no keyword
    matched per order); the decimal strings go as they are, as in :func:`risk_args`."""
    return risk.check_and_reserve_positional(
        record["order_id"],
        record["user_id"],
        record["symbol"],
        record["side"],
        record["order_type"],
        record["price"],
        record["quantity"],
        record["stop_price"],
        record["ts"],
        record["time_in_force"],
        record["self_trade_prevention"],
    )


def _to_book(risk: RiskManager, book: OrderBook, record: dict[str, Any]) -> None:
    """Send a ``place`` record's order, its funds held, to ``book``; give the hold back (and raise
    InvalidCommand) if the book refuses it."""
    order_id = record["order_id"]
    price = record["price"]
    order_type = record["order_type"]
    stop_price = record["stop_price"]
    trail_value = record["trail_value"]
    trail_is_percent = record["trail_is_percent"]
    displayed_quantity = record["displayed_quantity"]
    if (
        stop_price is None
        and trail_value is None
        and trail_is_percent is False
        and displayed_quantity is None
        and (order_type == "limit" if price is not None else order_type == "market")
    ):
        # The type the book infers from these fields (add_order's contract): given as None, a plain
        # order takes the book's fast path instead of its general validation (records always name it).
        order_type = None
    try:
        # Positional, in add_order's parameter order (side, price, quantity, order_id, time_in_force,
        # expiry_time, user_id, order_type, stop_price, trail_value, trail_is_percent,
        # displayed_quantity, self_trade_prevention, client_order_id): the compiled book parses
        # positional arguments without matching fourteen keyword names per order.
        book.add_order(
            record["side"],
            price,
            record["quantity"],
            order_id,
            record["time_in_force"],
            record["expiry_time"],
            record["user_id"],
            order_type,
            stop_price,
            trail_value,
            trail_is_percent,
            displayed_quantity,
            record["self_trade_prevention"],
            record.get("client_order_id"),
        )
    except OrderBookError as exc:
        risk.release_unplaced(order_id)
        raise InvalidCommand(str(exc)) from None


def modify(book: OrderBook, record: dict[str, Any]) -> None:
    """Apply a ``modify`` record to ``book`` (risk follows from its ORDER_MODIFIED event)."""
    try:
        changed = book.modify_order(
            record["order_id"],
            new_price=record["new_price"],
            new_quantity=record["new_quantity"],
            new_expiry_time=record["new_expiry_time"],
        )
    except OrderBookError as exc:
        raise InvalidCommand(str(exc)) from None
    if not changed:
        raise OrderNotFound(f"order {record['order_id']!r} not found")


def transfer(risk: RiskManager, record: dict[str, Any]) -> None:
    """Apply a ``deposit`` or ``withdraw`` record to the ledger."""
    amount = Decimal(record["amount"])
    try:
        if record["op"] == "deposit":
            risk.deposit(record["user_id"], record["asset"], amount)
        else:
            risk.withdraw(record["user_id"], record["asset"], amount)
    except RiskError as exc:
        raise OrderRejected(str(exc), getattr(exc, "code", None) or "insufficient_balance") from None
    except ValueError as exc:
        raise InvalidCommand(str(exc)) from None


def fingerprint(book: OrderBook) -> list[int]:
    """Cheap facts about a book after a command (live orders, trades), journaled so that a replay that
    diverges is caught."""
    return [len(book), book.counters()[1]]


def fingerprint_matches(book: OrderBook, check: object) -> bool:
    """``check == fingerprint(book)``, without building the list (it runs for every replayed record)."""
    return (
        type(check) is list and len(check) == 2 and check[0] == len(book) and check[1] == book.counters()[1]
    )


def replay(risk: RiskManager, book: OrderBook, record: dict[str, Any]) -> None:
    """Apply a journaled ``place``, ``cancel``, ``modify`` or ``expire`` record of ``book`` again (a
    place without risk's checks: it was approved; places and modifies still count against the user's
    rate limit, as their approval did), then compare the book's sequence and
    :func:`fingerprint` with the record's; JournalCorrupt if they differ or the record is unknown."""
    op = record.get("op")
    if op == "place":
        replay_place(risk, book, record)  # checks the result itself
        return
    if op == "cancel":
        if not book.cancel_order(record["order_id"]):
            raise JournalCorrupt(f"replay of record {record['n']}: cancel found no order")
    elif op == "modify":
        order = book.get_order(record["order_id"])
        modify(book, record)
        if order is not None:
            risk.count_command(order["user_id"], float(record["ts"]))
    elif op == "expire":
        book.clean_expired_orders()
    else:
        raise JournalCorrupt(f"record {record.get('n')}: unknown operation {op!r}")
    check_replayed(book, record)


def check_replayed(book: OrderBook, record: dict[str, Any]) -> None:
    """JournalCorrupt unless ``book``'s sequence and :func:`fingerprint` after the replay of ``record``
    are the ones the record holds."""
    sequence = book.sequence
    check = record.get("check")
    # fingerprint_matches, written out: it runs for every replayed record.
    if (
        sequence != record.get("seq")
        or type(check) is not list
        or len(check) != 2
        or check[0] != len(book)
        or check[1] != book.counters()[1]
    ):
        found = (sequence, fingerprint(book))
        raise JournalCorrupt(
            f"replay of record {record['n']} diverged: (sequence, [live orders, trades]) is {found}, "
            f"the journal says {(record.get('seq'), record.get('check'))}"
        )
