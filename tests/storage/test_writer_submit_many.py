"""The write-behind writer's ``submit_many`` (a durable round's units in one call) and its batches,
whose sizes are counted once per unit: in order, bounded by ``max_batch_events``, counted."""

from __future__ import annotations

import pytest

from manticore_storage.apply import UnitTuple
from manticore_storage.writer import WriteBehindWriter


def _one_order(user: object) -> UnitTuple:
    """A one-order unit (six header items, then an order record)."""
    record = (0, 1, 5, None, "o1", "buy", "LIMIT", "GTC", user, 1.5, "none", None, None, False)
    return ("BTC/USD", 3, 0, 0, None, "P-", *record, 200, 1, 0, 1, 1, None, None, None, False, False, 1, None)


def test_submit_many_queues_units_in_order_and_counts_them() -> None:
    written: list[list[UnitTuple]] = []
    writer = WriteBehindWriter(written.append, lambda unit, exc: None, gather_delay=0.0)
    try:
        one = _one_order("a")
        packed = ("BTC/USD", (), 9, 1, 0, 5, ((2, 1), (2, 2), (2, 3)), "P-", True)
        marker = (None, 7, None)
        writer.submit_many([one, packed])
        writer.submit_many([])
        writer.submit(marker)
        assert writer.flush(10)
        assert [unit for batch in written for unit in batch] == [one, packed, marker]
        assert writer.events_written == 1 + 3 + 1
        assert writer.pending_events == 0
    finally:
        writer.close()


def test_a_batch_stops_at_max_batch_events_with_sizes_counted_once() -> None:
    written: list[list[UnitTuple]] = []
    writer = WriteBehindWriter(written.append, lambda unit, exc: None, gather_delay=0.0, max_batch_events=4)
    try:
        packed = ("BTC/USD", (), 9, 1, 0, 5, ((2, 1), (2, 2), (2, 3)), "P-", True)  # 3 events
        big = ("BTC/USD", (), 9, 1, 0, 5, tuple((2, n) for n in range(6)), "P-", True)  # 6: alone
        writer.submit_many([packed, _one_order("a"), packed, big, _one_order("b")])
        assert writer.flush(10)
        assert [len(batch) for batch in written] == [2, 1, 1, 1]
        assert writer.events_written == 3 + 1 + 3 + 6 + 1
        assert writer.batches == 4
    finally:
        writer.close()


def test_submit_many_after_close_raises() -> None:
    writer = WriteBehindWriter(lambda units: None, lambda unit, exc: None)
    writer.close()
    with pytest.raises(RuntimeError):
        writer.submit_many([_one_order("a")])
