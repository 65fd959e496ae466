"""The mock gateway as an ASGI app: its routes, in one place, and what runs beside them.

The API operations' handlers are in `_api.py`, the admin API's in `_admin.py`; the model they call is
`mock_gateway.model.GatewayBackend`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from boogu_contract import wire

from ..model import DEFAULT_API_KEY, Clock, DroppedConnection, GatewayBackend, MockConfig, Sender
from . import _admin as admin
from ._admin_auth import AdminAuth, check_token
from ._api import api, media, status, submit

logger = logging.getLogger("mock_gateway")
TICK_SECONDS = 0.05


class DropConnections:
    """For a served gateway: a `DroppedConnection` becomes a response cut short, which the HTTP
    server cannot complete, so the client's connection breaks as it would on a network fault.
    (In-process, the exception itself reaches the client, already an httpx transport error.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except DroppedConnection:
            if not started:
                await send(
                    {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]}
                )
            raise  # a response started and then failed: the server closes the socket


def _not_a_dropped_connection(record: logging.LogRecord) -> bool:
    """Keep the server's error log for real errors, not for the faults we inject."""
    return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


def create_app(
    config: MockConfig | None = None,
    *,
    clock: Clock | None = None,
    api_key: str | None = None,
    webhook_sender: Sender | None = None,
    backend: GatewayBackend | None = None,
    served: bool = False,
    admin_token: str | None = None,
) -> Starlette:
    """The mock gateway as an ASGI app; `app.state.backend` is its model, for tests to drive.

    `served` is for an app behind a real HTTP server (the CLI, the live-server fixture): there,
    simulated dropped connections break the socket instead of raising into the caller.
    `admin_token` locks the admin API (`AdminAuth`).
    """
    if served:
        logging.getLogger("uvicorn.error").addFilter(_not_a_dropped_connection)
    if backend is None:
        backend = GatewayBackend(
            config, clock=clock, api_key=api_key or DEFAULT_API_KEY, webhook_sender=webhook_sender
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        """When served, settle jobs and deliver webhooks on time even when nobody polls."""

        async def ticker() -> None:
            while True:
                await asyncio.sleep(TICK_SECONDS)
                try:  # one bad job must not stop settlement and webhooks for good
                    await backend.pump()  # webhooks in the background: a slow receiver delays no tick
                except Exception:
                    logger.exception("the mock gateway's ticker failed; it goes on")

        task = asyncio.create_task(ticker())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # The API's routes come from the spec; a submit for a model it does not serve is a 400, not a 404.
    operations = backend.contract.operations.values()
    (status_operation,) = (op for op in operations if op.path == wire.STATUS_PATH)
    at = wire.ADMIN_PREFIX
    routes = [
        Route(wire.STATUS_PATH, api(backend, status_operation.operation_id, status), methods=["GET"]),
        *(
            Route(op.path, api(backend, op.operation_id, submit), methods=["POST"])
            for op in operations
            if op.method == "POST" and wire.submit_model(op.path) is not None
        ),
        Route("/{model}/v1/{name}", api(backend, None, submit), methods=["POST"]),
        Route("/media/{request_id}/{name}", api(backend, None, media), methods=["GET"]),
        Route("/openapi.yaml", admin.openapi_yaml, methods=["GET"]),
        Route("/openapi.json", admin.openapi_json, methods=["GET"]),
        Route("/docs", admin.docs, methods=["GET"]),
        Route(f"{at}/health", admin.endpoint(admin.health), methods=["GET"]),
        Route(f"{at}/reset", admin.endpoint(admin.reset), methods=["POST"]),
        Route(f"{at}/config", admin.endpoint(admin.get_config), methods=["GET"]),
        Route(f"{at}/config", admin.endpoint(admin.patch_config), methods=["PATCH"]),
        Route(f"{at}/keys", admin.endpoint(admin.put_key), methods=["POST"]),
        Route(f"{at}/keys/{{key:path}}", admin.endpoint(admin.get_key), methods=["GET"]),
        Route(f"{at}/requests", admin.endpoint(admin.list_requests), methods=["GET"]),
        Route(f"{at}/webhooks", admin.endpoint(admin.list_webhooks), methods=["GET"]),
        Route(f"{at}/clock/advance", admin.endpoint(admin.advance_clock), methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: admin.not_found, 405: admin.method_not_allowed},
        middleware=[
            *([Middleware(AdminAuth, token=check_token(admin_token))] if admin_token is not None else []),
            *([Middleware(DropConnections)] if served else []),
        ],
    )
    app.state.backend = backend
    app.state.served = served
    return app
