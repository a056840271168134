"""A short demonstration: a few orders on BTC/USD, the resulting book, trades and events.

Run with ``python -m manticore_orderbook.demo`` (``make run``). Uses a fixed clock so that the output
is the same on every run.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from . import EventManager, EventType, OrderBook


def main() -> None:
    """Print a book built from a scripted order flow, then its trades and every event."""
    ticks = itertools.count()
    events: list[tuple[EventType, dict[str, Any]]] = []
    event_manager = EventManager()
    event_manager.subscribe_all(lambda event_type, data: events.append((event_type, data)))
    book = OrderBook(
        "BTC/USD",
        event_manager=event_manager,
        tick_size="0.01",
        lot_size="0.0001",
        maker_fee_rate="0.0002",
        taker_fee_rate="0.0007",
        clock=lambda: 1_700_000_000.0 + next(ticks),
    )
    book.add_order("sell", 30_010.00, 0.5, order_id="ask-1", user_id="maker")
    book.add_order("sell", 30_020.00, 1.2, order_id="ask-2", user_id="maker")
    book.add_order("buy", 29_990.00, 0.8, order_id="bid-1", user_id="maker")
    book.add_order("sell", 30_050.00, 3.0, order_id="iceberg", user_id="whale", displayed_quantity=0.5)
    book.add_order("buy", 30_000.00, 0.1, order_id="stop", user_id="alice", stop_price=30_015.00)
    book.add_order("buy", 30_020.00, 0.9, order_id="taker-1", user_id="bob")  # sweeps two levels
    book.add_order("sell", None, 0.3, order_id="market-1", user_id="carol")  # market sell
    book.cancel_order("bid-1")

    print("Book (depth 5):")
    print(json.dumps(book.get_snapshot(depth=5), indent=2))
    print("\nTrades, newest first:")
    for trade in book.get_trade_history():
        print(
            f"  {trade['trade_id']}: {trade['quantity']} @ {trade['price']} "
            f"(maker {trade['maker_order_id']}, taker {trade['taker_order_id']}, "
            f"taker fee {trade['taker_fee']})"
        )
    print(f"\nEvents ({len(events)}), in sequence order:")
    for event_type, data in events:
        keys = ("order_id", "side", "price", "quantity", "fill_quantity", "reason", "order_count")
        detail = ", ".join(f"{k}={data[k]}" for k in keys if data.get(k) is not None)
        print(f"  #{data['sequence']:>3} {event_type.name:<20} {detail}")


if __name__ == "__main__":
    main()
