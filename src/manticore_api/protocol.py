"""``manticore serve``'s HTTP/1.1 protocol: uvicorn's httptools protocol with these changes.

1. Once a connection is handed to a WebSocket protocol, the HTTP protocol drops its request parser: the
   parser holds the protocol's bound callbacks and the protocol holds the parser, a reference cycle that
   lives as long as the WebSocket connection and becomes cyclic garbage when it closes. Under the serving
   GC policy (:mod:`.gcpolicy`) that cycle has been frozen by then and would never be collected (~20
   objects per WebSocket connection; docs/performance.md, session 12). Without it, reference counting
   frees the upgraded protocol when the connection ends.

2. Each request's response cycle is a :class:`ServingCycle`, which writes a response's status line and
   headers without uvicorn's two regular-expression searches per header (four headers on every order
   answer) when every header is one it has already checked: uvicorn's checks run on a header the first
   time it is seen, the result is remembered (bounded), and the head written is byte for byte uvicorn's.
   Anything else -- a header it has not seen or that failed the checks, a ``connection`` or
   ``transfer-encoding`` header, no or two ``content-length`` headers, an unknown status, the access
   log on, a paused or closed connection -- goes through uvicorn's own ``send``. A body sent whole in
   one message after such a head is written the same way (no second ``send`` coroutine).
   :meth:`ServingCycle.write_response` sends a whole response (head and body) in one call and one
   transport write, on the same conditions, with no ASGI messages or ``send`` coroutines: the
   order-entry fast path (:mod:`.fastpath`) answers through it.

3. A connection upgraded to a WebSocket by uvicorn's websockets-sansio protocol (``manticore serve``'s)
   gets a :class:`ServingWebSocket`: that protocol, reading a client's plain text frames and writing
   text frames itself (no frame objects, parser generators or ``send`` coroutine per frame; the frames
   queued for a client by then in one transport write), with uvicorn's and websockets' behaviour for
   everything else (its class doc). ``/ws`` uses it through :class:`~manticore_api.textsocket.TextSocket`.

4. Each request costs fewer steps on the event loop, with uvicorn's behaviour: the cycle keeps its state
   in slots, is built from positional arguments, and is its own request-body event (``set``,
   ``clear``, ``is_set``, ``wait`` as :class:`asyncio.Event`'s, a future only while ``receive``
   waits; uvicorn builds an ``asyncio.Event`` per request and sets it twice); ``run_asgi`` leaves a
   module function as the finished cycle's ``on_response`` (uvicorn: a new lambda per request);
   ``on_headers_complete``, ``on_body``, ``on_message_complete`` and ``on_response_complete`` are
   uvicorn's with fewer look-ups and calls.

5. The keep-alive timeout: uvicorn creates a timer per response (``call_later``) and cancels it when the
   next data arrives. :class:`ServingProtocol` keeps the deadline (the loop time the response completed
   plus ``timeout_keep_alive``; None once data arrives) and one timer: when it fires before a later
   deadline it waits for the rest, so the idle connection closes when uvicorn's would (to the loop
   clock's resolution) with one timer per ``timeout_keep_alive`` seconds instead of one per response.

The classes rely on uvicorn's internals (the cycle's attributes and what its ``send`` does with them):
``uvicorn`` is pinned in pyproject.toml, and ``tests/api/test_serving_protocol.py`` fails when the
installed version or the source of the parts relied on differs from :data:`UVICORN_VERSION`'s, and
compares the bytes written with uvicorn's own protocol's for generated responses;
``tests/api/test_serving_streams.py`` compares both protocols' writes, closes, pauses, scopes and
messages for generated request streams split at random, and pins the uvicorn code items 4-5 mirror;
``tests/api/test_serving_websocket.py`` does the same for :class:`ServingWebSocket` (and websockets).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.parse
from collections import deque
from collections.abc import Callable
from typing import Any

import httptools
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT, FlowControl, service_unavailable
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import Protocol, State
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

try:
    from websockets.speedups import apply_mask
except ImportError:  # websockets without its C extension
    from websockets.utils import apply_mask

__all__ = ["UVICORN_VERSION", "ServingCycle", "ServingProtocol", "ServingWebSocket"]

#: The uvicorn release whose internals this module was written against (pinned in pyproject.toml).
UVICORN_VERSION = "0.54.0"

#: Header names whose values uvicorn's ``send`` acts on besides writing them (compared lower-cased).
_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"connection"})

#: The checked headers: (name, value) as the app sent it -> (the line uvicorn writes for it, the
#: declared length for a ``content-length`` header, -1 for any other header).
_LINES: dict[tuple[bytes, bytes], tuple[bytes, int]] = {}
#: Distinct headers remembered before the table starts again (content lengths and dates vary).
_MAX_LINES = 4096


def _checked_line(header: object) -> tuple[bytes, int] | None:
    """What :data:`_LINES` holds for ``header`` if uvicorn writes it unchanged but for its name's case
    and either ignores its meaning or it is a ``content-length`` of decimal digits; None for any other
    header (uvicorn's ``send`` then decides, raising for an invalid one)."""
    if type(header) is not tuple or len(header) != 2:
        return None
    name, value = header
    if type(name) is not bytes or type(value) is not bytes:
        return None
    if HEADER_RE.search(name) or HEADER_VALUE_RE.search(value):
        return None
    lower = name.lower()
    declared = -1
    if lower in _FRAMING:
        if lower != b"content-length" or not value.isdigit():
            return None
        declared = int(value)
    if len(_LINES) >= _MAX_LINES:
        _LINES.clear()
    entry = _LINES[header] = (b"".join((lower, b": ", value, b"\r\n")), declared)
    return entry


class _Defaults:
    """The server's default headers (``date``, ``server``) as one block of header lines, for the last
    list of them seen: uvicorn replaces the list (once a second, with the date), never changes it."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        #: (the list, its block or None when a default header needs uvicorn's handling), replaced in
        #: one assignment: servers on other threads' loops may read it meanwhile.
        self.last: tuple[list[tuple[bytes, bytes]] | None, bytes | None] = (None, None)

    def block_for(self, headers: list[tuple[bytes, bytes]]) -> bytes | None:
        last = self.last
        if last[0] is headers:
            return last[1]
        lines = [_checked_line(header) for header in headers]
        block = None
        if all(line is not None and line[1] < 0 for line in lines):
            block = b"".join(line[0] for line in lines if line is not None)
        self.last = (headers, block)
        return block


_DEFAULTS = _Defaults()


def _nothing() -> None:
    """A finished cycle's ``on_response`` (uvicorn assigns a new ``lambda: None`` per request)."""


class ServingCycle(RequestResponseCycle):
    """uvicorn's request-response cycle, writing the response head itself when it may (module doc),
    with its state in slots and its own request-body signal (module doc, item 4)."""

    __slots__ = (
        "_signalled",
        "_waiters",
        "access_log",
        "access_logger",
        "body",
        "chunked_encoding",
        "default_headers",
        "disconnected",
        "expected_content_length",
        "flow",
        "keep_alive",
        "logger",
        "more_body",
        "on_response",
        "response_complete",
        "response_started",
        "scope",
        "transport",
        "waiting_for_100_continue",
    )

    def __init__(
        self,
        scope: Any,
        transport: asyncio.Transport,
        flow: FlowControl,
        logger: logging.Logger,
        access_logger: logging.Logger,
        access_log: bool,
        default_headers: list[tuple[bytes, bytes]],
        expect_100_continue: bool,
        keep_alive: bool,
        on_response: Callable[[], None],
    ) -> None:
        """The state uvicorn's ``RequestResponseCycle.__init__`` sets, but ``message_event``: the cycle
        is its own event (:attr:`message_event`)."""
        self.scope = scope
        self.transport = transport
        self.flow = flow
        self.logger = logger
        self.access_logger = access_logger
        self.access_log = access_log
        self.default_headers = default_headers
        self.on_response = on_response
        self.disconnected = False
        self.keep_alive = keep_alive
        self.waiting_for_100_continue = expect_100_continue
        self.body = bytearray()
        self.more_body = True
        self.response_started = False
        self.response_complete = False
        self.chunked_encoding = None
        self.expected_content_length = 0
        self._signalled = False
        self._waiters: list[asyncio.Future[None]] | None = None

    # -- the request-body signal: asyncio.Event's interface and behaviour, without an Event object

    @property
    def message_event(self) -> ServingCycle:  # type: ignore[override]
        """The event uvicorn's code sets (``send``, ``connection_lost``): this cycle itself."""
        return self

    def set(self) -> None:
        """``asyncio.Event.set``: signalled, every waiter woken."""
        if not self._signalled:
            self._signalled = True
            waiters = self._waiters
            if waiters:
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)

    def clear(self) -> None:
        """``asyncio.Event.clear``."""
        self._signalled = False

    def is_set(self) -> bool:
        """``asyncio.Event.is_set``."""
        return self._signalled

    async def wait(self) -> bool:
        """``asyncio.Event.wait``: True at once when signalled, else once :meth:`set` is called."""
        if self._signalled:
            return True
        waiter = asyncio.get_running_loop().create_future()
        waiters = self._waiters
        if waiters is None:
            waiters = self._waiters = []
        waiters.append(waiter)
        try:
            await waiter
            return True
        finally:
            waiters.remove(waiter)

    # -- the ASGI side

    async def run_asgi(self, app: Any) -> None:
        """uvicorn's ``run_asgi`` (the same logging and answers), with no new function per request."""
        try:
            result = await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            self.logger.error("Exception in ASGI application\n", exc_info=exc)
            if not self.response_started:
                await self.send_500_response()
            else:
                self.transport.close()
        else:
            if result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
                self.transport.close()
            elif not self.response_started and not self.disconnected:
                self.logger.error("ASGI callable returned without starting response.")
                await self.send_500_response()
            elif not self.response_complete and not self.disconnected:
                self.logger.error("ASGI callable returned without completing response.")
                self.transport.close()
        finally:
            self.on_response = _nothing

    async def receive(self) -> Any:
        """uvicorn's ``receive``: the same messages, writes and read resuming."""
        if self.waiting_for_100_continue and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.waiting_for_100_continue = False
        if not self.disconnected and not self.response_complete:
            flow = self.flow
            if flow.read_paused:
                flow.resume_reading()
            if not self._signalled:
                await self.wait()
            self._signalled = False
        if self.disconnected or self.response_complete:
            return {"type": "http.disconnect"}
        message = {"type": "http.request", "body": bytes(self.body), "more_body": self.more_body}
        self.body = bytearray()
        return message

    async def send(self, message: Any) -> None:
        if self.disconnected or self.flow.write_paused:  # uvicorn's send drops it or waits first
            pass
        elif not self.response_started:
            if message["type"] == "http.response.start" and not self.access_log:
                head = self._head(message)
                if head is not None:
                    self.transport.write(head)
                    return
        elif (
            # The whole body of a response with a content-length, in one message: what uvicorn's
            # send does with it, without its checks for the other cases.
            self.chunked_encoding is False
            and not self.response_complete
            and message["type"] == "http.response.body"
            and not message.get("more_body", False)
            and self.scope["method"] != "HEAD"
        ):
            body = message.get("body", b"")
            if len(body) == self.expected_content_length:
                self.expected_content_length = 0
                self.transport.write(body)
                self.response_complete = True
                self.set()
                if not self.keep_alive:
                    self.transport.close()
                self.on_response()
                return
        await super().send(message)

    def write_response(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bool:
        """Send a whole response -- ``{"type": "http.response.start", "status": status, "headers":
        headers}`` then ``{"type": "http.response.body", "body": body}`` -- leaving the connection and
        the cycle as :meth:`send` of those two messages would, the head and body in one transport write
        (one system call under uvloop instead of two); True when done. False, having changed nothing,
        when :meth:`send` must handle those messages (a response already started, a header not already
        checked, a body not of the declared length, a HEAD request, the access log on, a paused or
        closed connection, ...): send them then."""
        if (
            self.response_started
            or self.disconnected
            or self.flow.write_paused
            or self.access_log
            or self.scope["method"] == "HEAD"
        ):
            return False
        found = self._head_of(status, headers)
        if found is None or found[1] != len(body):
            return False
        self.response_started = True
        self.waiting_for_100_continue = False
        self.chunked_encoding = False
        self.expected_content_length = 0
        self.transport.write(found[0] + body)
        self.response_complete = True
        self.set()
        if not self.keep_alive:
            self.transport.close()
        self.on_response()
        return True

    def _head(self, message: Any) -> bytes | None:
        """The status line and headers uvicorn would write for ``message`` (and the state it would set),
        or None, changing nothing, when uvicorn's ``send`` must handle it."""
        found = self._head_of(message.get("status"), message.get("headers", ()))
        if found is None:
            return None
        self.response_started = True
        self.waiting_for_100_continue = False
        self.chunked_encoding = False
        self.expected_content_length = found[1]
        return found[0]

    def _head_of(self, status: object, headers: Any) -> tuple[bytes, int] | None:
        """(the status line and headers uvicorn would write for a response start with ``status`` and
        ``headers``, the content length they declare), or None when uvicorn's ``send`` must decide.
        Changes nothing."""
        if type(status) is not int or (type(headers) is not list and type(headers) is not tuple):
            return None
        status_line = STATUS_LINE.get(status)
        defaults = _DEFAULTS.block_for(self.default_headers)
        if status_line is None or defaults is None:
            return None
        head = [status_line, defaults]
        length = -1
        for header in headers:
            try:
                entry = _LINES.get(header)
            except TypeError:  # not hashable: not a header this class writes
                return None
            if entry is None:
                entry = _checked_line(header)
                if entry is None:
                    return None
            if entry[1] >= 0:
                if length >= 0:
                    return None  # a second content-length: uvicorn's rules
                length = entry[1]
            head.append(entry[0])
        if length < 0:
            return None  # no content-length: uvicorn decides on chunked encoding
        if not self.keep_alive:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        return b"".join(head), length


#: How early the keep-alive timer may fire and still close (the loop clock's resolution: asyncio runs
#: a timer handle up to its ``_clock_resolution`` early, uvloop rounds delays to milliseconds).
_CLOCK_SLACK = 0.001


class ServingProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with :class:`ServingCycle` cycles and cheaper per-request callbacks,
    dropping its parser once its connection is upgraded to a WebSocket (module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.ws_protocol_class is WebSocketsSansIOProtocol:
            self.ws_protocol_class = ServingWebSocket
        #: When the keep-alive timeout closes the idle connection (loop time), None while it may not:
        #: uvicorn's armed ``timeout_keep_alive_task`` (item 5 of the module doc).
        self._idle_deadline: float | None = None
        #: The loop's timer that checks :attr:`_idle_deadline`, while one is pending.
        self._idle_timer: asyncio.TimerHandle | None = None

    # -- the keep-alive timeout: one timer re-armed, not a timer created and cancelled per request

    def _unset_keepalive_if_required(self) -> None:
        self._idle_deadline = None

    def _idle_check(self) -> None:
        """The timer: close at the deadline (uvicorn's handler), wait on for a later one, or stop."""
        self._idle_timer = None
        deadline = self._idle_deadline
        if deadline is None:
            return
        remaining = deadline - self.loop.time()
        if remaining > _CLOCK_SLACK:
            self._idle_timer = self.loop.call_later(remaining, self._idle_check)
            return
        self._idle_deadline = None
        self.timeout_keep_alive_handler()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if exc is None and self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    # -- per request: uvicorn's callbacks, the same state and calls, fewer steps

    def data_received(self, data: bytes) -> None:
        self._idle_deadline = None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def on_headers_complete(self) -> None:
        parser = self.parser
        http_version = parser.get_http_version()
        scope = self.scope
        scope["method"] = parser.get_method().decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        if parser.should_upgrade() and self._should_upgrade():
            return
        parsed_url = httptools.parse_url(self.url)
        raw_path = parsed_url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        root_path = self.root_path
        if root_path:
            scope["path"] = root_path + path
            scope["raw_path"] = root_path.encode("ascii") + raw_path
        else:
            scope["path"] = path
            scope["raw_path"] = raw_path
        scope["query_string"] = parsed_url.query or b""

        limit = self.limit_concurrency
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            app: Any = service_unavailable
            self.logger.warning("Exceeded concurrency limit.")
        else:
            app = self.app

        existing_cycle = self.cycle
        self.cycle = cycle = ServingCycle(
            scope,
            self.transport,
            self.flow,
            self.logger,
            self.access_logger,
            self.access_log,
            self.server_state.default_headers,
            self.expect_100_continue,
            http_version != "1.0" and parser.should_keep_alive(),
            self.on_response_complete,
        )
        if existing_cycle is None or existing_cycle.response_complete:
            if self.config.reset_contextvars:
                self._start_asgi_task(cycle, app)
            else:  # uvicorn's _start_asgi_task, inline
                task = self.loop.create_task(cycle.run_asgi(app))
                tasks = self.tasks
                task.add_done_callback(tasks.discard)
                tasks.add(task)
        else:
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, app))

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if (self.parser.should_upgrade() and self._should_upgrade()) or cycle.response_complete:
            return
        cycle.body += body
        if len(cycle.body) > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        if not cycle._signalled:  # type: ignore[attr-defined]
            cycle.set()  # type: ignore[attr-defined]

    def on_message_complete(self) -> None:
        cycle = self.cycle
        if (self.parser.should_upgrade() and self._should_upgrade()) or cycle.response_complete:
            return
        cycle.more_body = False
        if not cycle._signalled:  # type: ignore[attr-defined]
            cycle.set()  # type: ignore[attr-defined]

    def on_response_complete(self) -> None:
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._idle_deadline = None
        flow = self.flow
        if flow.read_paused:
            flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:  # uvicorn's call_later(timeout_keep_alive, ...): close that long from now unless unset
            loop = self.loop
            self._idle_deadline = loop.time() + self.timeout_keep_alive
            if self._idle_timer is None:
                self._idle_timer = loop.call_later(self.timeout_keep_alive, self._idle_check)

    def handle_websocket_upgrade(self) -> None:
        super().handle_websocket_upgrade()
        # The transport belongs to the WebSocket protocol now; this one never parses again.
        del self.parser


class _Inbox:
    """The WebSocket protocol's queue of ASGI receive events, in the part of :class:`asyncio.Queue`'s
    interface uvicorn's protocol uses (``put_nowait``, ``get``, ``empty``, ``qsize``), and
    :attr:`items` for a reader that does not wait (:meth:`ServingWebSocket.take_text`): a deque, and a
    future per reader only while it waits on an empty queue. A put wakes every waiting reader, in the
    order they began waiting; one that finds the queue empty again waits again (so a reader cancelled
    after its wake-up loses no event for the others)."""

    __slots__ = ("_waiters", "items")

    def __init__(self) -> None:
        self.items: deque[Any] = deque()
        self._waiters: list[asyncio.Future[None]] = []

    def qsize(self) -> int:
        return len(self.items)

    def empty(self) -> bool:
        return not self.items

    def put_nowait(self, item: Any) -> None:
        self.items.append(item)
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def get(self) -> Any:
        items = self.items
        while not items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
                raise
        return items.popleft()


class ServingWebSocket(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio WebSocket protocol, reading and writing plain text frames itself.

    **Reading.** A client's text frame that is whole, final (FIN), masked, without reserved bits, at
    most 65,535 bytes long and within the connection's message size limit, arriving while the
    connection is open, with no extension agreed, no fragmented message in progress and websockets'
    parser waiting at a frame boundary, is unmasked and queued as the ``websocket.receive`` event
    uvicorn would queue for it, with the same read pausing. Any other frame, and everything after it
    in the same read, goes to websockets' parser and uvicorn's handling, as before (as uvicorn, all
    of a read is parsed before any of it is handled, and a frame the parser refuses drops the read's
    earlier frames); a later read is this class's again once the parser is back at a frame boundary
    (checked on its generators). So every frame is read by exactly one of the two, in order.

    **Writing.** :meth:`write_texts` writes text frames in one transport write when uvicorn's ``send``
    of a ``websocket.send`` text message would write each of them unchanged (the connection open, the
    handshake done, no close sent, no extension, writing not paused); it changes nothing and says so
    otherwise (send through ``send`` then).

    :meth:`take_text` gives the reader the next queued event without a coroutine when there is one
    (the ``receive`` of uvicorn's protocol, less the wait).
    ``tests/api/test_serving_websocket.py`` compares both protocols' events, writes and pausing for
    generated byte streams split at random, and the frames written with websockets' own.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue: _Inbox = _Inbox()  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self._reading_frames():
            super().data_received(data)
            return
        # As uvicorn: every frame of the read is parsed before any is handled, and a frame that
        # websockets' parser refuses drops the frames before it in the read (handle_parser_exception).
        size = len(data)
        start = 0
        limit = self.conn.max_message_size
        if limit is None:
            limit = 1 << 16
        payloads: list[bytes] = []
        while start < size:
            # A whole text frame with a 7- or 16-bit length: 0x81, then the mask bit and the length.
            if size - start < 6 or data[start] != 0x81:
                break
            length = data[start + 1] ^ 0x80
            if length < 126:
                head = 6
            elif length == 126 and size - start >= 8:
                length = (data[start + 2] << 8) | data[start + 3]
                head = 8
            else:
                break
            end = start + head + length
            if end > size or length > limit:
                break
            payloads.append(apply_mask(data[end - length : end], data[end - length - 4 : end - length]))
            start = end
        rest = start < size
        if rest:
            conn = self.conn
            conn.receive_data(data[start:] if start else data)
            if conn.parser_exc is not None:
                self.handle_parser_exception()
                return
        queue = self.queue
        for payload in payloads:
            if self.close_sent:
                break  # uvicorn's send_receive_event_to_app discards them
            try:
                text = payload.decode()
            except UnicodeDecodeError:
                self.curr_msg_data_type = "text"
                self.frames = [payload]
                self.send_receive_event_to_app()  # uvicorn's close 1007
                continue
            queue.put_nowait({"type": "websocket.receive", "text": text})
            if not self.read_paused:
                self.read_paused = True
                self.transport.pause_reading()
        if rest:
            self.handle_events()

    def _reading_frames(self) -> bool:
        """Whether this class may read the next frame (see the class doc)."""
        conn = self.conn
        if (
            not self.handshake_complete
            or conn.state is not _OPEN
            or conn.extensions
            or conn.current_size is not None
            or conn.debug
            or conn.max_fragment_size is not None
            or conn.reader.buffer
        ):
            return False
        # websockets' parser at a frame boundary: ServerProtocol.parse in Protocol.parse in at_eof.
        outer: Any = conn.parser
        inner = outer.gi_yieldfrom
        if outer.gi_code is not _SERVER_PARSE or inner is None or inner.gi_code is not _PARSE:
            return False
        innermost = inner.gi_yieldfrom
        return innermost is not None and innermost.gi_code is _AT_EOF

    def take_text(self) -> Any:
        """The next queued receive event, or None when there is none (await ``receive`` then); resumes
        reading as ``receive`` does once the queue is empty."""
        items = self.queue.items
        if not items:
            return None
        message = items.popleft()
        if self.read_paused and not items:
            self.read_paused = False
            self.transport.resume_reading()
        return message

    def write_texts(self, texts: list[str]) -> bool:
        """Write ``texts`` as text frames in one transport write, as uvicorn's ``send`` of a
        ``websocket.send`` message for each would (class doc); False, having written nothing, when
        ``send`` must send them (also when a text cannot be encoded: ``send`` raises then)."""
        conn = self.conn
        if (
            self.disconnected
            or not self.handshake_complete
            or self.close_sent
            or self.initial_response is not None
            or not self.writable.is_set()
            or conn.state is not _OPEN
            or conn.extensions
            or conn.expect_continuation_frame
            or conn.debug
        ):
            return False
        parts: list[bytes] = []
        for text in texts:
            try:
                payload = text.encode()
            except UnicodeEncodeError:
                return False
            length = len(payload)
            if length < 126:
                parts.append(_SHORT_HEADS[length])
            elif length < 65536:
                parts.append(b"\x81\x7e" + length.to_bytes(2, "big"))
            else:
                parts.append(b"\x81\x7f" + length.to_bytes(8, "big"))
            parts.append(payload)
        self.transport.write(b"".join(parts))
        return True


_OPEN = State.OPEN
_SERVER_PARSE = ServerProtocol.parse.__code__
_PARSE = Protocol.parse.__code__
_AT_EOF = StreamReader.at_eof.__code__
#: The header of an unmasked final text frame of each length below 126.
_SHORT_HEADS = [bytes((0x81, length)) for length in range(126)]
