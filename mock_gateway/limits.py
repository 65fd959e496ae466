"""Limits that keep a served mock alive under hostile clients: header size, slow requests, connections.

Two layers, because uvicorn enforces none of these itself:

- `GuardedHttpToolsProtocol`, uvicorn's httptools protocol with limits at the socket: headers past
  `max_header_bytes` are answered 431 before they are buffered whole (httptools would take 8 MB),
  headers that do not arrive within `body_timeout` are answered 408, a connection that never sends
  a request is closed like an idle keep-alive one, and past `max_connections` the idle connections
  are closed to make room, so idle sockets cannot exhaust the file descriptors.
- `SlowBodyTimeout`, ASGI middleware: a body that stalls is answered 408 within `body_timeout`
  (in-process too). The app sees the stall as a client disconnect.

Both read their limits from the backend's config on each use, so `PATCH /__mock/config` applies at once.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

import orjson
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .backend import GatewayBackend

SHUTDOWN_SECONDS = 2
"""After SIGTERM, requests still running after this are cancelled: the process exits within 5 s."""
RESERVED_FDS = 64
"""File descriptors kept for everything but client sockets: the listener, webhooks, logs."""
STATUS_TEXT = {408: "Request Timeout", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}


def error_bytes(status: int, message: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers and body of an `{error, message}` answer that also closes the connection."""
    body = orjson.dumps({"error": STATUS_TEXT[status], "message": message})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
        (b"connection", b"close"),
    ]
    return headers, body


def default_max_connections() -> int:
    """As many connections as the process may open file descriptors, less a reserve."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(16, min(4096, soft - RESERVED_FDS) if soft != resource.RLIM_INFINITY else 4096)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """Set `backend` and `max_connections` on a subclass (`guarded_protocol`): uvicorn builds the
    protocol itself, with its own arguments."""

    backend: GatewayBackend
    max_connections: int

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_bytes = 0
        self._in_body = False
        self._message_ended = False
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn arms its idle timer only after a response; arm it for a first request too.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )
        if len(self.connections) > self.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._message_ended = False
        super().data_received(data)
        if self._in_body or self._message_ended or self.transport.is_closing():
            return
        # Counted after parsing, so that a chunk which ends the headers, or a body, counts for none:
        # a pipelined request may get one chunk (at most 256 KiB) past the limit.
        self._header_bytes += len(data)
        limit = self.backend.config.max_header_bytes
        if self._header_bytes > limit:
            self._refuse(431, f"The request line and headers are larger than {limit} bytes.")
        elif self._header_timer is None:
            self._header_timer = self.loop.call_later(self.backend.config.body_timeout, self._too_slow)

    def on_headers_complete(self) -> None:
        self._in_body = True
        self._header_bytes = 0
        self._cancel_header_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_body = False
        self._message_ended = True

    def _too_slow(self) -> None:
        self._header_timer = None
        if not self._in_body and not self.transport.is_closing():
            seconds = self.backend.config.body_timeout
            self._refuse(408, f"The request headers did not arrive within {seconds:g} seconds.")

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _refuse(self, status: int, message: str) -> None:
        headers, body = error_bytes(status, message)
        head = b"".join(b"%s: %s\r\n" % header for header in headers)
        self.transport.write(
            b"HTTP/1.1 %d %s\r\n%s\r\n%s" % (status, STATUS_TEXT[status].encode(), head, body)
        )
        self.transport.close()

    def _make_room(self) -> None:
        """Close another connection that waits for nothing; with none, refuse this one."""
        for other in self.connections:
            cycle = getattr(other, "cycle", None)
            if other is not self and (cycle is None or cycle.response_complete):
                other.transport.close()
                return
        self._refuse(503, f"The mock serves at most {self.max_connections} connections at once.")


def guarded_protocol(backend: GatewayBackend, max_connections: int | None = None) -> type[HttpToolsProtocol]:
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {"backend": backend, "max_connections": max_connections or default_max_connections()},
    )


def server_config(app: Any, *, max_connections: int | None = None, **options: Any) -> uvicorn.Config:
    """uvicorn settings for serving the mock: the guarded protocol and a bounded graceful shutdown."""
    return uvicorn.Config(
        app,
        http=guarded_protocol(app.state.backend, max_connections),
        timeout_graceful_shutdown=SHUTDOWN_SECONDS,
        access_log=False,
        **options,
    )


class SlowBodyTimeout:
    """Answers 408 (and closes the connection) when a request body takes longer than `body_timeout`."""

    def __init__(self, app: ASGIApp, backend: GatewayBackend) -> None:
        self.app = app
        self.backend = backend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seconds = self.backend.config.body_timeout
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        timed_out = started = False

        async def timed_receive() -> Message:
            nonlocal deadline, timed_out
            if deadline is None:
                deadline = loop.time() + seconds
            try:
                async with asyncio.timeout_at(deadline):
                    return await receive()
            except TimeoutError:
                timed_out = True
                return {"type": "http.disconnect"}

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if not timed_out:  # the app answers a disconnect; the client gets the 408 instead
                started = started or message["type"] == "http.response.start"
                await send(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except Exception:
            if not timed_out:
                raise
        if timed_out and not started:
            headers, body = error_bytes(408, f"The request body did not arrive within {seconds:g} seconds.")
            await send({"type": "http.response.start", "status": 408, "headers": headers})
            await send({"type": "http.response.body", "body": body})
