"""Requests to a shard's leader that a new leader's announcement cuts short.

A shard instance that becomes the leader publishes an announcement on ``<prefix>.leader.<shard>``
(:func:`~.protocol.leader_subject`) once it serves (:mod:`.shard`). A request in flight to the leader
that died waits for an answer that never comes; without the announcement it is sent again only after
its attempt timeout (5 s on a gateway), and then queues behind everything sent meanwhile. With it, the
sender (a gateway's :class:`~.remote.RemoteExchange`, the account shard delivering routes to a market
shard) follows the subject and, on each announcement, abandons every attempt still waiting and sends
it again at once, with the same body marked as a retry: the same command id, so the new leader answers
a command the old one made durable with its original result and applies one it never made durable once
(:mod:`manticore_matching.command_ids`). Requests pausing between attempts (no leader was subscribed)
are woken too.

:class:`LeaderNews` is that bookkeeping for one shard; use it on one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib

from nats.aio.client import Client
from nats.aio.msg import Msg

__all__ = ["LeaderChanged", "LeaderNews"]


class LeaderChanged(Exception):
    """A new leader announced itself while the attempt waited for its answer: send it again now."""


class LeaderNews:
    """The attempts waiting for one shard's leader (see the module doc)."""

    def __init__(self) -> None:
        self._attempts: set[asyncio.Task[Msg]] = set()
        self._news: asyncio.Future[None] | None = None
        #: announcements received
        self.announcements = 0
        #: attempts abandoned because of one
        self.abandoned = 0

    async def request(self, nc: Client, subject: str, body: bytes, timeout: float) -> Msg:
        """``nc.request(subject, body, timeout)``; LeaderChanged if an announcement came first."""
        attempt = asyncio.ensure_future(nc.request(subject, body, timeout=timeout))
        attempts = self._attempts
        attempts.add(attempt)
        try:
            # asyncio.wait, not await: cancelling the caller must not look like an announcement
            await asyncio.wait((attempt,))
        finally:
            attempts.discard(attempt)
            if not attempt.done():
                attempt.cancel()  # the caller was cancelled
        if attempt.cancelled():
            self.abandoned += 1
            raise LeaderChanged
        return attempt.result()

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if a new leader announces itself meanwhile."""
        news = self._news
        if news is None or news.done():
            news = self._news = asyncio.get_running_loop().create_future()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(news), seconds)

    def announced(self) -> None:
        """A new leader serves: cut every waiting attempt and pause short (on the loop)."""
        self.announcements += 1
        for attempt in list(self._attempts):
            attempt.cancel()
        news, self._news = self._news, None
        if news is not None and not news.done():
            news.set_result(None)
