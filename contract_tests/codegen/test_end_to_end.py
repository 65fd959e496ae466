"""The generated client against the mock, end to end: every flow of the contract, through the
generated client's sync and async functions, in-process and over a real loopback socket.

Each test runs four times (in-process / served × sync / async). Time moves with the mock's clock
(`gateway.advance`), never with sleeping; every response is also audited against openapi.yaml
by conftest.py.
"""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from boogu_image_client import AuthenticatedClient
from boogu_image_client.api.image_edit import submit_image_edit
from boogu_image_client.api.status import get_request_status
from boogu_image_client.api.text_to_image import submit_text_to_image
from boogu_image_client.models import (
    CustomImageSize,
    ErrorResponse,
    ImageEditRequest,
    QueuedRequest,
    RequestStatus,
    SubmitResult,
    TextToImageRequest,
)
from boogu_image_client.types import Response, Unset
from PIL import Image

from contract_tests.spec_helpers import assert_response_conforms, needs_reference, reference_blocks
from mock_gateway.model._clock import ManualClock
from mock_gateway.model._config import MockConfig
from mock_gateway.testing import MockGateway

KEY = "test-key"
PRICE = Decimal("0.02")


@dataclass
class Api:
    """The generated client's operations, called the sync or the async way."""

    client: AuthenticatedClient
    mode: str

    async def call(self, operation: Any, **kwargs: Any) -> Response[Any]:
        if self.mode == "sync":
            result: Response[Any] = operation.sync_detailed(client=self.client, **kwargs)
            return result
        return await operation.asyncio_detailed(client=self.client, **kwargs)  # type: ignore[no-any-return]

    async def text_to_image(self, body: TextToImageRequest, **kwargs: Any) -> Response[Any]:
        return await self.call(submit_text_to_image, body=body, **kwargs)

    async def image_edit(self, body: ImageEditRequest, **kwargs: Any) -> Response[Any]:
        return await self.call(submit_image_edit, body=body, **kwargs)

    async def status(self, request_id: str) -> Response[Any]:
        return await self.call(get_request_status, request_id=request_id)


@pytest.fixture(params=["in_process", "served"])
def gateway(request: pytest.FixtureRequest) -> Iterator[MockGateway]:
    with MockGateway(MockConfig(), clock=ManualClock(), served=request.param == "served") as gateway:
        yield gateway


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest, gateway: MockGateway) -> Api:
    return Api(gateway.client(timeout=httpx.Timeout(10.0)), request.param)


def admin(gateway: MockGateway, method: str, path: str, **kwargs: Any) -> Any:
    with gateway.http() as http:
        response = http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()


def wallet(gateway: MockGateway, key: str = KEY) -> tuple[Decimal, Decimal]:
    described = admin(gateway, "GET", f"/__mock/keys/{key}")
    return Decimal(str(described["balance"])), Decimal(str(described["charged"]))


def download(gateway: MockGateway, urls: list[str]) -> list[Image.Image]:
    images: list[Image.Image] = []
    with gateway.http() as http:
        for url in urls:
            response = http.get(url)
            assert response.status_code == 200
            images.append(Image.open(io.BytesIO(response.content)))
            assert response.headers["content-type"] == Image.MIME[images[-1].format or ""]
    return images


def decode_data_uris(urls: list[str]) -> list[Image.Image]:
    images: list[Image.Image] = []
    for url in urls:
        header, _, data = url.partition(",")
        assert header.startswith("data:image/") and header.endswith(";base64")
        images.append(Image.open(io.BytesIO(base64.b64decode(data))))
    return images


def parsed(response: Response[Any], kind: type) -> Any:
    assert isinstance(response.parsed, kind), (response.status_code, response.content)
    return response.parsed


async def run_to_completion(api: Api, gateway: MockGateway, submitted: Response[Any]) -> RequestStatus:
    """QUEUED, then PROCESSING, then the terminal status, each seen through the status operation."""
    assert submitted.status_code == 202
    queued = parsed(submitted, QueuedRequest)
    assert queued.status == "QUEUED"
    assert queued.polling_url == f"{gateway.base_url}/v2/requests/status/{queued.request_id}"
    first = parsed(await api.status(queued.request_id), RequestStatus)
    assert (first.status, first.completed_at, first.output) == ("QUEUED", None, None)
    gateway.advance(1)
    assert parsed(await api.status(queued.request_id), RequestStatus).status == "PROCESSING"
    gateway.advance(120)
    final = parsed(await api.status(queued.request_id), RequestStatus)
    assert final.status in ("COMPLETED", "FAILED", "ERROR")
    assert final.completed_at == final.updated_at
    return final  # type: ignore[no-any-return]


async def test_text_to_image_completes_and_media_download(api: Api, gateway: MockGateway) -> None:
    body = TextToImageRequest(
        prompt="a lighthouse",
        image_size=CustomImageSize(width=320, height=200),
        num_images=3,
        output_format="png",
    )
    final = await run_to_completion(api, gateway, await api.text_to_image(body))
    assert final.status == "COMPLETED" and final.error is None
    assert not isinstance(final.output, Unset | None)
    assert final.output.media_type == "image/png"
    images = download(gateway, final.output.media_url)
    assert [(i.format, i.size) for i in images] == [("PNG", (320, 200))] * 3
    assert wallet(gateway)[1] == 3 * PRICE


async def test_image_edit_completes_from_the_mocks_own_image(api: Api, gateway: MockGateway) -> None:
    source = await run_to_completion(
        api, gateway, await api.text_to_image(TextToImageRequest(prompt="a red barn", image_size="square"))
    )
    assert not isinstance(source.output, Unset | None)
    edit = ImageEditRequest(
        prompt="make it winter", image_url=source.output.media_url[0], image_size="landscape_16_9"
    )
    final = await run_to_completion(api, gateway, await api.image_edit(edit))
    assert final.status == "COMPLETED" and final.model_id == "boogu-image-edit"
    assert not isinstance(final.output, Unset | None)
    [image] = download(gateway, final.output.media_url)
    assert (image.format, image.size) == ("JPEG", (1024, 576))


@pytest.mark.parametrize(
    ("outcome", "charged"),
    [
        pytest.param("failed", 2 * PRICE, id="FAILED-charged"),
        pytest.param("error", Decimal(0), id="ERROR-not-charged"),
    ],
)
async def test_failed_is_charged_and_error_is_not(
    api: Api, gateway: MockGateway, outcome: str, charged: Decimal
) -> None:
    before, _ = wallet(gateway)
    forced = Api(api.client.with_headers({"X-Mock-Outcome": outcome}), api.mode)
    final = await run_to_completion(
        api, gateway, await forced.text_to_image(TextToImageRequest(prompt="x", num_images=2))
    )
    assert final.status == outcome.upper()
    assert final.output is None and isinstance(final.error, str) and final.error
    balance, spent = wallet(gateway)
    assert (spent, balance) == (charged, before - charged)


async def test_safety_checker_trigger_fails_the_job(api: Api, gateway: MockGateway) -> None:
    final = await run_to_completion(
        api, gateway, await api.text_to_image(TextToImageRequest(prompt="nsfw please"))
    )
    assert final.status == "FAILED" and "safety checker" in str(final.error)


INVALID_BODIES = [
    pytest.param(
        {"num_inference_steps": 51}, "num_inference_steps: 51 is greater than the maximum of 50", id="range"
    ),
    pytest.param(
        {"guidance_scale": 0.5}, "guidance_scale: 0.5 is less than the minimum of 1", id="float-range"
    ),
    pytest.param({"num_images": 5}, "num_images: 5 is greater than the maximum of 4", id="num_images"),
    pytest.param({"output_format": "gif"}, "output_format: 'gif' is not one of ['jpeg', 'png']", id="enum"),
    pytest.param({"image_size": "huge"}, "image_size: 'huge' is not valid", id="image_size-preset"),
    pytest.param({"seed": "seven"}, "seed: 'seven' is not of type 'integer'", id="type"),
    pytest.param({"prompt": ""}, "prompt: '' should be non-empty", id="empty-prompt"),
]


@pytest.mark.parametrize(("change", "message"), INVALID_BODIES)
async def test_invalid_fields_answer_400_naming_field_and_rule(
    api: Api, gateway: MockGateway, change: dict[str, Any], message: str
) -> None:
    body = TextToImageRequest(prompt="x")
    for name, value in change.items():  # the models do not validate: what users can send, the mock must judge
        setattr(body, name, value)
    response = await api.text_to_image(body)
    assert response.status_code == 400
    error = parsed(response, ErrorResponse)
    assert error.error == "Validation Error"
    assert message in error.message


async def test_image_edit_requires_image_url(api: Api, gateway: MockGateway) -> None:
    response = await api.image_edit(
        ImageEditRequest.from_dict({"prompt": "x", "image_url": "ftp://nope/a.png"})
    )
    assert response.status_code == 400
    assert parsed(response, ErrorResponse).message.startswith("image_url: 'ftp://nope/a.png' does not match")


async def test_unknown_model_is_the_references_400(api: Api, gateway: MockGateway) -> None:
    with gateway.http(headers={"Ocp-Apim-Subscription-Key": KEY}) as http:
        response = http.post("/boogu-image-xl/v1/boogu-image-xl-request", json={"prompt": "x"})
    assert response.status_code == 400
    assert response.json() == {
        "error": "Model not found",
        "message": "Model 'boogu-image-xl' not found or is disabled",
    }


async def test_401_for_a_missing_or_unknown_key(api: Api, gateway: MockGateway) -> None:
    stranger = Api(gateway.client(api_key="not-a-key"), api.mode)
    response = await stranger.text_to_image(TextToImageRequest(prompt="x"))
    assert response.status_code == 401
    assert parsed(response, ErrorResponse).message.startswith("Access denied due to invalid subscription key")
    with gateway.http() as http:
        missing = http.get("/v2/requests/status/anything")
    assert missing.status_code == 401
    assert missing.json()["message"].startswith("Access denied due to missing subscription key")


async def test_403_for_a_disabled_key_or_a_model_it_may_not_use(api: Api, gateway: MockGateway) -> None:
    admin(gateway, "POST", "/__mock/keys", json={"key": "disabled", "enabled": False})
    admin(gateway, "POST", "/__mock/keys", json={"key": "edits-only", "models": ["boogu-image-edit"]})
    for key, message in [
        ("disabled", "The subscription key is disabled."),
        ("edits-only", "The subscription key has no access to model 'boogu-image'."),
    ]:
        response = await Api(gateway.client(api_key=key), api.mode).text_to_image(
            TextToImageRequest(prompt="x")
        )
        assert response.status_code == 403
        assert parsed(response, ErrorResponse).message == message


async def test_402_when_the_wallet_cannot_pay(api: Api, gateway: MockGateway) -> None:
    admin(gateway, "POST", "/__mock/keys", json={"key": KEY, "balance": "0.03"})
    response = await api.text_to_image(TextToImageRequest(prompt="x", num_images=2))
    assert response.status_code == 402
    error = parsed(response, ErrorResponse)
    assert (error.error, error.message) == (
        "Insufficient Balance",
        "Your wallet does not have enough balance.",
    )
    assert wallet(gateway) == (Decimal("0.03"), Decimal(0))
    assert (await api.text_to_image(TextToImageRequest(prompt="x"))).status_code == 202  # one image fits


async def test_429_with_retry_after_then_recovery(api: Api, gateway: MockGateway) -> None:
    admin(gateway, "PATCH", "/__mock/config", json={"rate_limit": {"rate": 0.5, "burst": 1}})
    assert (await api.status("unknown")).status_code == 404
    limited = await api.status("unknown")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert parsed(limited, ErrorResponse).error == "Too Many Requests"
    gateway.advance(2)
    assert (await api.status("unknown")).status_code == 404


async def test_404_for_an_unknown_or_foreign_request_id(api: Api, gateway: MockGateway) -> None:
    assert parsed(await api.status("boogu-image_nope"), ErrorResponse).error == "Not Found"
    queued = parsed(await api.text_to_image(TextToImageRequest(prompt="x")), QueuedRequest)
    admin(gateway, "POST", "/__mock/keys", json={"key": "other"})
    other = Api(gateway.client(api_key="other"), api.mode)
    assert (await other.status(queued.request_id)).status_code == 404


async def test_sync_mode_returns_decodable_inline_images(api: Api, gateway: MockGateway) -> None:
    body = ImageEditRequest(
        prompt="sharpen",
        image_url="data:image/png;base64," + base64.b64encode(png_bytes((40, 30))).decode(),
        image_size=CustomImageSize(width=96, height=64),
        num_images=2,
        output_format="png",
        sync_mode=True,
    )
    response = await api.image_edit(body)
    assert response.status_code == 200
    final = parsed(response, SubmitResult)
    assert final.status == "COMPLETED"
    assert not isinstance(final.output, Unset | None)
    images = decode_data_uris(final.output.media_url)
    assert [(i.format, i.size) for i in images] == [("PNG", (96, 64))] * 2
    assert wallet(gateway)[1] == 2 * PRICE


def png_bytes(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class Receiver:
    """A webhook receiver on loopback that fails its first `failures` deliveries."""

    failures: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                failing = len(receiver.bodies) <= receiver.failures
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def receiver() -> Iterator[Callable[[int], Receiver]]:
    servers: list[ThreadingHTTPServer] = []

    def start(failures: int) -> Receiver:
        receiver = Receiver(failures=failures)
        server = ThreadingHTTPServer(("127.0.0.1", 0), receiver.handler())
        threading.Thread(target=server.serve_forever, daemon=True).start()
        receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/boogu"
        servers.append(server)
        return receiver

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


async def test_webhook_delivers_the_final_status(
    api: Api, gateway: MockGateway, receiver: Callable[[int], Receiver]
) -> None:
    hook = receiver(0)
    queued = parsed(
        await api.text_to_image(TextToImageRequest(prompt="x"), x_webhook_url=hook.url), QueuedRequest
    )
    gateway.advance(1)
    assert hook.bodies == []  # nothing before the terminal status
    gateway.advance(20)
    [payload] = hook.bodies
    status = RequestStatus.from_dict(payload)
    assert (status.request_id, status.status) == (queued.request_id, "COMPLETED")
    assert payload == parsed(await api.status(queued.request_id), RequestStatus).to_dict()
    [delivery] = admin(gateway, "GET", "/__mock/webhooks")
    assert delivery["state"] == "delivered"


async def test_a_failing_webhook_receiver_sees_retries(
    api: Api, gateway: MockGateway, receiver: Callable[[int], Receiver]
) -> None:
    hook = receiver(2)
    await api.text_to_image(TextToImageRequest(prompt="x"), x_webhook_url=hook.url)
    gateway.advance(20)  # first attempt fails
    gateway.advance(1)  # second, after 1 s of backoff, fails
    gateway.advance(2)  # third, after 2 s, succeeds
    assert len(hook.bodies) == 3 and hook.bodies[0] == hook.bodies[2]
    [delivery] = admin(gateway, "GET", "/__mock/webhooks")
    assert delivery["state"] == "delivered"
    assert [attempt["status_code"] for attempt in delivery["attempts"]] == [500, 500, 204]


async def test_journal_shows_what_the_client_sent_with_the_key_redacted(
    api: Api, gateway: MockGateway
) -> None:
    await api.text_to_image(
        TextToImageRequest(prompt="journal me", seed=5), x_webhook_url="http://127.0.0.1:9/h"
    )
    [entry] = admin(gateway, "GET", "/__mock/requests")
    assert entry["operation_id"] == "submit_text_to_image" and entry["status"] == 202
    headers = entry["headers"]
    assert headers["ocp-apim-subscription-key"] == "[redacted]"
    assert headers["x-webhook-url"] == "http://127.0.0.1:9/h"
    assert headers["cache-control"] == "no-cache" and headers["content-type"] == "application/json"
    assert entry["body"] == TextToImageRequest(prompt="journal me", seed=5).to_dict()
    assert KEY not in json.dumps(admin(gateway, "GET", "/__mock/requests"))


@needs_reference
@pytest.mark.parametrize("block", ["text_to_image", "image_edit"])
def test_the_references_example_requests_verbatim_reach_completed(gateway: MockGateway, block: str) -> None:
    """The reference's request bodies and headers, sent as they are printed (only the key filled in)."""
    bodies = [b.value for b in reference_blocks() if isinstance(b.value, dict) and "prompt" in b.value]
    body = next(b for b in bodies if ("image_url" in b) == (block == "image_edit"))
    path = {
        "text_to_image": "/boogu-image/v1/boogu-image-request",
        "image_edit": "/boogu-image-edit/v1/boogu-image-edit-request",
    }
    headers = {
        "Content-Type": "application/json",
        "Cache-Control": "no-cache",
        "Ocp-Apim-Subscription-Key": KEY,
    }
    with gateway.http(headers=headers) as http:
        accepted = http.post(path[block], content=json.dumps(body, indent=2))
        assert accepted.status_code == 202
        request_id = accepted.json()["request_id"]
        model = "boogu-image-edit" if block == "image_edit" else "boogu-image"
        assert request_id.startswith(f"{model}_")
        gateway.advance(15)
        final = http.get(accepted.json()["polling_url"])
    assert final.json()["status"] == "COMPLETED"
    assert_response_conforms("get_request_status", 200, final.json(), final.headers)
    assert final.json()["completed_at"] == final.json()["updated_at"]
