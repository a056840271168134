"""docs/binance.md's python-binance streaming snippet runs as pasted against a real server.

The block after the ``<!-- tested: tests/binance/test_ws_docs.py ... -->`` marker runs in a fresh Python
process with a funded user's key in the environment variables it reads (as the REST snippets do).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.support import Server
from tests.binance.ws_support import traders

DOC = Path(__file__).resolve().parents[2] / "docs" / "binance.md"
MARKER = "<!-- tested: tests/binance/test_ws_docs.py"


def streaming_snippet(text: str) -> str:
    """The fenced Python block that follows the marker."""
    after = text[text.index(MARKER) :]
    start = after.index("```python\n") + len("```python\n")
    return after[start : after.index("\n```", start)] + "\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "data")
    running.start()
    yield running
    running.stop()


def test_python_binance_streaming_snippet_runs_as_pasted(server: Server, tmp_path: Path) -> None:
    with httpx.Client(base_url=server.url, timeout=15) as http:
        (user,) = traders(server, http, "doc-reader")
        held_before = user.get("/api/balances").json()["balances"]["USD"]["held"]
        script = tmp_path / "snippet.py"
        script.write_text(streaming_snippet(DOC.read_text()))
        env = {
            **os.environ,
            "MANTICORE_URL": server.url,
            "MANTICORE_API_KEY": user.api_key,
            "MANTICORE_API_SECRET": user.api_secret,
        }
        ran = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
        )
        assert ran.returncode == 0, ran.stderr[-3000:]
        lines = ran.stdout.splitlines()
        assert lines[0].startswith("top 5: {'lastUpdateId': ")
        assert lines[1:] == ["executionReport NEW NEW True", "executionReport CANCELED CANCELED"]
        assert user.get("/api/balances").json()["balances"]["USD"]["held"] == held_before
