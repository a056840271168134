"""The order book compiled with Cython, measured beside the mypyc build and the pure-Python source.

Issue 14 asks for "a Cython build of the same module for comparison". This script makes one in a
temporary directory and measures it; nothing of it is installed or shipped (the package's build stays
mypyc's, setup.py).

Usage (from the repository root, with the development venv's interpreter; ``make compiled`` first for
the mypyc build)::

    .venv/bin/python -m benchmarks.cython_compare                      # user mix: instructions + time
    .venv/bin/python -m benchmarks.cython_compare --subscriber --rounds 7
    .venv/bin/python -m benchmarks.cython_compare --keep /tmp/cy       # keep (and reuse) the build
    .venv/bin/python -m benchmarks.cython_compare --no-time --workload scale_100000

What it does:

1. Builds: a scratch venv in the temporary directory with :data:`CYTHON_VERSION` (pinned) and
   setuptools; a copy of ``src/manticore_orderbook``; every module that the mypyc build compiles
   (setup.py's list: all but ``INTERPRETED``) cythonized in pure Python mode, unchanged (``language_level
   3``, Cython's default directives, so annotations of ``float``/``int`` locals type them), and built
   in place next to the copied sources with the C compiler setup.py would use. ``--keep DIR`` builds
   there instead and reuses a build made by the same Cython version from the same sources.
2. Checks that each build loads what it should (``manticore_orderbook.book`` from the Cython build's
   directory, an extension module; the mypyc build's from ``.venv-compiled``; the source from ``src/``).
3. Counts instructions per op of the workload for each build with :mod:`benchmarks.instructions` (the
   Cython build runs under this interpreter with its directory first on ``PYTHONPATH``).
4. Times each build ``--rounds`` times, the builds interleaved within a round, each run a fresh
   :mod:`benchmarks.worker` process (``--clock cpu`` by default: the machine is shared), and prints
   per build the median [min-max] ns per op and the ratios of medians with the range of per-round
   ratios.

The Cython build takes the branches of the source meant for compiled code (``numbers._INTERPRETED`` is
False: a Cython function is not a ``types.FunctionType``), as the mypyc build does.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.instructions import workload_path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "manticore_orderbook"
MYPYC_PYTHON = ROOT / ".venv-compiled" / "bin" / "python"

#: The Cython release the comparison was made with (docs/performance.md, session 16 h6).
CYTHON_VERSION = "3.3.1"

#: Written into the build directory and run by the scratch venv's interpreter.
_SETUP = """
import sys
from Cython.Build import cythonize
from setuptools import Extension, setup

modules = {modules!r}
extensions = [
    Extension(f"manticore_orderbook.{{name}}", [f"manticore_orderbook/{{name}}.py"]) for name in modules
]
setup(
    name="manticore-orderbook-cython-comparison",
    ext_modules=cythonize(extensions, compiler_directives={directives!r}, nthreads=2, quiet=True),
    script_args=["build_ext", "--inplace", "-j", "2"],
)
"""

_INSTRUCTIONS = re.compile(r"([\d,]+) instructions/op")


def compiled_modules() -> list[str]:
    """The modules that the mypyc build compiles (setup.py's list), so that both builds compile the same."""
    spec = importlib.util.spec_from_file_location("manticore_setup_for_cython", ROOT / "setup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names: list[str] = module.compiled_modules()
    return names


def _fingerprint(modules: list[str], directives: dict[str, object]) -> str:
    """What a build depends on: the Cython version, the directives and every source byte."""
    digest = hashlib.sha256(f"{CYTHON_VERSION} {sorted(directives.items())} {modules}".encode())
    for path in sorted(SOURCE.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build(directory: Path, directives: dict[str, object]) -> Path:
    """Build the Cython extension modules under ``directory``; return the directory to put on PYTHONPATH.

    A build already there made from the same sources, Cython version and directives is reused.
    """
    modules = compiled_modules()
    tree = directory / "build"
    stamp = directory / "fingerprint"
    fingerprint = _fingerprint(modules, directives)
    if stamp.exists() and stamp.read_text() == fingerprint:
        print(f"reusing the Cython build in {tree}")
        return tree
    venv = directory / "venv"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} with Cython=={CYTHON_VERSION}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"cython=={CYTHON_VERSION}", "setuptools"],
            check=True,
        )
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(SOURCE, tree / "manticore_orderbook", ignore=shutil.ignore_patterns("__pycache__"))
    (tree / "setup_cython.py").write_text(_SETUP.format(modules=modules, directives=directives))
    print(f"cythonizing and compiling {len(modules)} modules in {tree} (a few minutes)", flush=True)
    log = directory / "build.log"
    with log.open("w") as out:
        done = subprocess.run(
            [str(python), "setup_cython.py"], cwd=tree, stdout=out, stderr=subprocess.STDOUT
        )
    if done.returncode != 0:
        raise SystemExit(f"the Cython build failed; see {log}")
    stamp.write_text(fingerprint)
    return tree


def _env(pythonpath: Path | None) -> dict[str, str]:
    """This process's environment with PYTHONPATH set to ``pythonpath`` only (or removed), and string
    hashing fixed (``PYTHONHASHSEED=0`` unless set): with random seeds the order index's probes, and
    so the instruction counts, differ from run to run by up to ~3% (measured on the user mix)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.setdefault("PYTHONHASHSEED", "0")
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return env


def check_loads(name: str, python: str, pythonpath: Path | None, expect_in: Path, extension: bool) -> None:
    """Stop unless ``python`` imports ``manticore_orderbook.book`` from under ``expect_in`` as expected."""
    code = "import manticore_orderbook.book as b; print(b.__file__)"
    out = subprocess.run(
        [python, "-c", code], env=_env(pythonpath), cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = Path(out.stdout.strip()).resolve()
    is_extension = loaded.suffix in (".so", ".pyd")
    if not loaded.is_relative_to(expect_in.resolve()) or is_extension != extension:
        raise SystemExit(
            f"{name}: loads {loaded}, expected {'an extension' if extension else 'source'} under {expect_in}"
        )
    print(f"{name:8} loads {loaded}")


def instructions(python: str, pythonpath: Path | None, workload: str, subscriber: bool) -> int:
    """Instructions per op of ``workload`` for one build (benchmarks.instructions, under valgrind)."""
    command = [sys.executable, "-m", "benchmarks.instructions", "--python", python, "--workload", workload]
    if subscriber:
        command.append("--subscriber")
    out = subprocess.run(command, env=_env(pythonpath), cwd=ROOT, capture_output=True, text=True, check=False)
    found = _INSTRUCTIONS.search(out.stdout)
    if out.returncode != 0 or found is None:
        raise SystemExit(f"benchmarks.instructions failed:\n{out.stdout}\n{out.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def time_once(python: str, pythonpath: Path | None, workload: Path, subscriber: bool, clock: str) -> float:
    """Nanoseconds per op of one fresh benchmarks.worker run (its throughput pass)."""
    command = [python, "-m", "benchmarks.worker", "--engine", "ours", "--workload", str(workload)]
    command += ["--mode", "time", "--clock", clock] + (["--subscriber"] if subscriber else [])
    out = subprocess.run(command, env=_env(pythonpath), cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"benchmarks.worker failed:\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return float(result["ns_per_op"])


def _ratio_range(rounds: dict[str, list[float]], slow: str, fast: str) -> str:
    """``slow``'s time over ``fast``'s: ratio of the medians [range of the per-round ratios]."""
    per_round = [a / b for a, b in zip(rounds[slow], rounds[fast], strict=True)]
    median = statistics.median(rounds[slow]) / statistics.median(rounds[fast])
    return f"{median:.2f}x [{min(per_round):.2f}-{max(per_round):.2f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="user_mix", help="a workload of benchmarks/workloads.py")
    parser.add_argument("--subscriber", action="store_true", help="one counting handler on every event type")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (each build once per round)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="benchmarks.worker's clock")
    parser.add_argument("--keep", type=Path, help="build in (and reuse) this directory, not a temporary one")
    parser.add_argument(
        "--mypyc-python",
        type=Path,
        default=MYPYC_PYTHON,
        help="the mypyc build's interpreter (.venv-compiled)",
    )
    parser.add_argument("--no-time", action="store_true", help="instruction counts only")
    parser.add_argument("--no-instructions", action="store_true", help="timings only")
    parser.add_argument(
        "--directive",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra Cython compiler directive (True/False or a word), e.g. annotation_typing=False",
    )
    args = parser.parse_args(argv)
    directives: dict[str, object] = {"language_level": 3}
    for item in args.directive:
        name, _, value = item.partition("=")
        directives[name] = {"True": True, "False": False}.get(value, value)
    mypyc_python: Path = args.mypyc_python
    if not mypyc_python.exists():
        print(f"no mypyc build ({mypyc_python}): run `make compiled` first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="manticore-cython-") as scratch:
        directory = args.keep or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        cython_path = build(directory, directives)
        builds: dict[str, tuple[str, Path | None]] = {
            "pure": (sys.executable, None),
            "mypyc": (str(mypyc_python), None),
            "cython": (sys.executable, cython_path),
        }
        check_loads("pure", sys.executable, None, SOURCE, extension=False)
        check_loads("mypyc", str(mypyc_python), None, mypyc_python.parents[1], extension=True)
        check_loads("cython", sys.executable, cython_path, cython_path, extension=True)
        label = args.workload + (" + subscriber" if args.subscriber else "")
        print(f"\nCython {CYTHON_VERSION}, directives {directives}; workload {label}")
        if not args.no_instructions:
            counts = {
                name: instructions(py, path, args.workload, args.subscriber)
                for name, (py, path) in builds.items()
            }
            print("\n| build | instructions/op | vs mypyc |\n|---|---:|---:|")
            for name, value in counts.items():
                print(f"| {name} | {value:,} | {value / counts['mypyc']:.2f}x |")
        if not args.no_time:
            workload = workload_path(args.workload)
            rounds: dict[str, list[float]] = {name: [] for name in builds}
            for round_no in range(args.rounds):
                for name, (py, path) in builds.items():
                    rounds[name].append(time_once(py, path, workload, args.subscriber, args.clock))
                print(
                    f"round {round_no + 1}: " + ", ".join(f"{n} {v[-1]:,.0f}" for n, v in rounds.items()),
                    flush=True,
                )
            print(f"\n| build | ns/op ({args.clock} clock), median [min-max] of {args.rounds} |\n|---|---:|")
            for name, values in rounds.items():
                print(
                    f"| {name} | {statistics.median(values):,.0f} [{min(values):,.0f}-{max(values):,.0f}] |"
                )
            print("\ntime ratios, median [per-round range]:")
            print(f"  cython / mypyc: {_ratio_range(rounds, 'cython', 'mypyc')}")
            print(f"  pure / cython:  {_ratio_range(rounds, 'pure', 'cython')}")
            print(f"  pure / mypyc:   {_ratio_range(rounds, 'pure', 'mypyc')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
