"""The engines under test and the virtualenv each one runs in (created and installed on first use).

manticore-orderbook 1.0.1 installs a top-level package named ``manticore_orderbook``, the same name as
ours, so every engine gets its own interpreter:

* ``ours``: the project's interpreter (``.venv``, where ``pip install -e .`` put ``src/``);
* ``ours_compiled`` (optional): the same source compiled with mypyc, ``.venv-compiled`` (``make compiled``);
* ``legacy``: ``benchmarks/.venvs/legacy`` with ``manticore-orderbook==1.0.1``;
* ``lob``: ``benchmarks/.venvs/lob`` with ``limit-order-book==2.0.0``, an sdist whose C++ extension is
  compiled by pip (needs g++; its ``setup.py`` uses plain setuptools, no pybind11 or cmake).

Workers run with the repository root as working directory, so ``benchmarks`` is importable in every
venv while ``src/`` is not on the path (the competitors' venvs never see our package).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["COMPILED_PYTHON", "ENGINES", "REPO", "Engine", "EngineUnavailable", "ensure", "worker_env"]

REPO = Path(__file__).resolve().parent.parent
VENVS = REPO / "benchmarks" / ".venvs"
BUILD = REPO / "benchmarks" / ".build"


class EngineUnavailable(RuntimeError):
    """The engine cannot be run (not installed, failed to build, or not importable yet)."""


@dataclass(frozen=True)
class Engine:
    """One engine under test: key, adapter module, label, what to pip-install (competitors only)."""

    key: str
    adapter: str
    label: str
    requirement: str | None = None
    optional: bool = False  # skipped with a note (not an error) when its interpreter is missing

    @property
    def venv(self) -> Path | None:
        """The competitor's own virtualenv; None for our engine's variants."""
        return None if self.requirement is None else VENVS / self.key


ENGINES: dict[str, Engine] = {
    "ours": Engine("ours", "ours", "manticore (ours, pure Python)"),
    "ours_compiled": Engine("ours_compiled", "ours", "manticore (ours, mypyc)", optional=True),
    "legacy": Engine("legacy", "legacy", "manticore-orderbook 1.0.1", "manticore-orderbook==1.0.1"),
    "lob": Engine("lob", "lob", "limit-order-book 2.0.0 (C++)", "limit-order-book==2.0.0"),
}

#: The mypyc build of our engine (``make compiled``).
COMPILED_PYTHON = REPO / ".venv-compiled" / "bin" / "python"


def worker_env() -> dict[str, str]:
    """Environment for worker processes: no inherited PYTHONPATH/venv, fixed hash seed."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    env["PYTHONHASHSEED"] = "0"
    return env


def _describe(python: Path, key: str) -> dict[str, Any]:
    """Run the adapter's ``describe()`` in ``python``; raise EngineUnavailable with its stderr on failure."""
    proc = subprocess.run(
        [str(python), "-m", "benchmarks.worker", "--engine", key, "--mode", "describe"],
        cwd=REPO,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-6:])
        raise EngineUnavailable(f"{key}: adapter does not import with {python}:\n{tail}")
    info: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    info["python"] = str(python)
    return info


def _ours_compiled(log: Callable[[str], None]) -> dict[str, Any]:
    if not COMPILED_PYTHON.exists():
        raise EngineUnavailable(
            f"ours_compiled: {COMPILED_PYTHON.relative_to(REPO)} missing; run `make compiled`"
        )
    info = _describe(COMPILED_PYTHON, "ours")
    if not info.get("compiled"):
        raise EngineUnavailable(f"ours_compiled: {info['file']} is not the mypyc build; run `make compiled`")
    marker = COMPILED_PYTHON.parent.parent / ".installed"
    sources = list((REPO / "src" / "manticore_orderbook").glob("*.py"))
    newest = max((p.stat().st_mtime for p in sources), default=0.0)
    info["stale"] = not marker.exists() or marker.stat().st_mtime < newest
    if info["stale"]:
        log(
            "[yellow]ours_compiled: src/ changed after the last `make compiled`; "
            "measuring the old build[/yellow]"
        )
    return info


def _ours(log: Callable[[str], None]) -> dict[str, Any]:
    candidates = [Path(sys.executable), REPO / ".venv" / "bin" / "python"]
    errors = []
    for python in dict.fromkeys(candidates):
        if not python.exists():
            continue
        try:
            info = _describe(python, "ours")
        except EngineUnavailable as exc:
            errors.append(str(exc))
            continue
        if not Path(info["file"]).resolve().is_relative_to(REPO / "src"):
            errors.append(
                f"ours: {python} imports manticore_orderbook from {info['file']}, not {REPO / 'src'}"
            )
            continue
        if info.get("compiled"):
            log(
                "[yellow]ours: src/ holds compiled extension modules: "
                "the 'pure Python' figures are not[/yellow]"
            )
        return info
    hint = "run `make bench` (or `.venv/bin/pip install -e '.[dev,bench]'`) first"
    raise EngineUnavailable("\n".join([*errors, f"ours: not importable; {hint}"]))


def _pip(python: Path, args: list[str], logfile: Path) -> bool:
    with logfile.open("a") as fh:
        fh.write(f"\n$ {python} -m pip {' '.join(args)}\n")
        fh.flush()
        proc = subprocess.run(
            [str(python), "-m", "pip", *args], stdout=fh, stderr=subprocess.STDOUT, env=worker_env()
        )
    return proc.returncode == 0


def _competitor(engine: Engine, log: Callable[[str], None]) -> dict[str, Any]:
    venv = engine.venv
    assert venv is not None and engine.requirement is not None
    python = venv / "bin" / "python"
    marker = venv / ".bench-installed"
    if marker.exists() and marker.read_text().strip() == engine.requirement and python.exists():
        try:
            return _describe(python, engine.key)
        except EngineUnavailable:
            log(f"{engine.key}: existing venv is broken, reinstalling")
    BUILD.mkdir(parents=True, exist_ok=True)
    logfile = BUILD / f"pip-{engine.key}.log"
    logfile.write_text("")
    if not python.exists():
        log(f"{engine.key}: creating {venv.relative_to(REPO)}")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, env=worker_env())
    log(f"{engine.key}: pip install {engine.requirement} (log: {logfile.relative_to(REPO)})")
    ok = _pip(python, ["install", "--quiet", engine.requirement], logfile)
    if not ok:
        # An sdist that needs its build tools from the target env: retry without build isolation.
        log(f"{engine.key}: isolated build failed; retrying with --no-build-isolation")
        ok = _pip(python, ["install", "--quiet", "setuptools", "wheel"], logfile) and _pip(
            python, ["install", "--quiet", "--no-build-isolation", engine.requirement], logfile
        )
    if not ok:
        tail = "\n".join(logfile.read_text().strip().splitlines()[-15:])
        raise EngineUnavailable(f"{engine.key}: pip install {engine.requirement} failed:\n{tail}")
    info = _describe(python, engine.key)
    marker.write_text(engine.requirement + "\n")
    return info


def ensure(key: str, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Make ``key``'s interpreter ready; return its ``describe()`` info plus ``python`` (the interpreter).

    Raises :class:`EngineUnavailable` with a readable reason when that is not possible.
    """
    engine = ENGINES[key]
    if key == "ours":
        return _ours(log)
    if key == "ours_compiled":
        return _ours_compiled(log)
    return _competitor(engine, log)
