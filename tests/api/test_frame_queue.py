"""A connection's frame queue (:class:`manticore_api.streams.FrameQueue`) behaves as the
``asyncio.Queue`` it replaced, for what a connection does with it: hypothesis sequences of puts, takes
and waiting readers on both, compared step by step; and a connection's pump sends every pushed frame
once, in order, whatever the batching."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, cast

from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_api.streams import FrameQueue, StreamConnection

#: put a frame (None too: the end marker), take one at once, look at the size, let a reader run.
_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.one_of(st.none(), st.text(max_size=3))),
        st.tuples(st.just("get_nowait"), st.none()),
        st.tuples(st.just("look"), st.none()),
        st.tuples(st.just("yield"), st.none()),
        st.tuples(st.just("reader"), st.none()),
        st.tuples(st.just("cancel_reader"), st.none()),
    ),
    max_size=60,
)


def _step(queue: Any, kind: str, value: str | None) -> object:
    try:
        if kind == "put":
            queue.put_nowait(value)
            return "put"
        if kind == "get_nowait":
            return ("got", queue.get_nowait())
        return ("size", queue.qsize(), queue.empty(), queue.full())
    except asyncio.QueueFull:
        return "full"
    except asyncio.QueueEmpty:
        return "empty"


async def _run(queue: Any, steps: list[tuple[str, str | None]]) -> list[object]:
    """Apply ``steps``; readers (``await queue.get()``) note what they took, in the order they took it."""
    seen: list[object] = []
    readers: list[asyncio.Task[None]] = []

    async def reader(number: int) -> None:
        seen.append(("read", number, await queue.get()))

    for kind, value in steps:
        if kind == "yield":
            for _ in range(3):
                await asyncio.sleep(0)
        elif kind == "reader":
            readers.append(asyncio.create_task(reader(len(readers))))
        elif kind == "cancel_reader":
            waiting = [task for task in readers if not task.done()]
            if waiting:
                waiting[0].cancel()
                seen.append("cancelled")
        else:
            seen.append(_step(queue, kind, value))
    for _ in range(3):
        await asyncio.sleep(0)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    seen.append(("left", queue.qsize()))
    return seen


@settings(max_examples=300, deadline=None)
@given(steps=_STEPS, maxsize=st.integers(min_value=0, max_value=5))
def test_the_frame_queue_answers_as_an_asyncio_queue(
    steps: list[tuple[str, str | None]], maxsize: int
) -> None:
    expected = asyncio.run(_run(asyncio.Queue(maxsize), steps))
    assert asyncio.run(_run(FrameQueue(maxsize), steps)) == expected


def test_a_cancelled_reader_loses_no_frame() -> None:
    async def scenario() -> list[str | None]:
        queue = FrameQueue(10)
        first = asyncio.create_task(queue.get())
        await asyncio.sleep(0)
        queue.put_nowait("a")  # wakes the reader ...
        first.cancel()  # ... which is cancelled before it runs: "a" stays queued
        await asyncio.gather(first, return_exceptions=True)
        second = asyncio.create_task(queue.get())
        queue.put_nowait("b")
        return [await second, queue.get_nowait()]

    assert asyncio.run(scenario()) == ["a", "b"]


@settings(max_examples=100, deadline=None)
@given(
    batches=st.lists(st.integers(min_value=0, max_value=12), max_size=20),
    batch_writes=st.none() | st.lists(st.booleans(), min_size=1, max_size=8),
)
def test_the_pump_sends_every_frame_once_in_order(
    batches: list[int], batch_writes: list[bool] | None
) -> None:
    """One by one through ``send``, or (``batch_writes``) offered to a batch writer first, which in
    turn writes every frame up to the end marker or declines (0), as a socket that cannot write at
    once does."""

    async def scenario() -> tuple[list[str], list[str]]:
        sent: list[str] = []
        one_by_one = offers = 0

        async def send(frame: str) -> None:
            nonlocal one_by_one
            one_by_one += 1
            sent.append(frame)
            if len(sent) % 3 == 0:
                await asyncio.sleep(0)  # a send that waits (the transport's flow control)

        def write_queued(frames: deque[str | None]) -> int:
            nonlocal offers
            assert batch_writes is not None
            writes = batch_writes[offers % len(batch_writes)]
            offers += 1
            written = 0
            while writes and frames and frames[0] is not None:
                sent.append(cast(str, frames.popleft()))
                written += 1
            return written

        connection = StreamConnection(send, max_queue=1_000)
        pump = asyncio.create_task(connection.pump(None if batch_writes is None else write_queued))
        pushed: list[str] = []
        for size in batches:
            for _ in range(size):
                frame = f"f{len(pushed)}"
                pushed.append(frame)
                connection.push(frame if len(pushed) % 2 else {"frame": frame})
            await asyncio.sleep(0)
        connection.queue.put_nowait(None)
        await asyncio.wait_for(pump, 10)
        if batch_writes is not None and all(batch_writes):
            assert one_by_one == 0  # a writer that always writes leaves nothing to send one by one
        return sent, pushed

    sent, pushed = asyncio.run(scenario())
    assert [frame if frame.startswith("f") else frame[10:-2] for frame in sent] == pushed


def test_a_full_queue_closes_the_connection_and_ends_the_pump() -> None:
    async def scenario() -> tuple[list[str], bool, bool]:
        sent: list[str] = []

        async def send(frame: str) -> None:
            sent.append(frame)

        connection = StreamConnection(send, max_queue=3)
        for number in range(5):
            connection.push(str(number))
        await asyncio.wait_for(connection.pump(), 10)
        return sent, connection.closed, connection.overflowed

    # the fourth frame overflows: the oldest frame makes room for the end marker, nothing more is queued
    assert asyncio.run(scenario()) == (["1", "2"], True, True)
