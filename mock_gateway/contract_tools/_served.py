"""The validating proxy's HTTP/1.1 server: each request read whole, then answered whole.

The proxy reads every body whole (it must, to check it) and answers whole, so it needs none of ASGI's
streaming; through uvicorn's request cycle, a call cost it more CPU than its contract checks, and a
call's latency through the proxy follows its CPU (`make bench-proxy`). This server is httptools on the
event loop (uvloop where installed) with no task but the one that awaits the app's answer, and the
limits of every server we ship (`GuardedHttpToolsProtocol`, the defaults of `MockConfig`):

- a request line and headers past `max_header_bytes` are answered 431, a body past the app's
  `max_body_bytes` its 413 (at once when `Content-Length` says so), a request that does not arrive
  within `body_timeout` 408, a request that does not parse 400; each ends the connection, read on
  until the caller closes it (`linger`) so that no reset loses the answer;
- a connection idle for `keep_alive` seconds is closed, and past `max_connections` an idle one makes
  room (with none, 503): one timer sweeps them all, so a request arms and cancels no timer;
- an upgrade offer (`Upgrade: h2c`, a websocket) is ignored, as RFC 9110 §7.8 lets a server: the
  request is served as HTTP/1.1, with its body; CONNECT, which names no resource here, is refused;
- pipelined requests are answered in order, reading paused while one waits;
- with an admin token, `/__mock/*` but health needs it (`AdminLock`), as under `AdminAuth`.

The ASGI app (`ContractProxy.__call__`) stays for in-process use; both answer through `answer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import socket
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn, Protocol

import httptools

from ..model import MockConfig
from ..server._admin_auth import UNAUTHORIZED_BODY, UNAUTHORIZED_HEADERS, AdminLock
from ..server._coalesce import LARGE
from ..server._limits import (
    KEEP_ALIVE_SECONDS,
    REASONS,
    SHUTDOWN_SECONDS,
    Refused,
    default_max_connections,
    error_response,
    head_too_large,
    head_without_offer,
    linger,
)
from ._asgi import Answer, Request, error_answer, text_headers

logger = logging.getLogger("mock_gateway.proxy")
_BAD_NAME = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9a-zA-Z]")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
"""What no header name or value of an answer may hold (RFC 9110 5.1 and 5.5): a newline would end the
head early. The app's values are checked joined, one search each."""
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class WholeApp(Protocol):
    """What the server serves: `ContractProxy`."""

    max_body_bytes: int

    async def answer(self, request: Request) -> Answer: ...

    def too_large(self) -> Answer: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Limits:
    """The guarded protocol's limits (`mock_gateway.server._limits`) and defaults; tests shorten them."""

    max_header_bytes: int = MockConfig.max_header_bytes
    body_timeout: float = MockConfig.body_timeout
    keep_alive: float = KEEP_ALIVE_SECONDS
    max_connections: int = field(default_factory=default_max_connections)
    shutdown_seconds: float = SHUTDOWN_SECONDS


class WholeServer:
    """Serves `app` on a socket until `stop` is set; then answers what it has begun (for up to
    `shutdown_seconds`), closes its connections and the app."""

    def __init__(self, app: WholeApp, limits: Limits | None = None, admin_token: str | None = None) -> None:
        self.app = app
        self.limits = limits or Limits()
        self.lock = AdminLock(admin_token) if admin_token else None
        self.connections: set[_Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.stopping = False

    async def run(self, sock: socket.socket, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Connection(self), sock=sock, backlog=2048)
        sweep = min(1.0, self.limits.body_timeout / 4, self.limits.keep_alive / 4)
        sweeper = loop.create_task(self._sweep(sweep))
        try:
            await stop.wait()
        finally:
            server.close()
            self.stopping = True
            for connection in list(self.connections):
                connection.shutdown()
            if self.tasks:
                await asyncio.wait(list(self.tasks), timeout=self.limits.shutdown_seconds)
            for task in list(self.tasks):
                task.cancel()
            if self.tasks:
                await asyncio.wait(list(self.tasks))
            for connection in list(self.connections):
                connection.transport.close()
            sweeper.cancel()
            await self.app.aclose()

    async def _sweep(self, every: float) -> None:
        """Close idle connections past `keep_alive`, and answer 408 to requests slower than `body_timeout`."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(every)
            now = loop.time()
            for connection in list(self.connections):
                connection.expire(now)

    def make_room(self, newcomer: _Connection) -> bool:
        """Close another connection that waits for nothing: False when none does."""
        for other in self.connections:
            if other is not newcomer and other.idle:
                other.close()
                return True
        return False


class _Connection(asyncio.Protocol):
    """One client connection: its parser's callbacks gather a request, `_answer` answers it."""

    transport: asyncio.Transport

    def __init__(self, server: WholeServer) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.since = self.loop.time()
        """When its request began, or it went idle: what the sweep times."""
        self.reading = False
        self.in_head = False
        self.head_bytes = 0
        """Bytes of the chunks that ended inside the head being read."""
        self.received = 0
        """`head_bytes` and the chunk being parsed: no head completed in it is larger."""
        self.waiting: deque[tuple[Request, bool, bool]] = deque()
        self.answering = False
        self.closed = False
        self.drained: asyncio.Future[None] | None = None
        self.address: tuple[str, int] | None = None
        """Where the caller's connection arrived (`Request.server`): asked once, not per request."""
        self.offer_head: bytes | None = None
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.size = 0

    @property
    def idle(self) -> bool:
        """No request begun, none waiting or being answered (or refused: it lingers only to close)."""
        return self.closed or not (self.reading or self.answering or self.waiting)

    # The connection ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport: create_server's
        sockname = transport.get_extra_info("sockname")
        self.address = (sockname[0], sockname[1]) if isinstance(sockname, tuple) else None
        connections = self.server.connections
        connections.add(self)
        limit = self.server.limits.max_connections
        if len(connections) > limit and not self.server.make_room(self):
            self.refuse(503, f"The proxy serves at most {limit} connections at once.")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def pause_writing(self) -> None:
        self.drained = self.loop.create_future()

    def resume_writing(self) -> None:
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)
        self.drained = None

    def shutdown(self) -> None:
        """The server stops: close now when idle, else once the answer begun is written."""
        if self.idle:
            self.close()

    def expire(self, now: float) -> None:
        """The sweep's visit: an idle connection past `keep_alive` closed, a request past `body_timeout`
        refused (one being answered waits for the app, not the caller)."""
        limits = self.server.limits
        if self.closed or self.answering or self.waiting:
            return
        if self.reading and now - self.since > limits.body_timeout:
            self.refuse(408, f"The request did not arrive within {limits.body_timeout:g} seconds.")
        elif not self.reading and now - self.since > limits.keep_alive:
            self.close()

    def refuse(self, status: int, message: str) -> None:
        self._end(error_response(status, message))

    def _end(self, data: bytes) -> None:
        """The connection's last answer: nothing after it is read (`linger`)."""
        self.closed = True
        self.transport.write(data)
        linger(self.transport, self.loop)

    def _stop(self, data: bytes) -> NoReturn:
        """`_end` from a parser callback, which stops the parser."""
        self._end(data)
        raise Refused

    def close(self) -> None:
        self.closed = True
        self.transport.close()

    # Reading -------------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.received = self.head_bytes + len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgrade_offered(data[upgrade.args[0] :])
            return
        except httptools.HttpParserError as exc:  # `Refused` too, the refusal sent
            if not self.closed:
                self.refuse(400, f"The request is not valid HTTP/1.1 ({exc}).")
            return
        if self.in_head:
            self.head_bytes += len(data)
            limit = self.server.limits.max_header_bytes
            if self.head_bytes > limit:
                self.refuse(431, f"The request line and headers are larger than {limit} bytes.")

    def _upgrade_offered(self, rest: bytes) -> None:
        """The parser stops at the end of an offer's head: the head goes again without the offer, then
        the bytes after it, to a fresh parser, which sees a plain request."""
        head, self.offer_head = self.offer_head, None
        if head is None:  # only CONNECT stops the parser so, and `on_headers_complete` refused it
            return
        self.parser = httptools.HttpRequestParser(self)
        self.data_received(head + rest)

    def on_message_begin(self) -> None:
        self.reading, self.in_head, self.head_bytes = True, True, 0
        self.url, self.headers, self.body, self.size = b"", [], [], 0
        self.since = self.loop.time()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        """A head that came whole in one chunk is measured here (`data_received` counts the chunks
        of one still coming: httptools buffers a line until it ends)."""
        self.in_head = False
        limit = self.server.limits.max_header_bytes
        if head_too_large(self.received, self.url, self.headers, limit):
            self._stop(error_response(431, f"The request line and headers are larger than {limit} bytes."))
        parser = self.parser
        if parser.get_method() == b"CONNECT":
            self._stop(error_response(405, "The proxy opens no tunnels: CONNECT is not served."))
        version = parser.get_http_version()
        if version not in ("1.0", "1.1"):
            self._stop(error_response(505, f"The proxy serves HTTP/1.1 (and 1.0), not HTTP/{version}."))
        if parser.should_upgrade():
            self.offer_head = head_without_offer(parser, self.url, self.headers)
            return
        length = expect = b""
        for name, value in self.headers:
            if name == b"content-length":
                length = value
            elif name == b"expect":
                expect = value
        if length.isdigit() and int(length) > self.server.app.max_body_bytes:
            self._stop(_whole(self.server.app.too_large()))
        if version == "1.1" and expect.lower() == b"100-continue":
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > self.server.app.max_body_bytes:
            self._stop(_whole(self.server.app.too_large()))
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.offer_head is not None:  # the end of an offer's head: served in `_upgrade_offered`
            return
        self.reading = False
        parser = self.parser
        try:
            url = httptools.parse_url(self.url)
            path = url.path.decode("ascii")
        except (httptools.HttpParserInvalidURLError, UnicodeDecodeError):
            self._stop(error_response(400, "The request target is no path of ASCII characters."))
        method = parser.get_method().decode("ascii")
        version = parser.get_http_version()
        request = Request(
            method,
            urllib.parse.unquote(path) if "%" in path else path,
            (url.query or b"").decode("latin-1"),
            text_headers(self.headers),
            b"".join(self.body),
            self.address,
            "http",
        )
        keep_alive = version != "1.0" and parser.should_keep_alive()
        self.waiting.append((request, keep_alive, method == "HEAD"))
        if self.answering:
            self.transport.pause_reading()  # pipelined: read on once the one before it is answered
        else:
            self._next()

    # Answering -----------------------------------------------------------------------------------

    def _next(self) -> None:
        request, keep_alive, head_only = self.waiting.popleft()
        self.answering = True
        task = self.loop.create_task(self._answer(request, keep_alive, head_only))
        self.server.tasks.add(task)
        task.add_done_callback(self.server.tasks.discard)

    async def _answer(self, request: Request, keep_alive: bool, head_only: bool) -> None:
        lock = self.server.lock
        try:
            if lock is not None and lock.refuses(request.path, _authorization(request)):
                answer = Answer(401, UNAUTHORIZED_HEADERS, UNAUTHORIZED_BODY)
            else:
                answer = await self.server.app.answer(request)
            head = _head(answer, keep_alive)
        except Exception:  # as uvicorn: logged, and a 500 that ends the connection
            logger.exception("the proxy failed to answer %s %r", request.method, request.path)
            answer = error_answer(500, "Internal Server Error", "The proxy failed: its log says why.")
            keep_alive = False
            head = _head(answer, keep_alive)
        if self.drained is not None:
            await self.drained
        if self.closed:
            return
        if keep_alive and self.server.stopping:
            keep_alive = False
            head = _head(answer, keep_alive)
        body = b"" if head_only else answer.body
        if len(head) + len(body) > LARGE:  # written apart, not copied to join it
            self.transport.write(head)
            self.transport.write(body)
        else:
            self.transport.write(head + body)
        self.answering = False
        if not keep_alive:
            self.close()
        elif self.waiting:
            self._next()
            self.transport.resume_reading()
        elif not self.reading:
            self.since = self.loop.time()


def _authorization(request: Request) -> bytes:
    return next((v.encode("latin-1") for n, v in request.headers if n == "authorization"), b"")


def _whole(answer: Answer) -> bytes:
    """An answer that ends the connection, head and body."""
    return _head(answer, keep_alive=False) + answer.body


def _head(answer: Answer, keep_alive: bool) -> bytes:
    """The status line and headers (lowercase names, `content-length` last), as uvicorn wrote them."""
    status = answer.status
    fields = [(name.encode("latin-1").lower(), value.encode("latin-1")) for name, value in answer.headers]
    if _BAD_NAME.search(b"".join([name for name, _ in fields])) or _BAD_VALUE.search(
        b"\t".join([value for _, value in fields])
    ):
        raise ValueError("an answer's header name or value that no HTTP answer may carry")
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, "").encode())]
    lines += [b"%s: %s\r\n" % field for field in fields]
    lines.append(b"content-length: %d\r\n" % len(answer.body))
    if not keep_alive:
        lines.append(b"connection: close\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def serve(app: WholeApp, host: str, port: int, admin_token: str | None = None) -> int:
    """Serve until SIGINT or SIGTERM; 1 when the address cannot be bound."""
    try:
        sock = socket.create_server((host, port), family=_family(host), backlog=2048)
    except OSError as exc:
        logger.error("cannot listen on %s:%d: %s", host, port, exc)
        return 1
    sock.setblocking(False)
    with _event_loop() as runner:
        runner.run(_serve_until_signal(WholeServer(app, admin_token=admin_token), sock))
    return 0


async def _serve_until_signal(server: WholeServer, sock: socket.socket) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    await server.run(sock, stop)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _event_loop() -> asyncio.Runner:
    """uvloop's loop where it is installed (uvicorn[standard] brings it), else asyncio's."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    with contextlib.suppress(ImportError):
        import uvloop

        factory = uvloop.new_event_loop
    return asyncio.Runner(loop_factory=factory)
