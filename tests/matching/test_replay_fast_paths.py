"""The replay's shortcuts decide exactly as the general code they stand for.

* The journal reader decodes a well-formed line without calling ``_decode``: every line, damaged or
  not, reads as ``_decode`` reads it (records, a torn tail cut, corruption reported alike).
* ``apply`` sends a plain order to the book with its order type left for the book to infer: the
  book's answer, events and state are those of the same order with its type named.
* Replay keeps the recent trades as their payloads until it ends: past the markets' bound of recent
  trades, with a checkpoint part-way or none, the replayed trades are the live ones.
"""

from __future__ import annotations

import random
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_matching import apply, commands, exchange
from manticore_matching.config import MarketConfig
from manticore_matching.errors import InvalidCommand
from manticore_matching.journal import Journal, JournalCorrupt, _decode, _encode
from manticore_matching.market import TRADE_KEYS, new_book
from manticore_orderbook import EventManager, EventType, OrderBookError
from tests.matching.exchange_streams import Clock, new_exchange
from tests.matching.test_replay_view import _apply, _crash, _memory, _stream

# ---------------------------------------------------------------------------------------- journal


def _damaged(line: bytes, how: str, where: int, byte: int) -> bytes:
    """``line`` (a well-formed journal line) damaged in one way."""
    body = line[9:-1]
    if how == "flip":
        index = where % len(line)
        return line[:index] + bytes([byte]) + line[index + 1 :]
    if how == "cut":
        return line[: where % len(line)]
    if how == "no newline":
        return line[:-1]
    if how == "no space":
        return line[:8] + b"_" + line[9:]
    if how == "crc":
        return b"%08x %b\n" % ((int(line[:8], 16) + 1) % 2**32, body)
    if how == "crc text":  # int() reads it, but it is not the framing's 8 hex digits
        return b" +%06x %b\n" % (int(line[:8], 16) & 0xFFFFFF, body)
    replaced = {
        "nan": body[:-1] + b',"x":NaN}',  # JSON only the standard library reads
        "list": b"[" + body + b"]",
        "no position": body.replace(b'"n":', b'"m":'),
        "position text": body.replace(b'"n":', b'"n":"1",' + b'"_":'),
        "position bool": body.replace(b'"n":', b'"n":true,' + b'"_":'),
        "not json": body[: len(body) // 2],
    }[how]
    return b"%08x %b\n" % (zlib.crc32(replaced), replaced)


_HOW = st.sampled_from(
    [
        "flip",
        "cut",
        "no newline",
        "no space",
        "crc",
        "crc text",
        "nan",
        "list",
        "no position",
        "position text",
        "position bool",
        "not json",
    ]
)


def _reference(lines: list[bytes], after: int) -> tuple[list[dict[str, Any]] | str, int]:
    """What ``Journal.read`` of one segment holding ``lines`` (the file's lines) gives, by ``_decode``
    of each line: the records (or the JournalCorrupt message) and the segment's size afterwards."""
    records = []
    last = after
    good = 0
    for number, line in enumerate(lines):
        record = _decode(line)
        if record is None:
            if number == len(lines) - 1:
                break
            return f"journal-0000000000000001.log: line {number + 1} is damaged", sum(map(len, lines))
        good += len(line)
        position = record["n"]
        if position <= last:
            if position <= after:
                continue
            return f"journal-0000000000000001.log: position {position} repeats", sum(map(len, lines))
        if position != last + 1:
            return f"journal-0000000000000001.log: position {last + 1} is missing", sum(map(len, lines))
        last = position
        records.append(record)
    return records, good


@settings(max_examples=150, deadline=None)
@given(
    count=st.integers(1, 6),
    damaged_at=st.integers(0, 5),
    how=_HOW,
    where=st.integers(0, 10_000),
    byte=st.integers(0, 255),
    after=st.integers(0, 3),
)
def test_every_line_reads_as_decode_reads_it(
    tmp_path_factory: pytest.TempPathFactory,
    count: int,
    damaged_at: int,
    how: str,
    where: int,
    byte: int,
    after: int,
) -> None:
    """A segment of well-formed lines with one damaged (anywhere, the last one included): ``read``
    yields the records ``_decode`` reads, cuts a damaged last line and reports any other alike."""
    lines = [_encode({"op": "test", "i": i, "ts": 1.5 + i, "s": "é\u2028", "n": i + 1}) for i in range(count)]
    index = damaged_at % count
    lines[index] = _damaged(lines[index], how, where, byte)
    directory = tmp_path_factory.mktemp("journal")
    segment = directory / "journal-0000000000000001.log"
    segment.write_bytes(b"".join(lines))
    expected, size = _reference(b"".join(lines).splitlines(keepends=True), after)
    journal = Journal(directory)
    try:
        got: list[dict[str, Any]] | str = list(journal.read(after=after))
    except JournalCorrupt as exc:
        got = str(exc)
    assert got == expected
    assert segment.stat().st_size == size


def test_a_line_only_the_standard_library_reads_is_read() -> None:
    """The reference above is not vacuous: a NaN record decodes (by ``json``), a damaged one does not."""
    line = _damaged(_encode({"op": "test", "n": 1}), "nan", 0, 0)
    record = _decode(line)
    assert record is not None and record["n"] == 1 and record["x"] != record["x"]
    assert _decode(_damaged(_encode({"op": "test", "n": 1}), "crc", 0, 0)) is None
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(line[9:-1])


# ---------------------------------------------------------------------------------------- the book

_CONFIG = MarketConfig(
    "BTC/USD", "BTC", "USD", Decimal("0.5"), Decimal("0.1"), Decimal("-0.001"), Decimal("0.002")
)


def _order_args(rng: random.Random) -> dict[str, Any]:
    """Random arguments of ``place_order`` of every order type (some of them invalid)."""
    kind = rng.choice(
        [
            "limit",
            "limit",
            "limit",
            "market",
            None,
            "iceberg",
            "post_only",
            "stop_limit",
            "stop_market",
            "trailing_stop",
        ]
    )
    price = str(100 + Decimal("0.5") * rng.randint(-6, 6)) if rng.random() < 0.85 else None
    args: dict[str, Any] = {
        "side": rng.choice(["buy", "sell"]),
        "quantity": str(Decimal("0.1") * rng.randint(1, 20)),
        "price": price,
        "order_type": kind,
        "time_in_force": rng.choice([None, None, "GTC", "IOC", "FOK", "GTD"]),
        "expiry_time": None,
        "stop_price": None,
        "displayed_quantity": None,
        "trail_value": None,
        "trail_is_percent": rng.random() < 0.1,
        "self_trade_prevention": rng.choice([None, None, "cancel_newest", "cancel_both"]),
    }
    if args["time_in_force"] == "GTD" or rng.random() < 0.05:
        args["expiry_time"] = 1_700_000_100.0 + rng.randint(0, 50)
    if kind in ("stop_limit", "stop_market") or rng.random() < 0.05:
        args["stop_price"] = str(100 + Decimal("0.5") * rng.randint(-6, 6))
    if kind == "iceberg" or rng.random() < 0.05:
        args["displayed_quantity"] = str(Decimal("0.1") * rng.randint(1, 5))
    if kind == "trailing_stop" or rng.random() < 0.05:
        args["trail_value"] = str(Decimal("0.5") * rng.randint(1, 4))
    return args


class _Risk:
    """What ``apply._to_book`` asks of risk: the release of a hold the book refused."""

    def __init__(self) -> None:
        self.released: list[str] = []

    def release_unplaced(self, order_id: str) -> None:
        self.released.append(order_id)


def _recording_book() -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
    manager = EventManager()
    events: list[tuple[str, dict[str, Any]]] = []
    for event_type in EventType:
        manager.subscribe(event_type, lambda kind, data: events.append((str(kind), dict(data))))
    clock = Clock(1_700_000_000.0)
    return new_book(_CONFIG, manager, clock), events


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 1_000_000), length=st.integers(1, 40))
def test_an_order_with_its_type_left_to_the_book_enters_as_named(seed: int, length: int) -> None:
    """Random place records (every order type, valid or not for the book) sent by ``apply._to_book``
    and, to another book, by ``add_order`` with the record's order type named: the same answers, the
    same events and the same state after every order."""
    rng = random.Random(seed)
    inferred, inferred_events = _recording_book()
    named, named_events = _recording_book()
    risk = _Risk()
    for number in range(1, length + 1):
        try:
            args = commands.order_args(_CONFIG, **_order_args(rng))
        except InvalidCommand:
            continue
        record = commands.place_record(1_700_000_000.0, f"MC-{number}", None, rng.choice(["a", "b"]), args)
        try:
            apply._to_book(risk, inferred, record)  # type: ignore[arg-type]
            first: str | None = None
        except InvalidCommand as exc:
            first = str(exc)
        try:
            named.add_order(
                record["side"],
                record["price"],
                record["quantity"],
                record["order_id"],
                record["time_in_force"],
                record["expiry_time"],
                record["user_id"],
                record["order_type"],
                record["stop_price"],
                record["trail_value"],
                record["trail_is_percent"],
                record["displayed_quantity"],
                record["self_trade_prevention"],
                record["client_order_id"],
            )
            second: str | None = None
        except OrderBookError as exc:
            second = str(exc)
        assert first == second
        assert inferred_events == named_events
        assert inferred.export_state() == named.export_state()


# ---------------------------------------------------------------------------------------- trades


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    bound=st.integers(1, 6),
    checkpoint_at=st.none() | st.integers(0, 150),
)
def test_replayed_recent_trades_past_their_bound_are_the_live_ones(
    tmp_path_factory: pytest.TempPathFactory,
    seed: int,
    bound: int,
    checkpoint_at: int | None,
) -> None:
    """Markets that keep only ``bound`` recent trades, a random stream with many more trades and a
    checkpoint part-way or none: after a crash and a replay every market's recent trades are the
    live ones, each a recent trade (its :data:`TRADE_KEYS`, in order), not a payload."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(exchange, "RECENT_TRADES", bound)
        _compare_trades(tmp_path_factory, seed, bound, checkpoint_at)


def _compare_trades(
    tmp_path_factory: pytest.TempPathFactory, seed: int, bound: int, checkpoint_at: int | None
) -> None:
    stream = _stream(seed, 150, icebergs=False, command_ids=False)
    directory = tmp_path_factory.mktemp("trades")
    clock = Clock()
    live_exchange = new_exchange(directory, clock, checkpoint_every=0)
    live_exchange.open()
    for index, command in enumerate(stream):
        if index == checkpoint_at:
            live_exchange.checkpoint()
        _apply(live_exchange, clock, command)
    live = _memory(live_exchange)
    _crash(live_exchange)
    replayed = new_exchange(directory, clock, checkpoint_every=0)
    replayed.open()
    try:
        after = _memory(replayed)
        assert after["trades"] == live["trades"]
        for trades in after["trades"].values():
            assert len(trades) <= bound
            assert all([key for key, _ in trade] == list(TRADE_KEYS) for trade in trades)
        assert after["state"] == live["state"]
        assert after["ledger"] == live["ledger"]
    finally:
        replayed.close()


def test_the_trades_compared_above_pass_their_bound(tmp_path: Path) -> None:
    """The streams above trade more than the bound (else no payload would ever be pushed out of the
    recent trades during the replay)."""
    clock = Clock()
    live_exchange = new_exchange(tmp_path / "data", clock, checkpoint_every=0)
    live_exchange.open()
    for command in _stream(7, 150, icebergs=False, command_ids=False):
        _apply(live_exchange, clock, command)
    trades = [live_exchange.book(symbol).counters()[1] for symbol in live_exchange.markets]
    _crash(live_exchange)
    assert max(trades) > 6  # BTC/USD, the busier market
