"""``ExchangeService.durable``: waiters kept in position order whatever order they arrive in, each
released once its position is durable (by a durable round, or at once when it became durable while it
was being registered), none before."""

from __future__ import annotations

import asyncio
from pathlib import Path

from manticore_api.server import ServerOptions, build_service


class _Journal:
    """Stands in for the command journal: ``durable`` reads its positions from ``readings`` in turn
    (then keeps the last one), as if the journal's thread moved it between two reads."""

    def __init__(self, *readings: int) -> None:
        self.readings = list(readings)
        self.healthy = True

    @property
    def durable(self) -> int:
        if len(self.readings) > 1:
            return self.readings.pop(0)
        return self.readings[0]


async def _settle() -> None:
    """Let every woken task run (a released waiter's task resumes on the loop's next rounds)."""
    for _ in range(3):
        await asyncio.sleep(0)


def test_waiters_in_any_order_are_released_by_position(tmp_path: Path) -> None:
    service = build_service(ServerOptions(data_dir=tmp_path, fsync=False, require_auth=False))
    exchange = service.exchange
    journal = exchange.journal

    async def scenario() -> None:
        service._loop = asyncio.get_running_loop()
        stub = _Journal(0)
        exchange.journal = stub  # type: ignore[assignment]
        try:
            tasks = {p: asyncio.create_task(service.durable(p)) for p in (5, 3, 7, 4, 9)}
            await _settle()
            assert [entry[0] for entry in service._waiters] == [3, 4, 5, 7, 9]
            numbers = [entry[1] for entry in service._waiters]
            assert len(set(numbers)) == 5
            stub.readings = [4]
            service._on_round(4, [])
            await _settle()
            assert [p for p, task in tasks.items() if task.done()] == [3, 4]
            assert [entry[0] for entry in service._waiters] == [5, 7, 9]
            # Durable up to 8 between the first read (6) and the second: released at once, with the
            # waiters before it; 9 still waits.
            stub.readings = [6, 8]
            late = asyncio.create_task(service.durable(8))
            await _settle()
            assert late.done() and tasks[5].done() and tasks[7].done()
            assert not tasks[9].done()
            assert [entry[0] for entry in service._waiters] == [9]
            # Not durable at the second read either: it waits, in order.
            stub.readings = [8, 8]
            waiting = asyncio.create_task(service.durable(10))
            await _settle()
            assert not waiting.done()
            assert [entry[0] for entry in service._waiters] == [9, 10]
            stub.readings = [10]
            service._on_round(10, [])
            await asyncio.wait_for(asyncio.gather(waiting, *tasks.values()), 5)
            assert service._waiters == []
        finally:
            exchange.journal = journal
            if service._deadline_timer is not None:
                service._deadline_timer.cancel()
            await service.hub.close()
            exchange.close(checkpoint=False)

    asyncio.run(scenario())
