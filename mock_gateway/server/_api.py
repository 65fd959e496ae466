"""The API operations' HTTP edge: each request becomes a call on `GatewayBackend`, and is journaled.

All the gateway's behaviour lives in the backend; here are the headers, content type, body size and
JSON parsing, turning its answers and `GatewayError`s into responses, and the journal entry of each call.

The API routes are the mock's hot path, so they are served as raw ASGI (`ApiRoutes`): no Starlette
Request, Response, router or middleware stack, which cost a status call a quarter of its CPU. The
admin API and the docs stay on Starlette (`_app.py`), where convenience matters more than microseconds.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from boogu_contract import wire

from ..model import OUTCOME_HEADER, DroppedConnection, GatewayBackend, GatewayError, internal_error
from ..model._json import strict_json

logger = logging.getLogger("mock_gateway")
_KEY = wire.KEY_HEADER.lower()
_WEBHOOK = wire.WEBHOOK_HEADER.lower()
_OUTCOME = OUTCOME_HEADER.lower()
_JSON = (b"content-type", b"application/json")
_IMMUTABLE = (b"cache-control", b"public, max-age=31536000, immutable")
_PROMISED_LENGTH = (b"content-length", b"64")
"""A dropped connection's answer promises a body it never sends."""
_CLIENT_CLOSED_REQUEST = 499
"""The journal's and log's status for a client that left before its body arrived (nginx's code)."""


def error_response(error: GatewayError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def method_not_allowed(method: str, path: str, allow: str) -> GatewayError:
    """The 405 of every route, API or admin, with the `Allow` header RFC 9110 asks for."""
    return GatewayError(405, "Method Not Allowed", f"{method} is not allowed on {path}", {"Allow": allow})


class ClientGone(Exception):
    """The client disconnected (a timeout, say) before its request body arrived."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A response as ASGI sends it, kept whole for the journal."""

    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]


def json_answer(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Answer:
    body = orjson.dumps(payload)
    raw = [_JSON, (b"content-length", b"%d" % len(body))]
    for name, value in (headers or {}).items():
        raw.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    return Answer(status, body, raw)


async def send_answer(send: Send, answer: Answer) -> None:
    await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
    await send({"type": "http.response.body", "body": answer.body})


@dataclass(slots=True)
class Call:
    """One API request on its way through, and what the journal records once it is answered."""

    scope: Scope
    receive: Receive
    backend: GatewayBackend
    operation_id: str | None
    params: dict[str, str]
    served: bool
    body: bytearray | None = None
    """The request's JSON text, once it parsed."""
    answer: bytes | None = None
    """The JSON answer's text; a media file's is None, as the journal keeps no image."""
    created: str | None = None
    """The request_id of the job a submit created, journaled even when its answer is lost."""
    _headers: dict[str, str] | None = None

    @property
    def headers(self) -> dict[str, str]:
        """The request's headers, decoded once, the last of a repeated name winning."""
        if self._headers is None:
            raw = self.scope["headers"]
            self._headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in raw}
        return self._headers

    def respond(self, payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Answer:
        extra = self.backend.config.extra_fields
        if extra and isinstance(payload, dict):
            payload = {**extra, **payload}
        answer = json_answer(payload, status, headers)
        self.answer = answer.body
        return answer

    def journal(self, answer: Answer | None) -> None:
        """Record the call; status 0 and no answer mean the connection was dropped."""
        scope = self.scope
        self.backend.journal.record(
            at=self.backend.clock.now(),
            method=scope["method"],
            path=scope["path"],
            query=scope["query_string"].decode("latin-1"),
            headers=scope["headers"],
            body=self.body,
            status=answer.status if answer is not None else 0,
            response=self.answer,
            response_headers=answer.headers if answer is not None else [],
            operation_id=self.operation_id,
            request_id=self.params.get("request_id", self.created),
        )


Handler = Callable[[Call], Awaitable[Answer]]


def _pattern(template: str) -> re.Pattern[str]:
    """A path template's regex: `{name}` is one non-empty segment, as in Starlette's routes."""
    parts = re.split(r"\{(\w+)\}", template)
    return re.compile(
        "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts))
    )


@dataclass(frozen=True)
class ApiRoute:
    """One API route: its path template, methods, handler and the spec operation it serves, if any."""

    path: str
    methods: tuple[str, ...]
    handler: Handler
    operation_id: str | None = None
    pattern: re.Pattern[str] = field(init=False, repr=False)
    allow: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        methods = (*self.methods, "HEAD") if "GET" in self.methods else self.methods
        object.__setattr__(self, "methods", methods)
        object.__setattr__(self, "pattern", _pattern(self.path))
        object.__setattr__(self, "allow", ", ".join(methods))


class ApiRoutes:
    """Serve the API's routes: gateway errors become their answers, anything else the documented 500,
    and every call is journaled. `handle` says whether the request was one of them."""

    def __init__(self, backend: GatewayBackend, routes: Sequence[ApiRoute], *, served: bool) -> None:
        self.backend = backend
        self.routes = routes
        self.served = served
        """Behind a real HTTP server, a simulated dropped connection breaks the socket; in-process,
        the exception itself reaches the client, already an httpx transport error."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> bool:
        path, method = scope["path"], scope["method"]
        refused = None
        for route in self.routes:
            match = route.pattern.fullmatch(path)
            if match is None:
                continue
            if method in route.methods:
                call = Call(scope, receive, self.backend, route.operation_id, match.groupdict(), self.served)
                await self._serve(call, route.handler, send)
                return True
            refused = refused or route
        if refused is None:
            return False
        await send_answer(send, _error_answer(method_not_allowed(method, path, refused.allow)))
        return True

    async def _serve(self, call: Call, handler: Handler, send: Send) -> None:
        try:
            answer = await handler(call)
        except GatewayError as exc:
            answer = call.respond(exc.body(), exc.status, exc.headers)
        except DroppedConnection:
            call.journal(None)
            if self.served:  # a response cut short, which the server cannot complete: it closes the socket
                await send({"type": "http.response.start", "status": 200, "headers": [_PROMISED_LENGTH]})
            raise
        except ClientGone:  # nothing was done
            call.journal(None)
            await send_answer(send, Answer(_CLIENT_CLOSED_REQUEST, b"", [(b"content-length", b"0")]))
            return
        except Exception:  # never crash: the client gets the documented 500 body
            logger.exception("unexpected error in %s %s", call.scope["method"], call.scope["path"])
            error = internal_error()
            answer = call.respond(error.body(), error.status)
        call.journal(answer)
        self.backend.deliver_webhooks_soon()
        await send_answer(send, answer)


def _error_answer(error: GatewayError) -> Answer:
    return json_answer(error.body(), error.status, error.headers)


def _too_large(limit: int) -> GatewayError:
    return GatewayError(413, "Payload Too Large", f"The request body is larger than {limit} bytes.")


async def read_body(call: Call, limit: int) -> bytearray:
    """The request body, refused (413) as soon as it passes `limit` bytes."""
    declared = call.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks = bytearray()
    while True:
        message = await call.receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunks += message.get("body", b"")
        if len(chunks) > limit:
            raise _too_large(limit)
        if not message.get("more_body", False):
            return chunks


async def read_json(call: Call) -> Any:
    content_type = call.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        shown = repr(content_type) if content_type else "none"
        raise GatewayError(
            415, "Unsupported Media Type", f"Content-Type must be application/json, got {shown}."
        )
    chunks = await read_body(call, call.backend.config.max_body_bytes)
    try:
        body = strict_json(chunks)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN or Infinity
        raise GatewayError(400, "Invalid JSON", f"The request body is not valid JSON: {exc}.") from None
    call.body = chunks
    return body


def base_url(call: Call) -> str:
    """The base of polling_url and media URLs: `public_url`, else the address the mock answered on.

    Never the request's Host header: a client could name any host there and have the mock hand out
    URLs that point at it.
    """
    configured = call.backend.config.public_url
    if configured is not None:
        return configured
    scope = call.scope
    host, port = scope.get("server") or ("127.0.0.1", 80)
    scheme = scope["scheme"]
    shown = f"[{host}]" if ":" in host else host
    if port is not None and port != {"http": 80, "https": 443}.get(scheme):
        shown = f"{shown}:{port}"
    return f"{scheme}://{shown}{scope.get('root_path', '')}"


async def submit(call: Call) -> Answer:
    backend, path = call.backend, call.scope["path"]
    model_id = wire.submit_model(path)
    if model_id is None:
        raise GatewayError(404, "Not Found", f"No route for {path}")
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
        own_address=call.scope.get("server") if webhook_url and call.served else None,
        body_size=len(call.body or b""),
    )
    call.created = accepted.job.request_id
    answer = await backend.finish(accepted)  # sync mode: held open until the job is done, as the gateway does
    return call.respond(answer.body, answer.status_code)


async def status(call: Call) -> Answer:
    admission = call.backend.admit(call.headers.get(_KEY))
    await admission.wait()
    return call.respond(call.backend.status(admission.key, call.params["request_id"]))


async def media(call: Call) -> Answer:
    params = call.params
    image, media_type = await asyncio.to_thread(call.backend.media, params["request_id"], params["name"])
    length = (b"content-length", b"%d" % len(image))
    return Answer(200, image, [(b"content-type", media_type.encode("latin-1")), length, _IMMUTABLE])
