"""Helpers for the API tests: signed requests with an API key, and the real server in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from manticore_api.server import ADMIN_CREDENTIALS
from manticore_auth import current_timestamp, sign_request


class SignedClient:
    """Sends requests signed with one API key (``X-MC-*`` headers) through an httpx-style client.

    The server refuses a signature it has accepted before, and identical requests signed in the same
    millisecond have the same one: the client gives a request identical to its last one a later timestamp.
    """

    def __init__(self, http: Any, api_key: str, api_secret: str) -> None:
        self.http = http
        self.api_key = api_key
        self.api_secret = api_secret
        self._last_signed: tuple[str, str, bytes, int] = ("", "", b"", 0)

    def fresh_timestamp(self, method: str, path: str, body: bytes = b"") -> str:
        """Now in milliseconds, or 1 ms after the last stamp if this request is the same as the last one."""
        stamp = int(current_timestamp())
        last_method, last_path, last_body, last_stamp = self._last_signed
        if (method, path, body) == (last_method, last_path, last_body) and stamp <= last_stamp:
            stamp = last_stamp + 1
        self._last_signed = (method, path, body, stamp)
        return str(stamp)

    def headers(
        self, method: str, path: str, body: bytes = b"", timestamp: str | None = None
    ) -> dict[str, str]:
        stamp = timestamp or self.fresh_timestamp(method, path, body)
        return {
            "X-MC-APIKEY": self.api_key,
            "X-MC-TIMESTAMP": stamp,
            "X-MC-SIGNATURE": sign_request(self.api_secret, stamp, method, path, body),
            "content-type": "application/json",
        }

    def request(self, method: str, path: str, payload: Any = None) -> httpx.Response:
        body = b"" if payload is None else json.dumps(payload).encode()
        return self.http.request(method, path, content=body, headers=self.headers(method, path, body))

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def post(self, path: str, payload: Any) -> httpx.Response:
        return self.request("POST", path, payload)

    def patch(self, path: str, payload: Any) -> httpx.Response:
        return self.request("PATCH", path, payload)

    def delete(self, path: str) -> httpx.Response:
        return self.request("DELETE", path)


def new_user(admin: SignedClient, username: str, deposits: dict[str, str] | None = None) -> SignedClient:
    """Create a trader through the admin API, fund it, and return a client signed with its key."""
    created = admin.post("/api/users", {"username": username, "password": f"{username}-password"})
    assert created.status_code == 201, created.text
    data = created.json()
    for asset, amount in (deposits or {}).items():
        response = admin.post("/api/deposits", {"user_id": data["user_id"], "asset": asset, "amount": amount})
        assert response.status_code == 201, response.text
    return SignedClient(admin.http, data["api_key"], data["api_secret"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_healthy(command: list[str], log_path: Path, url: str, what: str) -> subprocess.Popen[bytes]:
    """Start ``command`` (output appended to ``log_path``) and wait up to 60 s until ``url``/api/health
    answers 200; RuntimeError with the log's tail if it exits or never does."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: {log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not become healthy: {log_path.read_text()[-3000:]}")


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
        self.process = start_healthy(command, self.log, self.url, "server")

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
