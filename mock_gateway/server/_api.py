"""The API operations' HTTP edge: each request becomes a call on `GatewayBackend`, and is journaled.

All the gateway's behaviour lives in the backend; here are the headers, content type, body size and
JSON parsing, turning its answers and `GatewayError`s into responses, and the journal entry of each call.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from boogu_contract import wire

from ..model import OUTCOME_HEADER, DroppedConnection, GatewayBackend, GatewayError, internal_error
from ._json import strict_json

logger = logging.getLogger("mock_gateway")
_KEY = wire.KEY_HEADER.lower()
_WEBHOOK = wire.WEBHOOK_HEADER.lower()
_OUTCOME = OUTCOME_HEADER.lower()


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
    body_size: int = 0
    answer: Any = None
    created: str | None = None
    """The request_id of the job a submit created, journaled even when its answer is lost."""
    _headers: dict[str, str] | None = None

    @property
    def headers(self) -> dict[str, str]:
        """The request's headers, decoded once (Starlette's `Headers` scans the list on every lookup)."""
        if self._headers is None:
            raw = self.request.scope["headers"]
            self._headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in raw}
        return self._headers

    def respond(self, payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        extra = self.backend.config.extra_fields
        if extra and isinstance(payload, dict):
            payload = {**extra, **payload}
        self.answer = payload
        return ApiResponse(payload, status, headers)

    def journal(self, response: Response | None) -> None:
        """Record the call; status 0 and no response mean the connection was dropped."""
        request = self.request
        request_id = request.path_params.get("request_id", self.created)
        self.backend.journal.record(
            at=self.backend.clock.now(),
            method=request.method,
            path=request.scope["path"],
            query=request.scope["query_string"].decode("latin-1"),
            headers=request.scope["headers"],
            body=self.body,
            body_size=self.body_size,
            status=response.status_code if response is not None else 0,
            response=self.answer,
            response_size=len(response.body) if isinstance(response, ApiResponse) else 0,
            response_headers=response.raw_headers if response is not None else [],
            operation_id=self.operation_id,
            request_id=request_id,
        )


ApiHandler = Callable[[Call], Awaitable[Response]]


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
    call.body, call.body_size = body, len(chunks)
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
    model_id = wire.submit_model(request.scope["path"])
    if model_id is None:
        raise GatewayError(404, "Not Found", f"No route for {request.url.path}")
    admission = backend.admit(call.headers.get(_KEY), model_id)
    await admission.wait()
    body = await read_json(call)
    webhook_url = call.headers.get(_WEBHOOK)
    accepted = backend.submit(
        admission,
        body,
        base_url=base_url(call),
        webhook_url=webhook_url,
        outcome=call.headers.get(_OUTCOME),
        # Where a served mock listens; in-process, no webhook can reach it.
        own_address=request.scope.get("server") if webhook_url and request.app.state.served else None,
        body_size=call.body_size,
    )
    call.created = accepted.job.request_id
    answer = await backend.finish(accepted)  # sync mode: held open until the job is done, as the gateway does
    return call.respond(answer.body, answer.status_code)


async def status(call: Call) -> Response:
    admission = call.backend.admit(call.headers.get(_KEY))
    await admission.wait()
    return call.respond(call.backend.status(admission.key, call.request.path_params["request_id"]))


async def media(call: Call) -> Response:
    params = call.request.path_params
    image, media_type = await run_in_threadpool(call.backend.media, params["request_id"], params["name"])
    return Response(
        image, media_type=media_type, headers={"Cache-Control": "public, max-age=31536000, immutable"}
    )
