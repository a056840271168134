"""What the server benchmarks share: a free port, a process's CPU time, and signed native-API requests.

Used by :mod:`benchmarks.server`, :mod:`benchmarks.profile_server`, :mod:`benchmarks.ws_orders` and the
Binance benchmarks, so that every one of them signs requests the way a real client of the native API
does (``X-MC-APIKEY``, ``X-MC-TIMESTAMP``, ``X-MC-SIGNATURE`` over method, path and body).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path

import httpx

from manticore_auth import current_timestamp, sign_request

__all__ = ["cpu_seconds", "free_port", "signed_headers", "signed_request"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                for child in (task / "children").read_text().split():
                    found += [int(child), *_descendants(int(child))]
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads) and of its live descendants (a
    server may move work into child processes), from /proc; 0 for a process that is gone."""
    total = 0.0
    for process in (pid, *_descendants(pid)):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def signed_headers(key: str, secret: str, method: str, path: str, body: bytes) -> dict[str, str]:
    """Headers of a JSON request signed now with the API key ``key`` and its ``secret``."""
    stamp = current_timestamp()
    return {
        "X-MC-APIKEY": key,
        "X-MC-TIMESTAMP": stamp,
        "X-MC-SIGNATURE": sign_request(secret, stamp, method, path, body),
        "content-type": "application/json",
    }


def signed_request(
    http: httpx.Client, key: str, secret: str, method: str, path: str, payload: object
) -> httpx.Response:
    """Send ``payload`` as JSON with ``method`` to ``path``, signed with ``key`` and ``secret``."""
    body = json.dumps(payload).encode()
    return http.request(method, path, content=body, headers=signed_headers(key, secret, method, path, body))
