"""N rounds of public reads (``GET /api/orderbook``, ``/api/trades``, ``/api/markets``) through the
in-process ASGI app of ``manticore serve`` (no HTTP server, no auth), for instruction counts of the
API's read path::

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out python -m benchmarks.api_read_instructions N

Run it with two values of N: (instructions(2N) - instructions(N)) / N is the cost of one round.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile

from benchmarks.api_instructions import _call
from manticore_api.app import create_app
from manticore_api.server import ServerOptions, build_service

PATHS = ("/api/orderbook", "/api/trades", "/api/markets")


async def run(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        service = build_service(ServerOptions(data_dir=directory, require_auth=False, fsync=False))
        app = create_app(service)
        await service.start()
        for _ in range(rounds):
            for path in PATHS:
                answer = await _call(app, "GET", path)
                assert answer["status"] == 200, answer
        await service.stop()
        service.auth.close()


def main() -> None:
    logging.disable(logging.WARNING)
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 200))


if __name__ == "__main__":
    main()
