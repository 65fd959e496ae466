"""HTTP routing, and nothing else: each route turns a request into a call on `GatewayBackend`.

All the gateway's behaviour lives in the backend; here are only the HTTP edges: headers, content
type, body size, JSON parsing, fault injection, the journal, and the admin API under `/__mock/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .backend import OUTCOME_HEADER, ApiKey, GatewayBackend, GatewayError, SyncWait
from .clock import Clock, sleep_until
from .config import DEFAULT_API_KEY, ConfigError, MockConfig, parse_amount
from .spec import load_spec, spec_path
from .webhooks import Sender

logger = logging.getLogger("mock_gateway")
KEY_HEADER = "ocp-apim-subscription-key"
TICK_SECONDS = 0.05


class DroppedConnection(httpx.RemoteProtocolError):
    """Raised to simulate a dropped connection: in-process clients see a transport error as-is,
    and `DropConnections` turns it into a truncated response that a real socket client sees as one."""

    def __init__(self) -> None:
        super().__init__("the mock gateway dropped the connection (drop_rate)")


def internal_error() -> GatewayError:
    return GatewayError(
        500, "Internal Server Error", "The gateway could not process the request. Try again later."
    )


def error_response(error: GatewayError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


class ApiResponse(Response):
    """JSON by orjson, headers built directly: the API's answers are the mock's hot path."""

    media_type = "application/json"

    def __init__(
        self, content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        self.status_code = status_code
        self.body = orjson.dumps(content)
        self.background = None
        self.raw_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(self.body)),
        ]
        for name, value in (headers or {}).items():
            self.raw_headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))


@dataclass(slots=True)
class Call:
    """One API request on its way through, and what the journal records once it is answered."""

    request: Request
    backend: GatewayBackend
    operation_id: str | None
    body: Any = None
    answer: Any = None
    _headers: dict[str, str] | None = None

    @property
    def headers(self) -> dict[str, str]:
        """The request's headers, decoded once (Starlette's `Headers` scans the list on every lookup)."""
        if self._headers is None:
            raw = self.request.scope["headers"]
            self._headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in raw}
        return self._headers

    def respond(self, payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        self.answer = payload
        return ApiResponse(payload, status, headers)

    def journal(self, response: Response | None) -> None:
        """Record the call; status 0 and no response mean the connection was dropped."""
        request = self.request
        request_id = request.path_params.get("request_id")
        if request_id is None and isinstance(self.answer, dict):
            request_id = self.answer.get("request_id")
        self.backend.journal.record(
            at=self.backend.clock.now(),
            method=request.method,
            path=request.scope["path"],
            query=request.scope["query_string"].decode("latin-1"),
            headers=request.scope["headers"],
            body=self.body,
            status=response.status_code if response is not None else 0,
            response=self.answer,
            response_headers=response.raw_headers if response is not None else [],
            operation_id=self.operation_id,
            request_id=request_id,
        )


ApiHandler = Callable[[Call], Awaitable[Response]]
Handler = Callable[[Request, GatewayBackend], Awaitable[Response]]


def api(
    backend: GatewayBackend, operation_id: str | None, handler: ApiHandler
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap an API route: gateway errors become their answers, the rest a 500; all is journaled."""

    async def endpoint(request: Request) -> Response:
        call = Call(request, backend, operation_id)
        try:
            response = await handler(call)
        except GatewayError as exc:
            response = call.respond(exc.body(), exc.status, exc.headers)
        except DroppedConnection:
            call.journal(None)
            raise
        except ClientDisconnect:  # the client gave up (a timeout) before its body arrived: nothing done
            call.journal(None)
            return Response(status_code=499)
        except Exception:  # never crash: the client gets the documented 500 body
            logger.exception("unexpected error in %s %s", request.method, request.url.path)
            error = internal_error()
            response = call.respond(error.body(), error.status)
        call.journal(response)
        backend.deliver_webhooks_soon()
        return response

    return endpoint


async def admit(call: Call) -> ApiKey:
    """Auth, rate limit, then the configured faults: the gateway's checks before any work."""
    backend = call.backend
    record = backend.authenticate(call.headers.get(KEY_HEADER))
    backend.throttle(record.key)
    delay = backend.draw_latency()
    if delay:
        await asyncio.sleep(delay)
    fault = backend.draw_fault()
    if fault == "server_error":
        raise internal_error()
    if fault == "drop":
        raise DroppedConnection()
    return record


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text} is out of range")
    return value


_LONG_INTEGER = re.compile(rb"\d{19}")


def strict_json(data: bytes | bytearray) -> Any:
    """Parse JSON as RFC 8259 defines it: Python's NaN, Infinity and -Infinity extensions, and numbers
    too large for a float (1e400), are refused. They would pass range checks (NaN) or settings (inf)
    and then break every JSON answer that echoes them: the journal, the config.

    orjson is the fast path (it refuses all of those too); the standard library decides whatever
    orjson will not parse, and any integer of 19 digits or more, which orjson would turn into a float.
    """
    if not _LONG_INTEGER.search(data):
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(data)
    return json.loads(data, parse_constant=_reject_constant, parse_float=_finite_float)


async def read_json(call: Call) -> Any:
    request, limit = call.request, call.backend.config.max_body_bytes
    content_type = call.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        shown = repr(content_type) if content_type else "none"
        raise GatewayError(
            415, "Unsupported Media Type", f"Content-Type must be application/json, got {shown}."
        )
    declared = call.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise GatewayError(413, "Payload Too Large", f"The request body is larger than {limit} bytes.")
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise GatewayError(413, "Payload Too Large", f"The request body is larger than {limit} bytes.")
    try:
        body = strict_json(chunks)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN or Infinity
        raise GatewayError(400, "Invalid JSON", f"The request body is not valid JSON: {exc}.") from None
    call.body = body
    return body


def base_url(call: Call) -> str:
    """The base of polling_url and media URLs: `public_url`, else the address the mock answered on.

    Never the request's Host header: a client could name any host there and have the mock hand out
    URLs that point at it.
    """
    configured = call.backend.config.public_url
    if configured is not None:
        return configured
    scope = call.request.scope
    host, port = scope.get("server") or ("127.0.0.1", 80)
    scheme = scope["scheme"]
    shown = f"[{host}]" if ":" in host else host
    if port is not None and port != {"http": 80, "https": 443}.get(scheme):
        shown = f"{shown}:{port}"
    return f"{scheme}://{shown}{scope.get('root_path', '')}"


async def submit(call: Call) -> Response:
    request, backend = call.request, call.backend
    model_id = request.path_params["model"]
    if request.path_params["name"] != f"{model_id}-request":
        raise GatewayError(404, "Not Found", f"No route for {request.url.path}")
    call.operation_id = backend.models.get(model_id)
    record = await admit(call)
    backend.operation_for(model_id, record)
    body = await read_json(call)
    submit = functools.partial(
        backend.submit,
        record,
        model_id,
        body,
        base_url=base_url(call),
        webhook_url=call.headers.get("x-webhook-url"),
        outcome=call.headers.get(OUTCOME_HEADER.lower()),
    )
    # Sync mode renders images before answering: keep that off the event loop.
    sync = isinstance(body, dict) and body.get("sync_mode") is True
    submission = await run_in_threadpool(submit) if sync else submit()
    if isinstance(submission, SyncWait):  # its worker is busy: hold the request open, as the gateway does
        await sleep_until(backend.clock, submission.until)
        submission = await run_in_threadpool(backend.finish_sync, submission.job)
    return call.respond(submission.body, submission.status_code)


async def status(call: Call) -> Response:
    record = await admit(call)
    return call.respond(call.backend.status(record, call.request.path_params["request_id"]))


async def media(call: Call) -> Response:
    params = call.request.path_params
    image, media_type = await run_in_threadpool(call.backend.media, params["request_id"], params["name"])
    return Response(
        image, media_type=media_type, headers={"Cache-Control": "public, max-age=31536000, immutable"}
    )


# The admin API ----------------------------------------------------------------------------------


async def json_object(request: Request) -> dict[str, Any]:
    try:
        body = strict_json(await request.body() or b"{}")
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN or Infinity
        raise GatewayError(400, "Invalid JSON", f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise GatewayError(400, "Validation Error", "The request body must be a JSON object.")
    return body


def admin(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request, request.app.state.backend)
        except GatewayError as exc:
            return error_response(exc)
        except ConfigError as exc:
            return error_response(GatewayError(400, "Validation Error", str(exc)))

    return endpoint


async def health(request: Request, backend: GatewayBackend) -> Response:
    return JSONResponse({"status": "ok", "time": backend.now_iso(), "jobs": len(backend.jobs)})


async def reset(request: Request, backend: GatewayBackend) -> Response:
    backend.reset()
    return JSONResponse({"status": "reset"})


async def get_config(request: Request, backend: GatewayBackend) -> Response:
    return JSONResponse(backend.config.to_dict())


async def patch_config(request: Request, backend: GatewayBackend) -> Response:
    return JSONResponse(backend.configure(await json_object(request)).to_dict())


async def put_key(request: Request, backend: GatewayBackend) -> Response:
    body = await json_object(request)
    key = body.get("key")
    if not isinstance(key, str) or not key:
        raise GatewayError(400, "Validation Error", "key: is required and must be a non-empty string")
    unknown = set(body) - {"key", "balance", "enabled", "models"}
    if unknown:
        raise GatewayError(400, "Validation Error", f"{', '.join(sorted(unknown))}: unknown field")
    balance = parse_amount(body["balance"], "balance") if "balance" in body else None
    if balance is not None and balance < 0:
        raise GatewayError(400, "Validation Error", "balance: must not be negative")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise GatewayError(400, "Validation Error", "enabled: expected true or false")
    models = body.get("models")
    if models is not None and (not isinstance(models, list) or not all(isinstance(m, str) for m in models)):
        raise GatewayError(400, "Validation Error", "models: expected null or a list of model ids")
    backend.put_key(
        key, balance=balance, enabled=enabled, models=frozenset(models) if models is not None else None
    )
    return JSONResponse(backend.describe_key(key))


async def get_key(request: Request, backend: GatewayBackend) -> Response:
    described = backend.describe_key(request.path_params["key"])
    if described is None:
        raise GatewayError(404, "Not Found", "No such key")
    return JSONResponse(described)


async def list_requests(request: Request, backend: GatewayBackend) -> Response:
    return JSONResponse(backend.journal.entries())


async def list_webhooks(request: Request, backend: GatewayBackend) -> Response:
    return JSONResponse([delivery.to_dict() for delivery in backend.webhooks.deliveries()])


async def advance_clock(request: Request, backend: GatewayBackend) -> Response:
    body = await json_object(request)
    seconds = body.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise GatewayError(400, "Validation Error", "seconds: expected a number >= 0")
    advance = getattr(backend.clock, "advance", None)
    if advance is None:
        raise GatewayError(409, "Conflict", "This gateway's clock cannot be advanced.")
    advance(float(seconds))
    settled = backend.tick()
    delivered = await backend.webhooks.deliver_due()
    return JSONResponse(
        {
            "now": backend.now_iso(),
            "settled": [job.request_id for job in settled],
            "webhook_attempts": len(delivered),
        }
    )


async def openapi_yaml(request: Request) -> Response:
    return Response(spec_path().read_bytes(), media_type="application/yaml")


async def openapi_json(request: Request) -> Response:
    return JSONResponse(load_spec())


DOCS_HTML = Path(__file__).resolve().parent.parent / "build" / "docs" / "index.html"


async def docs(request: Request) -> Response:
    """The HTML reference that `make docs` builds from openapi.yaml (self-contained, works offline)."""
    if not DOCS_HTML.is_file():
        message = f"The HTML reference is not built: run `make docs` to write {DOCS_HTML}."
        return JSONResponse({"error": "Not Found", "message": message}, status_code=404)
    return FileResponse(DOCS_HTML, media_type="text/html; charset=utf-8")


async def not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {"error": "Not Found", "message": f"No route for {request.url.path}"}, status_code=404
    )


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    headers = getattr(exc, "headers", None)  # Starlette's 405 carries the Allow header
    return JSONResponse(
        {"error": "Method Not Allowed", "message": f"{request.method} is not allowed on {request.url.path}"},
        status_code=405,
        headers=headers,
    )


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
) -> Starlette:
    """The mock gateway as an ASGI app; `app.state.backend` is its model, for tests to drive.

    `served` is for an app behind a real HTTP server (the CLI, the live-server fixture): there,
    simulated dropped connections break the socket instead of raising into the caller.
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
                backend.tick()
                await backend.webhooks.deliver_due()

        task = asyncio.create_task(ticker())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    routes = [
        Route(
            "/v2/requests/status/{request_id}", api(backend, "get_request_status", status), methods=["GET"]
        ),
        Route("/{model}/v1/{name}", api(backend, None, submit), methods=["POST"]),
        Route("/media/{request_id}/{name}", api(backend, None, media), methods=["GET"]),
        Route("/openapi.yaml", openapi_yaml, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route("/__mock/health", admin(health), methods=["GET"]),
        Route("/__mock/reset", admin(reset), methods=["POST"]),
        Route("/__mock/config", admin(get_config), methods=["GET"]),
        Route("/__mock/config", admin(patch_config), methods=["PATCH"]),
        Route("/__mock/keys", admin(put_key), methods=["POST"]),
        Route("/__mock/keys/{key}", admin(get_key), methods=["GET"]),
        Route("/__mock/requests", admin(list_requests), methods=["GET"]),
        Route("/__mock/webhooks", admin(list_webhooks), methods=["GET"]),
        Route("/__mock/clock/advance", admin(advance_clock), methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: method_not_allowed},
        middleware=[Middleware(DropConnections)] if served else [],
    )
    app.state.backend = backend
    return app
