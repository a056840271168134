"""Why the serving GC policy may freeze the start-up heap: the exchange's state for a resting order is
freed by reference counting once the order is gone, so orders restored before the freeze (and frozen with
it) leave no cyclic garbage that only a collection of the frozen objects could free."""

from __future__ import annotations

import dataclasses
import gc
from pathlib import Path

from manticore_api.server import ServerOptions, build_service
from manticore_matching import DEFAULT_RISK_LIMITS

ORDERS = 300


def test_frozen_resting_orders_are_freed_without_the_collector(tmp_path: Path) -> None:
    limits = dataclasses.replace(
        DEFAULT_RISK_LIMITS, max_open_orders=None, rate_limit_orders=None, rate_limit_window=None
    )
    service = build_service(ServerOptions(data_dir=tmp_path, fsync=False, risk_limits=limits))
    exchange = service.exchange
    try:
        for asset, amount in (("USD", "100000000"), ("BTC", "1000")):
            exchange.wait_durable(exchange.deposit("alice", asset, amount).position)
        receipts = [
            exchange.place_order("alice", "BTC/USD", side, "0.01", str(price))
            for side, price in [("buy", 20000 + i) for i in range(ORDERS)]
            + [("sell", 20400 + i) for i in range(ORDERS)]
        ]
        exchange.wait_durable(receipts[-1].position)
        order_ids = [receipt.order_id for receipt in receipts]
        del receipts
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            gc.collect()
            gc.freeze()
            frozen = gc.get_freeze_count()
            cancels = [exchange.cancel_order("alice", order_id) for order_id in order_ids]
            exchange.wait_durable(cancels[-1].position)
            del cancels
            freed = frozen - gc.get_freeze_count()
            gc.unfreeze()
            garbage = gc.collect()
        finally:
            gc.unfreeze()
            if was_enabled:
                gc.enable()
        # Each cancelled order's book and risk state (at least two tracked objects) left the frozen set
        # by reference counting, and nothing the cancels dropped was waiting for the cyclic collector.
        assert freed >= 2 * len(order_ids)
        assert garbage == 0
    finally:
        exchange.close(checkpoint=False)
        service.auth.close()
