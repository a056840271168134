"""Every ```python and ```bash snippet of README.md runs as pasted against ``make run``.

``make run`` is ``manticore serve --demo`` in the checkout, so the test starts exactly that in a fresh
working directory (relative paths such as ``manticore-data/admin-credentials.json`` and
``.venv/bin/manticore`` resolve there as in a checkout) on port 8000. When 8000 is taken (another
server, another test run on this machine) it uses a free port and rewrites ``127.0.0.1:8000`` in the
snippets to it: the only change made to a snippet. Each snippet runs twice, since users paste them
again. A snippet is left out only behind a ``<!-- readme-test: skip (reason) -->`` line.
"""

from __future__ import annotations

import ast
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api.support import free_port

README = Path(__file__).resolve().parents[2] / "README.md"
SKIP_MARKER = "<!-- readme-test: skip ("
_FENCE = re.compile(r"^```(python|bash)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Snippet:
    language: str
    code: str
    line: int
    skip_reason: str | None


def readme_snippets() -> list[Snippet]:
    text = README.read_text()
    found = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        reason = (
            before[len(SKIP_MARKER) :].rstrip(" ->").rstrip(")") if before.startswith(SKIP_MARKER) else None
        )
        line = text.count("\n", 0, match.start()) + 1
        found.append(Snippet(match.group(1), match.group(2), line, reason))
    return found


SNIPPETS = [snippet for snippet in readme_snippets() if snippet.skip_reason is None]


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class DemoServer:
    workdir: Path
    port: int

    def as_pasted(self, code: str) -> str:
        return code if self.port == 8000 else code.replace("127.0.0.1:8000", f"127.0.0.1:{self.port}")


@pytest.fixture(scope="module")
def make_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    workdir = tmp_path_factory.mktemp("checkout")
    (workdir / ".venv").symlink_to(Path(sys.prefix))  # .venv/bin/manticore, .venv/bin/python
    port = 8000 if _port_free(8000) else free_port()
    log = workdir / "server.log"
    command = [sys.executable, "-m", "manticore_api.cli", "serve", "--demo", "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=workdir, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield DemoServer(workdir, port)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_the_readme_shows_the_server_from_python_and_the_command_line() -> None:
    everything = readme_snippets()
    assert [s.skip_reason for s in everything if s.skip_reason is not None] == [
        "the set-up commands themselves; the test starts `manticore serve --demo`"
    ]
    server_snippets = [s for s in SNIPPETS if "127.0.0.1:8000" in s.code or ".venv/bin/manticore" in s.code]
    assert {s.language for s in server_snippets} == {"python", "bash"}
    for word in ("user add", "deposit", "api-key create", "markets"):
        assert any(f"manticore {word}" in s.code for s in SNIPPETS), word


def _imports(code: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.split(".")[0])
    return modules


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"README.md:{s.line}-{s.language}" for s in SNIPPETS])
def test_snippet_runs_as_pasted(snippet: Snippet, make_run: DemoServer) -> None:
    code = make_run.as_pasted(snippet.code)
    if snippet.language == "python":
        # `make run` installs the runtime only: a snippet may use the standard library and Manticore.
        foreign = {
            m for m in _imports(code) if m not in sys.stdlib_module_names and not m.startswith("manticore")
        }
        assert not foreign, f"README snippet imports what the runtime does not install: {foreign}"
        command = [str(make_run.workdir / ".venv/bin/python"), "-c", code]
    else:
        command = ["bash", "-e", "-o", "pipefail", "-c", code]
    for attempt in (1, 2):
        result = subprocess.run(
            command, cwd=make_run.workdir, capture_output=True, text=True, timeout=180, check=False
        )
        assert result.returncode == 0, f"run {attempt}:\n{result.stdout}\n{result.stderr}"
        assert "Error" not in result.stderr, result.stderr
