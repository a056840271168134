"""Which stream messages a command builds: the union of what the exchange's stream listeners read.

A listener registered with a :class:`Demand` is given, of each durable command's messages (see
:mod:`.feed`), at least the ones its demand names; one registered without a demand is given every
message, as always. The exchange builds a message only if some listener's demand names it, so a
command costs what its readers need: a book diff (and the book's price level payloads it comes from)
only while someone reads that market's diffs, a user's private messages and balances only while
someone reads that user's.

A record listener (:meth:`~manticore_matching.release.Listeners.add_fill_listener`,
:meth:`~manticore_matching.release.Listeners.add_trade_listener`) reads no message: its demand
(``fill_records``, ``trade_records``) makes the exchange copy a few values of every fill or trade into
a tuple (a record) instead, far cheaper than a message of many keys, so that a reader of every fill or
every trade (the Binance fill ledger, the candles) does not make every command build messages that no
one else reads.

A demand is the listener's own, mutable object: change its sets, then call the exchange's
:meth:`~manticore_matching.release.Listeners.demand_changed`; the change applies from the next command
on. A reader that needs a consistent start (a book diff stream) turns its demand on *before* taking
its snapshot: the diffs of the commands in between are then built, and their sequences are at most the
snapshot's.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Demand", "Wanted"]


class Demand:
    """What one stream listener reads of the command messages.

    Args:
        books: symbols whose ``book`` diffs it reads (None: every market's).
        trades: symbols whose ``trade`` messages it reads (None: every market's).
        users: users whose private messages (``order``, ``fill``, ``balances``) it reads (None: every
            user's).
        fills: it reads every user's ``fill`` messages (whatever ``users`` says).
        fill_records: it reads every fill as a record, not a message (a fill listener's demand).
        trade_records: it reads every trade as a record, not a message (a trade listener's demand).
    """

    __slots__ = ("books", "fill_records", "fills", "trade_records", "trades", "users")

    def __init__(
        self,
        *,
        books: Iterable[str] | None = (),
        trades: Iterable[str] | None = (),
        users: Iterable[str] | None = (),
        fills: bool = False,
        fill_records: bool = False,
        trade_records: bool = False,
    ) -> None:
        self.books: set[str] | None = None if books is None else set(books)
        self.trades: set[str] | None = None if trades is None else set(trades)
        self.users: set[str] | None = None if users is None else set(users)
        self.fills = fills
        self.fill_records = fill_records
        self.trade_records = trade_records


def _union(parts: list[set[str] | None]) -> frozenset[str] | None:
    result: set[str] = set()
    for part in parts:
        if part is None:
            return None
        result.update(part)
    return frozenset(result)


class Wanted:
    """The union of the listeners' demands, as the command path reads it (immutable; None in a set
    field means every symbol or user)."""

    __slots__ = ("books", "fill_records", "fills", "messages", "trade_records", "trades", "users")

    def __init__(self, demands: Iterable[Demand | None]) -> None:
        present = [Demand(books=None, trades=None, users=None) if d is None else d for d in demands]
        self.books = _union([d.books for d in present])
        self.trades = _union([d.trades for d in present])
        self.users = _union([d.users for d in present])
        #: Every user's fills (True also when ``users`` is None).
        self.fills = self.users is None or any(d.fills for d in present)
        #: Every fill as a record, every trade as a record (a listener without a demand reads
        #: messages only: neither).
        self.fill_records = any(d.fill_records for d in present)
        self.trade_records = any(d.trade_records for d in present)
        #: Whether any message may be read (False: a command builds records at most).
        self.messages = bool(
            self.books is None
            or self.books
            or self.trades is None
            or self.trades
            or self.users is None
            or self.users
            or self.fills
        )

    def book(self, symbol: str) -> bool:
        """Whether anyone reads ``symbol``'s book diffs."""
        return self.books is None or symbol in self.books

    def trade(self, symbol: str) -> bool:
        """Whether anyone reads ``symbol``'s trade messages."""
        return self.trades is None or symbol in self.trades
