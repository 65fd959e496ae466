"""A deliberately drifting gateway: a small ASGI app that breaks openapi.yaml in the ways real gateways do.

The prompt of a submit, or the request id of a status call, picks the drift:
- prompt `no-polling-url`: 202 without `polling_url`; `teapot`: an undeclared 418;
  `slow-down`: 429 without `Retry-After`; anything else: a correct 202.
- request id `drop-model_...`: a status without `model_id`; `flip_...`: COMPLETED, then PROCESSING;
  `new-status_...`: a status value the spec does not know; `not-json_...`: an HTML 500.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SUBMIT = "/boogu-image/v1/boogu-image-request"
STATUS = "/v2/requests/status/{request_id}"
AT = "2026-03-31T10:00:00.000Z"


def request_id() -> str:
    return f"boogu-image_{uuid.UUID(int=(0x7 << 76) | (0b10 << 62))}"


def status_body(rid: str, status: str, *, model: bool = True) -> dict[str, Any]:
    finished = status in ("COMPLETED", "FAILED", "ERROR")
    body: dict[str, Any] = {
        "request_id": rid,
        "status": status,
        "model_id": "boogu-image",
        "error": None,
        "output": {"media_url": ["https://cdn.example/x.jpeg"], "media_type": "image/jpeg"}
        if status == "COMPLETED"
        else None,
        "created_at": AT,
        "updated_at": AT,
        "completed_at": AT if finished else None,
    }
    if not model:
        del body["model_id"]
    return body


def drifting_app() -> Starlette:
    polls: Counter[str] = Counter()

    async def submit(request: Request) -> Response:
        prompt = (await request.json()).get("prompt")
        rid = request_id()
        if prompt == "teapot":
            return JSONResponse({"error": "I'm a teapot", "message": "short and stout"}, status_code=418)
        if prompt == "slow-down":
            return JSONResponse({"error": "Too Many Requests", "message": "later"}, status_code=429)
        queued = {
            "request_id": rid,
            "status": "QUEUED",
            "polling_url": f"{request.base_url}v2/requests/status/{rid}",
        }
        if prompt == "no-polling-url":
            del queued["polling_url"]
        return JSONResponse(queued, status_code=202)

    async def status(request: Request) -> Response:
        rid = request.path_params["request_id"]
        polls[rid] += 1
        if rid.startswith("drop-model_"):
            return JSONResponse(status_body(rid, "PROCESSING", model=False))
        if rid.startswith("flip_"):
            return JSONResponse(status_body(rid, "COMPLETED" if polls[rid] == 1 else "PROCESSING"))
        if rid.startswith("new-status_"):
            return JSONResponse(status_body(rid, "CANCELLED"))
        if rid.startswith("not-json_"):
            return Response("<html>oops</html>", status_code=500, media_type="text/html")
        return JSONResponse({"error": "Not Found", "message": f"Request {rid!r} not found"}, status_code=404)

    return Starlette(routes=[Route(SUBMIT, submit, methods=["POST"]), Route(STATUS, status, methods=["GET"])])
