"""Child process of the kill -9 test: an exchange on a JetStream journal that runs a command stream
without waiting for each command (but never more than ``IN_FLIGHT`` records ahead of durability),
and prints ``durable <position>`` (flushed) each time its journal's durable position
advances. Usage: ``python -m tests.cluster.appender_child <nats url> <prefix> <data dir> <seed> <count>``."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from manticore_cluster.natsconf import NatsOptions
from tests.cluster.helpers import js_exchange
from tests.matching.exchange_streams import Clock, apply, make_stream

IN_FLIGHT = 200


def main() -> None:
    url, prefix, data_dir, seed, count = sys.argv[1:6]
    options = NatsOptions(servers=(url,), prefix=prefix)
    clock = Clock()
    exchange = js_exchange(Path(data_dir), clock, options, checkpoint_every=0)
    exchange.open()

    def report() -> None:
        said = 0
        while True:
            durable = exchange.journal.durable
            if durable > said:
                sys.stdout.write(f"durable {durable}\n")
                sys.stdout.flush()
                said = durable
            time.sleep(0.001)

    threading.Thread(target=report, daemon=True).start()
    for command in make_stream(int(seed), int(count)):
        # Stay at most IN_FLIGHT records ahead of durability, so the parent's kill always lands mid-stream
        # whatever the machine's speed, with records still in flight.
        while exchange.journal.appended - exchange.journal.durable > IN_FLIGHT:
            time.sleep(0.001)
        apply(exchange, clock, command)
    sys.stdout.write("finished\n")
    sys.stdout.flush()
    time.sleep(60)  # wait to be killed


if __name__ == "__main__":
    main()
