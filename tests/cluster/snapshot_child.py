"""A child process that uploads a snapshot and blocks half-way through it (for a ``kill -9`` test).

Usage: ``python -m tests.cluster.snapshot_child <nats url> <prefix> <shard> <position> <body file>``.
It prints ``half`` (flushed) once half of the body's chunks are published, then waits to be killed."""

from __future__ import annotations

import hashlib
import sys
import threading
from pathlib import Path

from manticore_cluster.natsconf import NatsOptions
from manticore_cluster.snapshots import SnapshotStore, _describe, snapshot_name


class HalfReader:
    """A reader whose ``readinto`` gives the first half of ``body`` and then blocks for good."""

    def __init__(self, body: bytes, chunk: int) -> None:
        self.body = body
        self.offset = 0
        self.half = len(body) // 2
        self.chunk = chunk

    def readinto(self, buffer: bytearray) -> int:
        if self.offset >= self.half:
            print("half", flush=True)
            threading.Event().wait()
        size = min(len(buffer), self.half - self.offset)
        buffer[:size] = self.body[self.offset : self.offset + size]
        self.offset += size
        return size


def main() -> None:
    url, prefix, shard, position, path = sys.argv[1:6]
    body = Path(path).read_bytes()
    store = SnapshotStore(NatsOptions(servers=(url,), prefix=prefix), shard)
    store.snapshots()  # connect (and create the bucket)
    description = _describe(shard, int(position), hashlib.sha256(body).hexdigest(), None)
    name = snapshot_name(shard, int(position))
    store._call(store._put(name, HalfReader(body, 128 * 1024), description))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
