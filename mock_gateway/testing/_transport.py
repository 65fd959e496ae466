"""In-process transport: httpx clients, sync and async, that call an ASGI app directly, with no socket."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar, cast

import httpx
from starlette.types import ASGIApp, Message

T = TypeVar("T")


async def call_app(app: ASGIApp, request: httpx.Request) -> httpx.Response:
    """One request through an ASGI app, as `httpx.ASGITransport` does it (same scope, same body
    chunks, app errors raised), minus its per-request events and streams: this is the in-process
    mock's hot path."""
    url = request.url
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "headers": [(name.lower(), value) for name, value in request.headers.raw],
        "scheme": url.scheme,
        "path": url.path,
        "raw_path": url.raw_path.split(b"?")[0],
        "query_string": url.query,
        "server": (url.host, url.port),
        "client": ("127.0.0.1", 123),
        "root_path": "",
    }
    chunks = aiter(cast(httpx.AsyncByteStream, request.stream))
    request_done = response_done = False
    waiter: asyncio.Event | None = None  # only for an app that listens for the disconnect
    status: int | None = None
    headers: list[tuple[bytes, bytes]] = []
    body: list[bytes] = []

    async def receive() -> Message:
        nonlocal request_done, waiter
        if request_done:
            if not response_done:
                waiter = waiter or asyncio.Event()
                await waiter.wait()
            return {"type": "http.disconnect"}
        try:
            chunk = await anext(chunks)
        except StopAsyncIteration:
            request_done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: Message) -> None:
        nonlocal status, headers, response_done
        if message["type"] == "http.response.start":
            status, headers = message["status"], message.get("headers", [])
        elif message["type"] == "http.response.body":
            if message.get("body") and request.method != "HEAD":
                body.append(message["body"])
            if not message.get("more_body", False):
                response_done = True
                if waiter is not None:
                    waiter.set()

    await app(scope, receive, send)
    if status is None or not response_done:
        raise RuntimeError(f"the app did not complete its answer to {request.method} {url.path}")
    return httpx.Response(status, headers=headers, stream=httpx.ByteStream(b"".join(body)), request=request)


async def _cancel_the_rest() -> None:
    """Cancel every other task of the running loop and wait for them: what `asyncio.run` does last."""
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class _LoopThread:
    """An event loop turning in a daemon thread, running coroutines sent from other threads."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="mock-gateway-loop", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_cancel_the_rest(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


class InProcessTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """One transport for both httpx.Client and httpx.AsyncClient that calls an ASGI app directly.

    Async requests run on the caller's event loop. Sync requests run the app on a private event
    loop in the calling thread: no hop to another thread, which used to be most of a sync call's
    cost. Once the app leaves work running after an answer (webhook deliveries in the background),
    that loop must keep turning: it moves to a thread of its own, and later sync requests go there,
    as they do when the calling thread already runs a loop or another thread holds the private one.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._lock = threading.Lock()  # guards the fields below
        self._inline_busy = threading.Lock()  # held by the thread running the private loop
        self._inline: asyncio.AbstractEventLoop | None = None
        self._background: _LoopThread | None = None
        self._threads: list[_LoopThread] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await call_app(self._app, request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # A sync client's streamed body (an iterator, a file) is a sync-only stream, which the app
        # cannot read: read it here, which swaps in a stream that is both.
        request.read()
        if self._background is None and not _loop_running() and self._inline_busy.acquire(blocking=False):
            try:
                return self._run_inline(request)
            finally:
                self._inline_busy.release()
        return self._background_loop().run(call_app(self._app, request))

    def _run_inline(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            loop = self._inline = self._inline or asyncio.new_event_loop()
        try:
            return loop.run_until_complete(call_app(self._app, request))
        finally:
            if asyncio.all_tasks(loop):  # the app's background work: keep it turning from now on
                with self._lock:
                    thread = _LoopThread(loop)
                    self._threads.append(thread)
                    self._background = self._background or thread
                    self._inline = None

    def _background_loop(self) -> _LoopThread:
        with self._lock:
            if self._background is None:
                self._background = _LoopThread(asyncio.new_event_loop())
                self._threads.append(self._background)
            return self._background

    def close(self) -> None:
        with self._lock:
            threads, self._threads, self._background = self._threads, [], None
            inline, self._inline = self._inline, None
        for thread in threads:
            thread.stop()
        if inline is not None:
            with self._inline_busy:
                inline.run_until_complete(_cancel_the_rest())
                inline.close()

    async def aclose(self) -> None:
        pass


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class SharedTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The gateway's one in-process transport, lent to a client: closing the client leaves it open.

    Without this, closing any client (`with gateway.http() as http:`, `gateway.advance()`) would stop
    the transport's event loop under every other client, cancelling webhooks being delivered on it.
    `MockGateway.stop` closes the transport itself.
    """

    def __init__(self, transport: InProcessTransport) -> None:
        self._transport = transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._transport.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._transport.handle_async_request(request)
