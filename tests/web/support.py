"""Helpers for the browser tests: the real server in a subprocess, signed API calls, the browser."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from manticore_api.server import ADMIN_CREDENTIALS
from tests.api.support import SignedClient

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
SCREENSHOT = Path(__file__).parents[2] / "docs" / "screenshot.png"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``manticore serve`` over one data directory and one port, restartable (``extra``: e.g. --demo)."""

    def __init__(self, data_dir: Path, extra: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.extra = extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"{data_dir.name}-server.log"

    def start(self) -> None:
        command = [sys.executable, "-m", "manticore_api.cli", "serve", "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir), "--log-level", "warning", *self.extra]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not become healthy: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def admin(self, http: httpx.Client) -> SignedClient:
        credentials = json.loads((self.data_dir / ADMIN_CREDENTIALS).read_text())
        return SignedClient(http, credentials["api_key"], credentials["api_secret"])


def create_user(
    admin: SignedClient, username: str, password: str, deposits: dict[str, str]
) -> dict[str, str]:
    """A funded trader with a password; returns the API's answer (user_id, api_key, api_secret)."""
    created = admin.post("/api/users", {"username": username, "password": password})
    assert created.status_code == 201, created.text
    user: dict[str, str] = created.json()
    for asset, amount in deposits.items():
        answer = admin.post("/api/deposits", {"user_id": user["user_id"], "asset": asset, "amount": amount})
        assert answer.status_code == 201, answer.text
    return user
