"""Helpers of the cluster tests: exchanges on a JetStream journal, raw reads of the log stream."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from manticore_cluster.log import JetStreamJournal, decode_batch
from manticore_cluster.natsconf import NatsOptions
from manticore_matching import Exchange
from tests.matching.exchange_streams import MARKETS, Clock


def journal_factory(options: NatsOptions, shard: str = "main", **kwargs: Any) -> Any:
    def build(on_durable: Any) -> JetStreamJournal:
        return JetStreamJournal(options, shard, on_durable=on_durable, **kwargs)

    return build


def js_exchange(
    data_dir: Path, clock: Clock, options: NatsOptions, shard: str = "main", **kwargs: Any
) -> Exchange:
    """An exchange (the test markets) whose journal is the shard's subject of ``options``' stream."""
    journal_kwargs = kwargs.pop("journal_kwargs", {})
    return Exchange(
        data_dir,
        markets=MARKETS,
        clock=clock,
        fsync=False,
        journal_factory=journal_factory(options, shard, **journal_kwargs),
        **kwargs,
    )


async def _raw_messages(options: NatsOptions, shard: str) -> list[tuple[int, dict[str, str], bytes]]:
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(list(options.servers))
    try:
        js = nc.jetstream()
        subject = options.log_subject(shard)
        out: list[tuple[int, dict[str, str], bytes]] = []
        sequence = 1
        while True:
            try:
                message = await js.get_msg(options.log_stream, sequence, subject=subject, next=True)
            except NotFoundError:
                return out
            out.append((int(message.seq or 0), dict(message.headers or {}), message.data or b""))
            sequence = int(message.seq or 0) + 1
    finally:
        await nc.close()


def raw_messages(options: NatsOptions, shard: str = "main") -> list[tuple[int, dict[str, str], bytes]]:
    """(stream sequence, headers, payload) of every message of the shard's subject, read one by one
    with direct gets (independent of the journal's reader)."""
    return asyncio.run(_raw_messages(options, shard))


def raw_records(options: NatsOptions, shard: str = "main") -> list[dict[str, Any]]:
    return [record for _, _, payload in raw_messages(options, shard) for record in decode_batch(payload)]
