"""The mock gateway as an ASGI app: its routes, in one place, and what runs beside them.

The API operations' handlers are in `_api.py`, the admin API's in `_admin.py`; the model they call is
`mock_gateway.model.GatewayBackend`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from boogu_contract import wire

from ..model import DEFAULT_API_KEY, Clock, DroppedConnection, GatewayBackend, MockConfig, Sender
from . import _admin as admin
from ._admin_auth import AdminAuth, check_token
from ._api import ApiRoute, ApiRoutes, media, status, submit

logger = logging.getLogger("mock_gateway")
TICK_SECONDS = 0.05


class GatewayApp(Starlette):
    """Starlette for the admin API, the docs and the lifespan; the API's routes are served first, as
    raw ASGI (`ApiRoutes`), because they are the mock's hot path."""

    def __init__(self, api_routes: ApiRoutes, **options: Any) -> None:
        super().__init__(**options)
        self.api_routes = api_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and await self.api_routes.handle(scope, receive, send):
            return
        await super().__call__(scope, receive, send)


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
) -> GatewayApp:
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
    api_routes = [
        ApiRoute(wire.STATUS_PATH, ("GET",), status, status_operation.operation_id),
        *(
            ApiRoute(op.path, ("POST",), submit, op.operation_id)
            for op in operations
            if op.method == "POST" and wire.submit_model(op.path) is not None
        ),
        ApiRoute("/{model}/v1/{name}", ("POST",), submit),
        ApiRoute("/media/{request_id}/{name}", ("GET",), media),
    ]
    routes = [
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
    app = GatewayApp(
        ApiRoutes(backend, api_routes, served=served),
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: admin.not_found, 405: admin.method_not_allowed},
        middleware=[Middleware(AdminAuth, token=check_token(admin_token))] if admin_token is not None else [],
    )
    app.state.backend = backend
    app.state.served = served
    return app
