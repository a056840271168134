"""``capture.order_record`` of a plain order (``Order.extra`` None) is the record it gives for the same
order with an ``OrderExtra`` at its defaults: the rare fields' defaults, in their places.

(Session 23: the order with defaults is a copy whose ``extra`` is set, no longer a wrapper that
forwards attribute reads: ``order_record`` now calls ``Order.fields``, which a wrapper would forward
to the plain order itself.)"""

from __future__ import annotations

from manticore_orderbook import OrderBook
from manticore_orderbook.model import OrderExtra
from manticore_storage.capture import RECORD_ORDER, order_record


def test_a_plain_order_record_holds_the_defaults_of_the_rare_fields() -> None:
    book = OrderBook("BTC/USD", tick_size="0.5", lot_size="0.001")
    book.add_order("buy", "100", "1", order_id="A", user_id="u")
    book.add_order("sell", "100", "0.25", order_id="B", user_id="v")
    order = book._orders["A"]
    assert order.extra is None
    # the same order with an OrderExtra at its defaults (``Order.fields`` reads it instead of its own
    # defaults; the copy's extra replaced after ``copy``, which keeps a plain order plain)
    with_extra = order.copy()
    with_extra.extra = OrderExtra()
    for extra in (None, (None, 1000, 1000), ("cancelled", 0, 1000)):
        record = order_record(order, 7, 1, extra)
        assert record == order_record(with_extra, 7, 1, extra)
        assert record[0] == RECORD_ORDER and record[4] == "A" and len(record) == 26
