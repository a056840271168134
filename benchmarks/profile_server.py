"""Profile the HTTP order path of ``manticore serve`` beside a bare FastAPI app, with wrk.

A development helper (the committed headline benchmark is ``benchmarks/server*.py``). One invocation
starts, in turn and interleaved for ``--repeats`` rounds, a bare FastAPI + pydantic POST app and
``manticore serve`` (both on uvicorn with the same settings, pinned to ``--server-cpu``), loads each
with Debian's ``wrk`` (pinned to ``--client-cpu``, one thread, ``--connections`` connections, a Lua
script over pre-generated request bodies; signed requests are pre-signed here, one per request, so the
replay guard accepts each once), and prints per app: requests/s, p50/p99 latency, non-2xx answers and
the server's CPU microseconds per request (from /proc: utime + stime of the server process, all
threads). With ``--profile FILE`` the manticore server also runs under yappi (CPU clock, all threads)
and FILE gets its self time per thread and per layer (package), per request.

Run (from the repository root; needs ``wrk`` and, for ``--profile``, ``pip install yappi``)::

    python -m benchmarks.profile_server                         # signed POST /api/orders
    python -m benchmarks.profile_server --no-auth --profile /tmp/prof.txt
    python -m benchmarks.profile_server --server-arg=--access-log   # extra ``manticore serve`` flags
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

from .http_support import cpu_seconds, free_port, signed_headers

TRADERS = 8
_LUA = r"""
local requests = {}
local count = 0
local index = 0
init = function(args)
  for line in io.lines(args[1]) do
    local key, stamp, signature, user, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    local headers = {["Content-Type"] = "application/json"}
    if key ~= "" then
      headers["X-MC-APIKEY"] = key
      headers["X-MC-TIMESTAMP"] = stamp
      headers["X-MC-SIGNATURE"] = signature
    end
    if user ~= "" then headers["X-MC-User"] = user end
    count = count + 1
    requests[count] = wrk.format("POST", args[2], headers, body)
  end
end
request = function()
  index = index + 1
  if index > count then index = 1 end
  return requests[index]
end
"""

_RISK_CONFIG = """
[[markets]]
symbol = "BTC/USD"
base_asset = "BTC"
quote_asset = "USD"
tick_size = "0.01"
lot_size = "0.00001"
maker_fee_rate = "0.001"
taker_fee_rate = "0.002"

[risk]
price_band = "0.10"
max_open_orders = 10000000
"""


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _order_bodies(count: int, seed: int) -> list[bytes]:
    """A crossing mix of limit orders around one price (about half rest, half trade)."""
    rng = random.Random(seed)
    bodies = []
    for _ in range(count):
        order = {
            "symbol": "BTC/USD",
            "side": rng.choice(("buy", "sell")),
            "price": str(Decimal(30000) + Decimal("0.01") * rng.randint(-200, 200)),
            "quantity": str(Decimal("0.00001") * rng.randint(1, 10000)),
        }
        bodies.append(json.dumps(order, separators=(",", ":")).encode())
    return bodies


def _wrk(args: argparse.Namespace, url: str, lines: list[str], workdir: Path) -> dict[str, float]:
    script = workdir / "post.lua"
    script.write_text(_LUA)
    requests_file = workdir / "requests.tsv"
    requests_file.write_text("\n".join(lines) + "\n")
    command = ["taskset", "-c", str(args.client_cpu), args.wrk, "-t1", f"-c{args.connections}"]
    command += [f"-d{int(args.duration)}s", "--latency", "-s", str(script), url, "--", str(requests_file)]
    command.append(args.path)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])}  # type: ignore[index]
    result["requests"] = float(re.search(r"(\d+) requests in", output)[1])  # type: ignore[index]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx"] = float(bad[1]) if bad else 0.0
    for label in ("50", "99"):
        found = re.search(rf"\s{label}(?:\.000)?%\s+([\d.]+)(us|ms|s)\b", output)
        if found:
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found[2]]
            result[f"p{label}_ms"] = float(found[1]) * scale
    return result


def _run_reference(args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    port = free_port()
    command = ["taskset", "-c", str(args.server_cpu), sys.executable, "-m", "benchmarks.profile_server"]
    command += ["_reference", "--port", str(port)]
    if args.reference_access_log:
        command.append("--access-log")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/health", process)
        lines = [f"\t\t\t\t{body.decode()}" for body in _order_bodies(5000, 1)]
        before = cpu_seconds(process.pid)
        args.path = "/orders"
        result = _wrk(args, f"http://127.0.0.1:{port}", lines, workdir)
        result["cpu_us_per_request"] = (cpu_seconds(process.pid) - before) / result["requests"] * 1e6
        return result
    finally:
        _stop(process)


def _run_manticore(
    args: argparse.Namespace, workdir: Path, profile: str | None, variant: tuple[str, list[str]] | None = None
) -> dict[str, float]:
    port = free_port()
    data = workdir / f"data-{port}"
    config = workdir / "markets.toml"
    config.write_text(_RISK_CONFIG)
    command = ["taskset", "-c", str(args.server_cpu), sys.executable, "-m", "benchmarks.profile_server"]
    command += ["_serve", "--profile", profile or "", "--"]
    command += ["serve", "--port", str(port), "--data-dir", str(data), "--config", str(config)]
    command += ["--log-level", "warning", *args.server_arg]
    if args.no_auth:
        command.append("--no-auth")
    environment = dict(os.environ)
    if variant is not None:  # another checkout's src/ first on the path, and its extra flags
        environment["PYTHONPATH"] = variant[0]
        command += variant[1]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=sys.stderr, env=environment)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(f"{url}/api/health", process)
        traders: list[tuple[str, str, str]] = []  # (api key, secret, user)
        with httpx.Client(base_url=url, timeout=30) as http:

            def admin_post(path: str, payload: dict[str, Any]) -> dict[str, Any]:
                body = json.dumps(payload).encode()
                if args.no_auth:
                    headers = {"content-type": "application/json", "X-MC-User": "admin"}
                else:
                    credentials = json.loads((data / "admin-credentials.json").read_text())
                    headers = signed_headers(
                        credentials["api_key"], credentials["api_secret"], "POST", path, body
                    )
                answer = http.post(path, content=body, headers=headers)
                if answer.status_code != 201:
                    raise SystemExit(f"{path}: {answer.status_code} {answer.text}")
                result: dict[str, Any] = answer.json()
                return result

            for n in range(TRADERS):
                if args.no_auth:
                    traders.append(("", "", f"t{n}"))
                else:
                    created = admin_post("/api/users", {"username": f"t{n}"})
                    traders.append((created["api_key"], created["api_secret"], created["user_id"]))
                for asset, amount in (("USD", "100000000000"), ("BTC", "10000000")):
                    admin_post("/api/deposits", {"user_id": traders[-1][2], "asset": asset, "amount": amount})
        count = 5000 if args.no_auth else int(args.duration * args.max_rate)
        lines = []
        for index, body in enumerate(_order_bodies(count, 2)):
            key, secret, user = traders[index % TRADERS]
            if args.no_auth:
                lines.append(f"\t\t\t{user}\t{body.decode()}")
            else:
                headers = signed_headers(key, secret, "POST", "/api/orders", body)
                lines.append(
                    f"{key}\t{headers['X-MC-TIMESTAMP']}\t{headers['X-MC-SIGNATURE']}\t\t{body.decode()}"
                )
        before = cpu_seconds(process.pid)
        gc_before = _gc_metrics(url)
        args.path = "/api/orders"
        if profile:
            process.send_signal(signal.SIGUSR1)
        result = _wrk(args, url, lines, workdir)
        if profile:
            process.send_signal(signal.SIGUSR2)
            time.sleep(2)
        result["cpu_us_per_request"] = (cpu_seconds(process.pid) - before) / result["requests"] * 1e6
        gc_after = _gc_metrics(url)
        if gc_before is not None and gc_after is not None:
            result["gc_pauses"] = gc_after["pauses"] - gc_before["pauses"]
            result["gc_ms_per_s"] = (gc_after["total_pause_ms"] - gc_before["total_pause_ms"]) / args.duration
            result["gc_max_pause_ms"] = gc_after["max_pause_ms"]
        return result
    finally:
        _stop(process)
        shutil.rmtree(data, ignore_errors=True)


def _gc_metrics(url: str) -> dict[str, Any] | None:
    try:
        answer = httpx.get(f"{url}/api/metrics/gc", timeout=5)
    except httpx.TransportError:
        return None
    if answer.status_code != 200:
        return None
    result: dict[str, Any] = answer.json()
    return result


def _serve(profile: str, argv: list[str]) -> None:
    """``manticore serve`` in this process, under yappi when ``profile`` names an output file."""
    from manticore_api.cli import main as cli

    if not profile:
        cli.main(argv, prog_name="manticore")
        return
    import yappi

    # SIGUSR1 starts the profiler (the driver sends it when the load starts), SIGUSR2 stops it and
    # writes the profile: start-up and shutdown stay out of the figures.
    def start(_signum: int, _frame: object) -> None:
        yappi.clear_stats()
        yappi.set_clock_type("cpu")
        yappi.start(builtins=True)

    def stop(_signum: int, _frame: object) -> None:
        yappi.stop()
        _write_profile(Path(profile))

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    cli.main(argv, prog_name="manticore")


_LAYERS = (
    ("uvicorn", "uvicorn"),
    ("httptools", "uvicorn/httptools"),
    ("uvloop", "asyncio/uvloop"),
    ("asyncio", "asyncio/uvloop"),
    ("starlette", "starlette/fastapi"),
    ("fastapi", "starlette/fastapi"),
    ("pydantic", "pydantic"),
    ("orjson", "json"),
    ("json", "json"),
    ("logging", "logging"),
    ("sqlalchemy", "sqlalchemy"),
    ("sqlite3", "sqlalchemy"),
    ("manticore_api", "manticore_api"),
    ("manticore_auth", "manticore_auth"),
    ("manticore_risk", "risk"),
    ("manticore_matching", "matching/journal"),
    ("manticore_orderbook", "book"),
    ("manticore_storage", "storage"),
    ("prometheus_client", "prometheus"),
    ("hmac", "hmac/hashlib"),
    ("hashlib", "hmac/hashlib"),
    ("threading", "threading"),
)


def _layer(module: str, name: str) -> str:
    text = f"{module} {name}"
    for needle, layer in _LAYERS:
        found = f"/{needle}/" in text or f"/{needle}.py" in text or f" {needle}" in text
        if found or text.startswith(needle):
            return layer
    return "other"


def _write_profile(path: Path) -> None:
    import yappi

    requests = sum(
        stat.ncall for stat in yappi.get_func_stats() if stat.name in ("place_order", "_place_order_lean")
    )
    lines = [f"orders placed under the profiler: {requests}"]
    per = max(requests, 1)
    threads = {thread.id: thread.name for thread in yappi.get_thread_stats()}
    for thread_id, thread_name in threads.items():
        stats = yappi.get_func_stats(filter={"ctx_id": thread_id})
        total = sum(stat.tsub for stat in stats)
        if total < 0.01:
            continue
        lines.append(f"\n== thread {thread_name}: {total:.2f} s CPU, {total / per * 1e6:.0f} us per order")
        layers: dict[str, float] = defaultdict(float)
        for stat in stats:
            layers[_layer(stat.module, stat.name)] += stat.tsub
        for layer, seconds in sorted(layers.items(), key=lambda item: -item[1]):
            lines.append(f"  {layer:22s} {seconds / per * 1e6:8.1f} us/order")
        for layer in sorted(layers, key=lambda name: -layers[name])[:8]:
            mine = [stat for stat in stats if _layer(stat.module, stat.name) == layer]
            top = sorted(mine, key=lambda stat: -stat.tsub)[:6]
            names = ", ".join(f"{stat.name} {stat.tsub / per * 1e6:.1f}" for stat in top)
            lines.append(f"  [{layer}] {names}")
        lines.append("  top functions by self time:")
        for stat in sorted(stats, key=lambda stat: -stat.tsub)[:25]:
            where = f"{Path(stat.module).name}:{stat.lineno}"
            lines.append(f"    {stat.tsub / per * 1e6:7.1f} us  {stat.ncall:8d}  {stat.name}  ({where})")
    path.write_text("\n".join(lines) + "\n")


class ReferenceOrder(BaseModel):
    """The bare reference app's request body."""

    symbol: str = "BTC/USD"
    side: str
    quantity: str
    price: str | None = None


def _reference(port: int, access_log: bool) -> None:
    """The bare FastAPI + pydantic POST app, on uvicorn with the settings ``manticore serve`` uses."""
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()
    counter = [0]

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/orders", status_code=201)
    async def place(order: ReferenceOrder) -> dict[str, Any]:
        counter[0] += 1
        return {"status": "success", "order_id": f"MC-{counter[0]}", "order": order.model_dump()}

    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", ws_max_size=64 * 1024, access_log=access_log
    )
    uvicorn.Server(config).run()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        # _serve --profile FILE -- <manticore arguments>
        separator = sys.argv.index("--")
        _serve(sys.argv[3], sys.argv[separator + 1 :])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_reference":
        _reference(int(sys.argv[3]), "--access-log" in sys.argv)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-auth", action="store_true", help="unsigned requests (X-MC-User)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds")
    parser.add_argument("--max-rate", type=float, default=8000.0, help="signed requests made per second")
    parser.add_argument("--profile", default=None, help="write the manticore server's yappi profile here")
    parser.add_argument("--server-arg", action="append", default=[], help="extra manticore serve flag")
    parser.add_argument("--reference-access-log", action="store_true")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME=SRC_DIR[:FLAG...]: also run manticore from another checkout's src/ (e.g. a worktree of "
        "an older commit) with extra serve flags, interleaved with the others",
    )
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--client-cpu", type=int, default=0)
    parser.add_argument("--wrk", default="/usr/bin/wrk")
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        for round_number in range(args.repeats):
            if not args.skip_reference:
                results["fastapi"].append(_run_reference(args, workdir))
            profile = args.profile if round_number == 0 else None
            for variant in args.variant:
                name, _, rest = variant.partition("=")
                source, *flags = rest.split(":")
                results[name].append(_run_manticore(args, workdir, None, (source, flags)))
            results["manticore"].append(_run_manticore(args, workdir, profile))
            for name, runs in results.items():
                print(f"round {round_number + 1} {name}: {json.dumps(runs[-1])}", flush=True)
            print(flush=True)
    print("\nmedians:")
    for name, runs in results.items():
        keys = runs[0].keys()
        medians = {key: round(statistics.median(run.get(key, 0.0) for run in runs), 2) for key in keys}
        print(f"  {name:10s} {json.dumps(medians)}")
    if "fastapi" in results:
        reference = results["fastapi"]
        for name, runs in results.items():
            if name == "fastapi":
                continue
            rate = statistics.median(run["requests_per_s"] for run in runs) / statistics.median(
                run["requests_per_s"] for run in reference
            )
            cpu = statistics.median(run["cpu_us_per_request"] for run in reference) / statistics.median(
                run["cpu_us_per_request"] for run in runs
            )
            print(f"  {name} / fastapi: requests/s {rate:.2f}x, CPU per request {cpu:.2f}x")


if __name__ == "__main__":
    main()
