"""Instructions per request attempt of a gateway: ``nc.request`` alone against the same request through
:class:`manticore_cluster.leader_news.LeaderNews` (the bookkeeping that lets a new leader's announcement
re-send requests in flight), session 13 (h5).

How: a private ``nats-server`` (free port, temporary store, killed by pid at the end); a child process
with two NATS connections on one loop, a responder answering ``{}`` and a requester sending N requests
one after the other, runs under ``valgrind --tool=callgrind`` for N = ``--small`` and ``--large`` in
each mode; the per-request figure is the slope ``(large - small) / (N_large - N_small)``, so start-up
and connection costs cancel. The responder's work is in both modes alike.

    .venv/bin/python -m benchmarks.cluster_request_instructions [--small 300] [--large 1200]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.cluster_procs import NatsServer

ROOT = Path(__file__).resolve().parent.parent
_TOTAL = re.compile(r"Collected : (\d+)")
_CHILD = """
import asyncio, sys
sys.path.insert(0, {root!r} + "/src")
import nats
from manticore_cluster.leader_news import LeaderNews

async def main():
    responder = await nats.connect({url!r})
    requester = await nats.connect({url!r})
    async def answer(msg):
        await responder.publish(msg.reply, b"{{}}")
    await responder.subscribe("bench.request", cb=answer)
    await responder.flush()
    news = LeaderNews()
    for _ in range({n}):
        if {through_news}:
            await news.request(requester, "bench.request", b"{{}}", 5.0, 0.0)
        else:
            await requester.request("bench.request", b"{{}}", timeout=5.0)
    await requester.close()
    await responder.close()

asyncio.run(main())
"""


def count(python: str, url: str, n: int, through_news: bool) -> int:
    """Instructions of one child process sending ``n`` requests (valgrind's total)."""
    code = _CHILD.format(root=str(ROOT), url=url, n=n, through_news=through_news)
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out", python, "-c", code],
            capture_output=True,
            text=True,
            check=False,
        )
    found = _TOTAL.findall(out.stderr)
    if out.returncode != 0 or not found:
        raise SystemExit(f"valgrind run failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return int(found[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=300)
    parser.add_argument("--large", type=int, default=1200)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        nats = NatsServer(Path(tmp), None)
        try:
            rows = []
            for through_news in (False, True):
                small = count(args.python, nats.url, args.small, through_news)
                large = count(args.python, nats.url, args.large, through_news)
                rows.append((through_news, small, large, (large - small) / (args.large - args.small)))
        finally:
            nats.kill()
    print("| request | N small | N large | instructions per request (slope) |")
    print("|---|---:|---:|---:|")
    for through_news, small, large, slope in rows:
        name = "LeaderNews.request" if through_news else "nc.request"
        print(f"| {name} | {small:,} | {large:,} | {slope:,.0f} |")
    print(f"\nLeaderNews costs {rows[1][3] - rows[0][3]:,.0f} instructions per request attempt.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
