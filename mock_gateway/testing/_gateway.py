"""A ready gateway for a test, in-process (no port) or served on a free loopback port; a replayed cassette."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
from boogu_image_client import AuthenticatedClient

from boogu_contract import shared_tls_args
from boogu_contract.wire import ADMIN_PREFIX, KEY_HEADER

from ..contract_tools import ReplayApp
from ..model import DEFAULT_API_KEY, Clock, GatewayBackend, MockConfig, Sender
from ..server import create_app
from ._servers import LiveServer
from ._transport import InProcessTransport, SharedTransport

IN_PROCESS_URL = "http://mock-gateway.test"


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
        return {"transport": SharedTransport(self._transport)} if self._transport is not None else {}

    def http(self, **kwargs: Any) -> httpx.Client:
        """A plain httpx client for this gateway, for raw requests and the admin API (with its token)."""
        if self.admin_token is not None:
            kwargs["headers"] = {"Authorization": f"Bearer {self.admin_token}", **kwargs.get("headers", {})}
        return httpx.Client(base_url=self.base_url, **shared_tls_args({**self.httpx_args(), **kwargs}))

    def client(self, api_key: str | None = None, **kwargs: Any) -> AuthenticatedClient:
        """The generated client, authenticated with the development key (or `api_key`); `httpx_args`
        of the caller's are added to the ones that reach this gateway."""
        httpx_args = {**self.httpx_args(), **kwargs.pop("httpx_args", {})}
        client = _generated_client(self.base_url, api_key or self.api_key, httpx_args=httpx_args, **kwargs)
        self._clients.append(client)
        return client

    def advance(self, seconds: float) -> dict[str, Any]:
        """Move the gateway's clock on; finished jobs settle and due webhooks are delivered."""
        with self.http() as http:
            response = http.post(f"{ADMIN_PREFIX}/clock/advance", json={"seconds": seconds})
            response.raise_for_status()
            answer: dict[str, Any] = response.json()
            return answer

    def configure(self, **changes: Any) -> MockConfig:
        return self.backend.configure(changes)


class ReplayGateway:
    """A cassette replayed on a free loopback port (`ReplayApp`), for tests and tools."""

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
        return httpx.Client(base_url=self.base_url, **shared_tls_args(kwargs))

    def client(self, api_key: str | None = None, **kwargs: Any) -> AuthenticatedClient:
        """The generated client; any key matches a recording made with a key (keys are not recorded)."""
        return _generated_client(self.base_url, api_key or self.api_key, **kwargs)


def _generated_client(base_url: str, token: str, **kwargs: Any) -> AuthenticatedClient:
    """The generated client with its key in the gateway's header, on the shared TLS context unless
    `kwargs` choose their own (`verify_ssl`, or `cert`, `verify` or `trust_env` in `httpx_args`)."""
    return AuthenticatedClient(
        base_url=base_url,
        token=token,
        auth_header_name=KEY_HEADER,
        prefix="",
        **shared_tls_args(kwargs, verify="verify_ssl"),
    )


@contextlib.contextmanager
def mock_gateway(**kwargs: Any) -> Iterator[MockGateway]:
    """`with mock_gateway(speed=100) as gateway:` — MockConfig fields, or `served=True`, as keywords."""
    served = bool(kwargs.pop("served", False))
    config = MockConfig().updated(kwargs) if kwargs else None
    with MockGateway(config, served=served) as gateway:
        yield gateway
