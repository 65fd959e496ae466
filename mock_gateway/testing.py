"""Test harness: a ready gateway, in-process (no port) or served on a free loopback port.

with MockGateway() as gateway:
    client = gateway.client()            # the generated AuthenticatedClient, sync and async
    ...
    gateway.advance(15)                  # jump the gateway's clock instead of sleeping
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import httpx
import uvicorn
from boogu_image_client import AuthenticatedClient
from starlette.types import ASGIApp, Message

from .app import create_app
from .backend import GatewayBackend
from .clock import Clock
from .config import DEFAULT_API_KEY, MockConfig
from .limits import server_config
from .replay import ReplayApp
from .webhooks import Sender

KEY_HEADER = "Ocp-Apim-Subscription-Key"
IN_PROCESS_URL = "http://mock-gateway.test"
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


class _SharedTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
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


def free_port_socket(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


class LiveServer:
    """Uvicorn serving an app on a loopback port, in a background thread."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1") -> None:
        self._socket = free_port_socket(host)
        port = self._socket.getsockname()[1]
        self.base_url = f"http://{host}:{port}"
        self._server = uvicorn.Server(server_config(app, log_level="warning", lifespan="on"))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the mock gateway server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


class MockGateway:
    """A mock gateway for one test (or one session), with helpers to drive and inspect it."""

    def __init__(
        self,
        config: MockConfig | None = None,
        *,
        clock: Clock | None = None,
        api_key: str = DEFAULT_API_KEY,
        webhook_sender: Sender | None = None,
        served: bool = False,
        admin_token: str | None = None,
    ) -> None:
        self.api_key = api_key
        self.served = served
        self.admin_token = admin_token
        self.app = create_app(
            config,
            clock=clock,
            api_key=api_key,
            webhook_sender=webhook_sender,
            served=served,
            admin_token=admin_token,
        )
        self.backend: GatewayBackend = self.app.state.backend
        self._server = LiveServer(self.app) if served else None
        self._transport = None if served else InProcessTransport(self.app)
        self.base_url = self._server.base_url if self._server else IN_PROCESS_URL
        self._clients: list[AuthenticatedClient] = []

    def start(self) -> Self:
        if self._server is not None:
            self._server.start()
        return self

    def stop(self) -> None:
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.get_httpx_client().close()
        if self._server is not None:
            self._server.stop()
        if self._transport is not None:
            self._transport.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def httpx_args(self) -> dict[str, Any]:
        """Arguments for an httpx client (sync or async) that reaches this gateway."""
        return {"transport": _SharedTransport(self._transport)} if self._transport is not None else {}

    def http(self, **kwargs: Any) -> httpx.Client:
        """A plain httpx client for this gateway, for raw requests and the admin API (with its token)."""
        if self.admin_token is not None:
            kwargs["headers"] = {"Authorization": f"Bearer {self.admin_token}", **kwargs.get("headers", {})}
        return httpx.Client(base_url=self.base_url, **self.httpx_args(), **kwargs)

    def client(self, api_key: str | None = None, **kwargs: Any) -> AuthenticatedClient:
        """The generated client, authenticated with the development key (or `api_key`)."""
        client = AuthenticatedClient(
            base_url=self.base_url,
            token=api_key or self.api_key,
            auth_header_name=KEY_HEADER,
            prefix="",
            httpx_args=self.httpx_args(),
            **kwargs,
        )
        self._clients.append(client)
        return client

    def advance(self, seconds: float) -> dict[str, Any]:
        """Move the gateway's clock on; finished jobs settle and due webhooks are delivered."""
        with self.http() as http:
            response = http.post("/__mock/clock/advance", json={"seconds": seconds})
            response.raise_for_status()
            answer: dict[str, Any] = response.json()
            return answer

    def configure(self, **changes: Any) -> MockConfig:
        return self.backend.configure(changes)


class ReplayGateway:
    """A cassette replayed on a free loopback port (see replay.py), for tests and tools."""

    def __init__(self, cassette: str | Path, api_key: str = DEFAULT_API_KEY) -> None:
        self.app = ReplayApp.from_file(cassette)
        self.api_key = api_key
        self._server = LiveServer(self.app)
        self.base_url = self._server.base_url

    def __enter__(self) -> Self:
        self._server.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.stop()

    def http(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, **kwargs)

    def client(self, api_key: str | None = None, **kwargs: Any) -> AuthenticatedClient:
        """The generated client; any key matches a recording made with a key (keys are not recorded)."""
        return AuthenticatedClient(
            base_url=self.base_url,
            token=api_key or self.api_key,
            auth_header_name=KEY_HEADER,
            prefix="",
            **kwargs,
        )


@contextlib.contextmanager
def gateway_process(*args: str, **options: Any) -> Iterator[str]:
    """Run `python -m mock_gateway ARGS` on a free loopback port until the block ends; yields its URL.

    For tools that need the gateway as a separate process (the demo, the schemathesis CLI, benchmarks),
    and for the wheel test, which runs it from another venv (`python`) and folder (`cwd`).
    `subcommand=["proxy"]` runs the validating proxy instead (ready once its upstream's health answers).
    `options` are those of `gateway_popen`.
    """
    with gateway_popen(*args, **options) as (base_url, _):
        yield base_url


@contextlib.contextmanager
def gateway_popen(
    *args: str,
    host: str = "127.0.0.1",
    timeout: float = 20.0,
    python: str | Path = sys.executable,
    cwd: Path | None = None,
    subcommand: Sequence[str] = (),
    **popen: Any,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`gateway_process` that also yields the process (for signals, memory), `popen` passed to Popen."""
    with free_port_socket(host) as sock:
        port = sock.getsockname()[1]
    command = [str(python), "-m", "mock_gateway", *subcommand, "--host", host, "--port", str(port), *args]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd, **popen)
    base_url = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{base_url}/__mock/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                error = (
                    process.stderr.read().decode() if process.stderr and process.poll() is not None else ""
                )
                raise RuntimeError(f"the mock gateway did not start: {error.strip()}")
            time.sleep(0.05)
        yield base_url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def mock_gateway(**kwargs: Any) -> Iterator[MockGateway]:
    """`with mock_gateway(speed=100) as gateway:` — MockConfig fields, or `served=True`, as keywords."""
    served = bool(kwargs.pop("served", False))
    config = MockConfig().updated(kwargs) if kwargs else None
    with MockGateway(config, served=served) as gateway:
        yield gateway
