"""Helpers for the client tests: a fake clock whose sleeps return at once, gateway payloads, clients."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import httpx
from PIL import Image

from boogu import AsyncBoogu, Boogu, Runtime
from boogu_contract import iso_time as iso
from mock_gateway.testing import MockGateway

BASE = "https://gateway.test"
SECRET = "sk-live-0123456789abcdef-DO-NOT-LEAK"
RID = "boogu-image_019d0000-0000-7000-8000-000000000001"
STATUS_PATH = f"/v2/requests/status/{RID}"
SUBMIT_PATH = "/boogu-image/v1/boogu-image-request"
EDIT_PATH = "/boogu-image-edit/v1/boogu-image-edit-request"
START = 1_774_951_200.0  # 2026-03-31T10:00:00Z


class FakeClock:
    """Wall and monotonic time that move only when the client sleeps; every sleep is recorded."""

    def __init__(self, start: float = START) -> None:
        self.wall = start
        self.mono = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.wall += seconds
        self.mono += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def runtime(self, rand: float = 0.5) -> Runtime:
        return Runtime(wall=lambda: self.wall, monotonic=lambda: self.mono, random=lambda: rand)


def make_client(clock: FakeClock, *, rand: float = 0.5, **options: Any) -> Boogu:
    return Boogu(SECRET, base_url=BASE, runtime=clock.runtime(rand), sleep=clock.sleep, **options)


def make_async_client(clock: FakeClock, *, rand: float = 0.5, **options: Any) -> AsyncBoogu:
    return AsyncBoogu(SECRET, base_url=BASE, runtime=clock.runtime(rand), sleep=clock.asleep, **options)


def status_body(status: str, *, request_id: str = RID, at: float = START, **extra: Any) -> dict[str, Any]:
    finished = status in ("COMPLETED", "FAILED", "ERROR")
    body: dict[str, Any] = {
        "request_id": request_id,
        "status": status,
        "model_id": "boogu-image",
        "error": {"FAILED": "flagged", "ERROR": "worker died"}.get(status),
        "output": None,
        "created_at": iso(at),
        "updated_at": iso(at + 15 if finished else at),
        "completed_at": iso(at + 15) if finished else None,
    }
    if status == "COMPLETED":
        body["output"] = {"media_url": ["https://cdn.test/out/output.jpeg"], "media_type": "image/jpeg"}
    body.update(extra)
    return body


def queued_body(request_id: str = RID) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "status": "QUEUED",
        "polling_url": f"{BASE}/v2/requests/status/{request_id}",
    }


def error_body(status: int) -> dict[str, str]:
    names = {
        400: "Validation Error",
        401: "Unauthorized",
        402: "Insufficient Balance",
        403: "Forbidden",
        404: "Not Found",
        413: "Payload Too Large",
        415: "Unsupported Media Type",
        429: "Too Many Requests",
        500: "Internal Server Error",
    }
    return {"error": names.get(status, "Error"), "message": f"the gateway says {status}"}


def answer(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=error_body(status), headers=headers)


def image_bytes(kind: str = "JPEG", size: tuple[int, int] = (8, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buffer, kind)
    return buffer.getvalue()


def mock_client(gateway: MockGateway, api_key: str | None = None, **options: Any) -> Boogu:
    """A client of a mock gateway whose pace is known, so waits poll on time instead of a second late."""
    speed = gateway.backend.config.speed
    options.setdefault("httpx_args", gateway.httpx_args())
    return Boogu(
        api_key or gateway.api_key, base_url=gateway.base_url, seconds_per_unit=0.5 / speed, **options
    )


def mock_async_client(gateway: MockGateway, api_key: str | None = None, **options: Any) -> AsyncBoogu:
    speed = gateway.backend.config.speed
    options.setdefault("httpx_args", gateway.httpx_args())
    return AsyncBoogu(
        api_key or gateway.api_key, base_url=gateway.base_url, seconds_per_unit=0.5 / speed, **options
    )


def wallet(gateway: MockGateway, key: str = "test-key") -> dict[str, Any]:
    """The key as the admin API describes it, its money (decimal strings) as Decimal."""
    with gateway.http() as http:
        answer = http.get(f"/__mock/keys/{key}")
        answer.raise_for_status()
        data: dict[str, Any] = answer.json()
        return {**data, "balance": Decimal(data["balance"]), "charged": Decimal(data["charged"])}


def journal(gateway: MockGateway) -> list[dict[str, Any]]:
    with gateway.http() as http:
        entries: list[dict[str, Any]] = http.get("/__mock/requests").json()
        return entries
