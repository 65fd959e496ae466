"""The admin API under `/__mock/`: the mock's own routes, for tests and operators; not in openapi.yaml."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from boogu_contract import docs_path, iso_time, load_spec, spec_path

from ..model import LATEST, MAX_ADVANCE, ConfigError, GatewayBackend, GatewayError, check_key, parse_amount
from ..model._json import strict_json
from ._api import error_response
from ._api import method_not_allowed as method_not_allowed_error

Handler = Callable[[Request, GatewayBackend], Awaitable[Response]]


async def json_object(request: Request) -> dict[str, Any]:
    try:
        body = strict_json(await request.body() or b"{}")
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN or Infinity
        raise GatewayError(400, "Invalid JSON", f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise GatewayError(400, "Validation Error", "The request body must be a JSON object.")
    return body


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap an admin route: its errors become `{error, message}` answers."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request, request.app.state.backend)
        except GatewayError as exc:
            return error_response(exc)
        except ConfigError as exc:
            return error_response(GatewayError(400, "Validation Error", str(exc)))

    return wrapped


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
    try:
        key = check_key(body.get("key"))
    except ValueError as exc:
        raise GatewayError(400, "Validation Error", str(exc)) from None
    unknown = set(body) - {"key", "balance", "enabled", "models"}
    if unknown:
        raise GatewayError(400, "Validation Error", f"{', '.join(sorted(unknown))}: unknown field")
    balance = parse_amount(body["balance"], "balance") if "balance" in body else None
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
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= MAX_ADVANCE:
        raise GatewayError(400, "Validation Error", f"seconds: expected a number from 0 to {MAX_ADVANCE:g}")
    advance = getattr(backend.clock, "advance", None)
    if advance is None:
        raise GatewayError(409, "Conflict", "This gateway's clock cannot be advanced.")
    if backend.clock.now() + seconds > LATEST:
        raise GatewayError(400, "Validation Error", f"seconds: the clock would pass {iso_time(LATEST)}")
    advance(float(seconds))
    settled, attempts = await backend.pump(wait=True)
    return JSONResponse(
        {
            "now": backend.now_iso(),
            "settled": [job.request_id for job in settled],
            "webhook_attempts": attempts,
        }
    )


async def openapi_yaml(request: Request) -> Response:
    return Response(spec_path().read_bytes(), media_type="application/yaml")


async def openapi_json(request: Request) -> Response:
    return JSONResponse(load_spec())


async def docs(request: Request) -> Response:
    """The HTML reference of openapi.yaml (self-contained, works offline), packed into every wheel."""
    html = docs_path()
    if html is None:
        message = "The HTML reference is not built in this source checkout: run `make docs`, then reload."
        return JSONResponse({"error": "Not Found", "message": message}, status_code=404)
    return FileResponse(html, media_type="text/html; charset=utf-8")


async def not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {"error": "Not Found", "message": f"No route for {request.url.path}"}, status_code=404
    )


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    allow = (getattr(exc, "headers", None) or {}).get("Allow", "")  # Starlette's 405 carries it
    return error_response(method_not_allowed_error(request.method, request.url.path, allow))
