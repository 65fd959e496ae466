"""Limits that keep a served mock alive under hostile clients: header size, slow requests, connections.

uvicorn enforces none of these itself, so `GuardedHttpToolsProtocol` is its httptools protocol with
limits at the socket, where they cost nothing on the hot path (a request that arrives in one piece
arms no timer):

- headers past `max_header_bytes` are answered 431 before they are buffered whole (httptools would
  take 8 MB);
- a request whose headers or body do not arrive within `body_timeout` is answered 408 (or, when the
  app already answered without reading the body, the connection is closed); the app sees a client
  disconnect;
- a connection that never sends a request is closed like an idle keep-alive one, and past
  `max_connections` idle connections are closed to make room, so idle sockets cannot exhaust the
  file descriptors.

The limits are read from the backend's config on each use, so `PATCH /__mock/config` applies at once.
Apps with no backend (the validating proxy, replay) get the defaults of `MockConfig`.

It also serves, as plain HTTP/1.1 with its body, a request that offers an upgrade uvicorn does not
take, such as the `Upgrade: h2c` of Java's HttpClient: uvicorn's httptools protocol handed the app an
empty body (uvicorn#2722), where RFC 9110 §7.8 lets a server ignore the offer. Websocket upgrades are
left to uvicorn.
"""

from __future__ import annotations

import asyncio
import resource
from http import HTTPStatus
from typing import Any, Protocol

import httptools
import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..model import MockConfig
from ._coalesce import CoalescingTransport

SHUTDOWN_SECONDS = 2
"""After SIGTERM, requests still running after this are cancelled: the process exits within 5 s."""
KEEP_ALIVE_SECONDS = 20
"""Idle keep-alive connections are closed after this (uvicorn: 5). Longer than clients keep theirs
(httpx 5 s, aiohttp 15 s), so a client never reuses a connection the server is closing at that moment:
with equal timeouts, a client polling every 5 s met a closed connection now and then (ReadError)."""
RESERVED_FDS = 64
"""File descriptors kept for everything but sockets: the listener, logs, files. Webhook sockets
(`webhook_concurrency`) come out of the connections' share, so that `max_connections` stays true."""
LINGER_SECONDS = 2.0
"""How long a refused connection is read on (what comes is dropped) before it closes: a socket closed
with bytes unread sends a reset, and the caller may lose the refusal written just before (RFC 9112
9.6: a server closes in stages)."""
REASONS = {status.value: status.phrase for status in HTTPStatus}
"""Each status's reason phrase: the status line's, and the `error` of a refusal's body."""


def error_response(status: int, message: str) -> bytes:
    """A whole HTTP response with an `{error, message}` body that closes the connection."""
    body = orjson.dumps({"error": REASONS[status], "message": message})
    head = f"HTTP/1.1 {status} {REASONS[status]}\r\ncontent-type: application/json\r\n"
    return f"{head}content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode() + body


class Refused(Exception):
    """Raised in a parser callback that refused the request: the parser reads no further."""


def linger(transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
    """After a refusal: send what was written and end the sending side, then close once the caller
    does (a transport closes itself at the caller's end of file) or after `LINGER_SECONDS`."""
    if transport.can_write_eof():
        transport.write_eof()
        loop.call_later(LINGER_SECONDS, transport.close)
    else:
        transport.close()


def socket_budget() -> int:
    """The file descriptors the process may open for sockets: its limit less the reserve."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1 << 30 if soft == resource.RLIM_INFINITY else soft - RESERVED_FDS


def default_max_connections() -> int:
    """As many connections as the process may open file descriptors, less a reserve."""
    return max(16, min(4096, socket_budget()))


class Configured(Protocol):
    """Where the limits come from: a `GatewayBackend`, or `Defaults` for an app without one."""

    @property
    def config(self) -> MockConfig: ...


class Defaults:
    config = MockConfig()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """Set `backend` and `max_connections` on a subclass (`guarded_protocol`): uvicorn builds the
    protocol itself, with its own arguments."""

    backend: Configured
    max_connections: int
    sockets: int
    """`socket_budget()`: client connections and webhook attempts share it."""

    @classmethod
    def connection_limit(cls) -> int:
        """`max_connections`, within the sockets that webhook attempts leave (`webhook_concurrency`
        is read on each use: `PATCH /__mock/config` may change it)."""
        return max(1, min(cls.max_connections, cls.sockets - cls.backend.config.webhook_concurrency))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_bytes = 0
        self._received = 0
        """Bytes of this chunk and of the head's earlier ones: no head completed in it is larger."""
        self._deadline: asyncio.TimerHandle | None = None
        self._offer_head: bytes | None = None
        self._refused = False
        """Refused and lingering: what still comes is dropped."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]
        # uvicorn arms its idle timer only after a response; arm it for a first request too.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )
        if len(self.connections) > self.connection_limit():
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse, then read the request's progress off uvicorn's cycle (one per request, created
        when its headers are complete; `more_body` false once its body is): no parser callback
        is overridden for this, so the hot path gains one Python call per chunk."""
        if self._refused:
            return
        before = self.cycle
        was_in_body = before is not None and before.more_body
        self._received = self._header_bytes + len(data)
        self._parse(data)
        cycle = self.cycle
        if cycle is not None and not cycle.more_body and (cycle is not before or was_in_body):
            # A request ended in this chunk (the common case: it came whole). Bytes after it, a
            # pipelined request's start, count for nothing: at most one chunk (256 KiB) slips by.
            self._header_bytes = 0
            self._cancel_deadline()
            return
        if self.transport.is_closing():
            return
        if cycle is not None and cycle.more_body:
            self._header_bytes = 0
        else:
            self._header_bytes += len(data)
            limit = self.backend.config.max_header_bytes
            if self._header_bytes > limit:
                self._refuse(431, f"The request line and headers are larger than {limit} bytes.")
                return
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.backend.config.body_timeout, self._too_slow)

    def _parse(self, data: bytes) -> None:
        """uvicorn's `data_received`, but an upgrade offer it does not take (h2c) is ignored, as RFC 9110
        §7.8 lets a server: the request is served as HTTP/1.1, with its body.

        httptools skips the body of any request with an offer and stops after its head; uvicorn only
        warns when the offer is not a websocket one, so the app read an empty body (uvicorn#2722).
        `on_headers_complete` starts no request for such an offer; its head, without the offer, and
        the bytes after it go to a fresh parser here, which sees a plain request.
        """
        self._unset_keepalive_if_required()
        while True:
            try:
                self.parser.feed_data(data)
                return
            except httptools.HttpParserError:
                if self._refused:  # by a callback (`on_headers_complete`), which stopped the parser
                    return
                message = "Invalid HTTP request received."
                self.logger.warning(message)
                self.send_400_response(message)
                return
            except httptools.HttpParserUpgrade as upgrade:
                if self._offer_head is None:
                    if self._should_upgrade():
                        self.handle_websocket_upgrade()
                    else:  # CONNECT
                        self._unsupported_upgrade_warning()
                    return
                data = self._offer_head + data[upgrade.args[0] :]
                self._offer_head = None
                self.parser = httptools.HttpRequestParser(self)
                self.parser.set_dangerous_leniencies(lenient_data_after_close=True)  # as uvicorn's

    def on_headers_complete(self) -> None:
        """A head that came whole in one chunk is measured here (`data_received` counts the chunks
        of one still coming: httptools buffers a line until it ends)."""
        limit = self.backend.config.max_header_bytes
        if head_too_large(self._received, self.url, self.headers, limit):
            self._refuse(431, f"The request line and headers are larger than {limit} bytes.")
            raise Refused  # the parser stops: the app sees nothing of it
        parser = self.parser
        if parser.should_upgrade() and not self._should_upgrade() and parser.get_method() != b"CONNECT":
            # served once the parser stops: `_parse`
            self._offer_head = head_without_offer(parser, self.url, self.headers)
            return
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        if self._offer_head is None:  # else the end of an offer's head, its body skipped: not the end
            super().on_message_complete()

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and cycle.more_body and cycle.response_started:
            self.transport.close()  # answered without its body (a 401, say): nothing left to say
            return
        seconds = self.backend.config.body_timeout
        self._refuse(408, f"The request did not arrive within {seconds:g} seconds.")

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _refuse(self, status: int, message: str) -> None:
        self._refused = True
        self._cancel_deadline()
        self.transport.write(error_response(status, message))
        linger(self.transport, self.loop)  # `CoalescingTransport` flushes what it holds first

    def _make_room(self) -> None:
        """Close another connection that waits for nothing; with none, refuse this one."""
        for other in self.connections:
            cycle = getattr(other, "cycle", None)
            if other is not self and (cycle is None or cycle.response_complete):
                other.transport.close()
                return
        self._refuse(503, f"The mock serves at most {self.connection_limit()} connections at once.")


def head_too_large(received: int, url: bytes, headers: list[tuple[bytes, bytes]], limit: int) -> bool:
    """Whether a head the parser has whole is over `limit` bytes, measured only when the bytes it came
    in (`received`, the head's chunks) are: the common request pays one comparison."""
    return received > limit and len(url) + sum([len(name) + len(value) for name, value in headers]) > limit


def head_without_offer(
    parser: httptools.HttpRequestParser, url: bytes, headers: list[tuple[bytes, bytes]]
) -> bytes:
    """An offer's request line and headers again, without `Upgrade` headers nor the `upgrade`
    connection option: no parser can take them for an offer (unless CONNECT, which is not replayed)."""
    version = parser.get_http_version().encode()
    lines = [b"%s %s HTTP/%s\r\n" % (parser.get_method(), url, version)]
    for name, value in headers:
        if name == b"connection":
            options = [option.strip() for option in value.split(b",")]
            value = b", ".join(option for option in options if option and option.lower() != b"upgrade")
            if not value:
                continue
        if name != b"upgrade":
            lines.append(b"%s: %s\r\n" % (name, value))
    return b"".join(lines) + b"\r\n"


def guarded_protocol(
    backend: Configured,
    max_connections: int | None = None,
    base: type[GuardedHttpToolsProtocol] = GuardedHttpToolsProtocol,
    **attributes: Any,
) -> type[HttpToolsProtocol]:
    """`base` (the guarded protocol or a subclass) with its class attributes set: `attributes` too."""
    return type(
        base.__name__,
        (base,),
        {
            "backend": backend,
            "max_connections": max_connections or default_max_connections(),
            "sockets": socket_budget(),
            **attributes,
        },
    )


def server_config(
    app: Any,
    *,
    max_connections: int | None = None,
    protocol: type[GuardedHttpToolsProtocol] = GuardedHttpToolsProtocol,
    protocol_attributes: dict[str, Any] | None = None,
    **options: Any,
) -> uvicorn.Config:
    """uvicorn settings for serving the mock (and the proxy and replay): the guarded protocol (or
    `protocol`, a subclass, with `protocol_attributes`), a bounded
    graceful shutdown, and no `X-Forwarded-*` taken from callers: uvicorn trusts them from loopback by
    default, so a caller's `X-Forwarded-Proto: https` made the mock's `polling_url` https on a plain
    HTTP port (`--public-url` is the way to name the address behind a reverse proxy); and skipping
    that middleware saves the proxy 5% of its CPU a call."""
    backend = getattr(getattr(app, "state", None), "backend", Defaults())
    return uvicorn.Config(
        app,
        http=guarded_protocol(backend, max_connections, protocol, **(protocol_attributes or {})),
        timeout_graceful_shutdown=SHUTDOWN_SECONDS,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        access_log=False,
        proxy_headers=False,
        **options,
    )
