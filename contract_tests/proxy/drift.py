"""A deliberately drifting gateway: a small ASGI app that breaks openapi.yaml in the ways real gateways do.

The prompt of a submit, or the request id of a status call, picks the drift:
- prompt `no-polling-url`: 202 without `polling_url`; `teapot`: an undeclared 418;
  `slow-down`: 429 without `Retry-After`; anything else: a correct 202.
- request id `drop-model_...`: a status without `model_id`; `flip_...`: COMPLETED, then PROCESSING;
  `new-status_...`: a status value the spec does not know; `not-json_...`: an HTML 500.

`additive_app` is the other kind of gateway: it keeps every rule and adds fields the spec does not
list (notices, not violations).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boogu_contract import Contract
from mock_gateway.testing import LiveServer

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


# What `additive_app` adds: to the 202 ticket, to a status object, to its `output`, to each error body.
EXTRA = {"eta": 3}
PROGRESS = {"progress": 100}
OUTPUT_EXTRA = {"extra": "cdn-edge-7"}
TRACE = {"trace_id": "t-1"}
JPEG = b"\xff\xd8\xff\xe0 not really a jpeg \xff\xd9"


def additive_app(key: str = "k") -> Starlette:
    """A gateway that keeps openapi.yaml and adds fields it does not list: `eta` to a 202 ticket,
    `progress` to a status object and `extra` to its `output`, `trace_id` to each error body.

    Enough of a gateway for `boogu verify`: a job is COMPLETED on its first poll and its image downloads;
    a body the spec rejects gets a 400, an unknown id a 404, a call without the key a 401.
    """
    contract = Contract()
    jobs: set[str] = set()

    def error(status: int, name: str, message: str) -> Response:
        return JSONResponse({"error": name, "message": message, **TRACE}, status_code=status)

    async def submit(request: Request) -> Response:
        if request.headers.get("ocp-apim-subscription-key") != key:
            return error(401, "Unauthorized", "Access denied due to missing subscription key.")
        broken = contract.check_body("submit_text_to_image", await request.json())
        if broken is not None:
            return error(400, "Validation Error", str(broken))
        rid = f"boogu-image_{uuid.UUID(int=(0x7 << 76) | (0b10 << 62) | (len(jobs) + 1))}"
        jobs.add(rid)
        polling_url = f"{request.base_url}v2/requests/status/{rid}"
        return JSONResponse(
            {"request_id": rid, "status": "QUEUED", "polling_url": polling_url, **EXTRA}, status_code=202
        )

    async def status(request: Request) -> Response:
        rid = request.path_params["request_id"]
        if request.headers.get("ocp-apim-subscription-key") != key:
            return error(401, "Unauthorized", "Access denied due to missing subscription key.")
        if rid not in jobs:
            return error(404, "Not Found", f"Request {rid!r} not found")
        body = {**status_body(rid, "COMPLETED"), **PROGRESS}
        body["output"] = {"media_url": [f"{request.base_url}media/{rid}.jpeg"], "media_type": "image/jpeg"}
        body["output"].update(OUTPUT_EXTRA)
        return JSONResponse(body)

    async def media(request: Request) -> Response:
        return Response(JPEG, media_type="image/jpeg")

    return Starlette(
        routes=[
            Route(SUBMIT, submit, methods=["POST"]),
            Route(STATUS, status, methods=["GET"]),
            Route("/media/{name}", media, methods=["GET"]),
        ]
    )


def served(app: Any) -> Iterator[str]:
    """A module fixture's body: `app` served on a free port for the module, its base URL yielded."""
    server = LiveServer(app)
    server.start()
    yield server.base_url
    server.stop()
