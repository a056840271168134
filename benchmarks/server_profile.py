"""Where the server's CPU goes per acknowledged order, by layer (issue 17 point 3).

Starts ``manticore serve`` (signed requests, resting orders, the config of ``benchmarks.server``)
inside a small wrapper (``python -m benchmarks.server_profile serve ...``) pinned to one core, warms it
up with wrk on the other core, then measures two windows of ``--duration`` seconds under wrk's
maximum load:

1. unprofiled: the server's CPU per acknowledged request (``/proc``), the CPU of each of its threads,
   and its garbage-collector pauses (``gc.callbacks``, start to stop of every collection);
2. profiled with yappi (CPU clock, every thread): each function's own CPU time, grouped into layers
   by module and thread. A function of a compiled (mypyc) module of ours, the book's or risk's, is
   its module's layer, found by its module name or, for a method, by its class's name; every other
   C function (``dict.get``, ``sorted``...) is charged to the Python function that called it.

The table gives each layer's share of the profiled CPU and its µs per request, computed as the GC
time per request of window 1 plus the rest of window 1's CPU per request split by the profile's
shares (the profiler slows everything down, by unequal factors: the shares are an estimate, the total
is measured). GC work is also inside the other layers' profiled time (a collection runs inside
whatever allocated), so the layers' shares are scaled to the non-GC CPU.

Run: ``python -m benchmarks.server_profile [--duration 10] [--no-auth] [--out FILE]`` (needs yappi,
from the dev extra, in the interpreter that runs it; the server runs in the same interpreter).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from . import server as bench

__all__ = ["LAYERS", "compiled_classes", "compiled_module", "layer_of", "main"]

#: Report order of the layers.
LAYERS = (
    "HTTP protocol + event loop (ServingProtocol, httptools, uvloop)",
    "logging (access log)",
    "starlette/fastapi routing, dependencies, middleware",
    "body validation (pydantic, plainorder)",
    "JSON",
    "auth (API key signature, replay guard)",
    "manticore_api handlers, service, metrics",
    "risk",
    "matching / order book",
    "journal (append + journal thread)",
    "storage (writer thread, SQLAlchemy, sqlite3)",
    "GC (cyclic garbage collector)",
    "other",
)

_HTTP = LAYERS[0]
_VALIDATION = LAYERS[3]
#: A method's name as yappi gives it for a C function: ``<method 'add_order' of 'OrderBook' objects>``.
_METHOD_OF = re.compile(r" of '([\w.]+)' objects>$")
#: C modules whose functions (and the methods of their classes) are a layer of their own, by the path
#: that :func:`layer_of` maps.
_C_LIBRARIES = {"orjson": "/orjson/", "_json": "/json/", "_hashlib": "/hmac.py", "_sqlite3": "/sqlite3/"}
#: The packages that ``make compiled`` builds with mypyc.
_COMPILED_PACKAGES = ("manticore_orderbook", "manticore_risk")

_BY_PATH = (
    ("/manticore_matching/journal.py", "journal (append + journal thread)"),
    ("/manticore_storage/", "storage (writer thread, SQLAlchemy, sqlite3)"),
    ("/sqlalchemy/", "storage (writer thread, SQLAlchemy, sqlite3)"),
    ("/sqlite3/", "storage (writer thread, SQLAlchemy, sqlite3)"),
    ("/logging/", "logging (access log)"),
    ("/uvicorn/logging.py", "logging (access log)"),
    ("/uvicorn/", _HTTP),
    ("/httptools/", _HTTP),
    ("/uvloop/", _HTTP),
    ("/asyncio/", _HTTP),
    ("/manticore_api/protocol.py", _HTTP),
    ("/manticore_api/textsocket.py", _HTTP),
    ("/starlette/", "starlette/fastapi routing, dependencies, middleware"),
    ("/fastapi/", "starlette/fastapi routing, dependencies, middleware"),
    ("/anyio/", "starlette/fastapi routing, dependencies, middleware"),
    ("/pydantic", _VALIDATION),
    ("/manticore_api/plainorder.py", _VALIDATION),
    ("/json/", "JSON"),
    ("/orjson", "JSON"),
    ("/manticore_auth/", "auth (API key signature, replay guard)"),
    ("/manticore_api/security.py", "auth (API key signature, replay guard)"),
    ("/hmac.py", "auth (API key signature, replay guard)"),
    ("/manticore_api/", "manticore_api handlers, service, metrics"),
    ("/prometheus_client/", "manticore_api handlers, service, metrics"),
    ("/manticore_risk/", "risk"),
    ("/manticore_matching/", "matching / order book"),
    ("/manticore_orderbook/", "matching / order book"),
    ("/decimal.py", "matching / order book"),
)


def layer_of(module_path: str, thread: str) -> str:
    """The layer of a function defined in ``module_path`` that ran in the thread named ``thread``."""
    if thread == "manticore-journal":
        return "journal (append + journal thread)"
    if thread.startswith("manticore-storage"):
        return "storage (writer thread, SQLAlchemy, sqlite3)"
    path = module_path.replace("\\", "/")
    for fragment, layer in _BY_PATH:
        if fragment in path:
            return layer
    return "other"


def compiled_classes() -> dict[str, str]:
    """Class name -> module path (``/manticore_risk/manager.py``) of every class defined in a loaded
    compiled (extension) module of :data:`_COMPILED_PACKAGES`; the first module wins a shared name."""
    classes: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith(_COMPILED_PACKAGES) or str(getattr(module, "__file__", "")).endswith(".py"):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, type) and value.__module__ == name:
                classes.setdefault(value.__name__, "/" + name.replace(".", "/") + ".py")
    return classes


def compiled_module(module: str, name: str, classes: dict[str, str]) -> str | None:
    """The module path of a C function that yappi reports as ``module``/``name`` if it has a layer of
    its own: compiled code of ours (a function of a compiled module, or a method of one of ``classes``)
    or a C library of :data:`_C_LIBRARIES`; else None (it belongs to its caller)."""
    if module.startswith(_COMPILED_PACKAGES):
        return "/" + module.replace(".", "/") + ".py"
    if module in _C_LIBRARIES:
        return _C_LIBRARIES[module]
    method = _METHOD_OF.search(name)
    if method is None:
        return None
    owner = method.group(1)
    return classes.get(owner) or _C_LIBRARIES.get(owner.partition(".")[0])


# ------------------------------------------------------------------------------ the server side


class _Window:
    """What the serving process records between SIGUSR1 (start) and SIGUSR2 (stop and dump)."""

    def __init__(self, stats_dir: Path, profile_windows: set[int]) -> None:
        self.stats_dir = stats_dir
        self.profile_windows = profile_windows
        self.number = 0
        self.profiling = False
        self.gc_started = 0.0
        self.pauses: list[float] = []
        self.lock = threading.Lock()
        self.threads_before: dict[str, float] = {}
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.gc_started = time.perf_counter()
        else:
            pause = time.perf_counter() - self.gc_started
            with self.lock:
                self.pauses.append(pause)

    @staticmethod
    def _threads() -> dict[str, float]:
        cpu: dict[str, float] = {}
        tick = os.sysconf("SC_CLK_TCK")
        for thread in threading.enumerate():
            try:
                fields = (
                    Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1].split()
                )
            except OSError:
                continue
            cpu[thread.name] = cpu.get(thread.name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
        return cpu

    def start(self, _signum: int, _frame: FrameType | None) -> None:
        self.number += 1
        with self.lock:
            self.pauses = []
        self.threads_before = self._threads()
        if self.number in self.profile_windows:
            import yappi  # type: ignore[import-untyped]

            yappi.set_clock_type("cpu")
            yappi.set_context_name_callback(lambda: threading.current_thread().name)
            yappi.clear_stats()
            yappi.start(builtins=True, profile_threads=True)
            self.profiling = True

    def stop(self, _signum: int, _frame: FrameType | None) -> None:
        functions: list[dict[str, Any]] = []
        if self.profiling:
            import yappi

            yappi.stop()
            self.profiling = False
            names = {stat.id: stat.name for stat in yappi.get_thread_stats()}
            classes = compiled_classes()
            for stat in yappi.get_func_stats():
                module = stat.module
                if stat.builtin:
                    compiled = compiled_module(stat.module, stat.name, classes)
                    if compiled is None:
                        continue  # charged to its callers, below
                    module = compiled
                # the C functions this one called, other than our compiled ones: its own time too
                charged = sum(
                    child.tsub
                    for child in stat.children
                    if child.builtin and compiled_module(child.module, child.name, classes) is None
                )
                functions.append(
                    {
                        "module": module,
                        "name": stat.name,
                        "thread": names.get(stat.ctx_id, "?"),
                        "tsub": stat.tsub + charged,
                        "ncall": stat.ncall,
                    }
                )
        after = self._threads()
        with self.lock:
            pauses = list(self.pauses)
        record = {
            "window": self.number,
            "threads": {name: after[name] - self.threads_before.get(name, 0.0) for name in after},
            "gc": {"pauses": len(pauses), "total_s": sum(pauses), "max_s": max(pauses, default=0.0)},
            "functions": functions,
        }
        path = self.stats_dir / f"window-{self.number}.json"
        path.with_suffix(".tmp").write_text(json.dumps(record))
        os.replace(path.with_suffix(".tmp"), path)


def serve(argv: list[str]) -> None:
    """``serve --stats-dir DIR --profile-windows 2 -- <manticore serve arguments>``."""
    parser = argparse.ArgumentParser(prog="benchmarks.server_profile serve")
    parser.add_argument("--stats-dir", type=Path, required=True)
    parser.add_argument("--profile-windows", default="2")
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    window = _Window(args.stats_dir, {int(n) for n in args.profile_windows.split(",") if n})
    signal.signal(signal.SIGUSR1, window.start)
    signal.signal(signal.SIGUSR2, window.stop)
    from manticore_api.cli import main as cli

    rest = [a for a in args.rest if a != "--"]
    cli.main(args=rest, prog_name="manticore", standalone_mode=False)


# ------------------------------------------------------------------------------ the driver


def _wait_for(path: Path, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            data: dict[str, Any] = json.loads(path.read_text())
            return data
        time.sleep(0.2)
    raise RuntimeError(f"no {path} after {timeout} s")


def _window(
    wrk: str, settings: bench.Settings, server: bench.Server, workdir: Path, number: int, seconds: float
) -> tuple[dict[str, Any], int, float]:
    """One measured window: (server record, acknowledged requests, seconds)."""
    count = bench.pool_size(server.target, 20_000 / 3, seconds)
    requests = server.requests_file(workdir / f"window-{number}.tsv", count)
    os.kill(server.process.pid, signal.SIGUSR1)
    time.sleep(0.2)
    tree_before = server.cpu()
    result = bench.run_wrk(wrk, settings, server, requests, seconds)
    tree = server.cpu() - tree_before
    os.kill(server.process.pid, signal.SIGUSR2)
    record = _wait_for(workdir / "stats" / f"window-{number}.json")
    # CPU of the server's child processes, if it has any (the threads' CPU is in the record)
    record["children_cpu"] = max(0.0, tree - sum(record["threads"].values()))
    acknowledged = int(result["status"].get("201", 0))
    return record, acknowledged, result["duration_us"] / 1e6


def _is_worker(thread: str) -> bool:
    return thread == "manticore-journal" or thread.startswith("manticore-storage")


def table(
    unprofiled: dict[str, Any], acknowledged: int, profiled: dict[str, Any], profiled_acknowledged: int
) -> list[str]:
    """The Markdown table by layer.

    The journal and storage writer threads are measured directly (their CPU in the unprofiled window).
    The CPU of the other threads (the serving thread, mostly), less the GC pauses, is split by the
    shares of their functions' own time in the profile. The profiler adds a cost to every call it
    records, so call-heavy layers are overstated there: the "calls per request" column shows where."""
    threads = unprofiled["threads"]
    children = unprofiled.get("children_cpu", 0.0)
    cpu_total = sum(threads.values())
    per_request = (cpu_total + children) / acknowledged * 1e6
    children_us = children / acknowledged * 1e6
    gc_us = unprofiled["gc"]["total_s"] / acknowledged * 1e6
    journal_us = threads.get("manticore-journal", 0.0) / acknowledged * 1e6
    storage_us = sum(v for k, v in threads.items() if k.startswith("manticore-storage")) / acknowledged * 1e6
    serving_us = max(per_request - journal_us - storage_us - gc_us - children_us, 0.0)
    own: dict[str, float] = dict.fromkeys(LAYERS, 0.0)
    calls: dict[str, float] = dict.fromkeys(LAYERS, 0.0)
    for function in profiled["functions"]:
        if _is_worker(function["thread"]):
            continue
        layer = layer_of(function["module"], function["thread"])
        own[layer] += function["tsub"]
        calls[layer] += function["ncall"] / profiled_acknowledged
    profiled_total = sum(own.values()) or 1.0
    lines = [
        "| layer | share of the serving thread's profiled CPU | calls per request (profiled) "
        "| CPU µs per request |",
        "|---|---:|---:|---:|",
    ]
    for layer in LAYERS:
        share = own[layer] / profiled_total
        us = share * serving_us
        if layer == "GC (cyclic garbage collector)":
            lines.append(f"| {layer}: measured pauses | | | {gc_us:,.0f} |")
            continue
        if layer.startswith("journal"):
            lines.append(f"| journal: the journal thread (measured) | | | {journal_us:,.0f} |")
            layer_text = "journal: appends in the serving thread"
        elif layer.startswith("storage"):
            lines.append(f"| storage: the writer thread (measured) | | | {storage_us:,.0f} |")
            layer_text = "storage: calls in the serving thread"
        else:
            layer_text = layer
        lines.append(f"| {layer_text} | {share:.1%} | {calls[layer]:,.0f} | {us:,.0f} |")
    if children_us >= 1:
        lines.append(f"| child processes of the server (measured; not profiled) | | | {children_us:,.0f} |")
    lines.append(f"| **total (measured, unprofiled)** | | | **{per_request:,.0f}** |")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        serve(argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--no-auth", action="store_true", help="profile manticore serve --no-auth")
    parser.add_argument("--scenario", default="resting", choices=("resting", "crossing"))
    parser.add_argument("--server-arg", action="append", default=[], help="extra argument of manticore serve")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--top", type=int, default=25, help="also list the N functions with most own time")
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    args = parser.parse_args(argv)
    if args.duration > 25:
        parser.error("--duration at most 25 s (signed requests must reach the server within 30 s)")
    try:
        import yappi  # noqa: F401
    except ImportError:
        raise SystemExit("yappi is needed: pip install yappi (in the dev extra)") from None
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2
    settings = bench.Settings(
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        users=args.users,
        ws_window=1,
        paced=(),
        python=sys.executable,
        server_cpu="0" if pin else None,
        load_cpu="1" if pin else None,
        server_args=tuple(args.server_arg),
        keep_logs=None,
    )
    wrk = bench.ensure_wrk()
    target = bench.Target("profile", "profile", "manticore", scenario=args.scenario, signed=not args.no_auth)
    with tempfile.TemporaryDirectory(prefix="bench-server-profile-") as directory:
        workdir = Path(directory)
        (workdir / "stats").mkdir()
        entry = ("-m", "benchmarks.server_profile", "serve", "--stats-dir", str(workdir / "stats"), "--")
        with bench.serving(target, settings, workdir, "profile", entry=entry) as server:
            warm = server.requests_file(workdir / "warm.tsv", 30_000)
            bench.run_wrk(wrk, settings, server, warm, args.warmup)
            plain, plain_ack, plain_seconds = _window(wrk, settings, server, workdir, 1, args.duration)
            profiled, profiled_ack, profiled_seconds = _window(
                wrk, settings, server, workdir, 2, args.duration
            )
    if not plain_ack or not profiled["functions"]:
        raise SystemExit("no acknowledged request or no profile: see the server log")
    mode = "--no-auth" if args.no_auth else "signed requests"
    cpu_total = sum(plain["threads"].values()) + plain.get("children_cpu", 0.0)
    lines = [
        f"Profile by layer: `manticore serve` ({mode}, {args.scenario} orders), wrk {args.connections} "
        f"connections, {args.duration:g} s windows, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"load average {os.getloadavg()[0]:.2f}.",
        f"Unprofiled window: {plain_ack / plain_seconds:,.0f} acknowledged/s, server CPU "
        f"{cpu_total / plain_ack * 1e6:,.0f} µs per request; GC {plain['gc']['pauses']} pauses, "
        f"{plain['gc']['total_s'] * 1000:,.0f} ms in all, longest {plain['gc']['max_s'] * 1000:.1f} ms. "
        f"Profiled window (yappi): {profiled_ack / profiled_seconds:,.0f} acknowledged/s.",
        "",
        *table(plain, plain_ack, profiled, profiled_ack),
        "",
        "CPU per request by thread (unprofiled window):",
        "",
        "| thread | CPU µs per request |",
        "|---|---:|",
    ]
    for name, seconds in sorted(plain["threads"].items(), key=lambda item: -item[1]):
        if seconds > 0:
            lines.append(f"| {name} | {seconds / plain_ack * 1e6:,.0f} |")
    others: dict[str, float] = {}
    serving_own = sum(f["tsub"] for f in profiled["functions"] if not _is_worker(f["thread"])) or 1.0
    for function in profiled["functions"]:
        if not _is_worker(function["thread"]) and layer_of(function["module"], function["thread"]) == "other":
            module = "/".join(Path(function["module"]).parts[-2:]) if function["module"] else "?"
            others[module] = others.get(module, 0.0) + function["tsub"]
    top_others = sorted(others.items(), key=lambda item: -item[1])[:8]
    lines += [
        "",
        "Largest modules in 'other': " + ", ".join(f"{m} {v / serving_own:.1%}" for m, v in top_others),
    ]
    functions = sorted(profiled["functions"], key=lambda f: -f["tsub"])[: args.top]
    total_own = sum(f["tsub"] for f in profiled["functions"]) or 1.0
    lines += ["", f"Top {len(functions)} functions by own CPU (profiled window):", ""]
    lines += ["| own CPU | calls per request | function | thread | layer |", "|---:|---:|---|---|---|"]
    for function in functions:
        module = function["module"]
        short = "/".join(Path(module).parts[-2:]) if module else "?"
        lines.append(
            f"| {function['tsub'] / total_own:.1%} | {function['ncall'] / profiled_ack:.2f} "
            f"| {short}:{function['name']} | {function['thread']} | {layer_of(module, function['thread'])} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
