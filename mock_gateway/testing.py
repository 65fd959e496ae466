"""Test harness: a ready gateway, in-process (no port) or served on a free loopback port.

with MockGateway() as gateway:
    client = gateway.client()            # the generated AuthenticatedClient, sync and async
    ...
    gateway.advance(15)                  # jump the gateway's clock instead of sleeping
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

import anyio.from_thread
import httpx
import uvicorn
from boogu_image_client import AuthenticatedClient
from starlette.applications import Starlette

from .app import create_app
from .backend import GatewayBackend
from .clock import Clock
from .config import DEFAULT_API_KEY, MockConfig
from .limits import server_config
from .webhooks import Sender

KEY_HEADER = "Ocp-Apim-Subscription-Key"
IN_PROCESS_URL = "http://mock-gateway.test"


class InProcessTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """One transport for both httpx.Client and httpx.AsyncClient that calls an ASGI app directly.

    Async requests run on the caller's event loop; sync requests run on a private event loop in a
    background thread (as Starlette's TestClient does), so sync code can test against the app too.
    """

    def __init__(self, app: Starlette) -> None:
        self._asgi = httpx.ASGITransport(app=app)
        self._portal_cm: contextlib.AbstractContextManager[anyio.from_thread.BlockingPortal] | None = None
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._lock = threading.Lock()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._asgi.handle_async_request(request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # A sync client's streamed body (an iterator, a file) is a sync-only stream, which the ASGI
        # transport cannot consume: read it here, which swaps in a stream that is both.
        request.read()
        with self._lock:
            if self._portal is None:
                self._portal_cm = anyio.from_thread.start_blocking_portal()
                self._portal = self._portal_cm.__enter__()
        status, headers, content = self._portal.call(self._read, request)
        return httpx.Response(status, headers=headers, content=content, request=request)

    async def _read(self, request: httpx.Request) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        response = await self._asgi.handle_async_request(request)
        content = await response.aread()
        return response.status_code, response.headers.raw, content

    def close(self) -> None:
        with self._lock:
            if self._portal_cm is not None:
                self._portal_cm.__exit__(None, None, None)
            self._portal_cm = self._portal = None

    async def aclose(self) -> None:
        await self._asgi.aclose()


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

    def __init__(self, app: Starlette, host: str = "127.0.0.1") -> None:
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


@contextlib.contextmanager
def gateway_process(*args: str, host: str = "127.0.0.1", timeout: float = 20.0) -> Iterator[str]:
    """Run `python -m mock_gateway ARGS` on a free loopback port until the block ends; yields its URL.

    For tools that need the gateway as a separate process (the demo, the schemathesis CLI, benchmarks).
    """
    with gateway_popen(*args, host=host, timeout=timeout) as (base_url, _):
        yield base_url


@contextlib.contextmanager
def gateway_popen(
    *args: str, host: str = "127.0.0.1", timeout: float = 20.0, **popen: Any
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`gateway_process` that also yields the process (for signals, memory), `popen` passed to Popen."""
    with free_port_socket(host) as sock:
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "mock_gateway", "--host", host, "--port", str(port), *args]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **popen)
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
