"""``manticore shard`` whose first lease grant is answered late (a busy machine), for a regression test.

Usage: ``python -m tests.cluster.slow_grant_child <delay seconds> shard <manticore shard options>``.
The shard's leases are :class:`SlowFirstGrant`: the first ``kv.create`` is the real one on the real
server, answered ``delay`` seconds after the server granted it. Everything else is the real CLI."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import manticore_cluster.shard
from manticore_api.cli import main as cli_main
from manticore_cluster.lease import Lease

log = logging.getLogger("manticore_cluster")


class SlowFirstGrant(Lease):
    """A lease whose first ``create`` is answered :attr:`delay` seconds after the server granted it."""

    delay = 0.0
    answered_late = False

    def __init__(self, kv: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(kv, *args, **kwargs)
        real_create = kv.create

        async def create(*create_args: Any, **create_kwargs: Any) -> int:
            revision = int(await real_create(*create_args, **create_kwargs))
            if not SlowFirstGrant.answered_late:
                SlowFirstGrant.answered_late = True
                log.info("test: the grant of revision %d is answered %.2f s late", revision, self.delay)
                await asyncio.sleep(self.delay)
            return revision

        kv.create = create


def main() -> None:
    SlowFirstGrant.delay = float(sys.argv[1])
    manticore_cluster.shard.Lease = SlowFirstGrant  # type: ignore[misc]
    sys.argv = [sys.argv[0], *sys.argv[2:]]
    cli_main()


if __name__ == "__main__":
    main()
