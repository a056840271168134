"""``LoopHandoff``: batches put from another thread reach the loop complete and in order, however many
arrive before the loop runs, and again after each delivery; nothing is put once the loop is closed."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from manticore_api.handoff import LoopHandoff


def _put_from_thread(handoff: LoopHandoff, batches: list[list[dict[str, Any]]]) -> None:
    thread = threading.Thread(target=lambda: [handoff.put(batch) for batch in batches])
    thread.start()
    thread.join()  # on the loop's thread: the loop cannot run meanwhile


def test_batches_arrive_in_order_however_many_wait() -> None:
    async def scenario() -> list[list[dict[str, Any]]]:
        loop = asyncio.get_running_loop()
        got: list[list[dict[str, Any]]] = []
        handoff = LoopHandoff(lambda: loop, got.append)
        _put_from_thread(handoff, [[{"n": n}] for n in range(500)])
        for _ in range(3):
            await asyncio.sleep(0)
        assert len(got) == 500
        _put_from_thread(handoff, [[{"n": n}] for n in range(500, 510)])
        for _ in range(3):
            await asyncio.sleep(0)
        return got

    got = asyncio.run(scenario())
    assert got == [[{"n": n}] for n in range(510)]


def test_nothing_is_delivered_without_a_running_loop() -> None:
    got: list[list[dict[str, Any]]] = []
    LoopHandoff(lambda: None, got.append).put([{"n": 1}])
    loop = asyncio.new_event_loop()
    loop.close()
    LoopHandoff(lambda: loop, got.append).put([{"n": 2}])
    assert got == []
