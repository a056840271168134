"""The write-behind writer's queue: back-pressure, wake-ups, flush and close (no database needed)."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest

from manticore_storage.writer import WriteBehindWriter


def unit(n: int) -> tuple[Any, ...]:
    """A unit in the writer's layout with one record (only its size and identity matter here)."""
    return ("SYM", (), n, 0, 0, None, ((0, n),), "", True)


class Sink:
    """Collects written units; can be held shut to keep the writer busy."""

    def __init__(self) -> None:
        self.units: list[tuple[Any, ...]] = []
        self.gate = threading.Event()
        self.gate.set()

    def write(self, units: list[tuple[Any, ...]]) -> None:
        self.gate.wait()
        self.units.extend(units)

    def failed(self, _unit: tuple[Any, ...], exc: BaseException) -> None:
        raise AssertionError(f"unexpected failure: {exc}")


def test_every_unit_is_written_once_in_order_across_idle_periods() -> None:
    sink = Sink()
    writer = WriteBehindWriter(sink.write, sink.failed, max_delay=0.01)
    rng = random.Random(5)
    sent = []
    for n in range(3_000):
        writer.submit(unit(n))
        sent.append(n)
        if rng.random() < 0.01:
            time.sleep(rng.random() * 0.02)  # let the writer go idle, so submits must wake it
    assert writer.flush(10.0)
    assert [u[2] for u in sink.units] == sent
    assert writer.pending_events == 0
    assert writer.close()


def test_submit_blocks_while_the_queue_is_full_and_resumes_when_the_writer_takes() -> None:
    sink = Sink()
    sink.gate.clear()  # the writer takes the first unit and then hangs in write()
    writer = WriteBehindWriter(sink.write, sink.failed, max_pending_units=3, max_delay=0.0)
    writer.submit(unit(0))
    deadline = time.monotonic() + 5
    while writer.pending_events and not writer._in_flight and time.monotonic() < deadline:
        time.sleep(0.001)
    for n in (1, 2, 3):
        writer.submit(unit(n))
    blocked = threading.Thread(target=writer.submit, args=(unit(4),))
    blocked.start()
    blocked.join(0.2)
    assert blocked.is_alive(), "a fourth queued unit must wait for room"
    assert writer.pending_events == 4  # one in flight, three queued
    sink.gate.set()
    blocked.join(5)
    assert not blocked.is_alive()
    assert writer.flush(5)
    assert [u[2] for u in sink.units] == [0, 1, 2, 3, 4]
    writer.close()


def test_concurrent_producers_lose_nothing() -> None:
    sink = Sink()
    writer = WriteBehindWriter(sink.write, sink.failed, max_pending_units=50, max_delay=0.005)

    def produce(base: int) -> None:
        for n in range(2_000):
            writer.submit(unit(base + n))

    threads = [threading.Thread(target=produce, args=(k * 10_000,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert writer.flush(10)
    numbers = [u[2] for u in sink.units]
    assert sorted(numbers) == sorted(k * 10_000 + n for k in range(4) for n in range(2_000))
    for k in range(4):  # each producer's units stay in its own order
        mine = [n for n in numbers if n // 10_000 == k]
        assert mine == sorted(mine)
    writer.close()


def test_close_writes_what_is_queued_and_refuses_later_units() -> None:
    sink = Sink()
    writer = WriteBehindWriter(sink.write, sink.failed, max_delay=5.0)
    for n in range(100):
        writer.submit(unit(n))
    assert writer.close()
    assert len(sink.units) == 100
    with pytest.raises(RuntimeError, match="closed"):
        writer.submit(unit(100))


def test_units_gather_into_one_batch_and_are_written_without_a_flush() -> None:
    """A batch gathers for ``gather_delay`` (a flush ends the wait at once); an idle writer still writes
    what it holds once the delay has passed, with no flush."""
    sink = Sink()
    writer = WriteBehindWriter(sink.write, sink.failed, gather_delay=60.0, max_delay=60.0)
    for n in range(50):
        writer.submit(unit(n))
    assert writer.flush(10)
    assert writer.batches == 1  # the writer was still gathering when the flush came
    writer.close()

    sink = Sink()
    writer = WriteBehindWriter(sink.write, sink.failed, gather_delay=0.05)
    for n in range(5):
        writer.submit(unit(n))
    deadline = time.monotonic() + 10
    while len(sink.units) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [u[2] for u in sink.units] == [0, 1, 2, 3, 4]
    writer.close()
