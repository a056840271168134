"""``manticore serve``'s HTTP protocol (:class:`~manticore_api.protocol.ServingProtocol`) behaves as uvicorn's
own ``HttpToolsProtocol`` for generated request streams.

Streams of requests (methods, paths with escapes and query strings, HTTP/1.0 and 1.1, ``Expect:
100-continue``, ``Connection: close``, bodies by length and chunked, large bodies that pause reading,
unsupported upgrades, malformed requests), split at random byte boundaries and pipelined, go through
both protocols on an in-memory transport to apps that read the body before, after or never, answer by
length, chunked, whole (``write_response``) or not at all, or fail; the connection may drop mid-stream.
Both must give the same log: every write, close, pause and resume of the transport, every scope (keys
in order) and every message the app receives, in the same order; and the same request count and
keep-alive state at the end. The keep-alive timeout closes an idle connection at uvicorn's time
(a manual clock), and the uvicorn parts the protocol mirrors are pinned by their source's digest.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from manticore_api.protocol import ServingCycle, ServingProtocol
from tests.api.memory_transport import MemoryTransport

#: sha256 of the source of each uvicorn part ServingProtocol / ServingCycle re-implement or rely on (uvicorn
#: 0.54.0; asyncio.Event of the running Python). When one changes, re-read it against
#: manticore_api/protocol.py, then update the digest here.
MIRRORED = {
    "protocol.__init__": "4f08999410347141468656d82e71ffebccb59f09e41909a3753a810eeed685fa",
    "protocol.connection_lost": "c91a4c9bf2e29c554a97418b5f3064e97f6e0ceaba3b90fc35a3460076c705ab",
    "protocol._unset_keepalive_if_required": (
        "00a6a4e47214e68edef469a2a8f21ade722e9c6dfb2eb6c25855fbd9941cec32"
    ),
    "protocol.data_received": "010a7ae59a5d3b1a5e7326ce246878568629d126a076d8af5ba10cab040fae43",
    "protocol.on_message_begin": "96d377fdc7c2baef943c2bd245003abc53566ddb35777e0f4c7bc754198b5457",
    "protocol.on_url": "37be44e962b04ca87f76428ff8d7a3306ab601ffd5793d185e87c2295f0c6b6e",
    "protocol.on_header": "65d62c044f61fdbd354dcb3401aa590789259bfbdbc1c07512150ec924258cd6",
    "protocol.on_headers_complete": "1ea8589acfad92d8ff9182775f337d98fc469e0fa39642a83195fca920f5ca96",
    "protocol._start_asgi_task": "9c08c2571ae9b0380320a24c20c3af18d165f168c21bc3aaf14754a5b0fc2b8a",
    "protocol.on_body": "dba9c32aeba35b6ae10722f86232d44d93fda42d97711244eeaa51c0a1f3e1c9",
    "protocol.on_message_complete": "1fbad42dc31fc01fd4106a9885b2a2e0f6ce8d38241a3df0f615c6a8663493e0",
    "protocol.on_response_complete": "64e254f28e389e7614f2c828176d639174e66aa9d814a4b06624ec86ec0a5b95",
    "protocol.timeout_keep_alive_handler": "8b53bf5f2e202970f6f6c0338a5c381c66efce4e9c673b05175d858eef5fd888",
    "protocol.shutdown": "d7351fa33f00d430e0a4179912a4ed478e0483ce3a9f7409225e71970c064421",
    "cycle.__init__": "4d2f220910c33c12f2891cbf2fb89ad364464e1a189e7492e8dc43167563057a",
    "cycle.run_asgi": "0f33f2449a444bc210e26187fae751e687466157b0050706212bd6ea2b6a5f35",
    "cycle.receive": "8124ae006be71184810da91d586b97c4b3b9ae43e28984bc94f81e26d20af3e6",
    "cycle.send": "abdd8601b326a8da972436918d3a954e1ef39c6bf0cd9e1c1954c2e798d0bb9c",
    "FlowControl.pause_reading": "7c27388bb984e9ed9f1967b00795330c2f00c107c430e05926b08b6d6981db35",
    "FlowControl.resume_reading": "a0429d30857e8488e04dd7a9e23d464874e5c7e97d29ecc7876f6dad1545c088",
    "asyncio.Event": "11f4dfa4dc42a3f7836b82eb2c3db007b68a916d934d6ebd2c7b7dbd57cfaffd",
}
_PARTS: dict[str, Any] = {
    **{
        f"protocol.{name}": getattr(HttpToolsProtocol, name)
        for name in (
            "__init__",
            "connection_lost",
            "_unset_keepalive_if_required",
            "data_received",
            "on_message_begin",
            "on_url",
            "on_header",
            "on_headers_complete",
            "_start_asgi_task",
            "on_body",
            "on_message_complete",
            "on_response_complete",
            "timeout_keep_alive_handler",
            "shutdown",
        )
    },
    **{
        f"cycle.{name}": getattr(RequestResponseCycle, name)
        for name in ("__init__", "run_asgi", "receive", "send")
    },
    "FlowControl.pause_reading": FlowControl.pause_reading,
    "FlowControl.resume_reading": FlowControl.resume_reading,
    "asyncio.Event": asyncio.Event,
}


def test_the_mirrored_parts_are_unchanged() -> None:
    assert uvicorn.__version__ == "0.54.0"
    digests = {
        name: hashlib.sha256(inspect.getsource(part).encode()).hexdigest() for name, part in _PARTS.items()
    }
    assert digests == MIRRORED


@pytest.fixture(autouse=True)
def _quiet_uvicorn() -> Iterator[None]:
    """uvicorn logs app exceptions and bad requests; the tests provoke many."""
    logger = logging.getLogger("uvicorn.error")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


class _LogTransport(MemoryTransport):
    """A memory transport that logs writes, closes, pauses and resumes in one list, in order."""

    def __init__(self, log: list[Any]) -> None:
        super().__init__()
        self.log = log
        self.paused = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.log.append(("write", bytes(data)))

    def close(self) -> None:
        self.log.append(("close", self.closing))
        self.closing = True

    def pause_reading(self) -> None:
        self.log.append(("pause",))
        self.paused = True

    def resume_reading(self) -> None:
        self.log.append(("resume",))
        self.paused = False


#: What the app does for a request: (read, answer, receive once more after answering).
#: read: "none", "one" (one receive), "all" (until the body ends or a disconnect);
#: answer: "length", "chunked", "whole", "none", "raise", "raise-late".
Script = tuple[str, str, bool]

_ANSWER = b'{"status":"ok"}'


def _app(scripts: list[Script], log: list[Any]) -> Callable[..., Any]:
    seen = [0]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        index = seen[0]
        seen[0] += 1
        read, answer, late = scripts[index % len(scripts)]
        log.append(("scope", index, list(scope.items())))

        async def take() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            log.append(("received", index, message))
            return message

        if read == "one":
            await take()
        elif read == "all":
            while (await take()).get("more_body"):
                pass
        if answer == "raise":
            raise RuntimeError("app failed")
        if answer == "whole":
            cycle = getattr(send, "__self__", None)
            headers = [(b"content-length", b"%d" % len(_ANSWER)), (b"content-type", b"application/json")]
            if not (isinstance(cycle, ServingCycle) and cycle.write_response(201, headers, _ANSWER)):
                await send({"type": "http.response.start", "status": 201, "headers": headers})
                await send({"type": "http.response.body", "body": _ANSWER})
        elif answer == "length":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
            await asyncio.sleep(0)
            await send({"type": "http.response.body", "body": b"ok"})
        elif answer == "chunked":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"a", "more_body": True})
            await asyncio.sleep(0)
            await send({"type": "http.response.body", "body": b"b"})
        elif answer == "raise-late":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            raise RuntimeError("app failed late")
        if late:
            await take()

    return app


@st.composite
def _request(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["plain"] * 8 + ["broken", "bad-header", "h2c"]))
    if kind == "broken":
        return b"NOT HTTP\r\n\r\n"
    if kind == "bad-header":
        return b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"
    method = draw(st.sampled_from([b"GET", b"POST", b"HEAD", b"PUT", b"DELETE"]))
    target = draw(
        st.sampled_from([b"/", b"/api/orders", b"/a%20b", b"/x?q=1&r=%2F", b"/p?", b"/api/orders/MC-1"])
    )
    version = draw(st.sampled_from([b"HTTP/1.1"] * 4 + [b"HTTP/1.0"]))
    lines = [method + b" " + target + b" " + version, b"Host: x"]
    for header in draw(
        st.lists(
            st.sampled_from(
                [
                    b"Expect: 100-continue",
                    b"Connection: close",
                    b"Connection: keep-alive",
                    b"X-Mixed-Case: Value",
                    b"x-empty:",
                    b"X-MC-APIKEY: mc_0123456789abcdef",
                ]
            ),
            max_size=3,
        )
    ):
        lines.append(header)
    if kind == "h2c":
        lines += [b"Connection: Upgrade", b"Upgrade: h2c"]
    body_kind = draw(st.sampled_from(["none", "length", "length", "chunked", "large"]))
    body = b""
    if body_kind == "length":
        body = draw(st.binary(max_size=24))
        lines.append(b"Content-Length: %d" % len(body))
    elif body_kind == "large":
        body = b"x" * 70_000
        lines.append(b"Content-Length: %d" % len(body))
    elif body_kind == "chunked":
        lines.append(b"Transfer-Encoding: chunked")
        chunks = draw(st.lists(st.binary(min_size=1, max_size=8), max_size=3))
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


_SCRIPTS = st.tuples(
    st.sampled_from(["none", "one", "all", "all"]),
    st.sampled_from(["length", "chunked", "whole", "whole", "none", "raise", "raise-late"]),
    st.booleans(),
)


@st.composite
def _streams(draw: st.DrawFn) -> tuple[list[bytes], list[Script], int | None]:
    """(the stream's chunks, the app's scripts by request, the chunk before which the client goes)."""
    data = b"".join(draw(st.lists(_request(), min_size=1, max_size=4)))
    cuts = sorted(draw(st.sets(st.integers(1, max(len(data) - 1, 1)), max_size=5)))
    chunks = [
        data[start:end] for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True) if end > start
    ]
    scripts = draw(st.lists(_SCRIPTS, min_size=1, max_size=4))
    drop = draw(st.none() | st.integers(0, len(chunks)))
    return chunks, scripts, drop


def _serve(
    protocol_class: type[HttpToolsProtocol], chunks: list[bytes], scripts: list[Script], drop: int | None
) -> list[Any]:
    """The log of serving ``chunks`` (the client going away before chunk ``drop``)."""
    log: list[Any] = []

    async def run() -> None:
        config = uvicorn.Config(_app(scripts, log), proxy_headers=False, access_log=False, log_config=None)
        config.load()
        state = ServerState()
        state.default_headers = [(b"date", b"Fri, 04 Dec 2026 20:00:00 GMT"), (b"server", b"uvicorn")]
        loop = asyncio.get_running_loop()
        http = protocol_class(config=config, server_state=state, app_state={"k": 1}, _loop=loop)
        transport = _LogTransport(log)
        http.connection_made(transport)

        async def settle() -> None:
            for _ in range(20):
                await asyncio.sleep(0)

        lost = False
        for index, chunk in enumerate(chunks):
            if index == drop:
                http.connection_lost(None)
                lost = True
                break
            for _ in range(5):  # a socket delivers nothing while reading is paused
                if not transport.paused:
                    break
                await settle()
            if transport.paused:
                log.append(("stalled", index))
                break
            log.append(("chunk", index))
            http.data_received(chunk)
            await settle()
        await settle()
        log.append(("requests", state.total_requests))
        if protocol_class is ServingProtocol:
            log.append(("keep-alive armed", http._idle_deadline is not None))  # type: ignore[attr-defined]
        else:
            task = http.timeout_keep_alive_task
            log.append(("keep-alive armed", task is not None and not task.cancelled()))
        if not lost:
            http.connection_lost(None)
        await settle()
        for task in list(state.tasks):
            task.cancel()
        await asyncio.gather(*state.tasks, return_exceptions=True)

    asyncio.run(run())
    return _merged(log)


def _merged(log: list[Any]) -> list[Any]:
    """``log`` with adjacent writes joined: ``write_response`` writes head and body in one write, where
    uvicorn's ``send`` writes them in two (the bytes on the wire are the same)."""
    merged: list[Any] = []
    for entry in log:
        if entry[0] == "write" and merged and merged[-1][0] == "write":
            merged[-1] = ("write", merged[-1][1] + entry[1])
        else:
            merged.append(entry)
    return merged


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=_streams())
def test_request_streams_are_served_as_uvicorn_serves_them(
    stream: tuple[list[bytes], list[Script], int | None],
) -> None:
    chunks, scripts, drop = stream
    assert _serve(ServingProtocol, chunks, scripts, drop) == _serve(HttpToolsProtocol, chunks, scripts, drop)


def test_a_pipelined_stream_in_one_read() -> None:
    """Three requests in one read, the first with a body: the same as uvicorn (and all answered)."""
    data = (
        b"POST /api/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /b?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    scripts: list[Script] = [("all", "whole", False)]
    ours = _serve(ServingProtocol, [data], scripts, None)
    assert ours == _serve(HttpToolsProtocol, [data], scripts, None)
    assert ("requests", 3) in ours
    assert sum(1 for entry in ours if entry[0] == "write" and entry[1].startswith(b"HTTP/1.1 201")) == 3


class _Clock:
    """A manual loop clock for the keep-alive timer: ``time``, ``call_later`` and ``advance``."""

    def __init__(self) -> None:
        self.now = 0.0
        self.handles: list[_Handle] = []
        self.created = 0

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> _Handle:
        handle = _Handle(self.now + delay, callback, args)
        self.created += 1
        self.handles.append(handle)
        return handle

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            due = [h for h in self.handles if not h.cancelled and h.when <= end]
            if not due:
                break
            handle = min(due, key=lambda h: h.when)
            self.handles.remove(handle)
            self.now = max(self.now, handle.when)
            handle.callback(*handle.args)
        self.now = end


class _Handle:
    def __init__(self, when: float, callback: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


_TIMER_OPS = st.lists(
    st.one_of(
        st.just(("data",)),
        st.just(("answered",)),
        st.just(("lost",)),
        st.tuples(st.just("wait"), st.sampled_from([0.5, 1.0, 2.5, 4.999, 5.0, 5.001, 7.0])),
    ),
    max_size=12,
)


def _close_times(protocol_class: type[HttpToolsProtocol], ops: list[tuple[Any, ...]]) -> list[Any]:
    async def run() -> list[Any]:
        config = uvicorn.Config(_app([("none", "none", False)], []), log_config=None, timeout_keep_alive=5)
        config.load()
        http = protocol_class(config=config, server_state=ServerState(), app_state={})
        clock = _Clock()
        http.loop = clock  # type: ignore[assignment]
        transport = MemoryTransport()
        http.connection_made(transport)
        events: list[Any] = []
        for op in ops:
            closing = transport.closing
            if op[0] == "data":
                http.data_received(b"")
            elif op[0] == "answered":
                http.on_response_complete()
            elif op[0] == "lost":
                http.connection_lost(None)
                transport.closing = closing  # only the keep-alive timer's close is compared
                break
            else:
                clock.advance(op[1])
            if transport.closing and not closing:
                events.append(("closed", round(clock.now, 6)))
                transport.closing = False
        clock.advance(100.0)
        if transport.closing:
            events.append(("closed at the end", round(clock.now, 6)))
        return events

    return asyncio.run(run())


@settings(max_examples=300, deadline=None)
@given(ops=_TIMER_OPS)
def test_the_keep_alive_timeout_closes_when_uvicorns_would(ops: list[tuple[Any, ...]]) -> None:
    assert _close_times(ServingProtocol, ops) == _close_times(HttpToolsProtocol, ops)


def test_the_keep_alive_timer_is_not_created_per_response() -> None:
    """Answers within the timeout re-use the pending timer; the idle connection still closes."""

    async def run() -> tuple[int, bool]:
        config = uvicorn.Config(_app([("none", "none", False)], []), log_config=None, timeout_keep_alive=5)
        config.load()
        http = ServingProtocol(config=config, server_state=ServerState(), app_state={})
        clock = _Clock()
        http.loop = clock  # type: ignore[assignment]
        transport = MemoryTransport()
        http.connection_made(transport)
        for _ in range(10):
            http.data_received(b"")
            http.on_response_complete()
            clock.advance(1.0)
        created = clock.created  # at 0 s, re-armed at 5 s (for 9 s) and at 9 s (for 13 s)
        clock.advance(3.5)
        open_before = not transport.closing
        clock.advance(0.6)
        return created, open_before and transport.closing

    assert asyncio.run(run()) == (3, True)
