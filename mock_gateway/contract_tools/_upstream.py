"""The proxy's HTTP/1.1 client: one request at a time per keep-alive connection, bodies read whole.

Not aiohttp: on loopback its request machinery (request and response objects, multidicts, URL
objects, payload writers, stream readers, timer contexts) cost about 0.18 ms of CPU a call where the
socket work is 0.03 ms, and was the largest part of what the proxy added (`make bench-proxy`). This
client writes each request in one piece, parses the answer with llhttp (httptools, which uvicorn
serves with) and keeps nothing but the status, the headers and the body.

Bounded against any upstream: its head is read up to `MAX_HEAD_BYTES` and its body up to
`max_body_bytes` (`TooLarge`), the whole call within `timeout` (`TimeoutError`), at most `limit`
connections at once, idle ones kept `IDLE_SECONDS`. An answer that breaks HTTP/1.1, or a connection
lost before its end, raises `UpstreamError` (an `OSError`, like a refused connection).
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import httptools

from ._asgi import Answer, TooLarge, text_headers

MAX_HEAD_BYTES = 64 * 1024
"""Bytes of an answer's status line and headers read before giving up on it (aiohttp: 8 KiB a line)."""
IDLE_SECONDS = 15.0
"""Idle keep-alive connections older than this are closed rather than reused (aiohttp's default):
less than servers keep theirs (the mock: 20 s), so a request rarely meets a connection being closed."""
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
"""Methods that get a `Content-Length` even without a body, as aiohttp sends them."""
_PLAIN_TARGET = re.compile(r"[\x21-\x7e]*")
_PRINTABLE = "".join(map(chr, range(0x21, 0x7F)))
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/_.\-~!$&'()*+,;=:@]*")


class UpstreamError(ConnectionError):
    """The upstream broke HTTP/1.1 or dropped the connection before its answer was complete."""


class BadAnswer(UpstreamError):
    """Not HTTP/1.1, an upgrade, or a head larger than `MAX_HEAD_BYTES`."""


class Disconnected(UpstreamError):
    """Closed before the answer's end."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where requests go: scheme, host and port, with what every request to it carries."""

    key: tuple[str, str, int]
    host_header: str
    prefix: str
    """The path of the base URL (`https://gw.example/api`), before each request's own."""
    authorization: str | None
    """`Basic ...` from the URL's userinfo, as aiohttp sent it; a caller's own `Authorization` wins."""

    @classmethod
    def split(cls, url: str) -> tuple[Origin, str]:
        """The origin of an http(s) URL and the request target of its path and query; ValueError for
        any other URL."""
        parts = urlsplit(url)
        target = printable(parts.path or "/") + (f"?{printable(parts.query)}" if parts.query else "")
        return cls.of(parts._replace(path="", query="", fragment="").geturl()), target

    @classmethod
    def of(cls, url: str) -> Origin:
        """The origin of an http(s) base URL, its path a prefix of every request's; ValueError for any
        other URL."""
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), parts.hostname
        if scheme not in ("http", "https") or not host:
            raise ValueError(f"not an http(s) URL: {url!r}")
        default = 443 if scheme == "https" else 80
        port = parts.port or default
        shown = f"[{host}]" if ":" in host else host
        authorization = None
        if parts.username is not None or parts.password is not None:
            pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(pair.encode("latin-1", "replace")).decode()
        return cls(
            (scheme, host, port),
            shown if port == default else f"{shown}:{port}",
            printable(parts.path.rstrip("/")),
            authorization,
        )


def wire_target(path: str, query: str = "") -> str:
    """A request target as sent: the decoded path (ASGI's `path`) percent-encoded where it must be
    (a `%`, `?` or `#` in it is the path's own), the query as received (`printable`)."""
    if not _PLAIN_PATH.fullmatch(path):
        path = quote(path, safe="/!$&'()*+,;=:@")
    return f"{path}?{printable(query)}" if query else path


def printable(text: str) -> str:
    """Encoded URL text as sent, but for the characters that no request line may hold (spaces,
    controls, non-ASCII), percent-encoded."""
    return text if _PLAIN_TARGET.fullmatch(text) else quote(text, safe=_PRINTABLE)


def decoded(answer: Answer, limit: int) -> bytes:
    """The body without the content codings that a server applied although asked for `identity`
    (gzip, deflate: as aiohttp undid them), within `limit` bytes however well it was compressed;
    another coding is a `BadAnswer`."""
    codings = [
        coding.strip().lower()
        for name, value in answer.headers
        if name.lower() == "content-encoding"
        for coding in value.split(",")
    ]
    body = answer.body
    for coding in reversed([coding for coding in codings if coding not in ("", "identity")]):
        if coding not in ("gzip", "x-gzip", "deflate"):
            raise BadAnswer(f"a body in the {coding!r} coding, though asked for identity")
        try:
            body = _inflate(body, limit, zlib.MAX_WBITS | 32)  # zlib or gzip, by its header
        except zlib.error:
            if coding != "deflate":
                raise BadAnswer(f"a body that is not {coding}") from None
            try:
                body = _inflate(body, limit, -zlib.MAX_WBITS)  # raw deflate, as some servers send
            except zlib.error:
                raise BadAnswer("a body that is not deflate") from None
    return body


def _inflate(data: bytes, limit: int, wbits: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    body = inflater.decompress(data, limit + 1)
    if len(body) > limit or inflater.unconsumed_tail:
        raise TooLarge
    if not inflater.eof:
        raise zlib.error("the compressed data ends early")
    return body


class _Connection(asyncio.Protocol):
    """One keep-alive connection: parses the answer to the request in flight into `waiter`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_body_bytes: int) -> None:
        self.loop = loop
        self.max_body_bytes = max_body_bytes
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()
        self.head_bytes = 0
        self.head_done = False
        self.head_only = False
        self.reusable = False
        self.idle_since = 0.0
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, data: bytes, head_only: bool, deadline: float) -> asyncio.Future[Answer]:
        """The answer to `data`, or TimeoutError at `deadline` (the loop's time).

        A timer of the connection's own rather than `asyncio.timeout`, which asks for the running
        loop three times a call: each a `getpid` system call on Python 3.11, 4% of the proxy's CPU."""
        assert self.transport is not None
        self.waiter = self.loop.create_future()
        self.headers, self.body, self.head_bytes, self.head_done = [], bytearray(), 0, False
        self.head_only, self.reusable = head_only, False
        self.timer = self.loop.call_at(deadline, self._fail, TimeoutError())
        self.transport.write(data)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            self.close()  # nothing was asked: no answer to take for the next request's
            return
        if not self.head_done:  # the head's bytes only: a chunk may hold a body after it
            end = data.find(b"\r\n\r\n")
            self.head_bytes += len(data) if end < 0 else end
            if self.head_bytes > MAX_HEAD_BYTES:
                self._fail(BadAnswer(f"a head larger than {MAX_HEAD_BYTES} bytes"))
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(BadAnswer("an upgrade"))
        except httptools.HttpParserError as exc:
            self._fail(BadAnswer(str(exc)))

    def on_message_begin(self) -> None:
        if self.waiter is None or self.waiter.done():
            self.close()  # a second answer to one request: the connection cannot be trusted

    def on_header(self, name: bytes, value: bytes | None) -> None:
        self.headers.append((name, value or b""))

    def on_headers_complete(self) -> None:
        self.head_done = True
        if self.head_only and self.parser.get_status_code() >= 200:
            self._answer(reusable=False)  # a HEAD's answer: llhttp would wait for the body it announces

    def on_body(self, body: bytes) -> None:
        if len(self.body) + len(body) > self.max_body_bytes:
            self._fail(TooLarge())
            return
        self.body += body

    def on_message_complete(self) -> None:
        if self.parser.get_status_code() < 200:  # 100 Continue and the like: the answer follows
            self.headers, self.head_bytes, self.head_done = [], 0, False
            return
        self._answer(reusable=self.parser.should_keep_alive())

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.waiter is not None and not self.waiter.done():
            if self.head_done and self._close_delimited():
                self._answer(reusable=False)
            else:
                self._fail(Disconnected("the connection was closed before the answer was complete"))

    def _close_delimited(self) -> bool:
        """An answer whose body ends with the connection: neither a length nor chunks."""
        names = {name.lower() for name, _ in self.headers}
        return b"content-length" not in names and b"transfer-encoding" not in names

    def _answer(self, *, reusable: bool) -> None:
        if self.waiter is not None and not self.waiter.done():
            self._stop_timer()
            self.reusable = reusable
            answer = Answer(self.parser.get_status_code(), text_headers(self.headers), bytes(self.body))
            self.waiter.set_result(answer)
            self.headers, self.body = [], bytearray()  # what the parser may still call back with is no one's

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self._stop_timer()
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    @property
    def open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()


class Upstream:
    """Keep-alive connections per origin, at most `limit` in use at once; see the module's docstring."""

    def __init__(self, *, timeout: float, max_body_bytes: int, limit: int = 100) -> None:
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self._limit = limit
        self._slots: asyncio.Semaphore | None = None
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._idle_count = 0
        """Idle connections kept, all origins together: at most `limit`."""
        self._tls: ssl.SSLContext | None = None

    async def request(
        self, method: str, origin: Origin, target: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> Answer:
        """One call; `target` as `wire_target` makes it, `headers` end-to-end ones only. The answer
        as received, all its headers included."""
        lines = [f"{method} {origin.prefix}{target} HTTP/1.1\r\nhost: {origin.host_header}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in headers]
        names = {name.lower() for name, _ in headers}
        if "accept" not in names:
            lines.append("accept: */*\r\n")
        if origin.authorization is not None and "authorization" not in names:
            lines.append(f"authorization: {origin.authorization}\r\n")
        if body or method in BODY_METHODS:
            lines.append(f"content-length: {len(body)}\r\n")
        lines.append("accept-encoding: identity\r\n\r\n")
        data = "".join(lines).encode("latin-1") + body
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._limit)
        if self._slots.locked():  # only waiting needs `asyncio.timeout` (see `_Connection.send`)
            async with asyncio.timeout_at(deadline):
                await self._slots.acquire()
        else:
            await self._slots.acquire()
        try:
            connection = self._reused(origin)
            if connection is not None:
                try:
                    return await self._exchange(origin, connection, data, method, deadline)
                except Disconnected:
                    if method not in ("GET", "HEAD", "OPTIONS"):
                        raise  # it may have been taken: never sent twice
                    # closed by the server as it sat idle: once more, on a new connection
            async with asyncio.timeout_at(deadline):
                connection = await self._connect(origin, loop)
            return await self._exchange(origin, connection, data, method, deadline)
        finally:
            self._slots.release()

    async def _exchange(
        self, origin: Origin, connection: _Connection, data: bytes, method: str, deadline: float
    ) -> Answer:
        try:
            reply = await connection.send(data, method == "HEAD", deadline)
        finally:
            if not connection.reusable:
                connection.close()  # failed, cancelled (the timeout) or not to be kept
        connection.waiter = None
        if any(name.lower() == "content-encoding" for name, _ in reply.headers):
            reply = reply._replace(body=decoded(reply, self.max_body_bytes))
        if connection.open and self._idle_count < self._limit:
            connection.idle_since = time.monotonic()
            self._idle.setdefault(origin.key, []).append(connection)
            self._idle_count += 1
        else:
            connection.close()
        return reply

    def _reused(self, origin: Origin) -> _Connection | None:
        """The most recently used idle connection to `origin` that is still fit; older ones closed."""
        idle = self._idle.get(origin.key)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            self._idle_count -= 1
            if not idle:
                del self._idle[origin.key]  # media hosts come and go: no empty list kept for each
            if connection.open and now - connection.idle_since < IDLE_SECONDS:
                return connection
            connection.close()
        return None

    async def _connect(self, origin: Origin, loop: asyncio.AbstractEventLoop) -> _Connection:
        scheme, host, port = origin.key
        tls = None
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        connection = _Connection(loop, self.max_body_bytes)
        await loop.create_connection(
            lambda: connection, host, port, ssl=tls, server_hostname=host if tls else None
        )
        return connection

    async def aclose(self) -> None:
        idle, self._idle, self._idle_count = self._idle, {}, 0
        for connections in idle.values():
            for connection in connections:
                connection.close()
