"""The server benchmark's paced window: the serving process's CPU cell, a fixed paced rate and the
per-request timeline of the paced client (issue 17, session 22)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path

from benchmarks.server import core_busy_seconds, process_cpu_seconds, server_cpu_cell
from benchmarks.server_client import main as client_main


def test_the_server_cpu_cell_gives_microseconds_per_request_and_the_share() -> None:
    assert server_cpu_cell({"server_cpu": {"us_per_request": 212.4, "share": 0.634}}) == "212 (63%)"
    assert server_cpu_cell({}) == "n/a"
    both = {"server_cpu": {"us_per_request": 212.4, "share": 0.634}, "core_busy": 0.876}
    assert server_cpu_cell(both) == "212 (63%; core 88% busy)"


def test_core_busy_seconds_reads_one_cpu_and_grows_while_this_process_spins_on_it() -> None:
    assert core_busy_seconds(None) is None
    assert core_busy_seconds("0-1") is None  # not one CPU
    allowed = os.sched_getaffinity(0)
    cpu = str(min(allowed))
    os.sched_setaffinity(0, {int(cpu)})
    try:
        before = core_busy_seconds(cpu)
        assert before is not None and before[1] >= before[0] >= 0.0
        sum(range(20_000_000))  # ~0.3 s of CPU on that core
        after = core_busy_seconds(cpu)
    finally:
        os.sched_setaffinity(0, allowed)
    assert after is not None and after[0] - before[0] >= 0.1 and after[1] > before[1]


def test_process_cpu_seconds_counts_this_process_and_is_zero_for_a_gone_one() -> None:
    before = process_cpu_seconds(os.getpid())
    sum(range(3_000_000))
    assert process_cpu_seconds(os.getpid()) > before >= 0.0
    assert process_cpu_seconds(2**22 + 12345) == 0.0  # beyond pid_max's default: no such process


def _serve_201(port_holder: list[int], ready: threading.Event, stop: threading.Event) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def run() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_holder.append(server.sockets[0].getsockname()[1])
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.02)
        server.close()

    asyncio.run(run())


def test_the_paced_client_writes_every_request_s_due_sent_and_answered_times(
    tmp_path: Path, capsys: object
) -> None:
    port: list[int] = []
    ready, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=_serve_201, args=(port, ready, stop), daemon=True)
    thread.start()
    assert ready.wait(10)
    requests = tmp_path / "requests.tsv"
    requests.write_text("".join(f'\t\t\tu{n}\t{{"n": {n}}}\n' for n in range(50)))
    timeline = tmp_path / "timeline.json"
    try:
        client_main(
            [
                "paced",
                "--url",
                f"http://127.0.0.1:{port[0]}",
                "--requests",
                str(requests),
                "--rate",
                "500",
                "--connections",
                "4",
                "--timeline",
                str(timeline),
            ]
        )
    finally:
        stop.set()
        thread.join(10)
    rows = json.loads(timeline.read_text())
    assert len(rows) == 50
    dues = [row[0] for row in rows]
    assert dues == sorted(dues)
    assert abs((dues[-1] - dues[0]) - 49 / 500) < 1e-6  # due every 1/rate seconds
    assert all(row[3] == 201 for row in rows)
    assert all(row[1] <= row[2] for row in rows)  # sent before answered
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])  # type: ignore[attr-defined]
    assert set(result["client_gc"]) == {"collections", "max_pause_ms", "pauses_over_10ms"}
