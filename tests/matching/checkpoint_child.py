"""A child process for the background-checkpoint crash tests: runs a command stream on an exchange
whose automatic checkpoints are written in the background, and reports on stdout.

``python -m tests.matching.checkpoint_child <data_dir> <seed> <length> <every> <stage> <occurrence>``

Lines: ``STAGE <stage> <position>`` from the checkpoint hook; ``ACK <index>`` once command ``index`` of
``make_stream(seed, length)`` has returned and everything journaled is durable (acknowledged). When the
hook reaches ``<stage>`` for the ``<occurrence>``-th time it reports it and then blocks forever (that
background checkpoint stays at that stage while commands go on), so the parent's SIGKILL lands there.
Until then, while a checkpoint is in flight, each command waits for the hook's next stage (at most 20
ms), so that the stream cannot end before the stage is held however slow the writer is on a loaded
machine. ``<stage>`` ``none`` blocks nowhere.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from tests.matching.exchange_streams import Clock, apply, make_stream, new_exchange

_output = threading.Lock()


def say(line: str) -> None:
    """One whole line on stdout (the hook's thread and the command thread both report)."""
    with _output:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def main() -> None:
    data_dir, seed, length, every, block_stage, occurrence = sys.argv[1:7]
    seen: dict[str, int] = {}
    forever = threading.Event()
    progress = threading.Event()  # set at each stage the hook reports
    held = threading.Event()  # set once the hook blocks at <stage>

    def hook(stage: str, position: int) -> None:
        seen[stage] = seen.get(stage, 0) + 1
        say(f"STAGE {stage} {position}")
        progress.set()
        if stage == block_stage and seen[stage] == int(occurrence):
            held.set()
            forever.wait()

    clock = Clock()
    exchange = new_exchange(Path(data_dir), clock, checkpoint_every=int(every), checkpoint_hook=hook)
    exchange.open()
    say("OPEN")
    for index, command in enumerate(make_stream(int(seed), int(length))):
        apply(exchange, clock, command)
        exchange.wait_durable(exchange.journal.appended, 30)
        say(f"ACK {index}")
        if exchange.checkpoint_in_flight:
            if block_stage == "none" or held.is_set():
                time.sleep(0.001)  # give the checkpoint's processes a share of a busy machine
            else:
                # Until the checkpoint holds at <stage>, a command waits for its next stage (at most
                # 20 ms): on a loaded machine the idle-priority writer is slow, and the stream must not
                # end before the stage is held. Commands still go on while it is in flight.
                progress.wait(0.02)
                progress.clear()
    say("END")
    forever.wait()


if __name__ == "__main__":
    main()
