"""The mock gateway over HTTP: every answer it gives, through the ASGI app in-process and over a socket.

Every JSON answer of the three API operations is validated against openapi.yaml by an httpx response
hook (`check_contract`), so each test here is also a contract test of the status and body it meets.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
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
    ImageEditRequest,
    QueuedRequest,
    RequestOutput,
    RequestStatus,
    SubmitResult,
    TextToImageRequest,
)
from PIL import Image

from contract_tests.spec_helpers import (
    SPEC_PATH,
    load_spec,
    needs_reference,
    reference_json_blocks,
    request_body_validator,
    resolve,
    resolve_pointer,
    response_validator,
    schema_validator,
)
from mock_gateway.model._clock import ManualClock
from mock_gateway.model._config import MockConfig
from mock_gateway.testing import MockGateway

KEY_HEADER = "Ocp-Apim-Subscription-Key"
TEXT_PATH = "/boogu-image/v1/boogu-image-request"
EDIT_PATH = "/boogu-image-edit/v1/boogu-image-edit-request"
STATUS_PATH = "/v2/requests/status/{request_id}"
OPERATIONS: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(re.escape(TEXT_PATH)), TEXT_PATH),
    ("POST", re.compile(re.escape(EDIT_PATH)), EDIT_PATH),
    ("GET", re.compile(r"/v2/requests/status/[^/]+"), STATUS_PATH),
]
EDIT_BODY = {"prompt": "make it snow", "image_url": "https://images.test/input.jpeg"}
INSUFFICIENT = {"error": "Insufficient Balance", "message": "Your wallet does not have enough balance."}
INTERNAL = {
    "error": "Internal Server Error",
    "message": "The gateway could not process the request. Try again later.",
}
CHECKED: list[tuple[str, str, int]] = []
"""(method, operation path, status) of every API answer validated against the spec."""


def example(response: str, name: str) -> Any:
    pointer = f"#/components/responses/{response}/content/application~1json/examples/{name}"
    return resolve(resolve_pointer(pointer))["value"]


# --- the contract check on every answer ---------------------------------------------------------------


def operation_of(request: httpx.Request) -> str | None:
    for method, pattern, path in OPERATIONS:
        if request.method == method and pattern.fullmatch(request.url.path):
            return path
    return None


def validate_answer(response: httpx.Response) -> None:
    path = operation_of(response.request)
    if path is None:
        return
    assert response.headers["content-type"] == "application/json", response.headers
    body = response.json()
    response_validator(path, response.request.method, response.status_code).validate(body)
    if response.status_code == 429:
        assert int(response.headers["Retry-After"]) >= 0
    CHECKED.append((response.request.method, path, response.status_code))


def check_contract(response: httpx.Response) -> None:
    response.read()
    validate_answer(response)


async def check_contract_async(response: httpx.Response) -> None:
    await response.aread()
    validate_answer(response)


# --- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def gateway(clock: ManualClock) -> Iterator[MockGateway]:
    with MockGateway(MockConfig(seed=1, webhook_backoff=0.25), clock=clock) as mock:
        yield mock


def http_client(gateway: MockGateway, key: str | None = "test-key") -> httpx.Client:
    headers = {KEY_HEADER: key} if key is not None else {}
    return gateway.http(headers=headers, event_hooks={"response": [check_contract]})


@pytest.fixture
def http(gateway: MockGateway) -> Iterator[httpx.Client]:
    with http_client(gateway) as client:
        yield client


@pytest.fixture
def admin(gateway: MockGateway) -> Iterator[httpx.Client]:
    """A client for the admin API, which needs no key."""
    with gateway.http() as client:
        yield client


def api_client(
    gateway: MockGateway, key: str = "test-key", *, asynchronous: bool = False
) -> AuthenticatedClient:
    """The generated client, with the contract check on every answer."""
    hooks = {"response": [check_contract_async if asynchronous else check_contract]}
    return AuthenticatedClient(
        base_url=gateway.base_url,
        token=key,
        auth_header_name=KEY_HEADER,
        prefix="",
        httpx_args={**gateway.httpx_args(), "event_hooks": hooks},
    )


def submit(http: httpx.Client, body: Any = None, path: str = TEXT_PATH, **headers: str) -> httpx.Response:
    return http.post(path, json={"prompt": "a red fox"} if body is None else body, headers=headers)


def queued_id(http: httpx.Client, body: Any = None, path: str = TEXT_PATH, **headers: str) -> str:
    response = submit(http, body, path, **headers)
    assert response.status_code == 202, response.text
    request_id: str = response.json()["request_id"]
    return request_id


def poll(http: httpx.Client, request_id: str) -> httpx.Response:
    return http.get(f"/v2/requests/status/{request_id}")


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def journal_entries(admin: httpx.Client) -> list[dict[str, Any]]:
    response = admin.get("/__mock/requests")
    assert response.status_code == 200
    entries: list[dict[str, Any]] = response.json()
    return entries


# --- submit and status ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "model"),
    [
        pytest.param(TEXT_PATH, {"prompt": "a red fox"}, "boogu-image", id="text-to-image"),
        pytest.param(EDIT_PATH, EDIT_BODY, "boogu-image-edit", id="image-edit"),
    ],
)
def test_submit_answers_202_queued(
    gateway: MockGateway, http: httpx.Client, path: str, body: dict[str, Any], model: str
) -> None:
    response = submit(http, body, path)
    assert response.status_code == 202
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert set(answer) == {"request_id", "status", "polling_url"}
    assert re.fullmatch(
        rf"{model}_[0-9a-f]{{8}}-[0-9a-f]{{4}}-7[0-9a-f]{{3}}-[89ab][0-9a-f]{{3}}-[0-9a-f]{{12}}",
        answer["request_id"],
    )
    assert answer["status"] == "QUEUED"
    assert answer["polling_url"] == f"{gateway.base_url}/v2/requests/status/{answer['request_id']}"
    assert poll(http, answer["request_id"]).json()["model_id"] == model


@pytest.mark.parametrize(
    ("outcome", "seconds", "expected"),
    [
        pytest.param(None, 0, "QUEUED", id="queued"),
        pytest.param(None, 1, "PROCESSING", id="processing"),
        pytest.param(None, 15, "COMPLETED", id="completed"),
        pytest.param("failed", 15, "FAILED", id="failed"),
        pytest.param("error", 15, "ERROR", id="error"),
    ],
)
def test_status_answers_200_in_every_state(
    gateway: MockGateway, http: httpx.Client, outcome: str | None, seconds: float, expected: str
) -> None:
    headers = {"X-Mock-Outcome": outcome} if outcome else {}
    request_id = queued_id(http, **headers)
    gateway.advance(seconds)
    response = poll(http, request_id)
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == expected
    assert answer["request_id"] == request_id
    assert answer["created_at"] == "2026-03-31T10:00:00.000Z"
    terminal = expected in ("COMPLETED", "FAILED", "ERROR")
    assert (answer["completed_at"] is not None) == terminal
    assert (answer["output"] is not None) == (expected == "COMPLETED")
    assert (answer["error"] is not None) == (expected in ("FAILED", "ERROR"))


def test_status_of_an_unknown_id_is_404(http: httpx.Client) -> None:
    response = poll(http, "boogu-image_nope")
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found", "message": "Request 'boogu-image_nope' not found"}


def test_status_of_another_keys_job_is_404(
    gateway: MockGateway, http: httpx.Client, admin: httpx.Client
) -> None:
    request_id = queued_id(http)
    admin.post("/__mock/keys", json={"key": "someone-else"})
    with http_client(gateway, "someone-else") as other:
        response = poll(other, request_id)
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found", "message": f"Request '{request_id}' not found"}


# --- 400 ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        pytest.param(
            TEXT_PATH,
            {"prompt": "x", "num_inference_steps": 60},
            "num_inference_steps: 60 is greater than the maximum of 50",
            id="range-max",
        ),
        pytest.param(
            TEXT_PATH,
            {"prompt": "x", "guidance_scale": 0.5},
            "guidance_scale: 0.5 is less than the minimum of 1",
            id="range-min",
        ),
        pytest.param(
            TEXT_PATH,
            {"prompt": "x", "output_format": "webp"},
            "output_format: 'webp' is not one of ['jpeg', 'png']",
            id="enum",
        ),
        pytest.param(
            TEXT_PATH,
            {"prompt": "x", "image_size": "square_xl"},
            "image_size: 'square_xl' is not valid",
            id="enum-image-size",
        ),
        pytest.param(
            TEXT_PATH,
            {"prompt": "x", "num_images": "2"},
            "num_images: '2' is not of type 'integer'",
            id="type",
        ),
        pytest.param(
            TEXT_PATH,
            {"prompt": "x", "sync_mode": "true"},
            "sync_mode: 'true' is not of type 'boolean'",
            id="type-boolean",
        ),
        pytest.param(TEXT_PATH, {"negative_prompt": "blur"}, "prompt: is required", id="required"),
        pytest.param(
            TEXT_PATH,
            {"prompt": "x", "num_image": 2},
            "unknown property ('num_image' was unexpected)",
            id="unknown-property",
        ),
        pytest.param(
            TEXT_PATH,
            {"prompt": "x", "image_size": {"width": 640}},
            "image_size: ",
            id="image-size-missing-height",
        ),
        pytest.param(
            TEXT_PATH,
            {"prompt": "x", "image_size": {"width": 640, "height": 480, "dpi": 72}},
            "image_size: ",
            id="image-size-unknown-key",
        ),
        pytest.param(TEXT_PATH, "a red fox", "'a red fox' is not of type 'object'", id="body-is-a-string"),
        pytest.param(EDIT_PATH, {"prompt": "x"}, "image_url: is required", id="edit-required"),
        pytest.param(
            EDIT_PATH,
            {**EDIT_BODY, "image_guidance_scale": 9},
            "image_guidance_scale: 9 is greater than the maximum of 8",
            id="edit-range",
        ),
    ],
)
def test_invalid_field_is_400_naming_field_and_rule(
    http: httpx.Client, admin: httpx.Client, path: str, body: Any, expected: str
) -> None:
    response = submit(http, body, path)
    assert response.status_code == 400
    answer = response.json()
    assert answer["error"] == "Validation Error"
    assert expected in answer["message"]
    assert admin.get("/__mock/keys/test-key").json()["balance"] == "100"


def test_image_size_missing_height_says_so(http: httpx.Client) -> None:
    message = submit(http, {"prompt": "x", "image_size": {"width": 640}}).json()["message"]
    assert message.startswith("image_size: ")
    assert "'height' is a required property" in message


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"prompt": "a red fox"', id="truncated"),
        pytest.param(b"", id="empty"),
        pytest.param(b"prompt=a+red+fox", id="form-encoded"),
        pytest.param(b'{"prompt": "x"} trailing', id="trailing-garbage"),
        pytest.param(b'{"prompt": "x", "guidance_scale": NaN}', id="nan"),
        pytest.param(b'{"prompt": "x", "cfg_range_end": Infinity}', id="infinity"),
        pytest.param(b'{"prompt": "x", "guidance_scale": 1e400}', id="number-overflows-to-infinity"),
        pytest.param(b'{"prompt": "\xff"}', id="not-utf8"),
    ],
)
def test_invalid_json_is_400(http: httpx.Client, admin: httpx.Client, content: bytes) -> None:
    response = http.post(TEXT_PATH, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    answer = response.json()
    assert answer["error"] == "Invalid JSON"
    assert answer["message"].startswith("The request body is not valid JSON")
    assert journal_entries(admin)[-1]["status"] == 400  # and the journal still renders


def test_unknown_model_is_exactly_the_reference_400(http: httpx.Client) -> None:
    response = http.post("/foo/v1/foo-request", json={"prompt": "x"})
    assert response.status_code == 400
    assert response.json() == {"error": "Model not found", "message": "Model 'foo' not found or is disabled"}
    schema_validator("ErrorResponse").validate(response.json())


def test_mismatched_model_path_is_404(http: httpx.Client) -> None:
    response = http.post("/boogu-image/v1/boogu-image-edit-request", json={"prompt": "x"})
    assert response.status_code == 404
    assert response.json()["error"] == "Not Found"


# --- 401, 403, 402 --------------------------------------------------------------------------------------


OPERATION_IDS = ["text-to-image", "image-edit", "status"]


def call(client: httpx.Client, operation: str, body: dict[str, Any] | None = None) -> httpx.Response:
    """One call of an API operation; `body` adds to a minimal valid body of a submit."""
    if operation == "text-to-image":
        return submit(client, {"prompt": "a red fox", **(body or {})})
    if operation == "image-edit":
        return submit(client, {**EDIT_BODY, **(body or {})}, EDIT_PATH)
    return poll(client, "boogu-image_x")


@pytest.mark.parametrize(
    ("key", "example_name"),
    [
        pytest.param(None, "missing_key", id="missing"),
        pytest.param("not-a-key", "invalid_key", id="unknown"),
    ],
)
@pytest.mark.parametrize("operation", OPERATION_IDS)
def test_missing_or_unknown_key_is_401(
    gateway: MockGateway, key: str | None, example_name: str, operation: str
) -> None:
    with http_client(gateway, key) as client:
        response = call(client, operation)
    assert response.status_code == 401
    assert response.json() == example("Unauthorized", example_name)


@pytest.mark.parametrize("operation", OPERATION_IDS)
def test_disabled_key_is_403(gateway: MockGateway, admin: httpx.Client, operation: str) -> None:
    created = admin.post("/__mock/keys", json={"key": "switched-off", "enabled": False})
    assert created.status_code == 200
    assert created.json()["enabled"] is False
    with http_client(gateway, "switched-off") as client:
        response = call(client, operation)
    assert response.status_code == 403
    assert response.json() == {"error": "Forbidden", "message": "The subscription key is disabled."}


@pytest.mark.parametrize(
    ("allowed", "refused"),
    [
        pytest.param("boogu-image-edit", "text-to-image", id="edits-only"),
        pytest.param("boogu-image", "image-edit", id="text-to-image-only"),
    ],
)
def test_key_without_access_to_the_model_is_403(
    gateway: MockGateway, admin: httpx.Client, allowed: str, refused: str
) -> None:
    admin.post("/__mock/keys", json={"key": "limited", "models": [allowed]})
    accepted = "image-edit" if refused == "text-to-image" else "text-to-image"
    with http_client(gateway, "limited") as client:
        response = call(client, refused)
        assert call(client, accepted).status_code == 202
    assert response.status_code == 403
    assert response.json()["error"] == "Forbidden"
    assert "has no access to model" in response.json()["message"]


@pytest.mark.parametrize("operation", ["text-to-image", "image-edit"])
def test_insufficient_balance_is_the_reference_402(
    gateway: MockGateway, admin: httpx.Client, operation: str
) -> None:
    admin.post("/__mock/keys", json={"key": "poor", "balance": 0.03})
    with http_client(gateway, "poor") as client:
        response = call(client, operation, {"num_images": 2})
    assert response.status_code == 402
    assert response.json() == INSUFFICIENT
    assert admin.get("/__mock/keys/poor").json() == {
        "key": "poor",
        "balance": "0.03",
        "charged": "0",
        "enabled": True,
        "models": None,
    }


@needs_reference
def test_the_402_body_is_the_references() -> None:
    assert INSUFFICIENT in reference_json_blocks()


# --- 413, 415, 429, 500, dropped connections ------------------------------------------------------------


@pytest.mark.parametrize("operation", ["text-to-image", "image-edit"])
def test_oversized_body_is_413(http: httpx.Client, admin: httpx.Client, operation: str) -> None:
    assert admin.patch("/__mock/config", json={"max_body_bytes": 1024}).json()["max_body_bytes"] == 1024
    response = call(http, operation, {"prompt": "x" * 2000})
    assert response.status_code == 413
    assert response.json() == {
        "error": "Payload Too Large",
        "message": "The request body is larger than 1024 bytes.",
    }
    assert call(http, operation, {"prompt": "x" * 800}).status_code == 202


def test_oversized_streamed_body_without_length_is_413(http: httpx.Client, admin: httpx.Client) -> None:
    admin.patch("/__mock/config", json={"max_body_bytes": 1024})
    chunks = iter([b'{"prompt": "', b"x" * 2000, b'"}'])
    response = http.post(TEXT_PATH, content=chunks, headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("content_type", "shown"),
    [
        pytest.param("text/plain", "'text/plain'", id="text-plain"),
        pytest.param("application/x-www-form-urlencoded", "'application/x-www-form-urlencoded'", id="form"),
        pytest.param("multipart/form-data; boundary=x", "'multipart/form-data; boundary=x'", id="multipart"),
        pytest.param(None, "none", id="missing"),
    ],
)
@pytest.mark.parametrize("path", [TEXT_PATH, EDIT_PATH], ids=["text-to-image", "image-edit"])
def test_non_json_content_type_is_415(
    http: httpx.Client, path: str, content_type: str | None, shown: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = http.post(path, content=json.dumps(EDIT_BODY).encode(), headers=headers)
    assert response.request.headers.get("Content-Type") == content_type
    assert response.status_code == 415
    assert response.json() == {
        "error": "Unsupported Media Type",
        "message": f"Content-Type must be application/json, got {shown}.",
    }


def test_json_content_type_with_charset_is_accepted(http: httpx.Client) -> None:
    response = http.post(
        TEXT_PATH, content=b'{"prompt": "x"}', headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert response.status_code == 202


def test_rate_limit_is_429_with_retry_after_and_null_turns_it_off(
    gateway: MockGateway, http: httpx.Client, admin: httpx.Client
) -> None:
    patched = admin.patch("/__mock/config", json={"rate_limit": {"rate": 1, "burst": 1}})
    assert patched.json()["rate_limit"] == {"rate": 1.0, "burst": 1}
    assert submit(http).status_code == 202
    limited = submit(http)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.json() == {
        "error": "Too Many Requests",
        "message": "Rate limit is exceeded. Try again in 1 second.",
    }
    gateway.advance(1)
    assert submit(http).status_code == 202
    assert admin.patch("/__mock/config", json={"rate_limit": None}).json()["rate_limit"] is None
    assert {submit(http).status_code for _ in range(10)} == {202}


@pytest.mark.parametrize("operation", OPERATION_IDS)
def test_every_operation_spends_the_same_rate_limit_tokens(
    http: httpx.Client, admin: httpx.Client, operation: str
) -> None:
    admin.patch("/__mock/config", json={"rate_limit": {"rate": 0.5, "burst": 1}})
    assert poll(http, "boogu-image_x").status_code == 404
    limited = call(http, operation)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"


@pytest.mark.parametrize("operation", OPERATION_IDS)
def test_fault_rate_1_answers_500(http: httpx.Client, admin: httpx.Client, operation: str) -> None:
    admin.patch("/__mock/config", json={"fault_rate": 1})
    response = call(http, operation)
    assert response.status_code == 500
    assert response.json() == INTERNAL == example("InternalServerError", "internal")
    assert admin.get("/__mock/keys/test-key").json()["balance"] == "100"
    assert admin.get("/__mock/health").json()["jobs"] == 0


def test_dropped_connection_in_process_is_a_transport_error(http: httpx.Client, admin: httpx.Client) -> None:
    admin.patch("/__mock/config", json={"drop_rate": 1})
    with pytest.raises(httpx.TransportError):
        submit(http)
    with pytest.raises(httpx.TransportError):
        poll(http, "boogu-image_x")
    last = journal_entries(admin)[-1]
    assert (last["status"], last["response"]) == (0, None)
    assert admin.get("/__mock/keys/test-key").json()["balance"] == "100"
    admin.patch("/__mock/config", json={"drop_rate": 0})
    assert submit(http).status_code == 202


async def test_dropped_connection_reaches_an_async_client_too(gateway: MockGateway) -> None:
    gateway.configure(drop_rate=1)
    async with httpx.AsyncClient(base_url=gateway.base_url, **gateway.httpx_args()) as client:
        with pytest.raises(httpx.TransportError):
            await client.post(TEXT_PATH, json={"prompt": "x"}, headers={KEY_HEADER: "test-key"})


def test_latency_delays_the_answer_in_real_time(http: httpx.Client, admin: httpx.Client) -> None:
    admin.patch("/__mock/config", json={"latency_rate": 1, "latency_seconds": 0.02})
    started = time.monotonic()
    assert submit(http).status_code == 202
    assert time.monotonic() - started >= 0.02


# --- sync mode and media ------------------------------------------------------------------------------


def test_sync_mode_answers_200_with_data_uris(http: httpx.Client) -> None:
    body = {
        "prompt": "x",
        "sync_mode": True,
        "num_images": 2,
        "output_format": "png",
        "image_size": {"width": 96, "height": 64},
    }
    response = submit(http, body)
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == "COMPLETED"
    assert answer["output"]["media_type"] == "image/png"
    assert len(answer["output"]["media_url"]) == 2
    for uri in answer["output"]["media_url"]:
        prefix, _, data = uri.partition(",")
        assert prefix == "data:image/png;base64"
        image = decode(base64.b64decode(data))
        assert (image.format, image.size) == ("PNG", (96, 64))


@pytest.mark.parametrize(
    ("body", "count", "image_format", "size"),
    [
        pytest.param(
            {"num_images": 3, "output_format": "png", "image_size": {"width": 80, "height": 60}},
            3,
            "PNG",
            (80, 60),
            id="three-png-custom",
        ),
        pytest.param({"image_size": "portrait_16_9"}, 1, "JPEG", (576, 1024), id="one-jpeg-preset"),
    ],
)
def test_media_download(
    gateway: MockGateway,
    http: httpx.Client,
    body: dict[str, Any],
    count: int,
    image_format: str,
    size: tuple[int, int],
) -> None:
    request_id = queued_id(http, {"prompt": "a lighthouse", **body})
    gateway.advance(15 * count)
    output = poll(http, request_id).json()["output"]
    assert len(output["media_url"]) == count
    assert output["media_type"] == f"image/{image_format.lower()}"
    downloads = []
    for url in output["media_url"]:
        assert url.startswith(f"{gateway.base_url}/media/{request_id}/output")
        response = http.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"] == f"image/{image_format.lower()}"
        assert "immutable" in response.headers["cache-control"]
        image = decode(response.content)
        assert (image.format, image.size) == (image_format, size)
        downloads.append(response.content)
    assert len(set(downloads)) == count


def test_media_before_completion_is_a_json_404(http: httpx.Client) -> None:
    request_id = queued_id(http)
    response = http.get(f"/media/{request_id}/output.jpeg")
    assert response.status_code == 404
    assert response.json()["error"] == "Not Found"


def test_edit_of_a_downloaded_result_over_http(gateway: MockGateway, http: httpx.Client) -> None:
    request_id = queued_id(http, {"prompt": "a lighthouse", "image_size": "square"})
    gateway.advance(15)
    url = poll(http, request_id).json()["output"]["media_url"][0]
    answer = submit(
        http, {"prompt": "at night", "image_url": url, "sync_mode": True, "image_size": "square"}, EDIT_PATH
    )
    assert answer.status_code == 200
    assert answer.json()["status"] == "COMPLETED"


def test_unreadable_data_uri_is_accepted_and_ends_error(gateway: MockGateway, http: httpx.Client) -> None:
    request_id = queued_id(http, {"prompt": "x", "image_url": "data:image/png;base64,aGVsbG8="}, EDIT_PATH)
    gateway.advance(60)
    final = poll(http, request_id).json()
    assert final["status"] == "ERROR"
    assert "image_url: " in final["error"]


# --- webhooks -----------------------------------------------------------------------------------------


class Receiver:
    """A webhook receiver on a loopback port: answers each POST with the next planned status (then 200)."""

    def __init__(self) -> None:
        self.answers: list[int] = []
        self.delay = 0.0
        self.received: list[tuple[dict[str, str], Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                time.sleep(receiver.delay)
                length = int(self.headers["Content-Length"])
                receiver.received.append((dict(self.headers), json.loads(self.rfile.read(length))))
                code = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/boogu"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True)

    def wait_for(self, count: int, timeout: float = 5.0) -> None:
        """For deliveries made in the background, off the request that caused them (real time)."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.005)

    @property
    def payloads(self) -> list[Any]:
        return [payload for _, payload in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def webhooks(admin: httpx.Client) -> list[dict[str, Any]]:
    answer: list[dict[str, Any]] = admin.get("/__mock/webhooks").json()
    return answer


def test_webhook_is_delivered_to_a_local_receiver_when_the_job_ends(
    gateway: MockGateway, http: httpx.Client, admin: httpx.Client, receiver: Receiver
) -> None:
    request_id = queued_id(http, **{"X-Webhook-URL": receiver.url})
    gateway.advance(14.9)
    assert receiver.received == []
    assert webhooks(admin) == []
    gateway.advance(0.1)
    assert len(receiver.received) == 1
    headers, payload = receiver.received[0]
    assert headers["Content-Type"] == "application/json"
    assert payload == poll(http, request_id).json()
    assert payload["status"] == "COMPLETED"
    request_body_validator("requestFinished", "post", webhook=True).validate(payload)
    [delivery] = webhooks(admin)
    assert delivery["state"] == "delivered"
    assert delivery["url"] == receiver.url
    assert [a["status_code"] for a in delivery["attempts"]] == [200]
    gateway.advance(100)
    assert len(receiver.received) == 1


def test_webhook_retries_with_exponential_backoff(
    gateway: MockGateway, http: httpx.Client, admin: httpx.Client, receiver: Receiver
) -> None:
    receiver.answers = [500, 500, 500]  # then 200; webhook_backoff is 0.25 s
    queued_id(http, {"prompt": "x"}, **{"X-Webhook-URL": receiver.url})
    expected_counts = [(15, 1), (0.25, 2), (0.25, 2), (0.25, 3), (0.5, 3), (0.5, 4)]
    for seconds, count in expected_counts:
        gateway.advance(seconds)
        assert len(receiver.received) == count, f"after +{seconds}s"
    [delivery] = webhooks(admin)
    assert delivery["state"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 500, 200]
    times = [a["at"] for a in delivery["attempts"]]
    assert [later - earlier for earlier, later in itertools.pairwise(times)] == [0.25, 0.5, 1.0]
    assert all(payload == receiver.payloads[0] for payload in receiver.payloads)


def test_webhook_gives_up_after_max_attempts(
    gateway: MockGateway, http: httpx.Client, admin: httpx.Client, receiver: Receiver
) -> None:
    admin.patch("/__mock/config", json={"webhook_max_attempts": 2})
    receiver.answers = [500] * 10
    queued_id(http, **{"X-Webhook-URL": receiver.url})
    for seconds in (15, 0.25, 10, 10):
        gateway.advance(seconds)
    [delivery] = webhooks(admin)
    assert delivery["state"] == "failed"
    assert len(delivery["attempts"]) == 2
    assert len(receiver.received) == 2


def test_webhook_of_a_sync_request_goes_out_right_away(
    gateway: MockGateway, http: httpx.Client, admin: httpx.Client, receiver: Receiver
) -> None:
    receiver.delay = 0.05  # still being delivered when the next calls come and go
    answer = submit(
        http, {"prompt": "x", "sync_mode": True, "image_size": "square"}, **{"X-Webhook-URL": receiver.url}
    )
    gateway.advance(0)  # closes a client of the same in-process transport: must not cancel the delivery
    with gateway.http() as other:
        other.get("/__mock/health")
    receiver.wait_for(1)  # sent in the background right after the answer: no clock to advance
    assert len(receiver.received) == 1
    assert receiver.payloads[0]["request_id"] == answer.json()["request_id"]
    assert receiver.payloads[0]["output"]["media_url"][0].startswith(gateway.base_url)  # hosted, not inline
    deadline = time.monotonic() + 5
    while webhooks(admin)[0]["state"] != "delivered" and time.monotonic() < deadline:
        time.sleep(0.005)
    assert [a["status_code"] for a in webhooks(admin)[0]["attempts"]] == [200]


def test_webhook_url_outside_the_contract_is_400_naming_the_rule(
    http: httpx.Client, admin: httpx.Client
) -> None:
    response = submit(http, **{"X-Webhook-URL": "file:///etc/passwd"})
    assert response.status_code == 400
    message = response.json()["message"]
    assert message.startswith("X-Webhook-URL: ")
    assert "does not match '^https?://'" in message
    assert admin.get("/__mock/health").json()["jobs"] == 0


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "https://your-server.com/webhook/callback",
            "host 'your-server.com' is not allowed",
            id="reference-example",
        ),
        pytest.param("http://192.168.1.10/hook", "host '192.168.1.10' is not allowed", id="private-address"),
    ],
)
def test_webhook_to_a_host_off_the_list_is_accepted_and_recorded_blocked(
    gateway: MockGateway, http: httpx.Client, admin: httpx.Client, url: str, expected: str
) -> None:
    request_id = queued_id(http, {"prompt": "x"}, **{"X-Webhook-URL": url})
    gateway.advance(15)
    [delivery] = admin.get("/__mock/webhooks").json()
    assert delivery["request_id"] == request_id
    assert delivery["state"] == "blocked"
    assert delivery["attempts"] == []
    assert expected in delivery["reason"]


def test_allowlisted_webhook_host_is_accepted(http: httpx.Client, admin: httpx.Client) -> None:
    admin.patch("/__mock/config", json={"webhook_allowlist": ["your-server.com"]})
    assert submit(http, **{"X-Webhook-URL": "https://your-server.com/webhook/callback"}).status_code == 202


# --- the admin API ------------------------------------------------------------------------------------


def test_health(http: httpx.Client, admin: httpx.Client) -> None:
    assert admin.get("/__mock/health").json() == {
        "status": "ok",
        "time": "2026-03-31T10:00:00.000Z",
        "jobs": 0,
    }
    queued_id(http)
    assert admin.get("/__mock/health").json()["jobs"] == 1


def test_reset(gateway: MockGateway, http: httpx.Client, admin: httpx.Client, receiver: Receiver) -> None:
    admin.patch("/__mock/config", json={"price_per_image": "0.5"})
    request_id = queued_id(http, **{"X-Webhook-URL": receiver.url})
    admin.post("/__mock/keys", json={"key": "temp"})
    gateway.advance(15)
    response = admin.post("/__mock/reset")
    assert response.status_code == 200
    assert response.json() == {"status": "reset"}
    assert poll(http, request_id).status_code == 404
    assert admin.get("/__mock/keys/temp").status_code == 404
    assert admin.get("/__mock/keys/test-key").json()["balance"] == "100"
    assert webhooks(admin) == []
    assert [e["path"] for e in journal_entries(admin)] == [f"/v2/requests/status/{request_id}"]
    assert admin.get("/__mock/config").json()["price_per_image"] == "0.5"


def test_config_get_and_patch(gateway: MockGateway, http: httpx.Client, admin: httpx.Client) -> None:
    config = admin.get("/__mock/config")
    assert config.status_code == 200
    assert config.json() == json.loads(json.dumps(MockConfig(seed=1, webhook_backoff=0.25).to_dict()))
    changes = {
        "speed": 10,
        "price_per_image": "0.05",
        "rate_limit": {"rate": 5, "burst": 10},
        "webhook_allowlist": ["hooks.test"],
        "job_ttl": 60,
    }
    patched = admin.patch("/__mock/config", json=changes)
    assert patched.status_code == 200
    assert patched.json() == admin.get("/__mock/config").json()
    expected = {
        **config.json(),
        "speed": 10.0,
        "price_per_image": "0.05",
        "rate_limit": {"rate": 5.0, "burst": 10},
        "webhook_allowlist": ["hooks.test"],
        "job_ttl": 60.0,
    }
    assert patched.json() == expected
    request_id = queued_id(http)
    gateway.advance(1.5)  # 15 s at speed 10
    assert poll(http, request_id).json()["status"] == "COMPLETED"
    assert admin.get("/__mock/keys/test-key").json()["charged"] == "0.05"
    gateway.advance(60)
    assert poll(http, request_id).status_code == 404


@pytest.mark.parametrize(
    ("content", "field"),
    [
        pytest.param(b'{"speed": 0}', "speed", id="speed-zero"),
        pytest.param(b'{"speed": "fast"}', "speed", id="speed-not-a-number"),
        pytest.param(b'{"speed": NaN}', "NaN", id="speed-nan"),
        pytest.param(b'{"speed": 1e400}', "out of range", id="speed-overflows-to-infinity"),
        pytest.param(b'{"job_ttl": 1e400}', "out of range", id="ttl-overflows-to-infinity"),
        pytest.param(b'{"default_balance": "1e400"}', "default_balance", id="balance-too-large-for-a-float"),
        pytest.param(b'{"failed_rate": 2}', "failed_rate", id="rate-above-1"),
        pytest.param(b'{"fault_rate": 0.6, "drop_rate": 0.6}', "fault_rate + drop_rate", id="rates-sum"),
        pytest.param(b'{"rate_limit": {"rate": 0, "burst": 1}}', "rate_limit", id="rate-limit-zero"),
        pytest.param(b'{"rate_limit": "5:10"}', "rate_limit", id="rate-limit-string"),
        pytest.param(b'{"seed": 1.5}', "seed", id="seed-fraction"),
        pytest.param(b'{"price_per_image": "NaN"}', "price_per_image", id="price-nan"),
        pytest.param(b'{"price_per_image": -1}', "price_per_image", id="price-negative"),
        pytest.param(b'{"max_body_bytes": 10}', "max_body_bytes", id="body-limit-too-small"),
        pytest.param(b'{"webhook_allowlist": "hooks.test"}', "webhook_allowlist", id="allowlist-not-a-list"),
        pytest.param(b'{"colour": "blue"}', "colour", id="unknown-setting"),
        pytest.param(b'{"extra_fields": ["progress"]}', "extra_fields", id="extra-fields-not-an-object"),
        pytest.param(b'{"extra_fields": {"": 1}}', "extra_fields", id="extra-fields-empty-name"),
        pytest.param(
            b'{"extra_fields": {"pad": "' + b"x" * 5000 + b'"}}', "extra_fields", id="extra-fields-too-large"
        ),
        pytest.param(b"[1, 2]", "JSON object", id="not-an-object"),
        pytest.param(b'{"speed": ', "not valid JSON", id="invalid-json"),
    ],
)
def test_invalid_config_patch_is_400_and_changes_nothing(
    admin: httpx.Client, content: bytes, field: str
) -> None:
    before = admin.get("/__mock/config").json()
    response = admin.patch("/__mock/config", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert field in response.json()["message"]
    assert admin.get("/__mock/config").json() == before


def test_extra_fields_are_added_to_every_api_answer_never_over_a_listed_one(
    http: httpx.Client, admin: httpx.Client
) -> None:
    """A gateway that grew fields: what a client must read without breaking (the spec lets it)."""
    extra = {"progress": 0.5, "status": "NOT-THIS", "region": {"name": "eu-1"}}
    assert admin.patch("/__mock/config", json={"extra_fields": extra}).status_code == 200
    queued = submit(http)
    assert queued.status_code == 202
    assert queued.json()["status"] == "QUEUED"
    assert (queued.json()["progress"], queued.json()["region"]) == (0.5, {"name": "eu-1"})
    status = poll(http, queued.json()["request_id"])
    assert status.json()["progress"] == 0.5 and status.json()["status"] != "NOT-THIS"
    refused = submit(http, {"prompt": ""})
    assert refused.status_code == 400 and refused.json()["progress"] == 0.5
    assert admin.patch("/__mock/config", json={"extra_fields": {}}).status_code == 200
    assert "progress" not in poll(http, queued.json()["request_id"]).json()


def test_keys_create_read_update(admin: httpx.Client) -> None:
    created = admin.post("/__mock/keys", json={"key": "team-a", "balance": 2.5, "models": ["boogu-image"]})
    assert created.status_code == 200
    expected = {"key": "team-a", "balance": "2.5", "charged": "0", "enabled": True, "models": ["boogu-image"]}
    assert created.json() == expected
    assert admin.get("/__mock/keys/team-a").json() == expected
    updated = admin.post("/__mock/keys", json={"key": "team-a", "enabled": False})
    assert updated.json() == {**expected, "enabled": False, "models": None}  # the balance stays
    assert admin.post("/__mock/keys", json={"key": "team-b"}).json()["balance"] == "100"
    missing = admin.get("/__mock/keys/nobody")
    assert missing.status_code == 404
    assert missing.json()["error"] == "Not Found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({}, "key", id="no-key"),
        pytest.param({"key": ""}, "key", id="empty-key"),
        pytest.param({"key": "k", "balance": -1}, "balance", id="negative-balance"),
        pytest.param({"key": "k", "balance": "lots"}, "balance", id="balance-not-a-number"),
        pytest.param({"key": "k", "balance": "NaN"}, "balance", id="balance-nan"),
        pytest.param({"key": "k", "balance": "1e400"}, "balance", id="balance-too-large-for-a-float"),
        pytest.param({"key": "k", "enabled": "no"}, "enabled", id="enabled-not-a-boolean"),
        pytest.param({"key": "k", "models": "boogu-image"}, "models", id="models-not-a-list"),
        pytest.param({"key": "k", "owner": "me"}, "owner", id="unknown-field"),
    ],
)
def test_invalid_key_is_400(admin: httpx.Client, body: dict[str, Any], field: str) -> None:
    response = admin.post("/__mock/keys", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "Validation Error"
    assert field in response.json()["message"]
    assert admin.get("/__mock/keys/k").status_code == 404


def test_journal_records_every_api_call_with_the_key_redacted(
    gateway: MockGateway, admin: httpx.Client
) -> None:
    secret = "sk-live-7f3a9c1e-SECRET"
    stranger = "sk-unknown-0b5d-SECRET"
    admin.post("/__mock/keys", json={"key": secret})
    with http_client(gateway, secret) as http:
        request_id = queued_id(http, {"prompt": "a red fox", "seed": 3})
        gateway.advance(15)
        assert poll(http, request_id).status_code == 200
        assert submit(http, {"prompt": ""}).status_code == 400
        gateway.configure(drop_rate=1)
        with pytest.raises(httpx.TransportError):
            poll(http, request_id)
        gateway.configure(drop_rate=0)
    with http_client(gateway, stranger) as http:
        assert submit(http).status_code == 401
    with gateway.http(headers={"authorization": f"Bearer {secret}"}) as http:
        http.get(f"/v2/requests/status/{request_id}")

    response = admin.get("/__mock/requests")
    assert secret not in response.text
    assert stranger not in response.text
    entries = response.json()
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("POST", TEXT_PATH, 202),
        ("GET", f"/v2/requests/status/{request_id}", 200),
        ("POST", TEXT_PATH, 400),
        ("GET", f"/v2/requests/status/{request_id}", 0),
        ("POST", TEXT_PATH, 401),
        ("GET", f"/v2/requests/status/{request_id}", 401),
    ]
    assert all(e["headers"]["ocp-apim-subscription-key"] == "[redacted]" for e in entries[:5])
    assert entries[-1]["headers"]["authorization"] == "[redacted]"
    first = entries[0]
    assert first["body"] == {"prompt": "a red fox", "seed": 3}
    assert first["response"]["request_id"] == request_id
    assert (first["operation_id"], first["request_id"]) == ("submit_text_to_image", request_id)
    assert entries[1]["operation_id"] == "get_request_status"
    assert entries[1]["response"]["status"] == "COMPLETED"


def test_journal_keeps_only_the_newest_entries(http: httpx.Client, admin: httpx.Client) -> None:
    assert admin.patch("/__mock/config", json={"journal_size": 2}).status_code == 200
    for name in ("a", "b", "c"):
        poll(http, f"boogu-image_{name}")
    assert [e["path"] for e in journal_entries(admin)] == [
        "/v2/requests/status/boogu-image_b",
        "/v2/requests/status/boogu-image_c",
    ]


def test_clock_advance(http: httpx.Client, admin: httpx.Client) -> None:
    request_id = queued_id(http)
    first = admin.post("/__mock/clock/advance", json={"seconds": 14})
    assert first.json() == {"now": "2026-03-31T10:00:14.000Z", "settled": [], "webhook_attempts": 0}
    second = admin.post("/__mock/clock/advance", json={"seconds": 1.5})
    assert second.json() == {
        "now": "2026-03-31T10:00:15.500Z",
        "settled": [request_id],
        "webhook_attempts": 0,
    }
    assert admin.post("/__mock/clock/advance", json={"seconds": 0}).json()["settled"] == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"seconds": -1}, id="negative"),
        pytest.param({"seconds": "15"}, id="string"),
        pytest.param({"seconds": True}, id="boolean"),
        pytest.param({}, id="missing"),
    ],
)
def test_invalid_clock_advance_is_400(admin: httpx.Client, body: dict[str, Any]) -> None:
    response = admin.post("/__mock/clock/advance", json=body)
    assert response.status_code == 400
    assert "seconds" in response.json()["message"]


# --- the spec, unknown routes and methods ---------------------------------------------------------------


def test_openapi_yaml_is_the_contract(admin: httpx.Client) -> None:
    response = admin.get("/openapi.yaml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/yaml")
    assert response.content == SPEC_PATH.read_bytes()


def test_openapi_json_is_the_contract(admin: httpx.Client) -> None:
    response = admin.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(load_spec()))


@pytest.mark.parametrize(
    "path",
    ["/", "/nope", "/v2/requests/status", "/v1/boogu-image-request", "/__mock/unknown", "/media/x"],
)
def test_unknown_route_is_a_json_404(admin: httpx.Client, path: str) -> None:
    response = admin.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "Not Found", "message": f"No route for {path}"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", TEXT_PATH, id="get-submit"),
        pytest.param("PUT", EDIT_PATH, id="put-edit"),
        pytest.param("POST", "/v2/requests/status/boogu-image_x", id="post-status"),
        pytest.param("DELETE", "/__mock/config", id="delete-config"),
        pytest.param("POST", "/__mock/health", id="post-health"),
        pytest.param("GET", "/__mock/reset", id="get-reset"),
    ],
)
def test_wrong_method_is_a_json_405(admin: httpx.Client, method: str, path: str) -> None:
    response = admin.request(method, path, headers={KEY_HEADER: "test-key"})
    assert response.status_code == 405
    assert response.json() == {"error": "Method Not Allowed", "message": f"{method} is not allowed on {path}"}


# --- the generated client -------------------------------------------------------------------------------


def test_generated_client_sync_text_to_image_then_edit(gateway: MockGateway) -> None:
    with api_client(gateway) as client:
        submitted = submit_text_to_image.sync_detailed(
            client=client,
            body=TextToImageRequest(
                prompt="a red fox", image_size=CustomImageSize(width=64, height=64), seed=4
            ),
        )
        assert submitted.status_code == 202
        assert isinstance(submitted.parsed, QueuedRequest)
        request_id = submitted.parsed.request_id
        queued = get_request_status.sync_detailed(request_id, client=client)
        assert isinstance(queued.parsed, RequestStatus)
        assert queued.parsed.status == "QUEUED"
        gateway.advance(15)
        done = get_request_status.sync_detailed(request_id, client=client)
        assert isinstance(done.parsed, RequestStatus)
        assert done.parsed.status == "COMPLETED"
        assert done.parsed.output
        image_url = done.parsed.output.media_url[0]

        edited = submit_image_edit.sync_detailed(
            client=client, body=ImageEditRequest(prompt="make it snow", image_url=image_url)
        )
        assert edited.status_code == 202
        assert isinstance(edited.parsed, QueuedRequest)
        gateway.advance(15)
        final = get_request_status.sync_detailed(edited.parsed.request_id, client=client)
        assert isinstance(final.parsed, RequestStatus)
        assert final.parsed.status == "COMPLETED"
        assert final.parsed.model_id == "boogu-image-edit"


def test_generated_client_sync_mode(gateway: MockGateway) -> None:
    with api_client(gateway) as client:
        answer = submit_text_to_image.sync_detailed(
            client=client, body=TextToImageRequest(prompt="x", sync_mode=True, image_size="square")
        )
    assert answer.status_code == 200
    assert isinstance(answer.parsed, SubmitResult)
    assert isinstance(answer.parsed.output, RequestOutput)
    assert answer.parsed.output.media_url[0].startswith("data:image/jpeg;base64,")


def test_generated_client_parses_errors(gateway: MockGateway) -> None:
    with api_client(gateway, key="wrong") as client:
        answer = get_request_status.sync_detailed("boogu-image_x", client=client)
    assert answer.status_code == 401
    assert answer.parsed is not None
    assert answer.parsed.to_dict() == example("Unauthorized", "invalid_key")


@pytest.fixture
async def async_client(gateway: MockGateway) -> AsyncIterator[AuthenticatedClient]:
    async with api_client(gateway, asynchronous=True) as client:
        yield client


async def test_generated_client_async_both_endpoints(
    gateway: MockGateway, async_client: AuthenticatedClient
) -> None:
    text = await submit_text_to_image.asyncio_detailed(
        client=async_client, body=TextToImageRequest(prompt="a fox")
    )
    edit = await submit_image_edit.asyncio_detailed(
        client=async_client, body=ImageEditRequest(prompt="snow", image_url=EDIT_BODY["image_url"])
    )
    assert isinstance(text.parsed, QueuedRequest)
    assert isinstance(edit.parsed, QueuedRequest)
    gateway.advance(15)
    for queued in (text.parsed, edit.parsed):
        answer = await get_request_status.asyncio_detailed(queued.request_id, client=async_client)
        assert isinstance(answer.parsed, RequestStatus)
        assert answer.parsed.status == "COMPLETED"


async def test_generated_client_async_sync_mode(async_client: AuthenticatedClient) -> None:
    answer = await submit_image_edit.asyncio_detailed(
        client=async_client,
        body=ImageEditRequest(
            prompt="snow", image_url=EDIT_BODY["image_url"], sync_mode=True, image_size="square"
        ),
    )
    assert answer.status_code == 200
    assert isinstance(answer.parsed, SubmitResult)
    assert answer.parsed.status == "COMPLETED"


def test_the_contract_check_sees_every_api_answer(gateway: MockGateway, http: httpx.Client) -> None:
    """The response hook validates what the API operations answer, and only those."""
    before = len(CHECKED)
    request_id = queued_id(http)
    assert poll(http, request_id).status_code == 200
    assert poll(http, "boogu-image_nope").status_code == 404
    assert submit(http, {"prompt": 1}).status_code == 400
    http.get("/__mock/health")
    http.get("/openapi.json")
    assert CHECKED[before:] == [
        ("POST", TEXT_PATH, 202),
        ("GET", STATUS_PATH, 200),
        ("GET", STATUS_PATH, 404),
        ("POST", TEXT_PATH, 400),
    ]
    with pytest.raises(Exception, match=r"is not valid under any of the given schemas|is not of type"):
        response_validator(STATUS_PATH, "GET", 200).validate({**poll(http, request_id).json(), "status": 7})


# --- served over a socket -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served_gateway() -> Iterator[MockGateway]:
    with MockGateway(MockConfig(seed=1), clock=ManualClock(), served=True) as mock:
        yield mock


@pytest.fixture
def served(served_gateway: MockGateway) -> Iterator[MockGateway]:
    yield served_gateway
    served_gateway.configure(drop_rate=0.0, fault_rate=0.0)
    served_gateway.backend.reset()


def test_served_generated_client_end_to_end(served: MockGateway) -> None:
    assert served.base_url.startswith("http://127.0.0.1:")
    with api_client(served) as client:
        submitted = submit_text_to_image.sync_detailed(
            client=client, body=TextToImageRequest(prompt="x", image_size="square")
        )
        assert isinstance(submitted.parsed, QueuedRequest)
        assert submitted.parsed.polling_url.startswith(served.base_url)
        served.advance(15)
        done = get_request_status.sync_detailed(submitted.parsed.request_id, client=client)
        assert isinstance(done.parsed, RequestStatus)
        assert done.parsed.output
        image = httpx.get(done.parsed.output.media_url[0])
    assert image.status_code == 200
    assert decode(image.content).size == (512, 512)


def test_served_dropped_connection_is_a_transport_error(served: MockGateway) -> None:
    served.configure(drop_rate=1.0)
    with served.http(headers={KEY_HEADER: "test-key"}) as http:
        with pytest.raises(httpx.TransportError):
            submit(http)
        with pytest.raises(httpx.TransportError):
            poll(http, "boogu-image_x")
    served.configure(drop_rate=0.0)
    with served.http(headers={KEY_HEADER: "test-key"}) as http:
        assert submit(http).status_code == 202


def test_served_errors_are_json_too(served: MockGateway) -> None:
    with served.http() as http:
        assert submit(http).json() == example("Unauthorized", "missing_key")
        assert http.get("/nope").json() == {"error": "Not Found", "message": "No route for /nope"}
        served.configure(fault_rate=1.0)
        assert submit(http, **{KEY_HEADER: "test-key"}).json() == INTERNAL


async def test_served_webhook_delivery(served: MockGateway, receiver: Receiver) -> None:
    async with httpx.AsyncClient(base_url=served.base_url, headers={KEY_HEADER: "test-key"}) as http:
        response = await http.post(TEXT_PATH, json={"prompt": "x"}, headers={"X-Webhook-URL": receiver.url})
        request_id = response.json()["request_id"]
        await http.post("/__mock/clock/advance", json={"seconds": 15})
    assert [payload["request_id"] for payload in receiver.payloads] == [request_id]


# --- the pytest plugin's fixtures ---------------------------------------------------------------------


@pytest.mark.mock_gateway(speed=100)
def test_plugin_fixtures_with_the_marker(
    mock_gateway: MockGateway, boogu_client: AuthenticatedClient
) -> None:
    assert mock_gateway.backend.config.speed == 100.0
    queued = submit_text_to_image.sync(client=boogu_client, body=TextToImageRequest(prompt="x"))
    assert isinstance(queued, QueuedRequest)
    mock_gateway.advance(0.15)  # 15 s at speed 100
    done = get_request_status.sync(queued.request_id, client=boogu_client)
    assert isinstance(done, RequestStatus)
    assert done.status == "COMPLETED"


def test_plugin_fixture_defaults(mock_gateway: MockGateway) -> None:
    assert mock_gateway.backend.config == MockConfig()
    assert mock_gateway.base_url == "http://mock-gateway.test"


@pytest.mark.mock_gateway(price_per_image="0.5", default_balance="1")
def test_plugin_server_fixture(mock_gateway_server: MockGateway) -> None:
    with mock_gateway_server.http(headers={KEY_HEADER: mock_gateway_server.api_key}) as http:
        assert http.get("/__mock/health").json()["status"] == "ok"
        assert submit(http, {"prompt": "x", "num_images": 2}).status_code == 202
        assert submit(http).status_code == 402
