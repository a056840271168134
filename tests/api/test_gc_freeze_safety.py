"""Why the serving GC policy may freeze the start-up heap: the exchange's state for a resting order is
freed by reference counting once the order is gone, so orders restored before the freeze (and frozen with
it) leave no cyclic garbage that only a collection of the frozen objects could free."""

from __future__ import annotations

import dataclasses
import gc
from pathlib import Path

import pytest

from manticore_api.gcpolicy import GcPolicy
from manticore_api.server import ServerOptions, build_service
from manticore_matching import DEFAULT_RISK_LIMITS, recent

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


def test_refreezing_under_place_and_cancel_churn_freezes_no_garbage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The serving policy refreezes the survivors of every gen-1 collection; with tiny thresholds (a
    refreeze every few commands) a long churn of place/cancel leaves the frozen set the size of the live
    state (it does not grow with the commands) and no frozen cyclic garbage."""
    monkeypatch.setattr(recent, "RECENT_ORDERS", 100)  # the finished orders kept: live state, bounded
    limits = dataclasses.replace(
        DEFAULT_RISK_LIMITS, max_open_orders=None, rate_limit_orders=None, rate_limit_window=None
    )
    service = build_service(ServerOptions(data_dir=tmp_path, fsync=False, risk_limits=limits))
    exchange = service.exchange
    thresholds = gc.get_threshold()
    frozen_after_round: list[int] = []
    try:
        for asset, amount in (("USD", "100000000"), ("BTC", "1000")):
            exchange.wait_durable(exchange.deposit("alice", asset, amount).position)
        resting = [
            exchange.place_order("alice", "BTC/USD", "buy", "0.01", str(10000 + i)).order_id
            for i in range(ORDERS)
        ]
        with GcPolicy(thresholds=(50, 1, 1000)).serving():
            for _ in range(8):
                for i in range(ORDERS):
                    price = str(20000 + i)  # the book keeps its levels: its live state is steady
                    placed = exchange.place_order("alice", "BTC/USD", "buy", "0.01", price)
                    exchange.cancel_order("alice", resting[i])
                    resting[i] = placed.order_id
                exchange.wait_durable(exchange.journal.appended)
                assert exchange.storage is not None
                exchange.storage.flush()  # no unit waiting for the writer (frozen while queued)
                frozen_after_round.append(gc.get_freeze_count())
        gc.collect()
        gc.unfreeze()
        garbage = gc.collect()
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        exchange.close(checkpoint=False)
        service.auth.close()
    # 300 orders placed and 300 cancelled per round, yet the frozen set stays put once the bounded
    # caches are full (it swings by one object per order between rounds; a leak of one object per
    # command would add 600 per round), and nothing frozen was cyclic garbage.
    assert max(frozen_after_round[4:]) - max(frozen_after_round[1:4]) < 100, frozen_after_round
    assert garbage == 0
