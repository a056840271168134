"""``manticore serve``'s HTTP protocol (:mod:`manticore_api.protocol`) writes exactly what uvicorn's own
httptools protocol writes, for generated requests and responses (valid or not), and the uvicorn
internals it relies on are those it was written against."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from uvicorn.protocols.http import httptools_impl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from manticore_api import protocol
from manticore_api.protocol import UVICORN_VERSION, ServingCycle, ServingProtocol
from manticore_api.server import http_protocol
from tests.api.memory_transport import MemoryTransport

ROOT = Path(__file__).resolve().parents[2]

#: sha256 of the source of each uvicorn part ServingCycle / ServingProtocol relies on, as of
#: UVICORN_VERSION. When one changes, re-read it against manticore_api/protocol.py (the cycle's state
#: that ``_head`` sets, the headers ``send`` acts on, the name on_headers_complete creates its cycle
#: by), then update the digest here.
RELIED_ON = {
    "RequestResponseCycle.__init__": "4d2f220910c33c12f2891cbf2fb89ad364464e1a189e7492e8dc43167563057a",
    "RequestResponseCycle.send": "abdd8601b326a8da972436918d3a954e1ef39c6bf0cd9e1c1954c2e798d0bb9c",
    "on_headers_complete": "1ea8589acfad92d8ff9182775f337d98fc469e0fa39642a83195fca920f5ca96",
    "HEADER_RE": "74f5040509179e7a78fb6d91eff43f89d830f96e80ca44fbe22694ae28a1f75d",
    "HEADER_VALUE_RE": "36777b20ef460b3cb55d6cab254e1a88cad0e4ba55258af91ce1251c0d436c58",
    "STATUS_LINE": "366a4d7d67d5d5c117b974ff6ecf3c2a4dcc62f36f54c74ebb1d82c86785eecd",
}


def _fingerprints() -> dict[str, str]:
    def digest(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    return {
        "RequestResponseCycle.__init__": digest(inspect.getsource(RequestResponseCycle.__init__)),
        "RequestResponseCycle.send": digest(inspect.getsource(RequestResponseCycle.send)),
        "on_headers_complete": digest(inspect.getsource(HttpToolsProtocol.on_headers_complete)),
        "HEADER_RE": digest(repr(httptools_impl.HEADER_RE.pattern)),
        "HEADER_VALUE_RE": digest(repr(httptools_impl.HEADER_VALUE_RE.pattern)),
        "STATUS_LINE": digest(repr(sorted(httptools_impl.STATUS_LINE.items()))),
    }


def test_uvicorn_is_the_version_the_protocol_was_written_against() -> None:
    assert uvicorn.__version__ == UVICORN_VERSION
    assert f'"uvicorn=={UVICORN_VERSION}",' in (ROOT / "pyproject.toml").read_text()
    assert _fingerprints() == RELIED_ON
    # on_headers_complete names its cycle class as a global, which ServingProtocol's copy rebinds.
    assert "RequestResponseCycle" in HttpToolsProtocol.on_headers_complete.__code__.co_names


def test_serve_uses_the_serving_protocol() -> None:
    assert http_protocol() is ServingProtocol
    assert issubclass(ServingProtocol, HttpToolsProtocol)


class _Script:
    """What the app does for each request: send ``messages``, reading the request body once before the
    message at index ``read_at`` (None: never; ``len(messages)``: after the last); each step's outcome
    is recorded."""

    def __init__(self, read_at: int | None, messages: list[dict[str, Any]]) -> None:
        self.read_at = read_at
        self.messages = messages
        self.outcomes: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        for index, message in enumerate([*self.messages, None]):
            if index == self.read_at:
                self.outcomes.append(f"received {(await receive())['type']}")
            if message is None:
                break
            try:
                await send(message)
            except Exception as exc:
                self.outcomes.append(f"{type(exc).__name__}: {exc}")
                raise
            self.outcomes.append("sent")


def _exchange(
    protocol_class: type[HttpToolsProtocol],
    script: _Script,
    request: bytes,
    default_headers: list[tuple[bytes, bytes]],
    *,
    access_log: bool = False,
) -> tuple[bytes, bool, list[str], list[str]]:
    """(bytes written, whether the server closed the connection, the app's send outcomes, the cycles'
    classes) for ``request``."""

    async def run() -> tuple[bytes, bool, list[str], list[str]]:
        config = uvicorn.Config(script, proxy_headers=False, access_log=access_log, log_config=None)
        config.load()
        state = ServerState()
        state.default_headers = default_headers
        loop = asyncio.get_running_loop()
        http = protocol_class(config=config, server_state=state, app_state={}, _loop=loop)
        http.access_log = access_log
        transport = MemoryTransport()
        http.connection_made(transport)
        cycles: list[str] = []
        http.data_received(request)
        for _ in range(100):
            if http.cycle is not None and type(http.cycle).__name__ not in cycles:
                cycles.append(type(http.cycle).__name__)
            if not state.tasks:
                break
            await asyncio.gather(*state.tasks, return_exceptions=True)
        closed = transport.closing
        http.connection_lost(None)
        return b"".join(transport.written), closed, script.outcomes, cycles

    return asyncio.run(run())


@pytest.fixture(autouse=True)
def _quiet_uvicorn_errors() -> Iterator[None]:
    """uvicorn logs every app exception; the tests provoke many."""
    logger = logging.getLogger("uvicorn.error")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


_BODY = b'{"order_id":"o_1","status":"resting"}'

#: Headers the serving cycle writes itself ("length": the body's length, or one more or less).
_PLAIN_HEADERS = st.sampled_from(
    [
        ("length", None),
        ("length", None),
        ("length+1", None),
        ("length-1", None),
        (b"Content-Length", "length"),
        (b"content-type", b"application/json"),
        (b"Content-Type", b"text/plain; charset=utf-8"),
        (b"x-a", b"b"),
        (b"x-tab", b"a\tb"),
    ]
)
#: Headers left to uvicorn's send (invalid, or with a meaning to it).
_OTHER_HEADERS = st.sampled_from(
    [
        (b"content-length", b"abc"),
        (b"content-length", b" 5"),
        (b"content-length", b""),
        (b"bad name", b"v"),
        (b"x-v", b"bad\nvalue"),
        (b"x-v", b"bad\x7f"),
        (b"transfer-encoding", b"chunked"),
        (b"Transfer-Encoding", b"gzip"),
        (b"connection", b"close"),
        (b"Connection", b"keep-alive, Close"),
        (b"connection", b"keep-alive"),
        (b"x-str", "text"),
        (b"x-list", b"as a list"),
    ]
)


def _header(spec: tuple[Any, Any], length: int) -> Any:
    name, value = spec
    if name == "length":
        return (b"content-length", b"%d" % length)
    if name == "length+1":
        return (b"content-length", b"%d" % (length + 1))
    if name == "length-1":
        return (b"content-length", b"%d" % max(length - 1, 0))
    if value == "length":
        return (name, b"%d" % length)
    if name == b"x-list":
        return [name, value]
    return (name, value)


@st.composite
def _scripts(draw: st.DrawFn) -> _Script:
    chunks = draw(st.lists(st.binary(max_size=12), max_size=3)) or [_BODY]
    length = sum(map(len, chunks))
    status: Any = draw(st.sampled_from([200, 201, 204, 304, 400, 404, 422, 500, 599, 99, 600, 201.0, None]))
    specs = draw(st.lists(_PLAIN_HEADERS, max_size=4))
    if draw(st.booleans()):
        specs.insert(draw(st.integers(0, len(specs))), draw(_OTHER_HEADERS))
    headers = [_header(spec, length) for spec in specs]
    start: dict[str, Any] = {"type": "http.response.start", "status": status}
    if draw(st.booleans()) or headers:
        start["headers"] = tuple(headers) if draw(st.booleans()) else headers
    messages = [start]
    for index, chunk in enumerate(chunks):
        body: dict[str, Any] = {"type": "http.response.body", "body": chunk}
        if index < len(chunks) - 1:
            body["more_body"] = True
        messages.append(body)
    if draw(st.booleans()):
        messages = messages[: draw(st.integers(0, len(messages)))]
    if draw(st.booleans()):
        messages.append({"type": "http.response.body", "body": b"late"})
    return _Script(draw(st.none() | st.integers(0, len(messages))), messages)


_REQUEST_LIST = (
    b"POST /api/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    b"GET /api/orders HTTP/1.1\r\nHost: x\r\n\r\n",
    b"HEAD /api/orders HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
    b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
    b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
)
_REQUESTS = st.sampled_from(_REQUEST_LIST)

_DEFAULT_HEADERS = st.sampled_from(
    [
        [],
        [(b"date", b"Fri, 04 Dec 2026 20:00:00 GMT"), (b"server", b"uvicorn")],
        [(b"date", b"Fri, 04 Dec 2026 20:00:01 GMT")],
        [(b"server", b"bad\x01")],
        [(b"connection", b"close")],
        [(b"X-Custom", b"v")],
    ]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=_scripts(), request=_REQUESTS, defaults=_DEFAULT_HEADERS)
def test_the_serving_protocol_writes_what_uvicorns_writes(
    script: _Script, request: bytes, defaults: list[tuple[bytes, bytes]]
) -> None:
    twin = _Script(script.read_at, script.messages)
    ours = _exchange(ServingProtocol, script, request, list(defaults))
    theirs = _exchange(HttpToolsProtocol, twin, request, list(defaults))
    assert ours[:3] == theirs[:3]
    assert set(ours[3]) <= {"ServingCycle"}


def test_an_order_answer_is_written_by_the_serving_cycle() -> None:
    """The common case takes the serving cycle's own path: uvicorn's send is not called."""
    length = b"%d" % len(_BODY)
    start = {
        "type": "http.response.start",
        "status": 201,
        "headers": [(b"content-length", length), (b"content-type", b"application/json")],
    }
    script = _Script(0, [start, {"type": "http.response.body", "body": _BODY}])
    request = b"POST /api/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    defaults = [(b"date", b"Fri, 04 Dec 2026 20:00:00 GMT"), (b"server", b"uvicorn")]
    calls: list[Any] = []
    original = RequestResponseCycle.send

    async def counting(self: RequestResponseCycle, message: Any) -> None:
        calls.append(message["type"])
        await original(self, message)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RequestResponseCycle, "send", counting)
        written, closed, outcomes, cycles = _exchange(ServingProtocol, script, request, defaults)
    assert written == (
        b"HTTP/1.1 201 Created\r\ndate: Fri, 04 Dec 2026 20:00:00 GMT\r\nserver: uvicorn\r\n"
        b"content-length: " + length + b"\r\ncontent-type: application/json\r\n\r\n" + _BODY
    )
    assert not closed
    assert outcomes == ["received http.request", "sent", "sent"]
    assert cycles == ["ServingCycle"]
    assert calls == []


def test_the_access_log_keeps_uvicorns_path() -> None:
    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    messages = [start, {"type": "http.response.body", "body": b"ok"}]
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    ours = _exchange(ServingProtocol, _Script(None, messages), request, [], access_log=True)
    theirs = _exchange(HttpToolsProtocol, _Script(None, messages), request, [], access_log=True)
    assert ours[:3] == theirs[:3]


def test_more_distinct_headers_than_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table of checked headers starts again when full; answers stay uvicorn's."""
    monkeypatch.setattr(protocol, "_MAX_LINES", 3)
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    for index in range(12):
        headers = [(b"content-length", b"2"), (b"x-n", b"%d" % index), (b"x-bad", b"\x00" * (index % 2))]
        messages = [
            {"type": "http.response.start", "status": 200, "headers": headers},
            {"type": "http.response.body", "body": b"ok"},
        ]
        ours = _exchange(ServingProtocol, _Script(None, messages), request, [])
        theirs = _exchange(HttpToolsProtocol, _Script(None, messages), request, [])
        assert ours[:3] == theirs[:3]
        assert len(protocol._LINES) <= 3


def test_cycles_of_the_serving_protocol_are_serving_cycles() -> None:
    assert issubclass(ServingCycle, RequestResponseCycle)
    script = _Script(None, [{"type": "http.response.start", "status": 204, "headers": []}])
    *_, cycles = _exchange(ServingProtocol, script, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", [])
    assert cycles == ["ServingCycle"]


class _WholeScript(_Script):
    """An app answering with one whole response: through :meth:`ServingCycle.write_response` when the
    cycle takes it (``taken`` records each answer), else as its two ASGI messages through ``send``;
    the request body read before or after (``read_at`` 0 or 2) or never."""

    def __init__(self, read_at: int | None, status: Any, headers: list[Any], body: bytes) -> None:
        start = {"type": "http.response.start", "status": status, "headers": headers}
        super().__init__(read_at, [start, {"type": "http.response.body", "body": body}])
        self.status = status
        self.headers = headers
        self.body = body
        self.taken: list[bool] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        cycle = getattr(send, "__self__", None)
        if not isinstance(cycle, ServingCycle):
            await super().__call__(scope, receive, send)
            return
        if self.read_at == 0:
            self.outcomes.append(f"received {(await receive())['type']}")
        taken = cycle.write_response(self.status, self.headers, self.body)
        self.taken.append(taken)
        if not taken:
            # What write_response refused it must have left as it was: send's answer is uvicorn's.
            for message in self.messages:
                try:
                    await send(message)
                except Exception as exc:
                    self.outcomes.append(f"{type(exc).__name__}: {exc}")
                    raise
                self.outcomes.append("sent")
        else:
            self.outcomes += ["sent", "sent"]
        if self.read_at == 2:
            self.outcomes.append(f"received {(await receive())['type']}")


@st.composite
def _whole_scripts(draw: st.DrawFn) -> _WholeScript:
    body = draw(st.sampled_from([_BODY, b"", b"ok"]))
    status: Any = draw(st.sampled_from([200, 201, 204, 304, 400, 422, 599, 99, 600, 201.0]))
    specs = draw(st.lists(_PLAIN_HEADERS, max_size=4))
    if draw(st.booleans()):
        specs.insert(draw(st.integers(0, len(specs))), draw(_OTHER_HEADERS))
    headers = [_header(spec, len(body)) for spec in specs]
    return _WholeScript(draw(st.sampled_from([None, 0, 2])), status, headers, body)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=_whole_scripts(), request=_REQUESTS, defaults=_DEFAULT_HEADERS)
def test_a_whole_response_is_written_as_uvicorn_writes_its_two_messages(
    script: _WholeScript, request: bytes, defaults: list[tuple[bytes, bytes]]
) -> None:
    twin = _Script(script.read_at, script.messages)
    ours = _exchange(ServingProtocol, script, request, list(defaults))
    theirs = _exchange(HttpToolsProtocol, twin, request, list(defaults))
    assert ours[:3] == theirs[:3]


@pytest.mark.parametrize("request_bytes", _REQUEST_LIST)
@pytest.mark.parametrize("read_at", [None, 0, 2])
def test_a_plain_whole_response_to_every_kind_of_request(request_bytes: bytes, read_at: int | None) -> None:
    """The common answer (checked headers, the declared length) to each kind of request: HEAD,
    HTTP/1.0, ``Connection: close``, ``Expect: 100-continue``, pipelined."""
    headers = [(b"content-length", b"%d" % len(_BODY)), (b"content-type", b"application/json")]
    defaults = [(b"date", b"Fri, 04 Dec 2026 20:00:00 GMT"), (b"server", b"uvicorn")]
    script = _WholeScript(read_at, 201, headers, _BODY)
    ours = _exchange(ServingProtocol, script, request_bytes, list(defaults))
    theirs = _exchange(HttpToolsProtocol, _Script(read_at, script.messages), request_bytes, list(defaults))
    assert ours[:3] == theirs[:3]
    assert True in script.taken or request_bytes.startswith(b"HEAD")


def test_an_order_answer_is_written_whole_in_one_write() -> None:
    length = b"%d" % len(_BODY)
    headers = [(b"content-length", length), (b"content-type", b"application/json")]
    request = b"POST /api/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    defaults = [(b"date", b"Fri, 04 Dec 2026 20:00:00 GMT"), (b"server", b"uvicorn")]
    writes: list[int] = []
    original = MemoryTransport.write

    def counting(self: MemoryTransport, data: Any) -> None:
        writes.append(len(data))
        original(self, data)

    script = _WholeScript(0, 201, headers, _BODY)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MemoryTransport, "write", counting)
        written, closed, outcomes, _ = _exchange(ServingProtocol, script, request, defaults)
    assert script.taken == [True]
    assert written == (
        b"HTTP/1.1 201 Created\r\ndate: Fri, 04 Dec 2026 20:00:00 GMT\r\nserver: uvicorn\r\n"
        b"content-length: " + length + b"\r\ncontent-type: application/json\r\n\r\n" + _BODY
    )
    assert writes == [len(written)]
    assert not closed
    assert outcomes == ["received http.request", "sent", "sent"]


def test_a_whole_response_is_refused_once_a_response_started() -> None:
    async def run() -> list[bool]:
        answers: list[bool] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            cycle = send.__self__
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
            answers.append(cycle.write_response(200, [(b"content-length", b"2")], b"ok"))
            await send({"type": "http.response.body", "body": b"ok"})
            answers.append(cycle.write_response(200, [(b"content-length", b"2")], b"ok"))

        config = uvicorn.Config(app, proxy_headers=False, access_log=False, log_config=None)
        config.load()
        state = ServerState()
        http = ServingProtocol(
            config=config, server_state=state, app_state={}, _loop=asyncio.get_running_loop()
        )
        transport = MemoryTransport()
        http.connection_made(transport)
        http.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.gather(*state.tasks)
        http.connection_lost(None)
        assert b"".join(transport.written).endswith(b"\r\n\r\nok")
        return answers

    assert asyncio.run(run()) == [False, False]
