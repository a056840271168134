"""docs/binance.md's client snippets run as pasted against a real server (a funded user's key in the
environment variables the snippets read)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.binance.rest_support import Venue, start_venue

DOC = Path(__file__).resolve().parents[2] / "docs" / "binance.md"
SNIPPET = re.compile(r"```python\n(# snippet: ([\w.-]+)\n.*?)```", re.DOTALL)


def snippets() -> dict[str, str]:
    return {name: code for code, name in SNIPPET.findall(DOC.read_text())}


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venue]:
    yield from start_venue(tmp_path_factory.mktemp("docs"))


def test_the_doc_has_one_snippet_per_client() -> None:
    assert set(snippets()) == {"ccxt", "ccxt.pro", "python-binance"}


@pytest.mark.parametrize("name", ["ccxt", "ccxt.pro", "python-binance"])
def test_snippet_runs_as_pasted(venue: Venue, name: str, tmp_path: Path) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(snippets()[name])
    env = {
        **os.environ,
        "MANTICORE_URL": venue.url,
        "MANTICORE_API_KEY": venue.alice.api_key,
        "MANTICORE_API_SECRET": venue.alice.api_secret,
    }
    held_before = venue.alice.balances()["USD"]["held"]
    result = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout
    assert "open" in output or "NEW" in output, output
    assert venue.alice.balances()["USD"]["held"] == held_before  # the snippet cancelled what it placed
