""":class:`manticore_api.protocol.ServingWebSocket` against uvicorn's websockets-sansio protocol.

Reading: generated client byte streams (text frames short and long, invalid UTF-8, binary, ping, pong,
fragmented messages, close, unmasked frames, reserved bits, non-minimal and oversized lengths), split
at random points, some arriving with the upgrade request: both protocols must queue the same ASGI
events and write, pause, resume and close the same, whichever way the events are taken. Writing:
``write_texts`` writes what uvicorn's ``send`` writes for each text, and nothing when it may not. The
uvicorn and websockets parts the class relies on are pinned by their source's digest.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from typing import Any

import pytest
import uvicorn
import websockets.version
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.frames import Frame
from websockets.protocol import Protocol
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

from manticore_api.protocol import ServingProtocol, ServingWebSocket, _Inbox
from manticore_api.server import WS_MAX_SIZE, WS_PROTOCOL, http_protocol

#: sha256 of the source of each part ServingWebSocket relies on (uvicorn 0.54.0, websockets 17.4).
#: When one changes, re-read it against ServingWebSocket (what uvicorn does with a text frame, the
#: parser's generators at a frame boundary, the frame format), then update the digest here.
RELIED_ON = {
    "WebSocketsSansIOProtocol.__init__": "631dcd744eab875ffd404bbda22f9dd0db25b90e2585748710bce88357dce74b",
    "WebSocketsSansIOProtocol.data_received": (
        "c89d394077d8841d253e469eb47bfd9db0172cd7eebe38edf5211c8e312885d0"
    ),
    "WebSocketsSansIOProtocol.handle_text": (
        "6ae523180cf04a012bde88d4eb7fc1429d4e60ee8dc7cbf0f004288a3e657a8f"
    ),
    "WebSocketsSansIOProtocol.send_receive_event_to_app": (
        "a2b10de91477dc1d4d0e7c9065b85388a5b2a6ebeb84d6ec1591e112ca0bfbb9"
    ),
    "WebSocketsSansIOProtocol.receive": "1dc0e715390021a105cfe6abb35a730af9c5be3d71043329a39bbc1c5afe66bc",
    "WebSocketsSansIOProtocol.send": "d4919ed760ce9f7be8574989b91ed67448f210ff9cc114f38d286487ec1ddfc8",
    "Protocol.parse": "45aaf900644b63c46eee7cd7e28c53182cf53acac614aa93ed5a6a090fe95cc0",
    "Protocol.recv_frame": "4f83d3b90ea62428e18d55362bd208220982b46b83a823c76d6c19f1c5c2637b",
    "Protocol.send_text": "9268f18e580a5d679489ebcc8054316f6686319596d977b13d679cdd2f8ab1a6",
    "ServerProtocol.parse": "8c4d10340de4d32f573bd1c7c0e0b40374579dda3173abd82aedf3f6ffa07ea4",
    "StreamReader.at_eof": "106a9f1e43abf91f47c959ba8f26958de29abd9d02a1a0d9e2c99b9e68f3d23d",
    "Frame.parse": "2964f6b18f3ae45da1b7fd64fa7dbb779517c0139c4cefcba1f4e880aee92dea",
    "Frame.serialize": "2aeba0b89df2e975017129c7e5e5cc33d50dafae4d9ce909df07d15a201666d8",
}
_PARTS: dict[str, Any] = {
    "WebSocketsSansIOProtocol.__init__": WebSocketsSansIOProtocol.__init__,
    "WebSocketsSansIOProtocol.data_received": WebSocketsSansIOProtocol.data_received,
    "WebSocketsSansIOProtocol.handle_text": WebSocketsSansIOProtocol.handle_text,
    "WebSocketsSansIOProtocol.send_receive_event_to_app": WebSocketsSansIOProtocol.send_receive_event_to_app,
    "WebSocketsSansIOProtocol.receive": WebSocketsSansIOProtocol.receive,
    "WebSocketsSansIOProtocol.send": WebSocketsSansIOProtocol.send,
    "Protocol.parse": Protocol.parse,
    "Protocol.recv_frame": Protocol.recv_frame,
    "Protocol.send_text": Protocol.send_text,
    "ServerProtocol.parse": ServerProtocol.parse,
    "StreamReader.at_eof": StreamReader.at_eof,
    "Frame.parse": Frame.parse,
    "Frame.serialize": Frame.serialize,
}


def test_the_relied_on_parts_are_unchanged() -> None:
    assert uvicorn.__version__ == "0.54.0"
    assert websockets.version.version == "17.4"
    digests = {
        name: hashlib.sha256(inspect.getsource(part).encode()).hexdigest() for name, part in _PARTS.items()
    }
    assert digests == RELIED_ON


def test_serve_upgrades_to_the_serving_websocket() -> None:
    assert WS_PROTOCOL == "websockets-sansio" and http_protocol() is ServingProtocol
    config = uvicorn.Config(_app, ws=WS_PROTOCOL, http=http_protocol())
    config.load()
    protocol = ServingProtocol(
        config=config, server_state=ServerState(), app_state={}, _loop=asyncio.new_event_loop()
    )
    assert protocol.ws_protocol_class is ServingWebSocket


class _Recorder(asyncio.Transport):
    """A transport logging what the protocol does with it."""

    def __init__(self, log: list[Any]) -> None:
        super().__init__()
        self.log = log
        self.closing = False
        self.paused = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.log.append(("write", bytes(data)))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.log.append(("close",))
        self.closing = True

    def pause_reading(self) -> None:
        self.log.append(("pause",))
        self.paused = True

    def resume_reading(self) -> None:
        self.log.append(("resume",))
        self.paused = False

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        pass


async def _app(scope: Any, receive: Any, send: Any) -> None:
    """Accepts the connection, then waits until the test sets ``_DONE[-1]`` (the test reads the
    protocol's queue itself)."""
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    await _DONE[-1].wait()


_DONE: list[asyncio.Event] = []


_UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def _frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    masked: bool = True,
    rsv: int = 0,
    long_length: bool = False,
    mask: bytes = b"\x01\x02\x03\x04",
) -> bytes:
    """A client frame; ``long_length`` writes a short length in the 64-bit form."""
    from websockets.speedups import apply_mask

    head1 = (0x80 if fin else 0) | rsv << 4 | opcode
    length = len(payload)
    bit = 0x80 if masked else 0
    if long_length or length >= 65536:
        head = bytes((head1, bit | 127)) + length.to_bytes(8, "big")
    elif length >= 126:
        head = bytes((head1, bit | 126)) + length.to_bytes(2, "big")
    else:
        head = bytes((head1, bit | length))
    if not masked:
        return head + payload
    return head + mask + apply_mask(payload, mask)


_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
#: Random masks, and masks that read as the start of a plain text frame (a parser that took a frame's
#: mask for a frame boundary would read them as one).
_MASKS = st.binary(min_size=4, max_size=4) | st.sampled_from([b"\x81\x80\x00\x00", b"\x81\x81\x00\x00"])
_FRAMES = st.one_of(
    st.builds(lambda text, mask: _frame(1, text.encode(), mask=mask), _TEXT, _MASKS),
    st.builds(lambda text, mask: _frame(1, text.encode(), mask=mask), _TEXT, _MASKS),
    st.builds(lambda n, mask: _frame(1, b"x" * n, mask=mask), st.sampled_from([125, 126, 127, 300]), _MASKS),
    st.builds(lambda n: _frame(1, b"x" * n), st.sampled_from([65535, 65536, 65537])),
    st.builds(lambda data: _frame(1, data), st.sampled_from([b"\xff", b"ok\xc3", b"\xed\xa0\x80"])),
    st.builds(lambda data: _frame(2, data), st.binary(max_size=20)),
    st.builds(lambda data: _frame(9, data), st.binary(max_size=10)),
    st.builds(lambda data: _frame(10, data), st.binary(max_size=10)),
    st.builds(lambda a, b: _frame(1, a.encode(), fin=False) + _frame(0, b.encode()), _TEXT, _TEXT),
    st.just(_frame(8, (1000).to_bytes(2, "big"))),
    st.builds(lambda text: _frame(1, text.encode(), masked=False), _TEXT),
    st.builds(lambda text, rsv: _frame(1, text.encode(), rsv=rsv), _TEXT, st.sampled_from([1, 2, 4])),
    st.builds(lambda text: _frame(1, text.encode(), long_length=True), _TEXT),
    st.builds(lambda text: _frame(0, text.encode()), _TEXT),
    st.just(bytes((0x83, 0x80)) + b"\x00\x00\x00\x00"),  # a reserved opcode
)


async def _run(
    cls: type[WebSocketsSansIOProtocol], stream: bytes, cuts: list[int], early: int, takes: list[bool]
) -> list[Any]:
    log: list[Any] = []
    _DONE.append(asyncio.Event())
    config = uvicorn.Config(_app, ws=WS_PROTOCOL, ws_max_size=WS_MAX_SIZE, log_level="critical")
    config.load()
    state = ServerState()
    protocol = cls(config=config, server_state=state, app_state={}, _loop=asyncio.get_running_loop())
    transport = _Recorder(log)
    protocol.connection_made(transport)
    try:
        protocol.data_received(_UPGRADE + stream[:early])
    except Exception as exc:  # uvicorn's own failures (a frame refused before the handshake ends)
        log.append(("raised", type(exc).__name__))
        return log
    for _ in range(20):
        if protocol.handshake_complete:
            break
        await asyncio.sleep(0)
    log.append(("handshake", protocol.handshake_complete))
    pieces = [stream[a:b] for a, b in zip([early, *cuts], [*cuts, len(stream)], strict=True)]
    turn = 0
    for piece in pieces:
        if transport.closing:
            break
        if piece:
            try:
                protocol.data_received(piece)
            except Exception as exc:
                log.append(("raised", type(exc).__name__))
                break
        while not protocol.queue.empty():
            take = takes[turn % len(takes)] if takes else False
            turn += 1
            if take and isinstance(protocol, ServingWebSocket):
                message = protocol.take_text()
                assert message is not None
            else:
                message = await protocol.receive()
            log.append(("receive", message))
    _DONE.pop().set()
    for _ in range(3):
        await asyncio.sleep(0)
    return log


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(
    frames=st.lists(_FRAMES, max_size=8),
    data=st.data(),
)
def test_reads_as_uvicorn_reads(frames: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(frames)
    early = data.draw(st.integers(0, min(len(stream), 12)) | st.just(0), label="early")
    cuts = sorted(data.draw(st.lists(st.integers(early, len(stream)), max_size=6), label="cuts"))
    takes = data.draw(st.lists(st.booleans(), max_size=5), label="takes")
    expected = asyncio.run(_run(WebSocketsSansIOProtocol, stream, cuts, early, []))
    got = asyncio.run(_run(ServingWebSocket, stream, cuts, early, takes))
    assert got == expected


def test_plain_text_frames_are_read_by_the_serving_websocket(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole plain frames never reach websockets' parser (the fast path is taken)."""
    frames = [_frame(1, f'{{"op":"ping","n":{i}}}'.encode()) for i in range(5)] + [_frame(1, b"y" * 300)]
    parsed: list[bytes] = []
    original = ServerProtocol.receive_data

    def spy(self: ServerProtocol, data: bytes) -> None:
        parsed.append(bytes(data))
        original(self, data)

    monkeypatch.setattr(ServerProtocol, "receive_data", spy)
    cuts = [len(frames[0]), len(b"".join(frames[:4]))]  # reads of 1, 3 and 2 whole frames
    log = asyncio.run(_run(ServingWebSocket, b"".join(frames), cuts, 0, [True, False]))
    assert parsed == [_UPGRADE]
    texts = [entry[1]["text"] for entry in log if entry[0] == "receive"]
    assert texts == [f'{{"op":"ping","n":{i}}}' for i in range(5)] + ["y" * 300]


@pytest.mark.parametrize("early", [2, 4, 6, 7])
def test_a_frame_begun_with_the_upgrade_request_is_finished_by_websockets(early: int) -> None:
    """The client sent part of a frame with its upgrade request: websockets' parser holds it (its
    mask here reads like a plain frame's start), and the rest of the frame must go to it too."""
    stream = _frame(1, b"hello", mask=b"\x81\x80\x00\x00") + _frame(1, b"world")
    expected = asyncio.run(_run(WebSocketsSansIOProtocol, stream, [], early, []))
    assert [entry[1]["text"] for entry in expected if entry[0] == "receive"] == ["hello", "world"]
    assert asyncio.run(_run(ServingWebSocket, stream, [], early, [])) == expected


async def _connected(cls: type[WebSocketsSansIOProtocol]) -> tuple[WebSocketsSansIOProtocol, list[Any]]:
    log: list[Any] = []
    _DONE[:] = [asyncio.Event()]  # never set: the app waits until the loop ends
    config = uvicorn.Config(_app, ws=WS_PROTOCOL, ws_max_size=WS_MAX_SIZE, log_level="critical")
    config.load()
    protocol = cls(config=config, server_state=ServerState(), app_state={}, _loop=asyncio.get_running_loop())
    protocol.connection_made(_Recorder(log))
    protocol.data_received(_UPGRADE)
    for _ in range(20):
        if protocol.handshake_complete:
            break
        await asyncio.sleep(0)
    log.clear()
    return protocol, log


_TEXTS = st.lists(
    st.one_of(
        st.text(max_size=30),
        st.builds(
            lambda n, c: c * n, st.sampled_from([125, 126, 127, 65535, 65536]), st.sampled_from(["a", "é"])
        ),
    ),
    min_size=1,
    max_size=5,
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(texts=_TEXTS)
def test_writes_what_uvicorn_writes(texts: list[str]) -> None:
    async def run() -> tuple[list[Any], list[Any], bool]:
        stock, stock_log = await _connected(WebSocketsSansIOProtocol)
        for text in texts:
            try:
                await stock.send({"type": "websocket.send", "text": text})
            except UnicodeEncodeError:
                stock_log.append(("unencodable",))
                break
        serving, serving_log = await _connected(ServingWebSocket)
        assert isinstance(serving, ServingWebSocket)
        written = serving.write_texts(texts)
        return stock_log[:], serving_log[:], written  # (copies: the app tasks close at the loop's end)

    stock_log, serving_log, written = asyncio.run(run())
    if ("unencodable",) in stock_log:
        assert not written and serving_log == []
    else:
        assert written
        assert serving_log == [("write", b"".join(entry[1] for entry in stock_log))]


@pytest.mark.parametrize("state", ["close_sent", "disconnected", "not_writable", "closing", "not_accepted"])
def test_writes_nothing_when_send_must_decide(state: str) -> None:
    async def run() -> tuple[bool, list[Any]]:
        protocol, log = await _connected(ServingWebSocket)
        assert isinstance(protocol, ServingWebSocket)
        if state == "close_sent":
            await protocol.send({"type": "websocket.close", "code": 1000})
        elif state == "disconnected":
            protocol.connection_lost(None)
        elif state == "not_writable":
            protocol.pause_writing()
        elif state == "closing":
            protocol.conn.send_close(1000)
        else:
            protocol.handshake_complete = False
        log.clear()
        return protocol.write_texts(["hello"]), log[:]

    written, log = asyncio.run(run())
    assert not written and log == []


def test_the_inbox_wakes_its_readers_in_order_and_survives_a_cancelled_one() -> None:
    async def run() -> list[Any]:
        inbox = _Inbox()
        got: list[Any] = []

        async def read() -> None:
            got.append(await inbox.get())

        first = asyncio.create_task(read())
        cancelled = asyncio.create_task(read())
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.sleep(0)
        inbox.put_nowait(1)
        await first
        assert inbox.empty() and inbox.qsize() == 0
        inbox.put_nowait(2)
        inbox.put_nowait(3)
        assert inbox.qsize() == 2
        got.append(await inbox.get())
        got.append(await inbox.get())
        late = asyncio.create_task(read())
        await asyncio.sleep(0)
        assert not late.done()
        inbox.put_nowait(4)
        await late
        return got

    assert asyncio.run(run()) == [1, 2, 3, 4]
