"""The generated client (generated/boogu_image_client) against the contract.

* Its models read and write the reference's payloads, and the spec's examples, without changing a byte
  of their JSON.
* Its operations send what the contract says (method, path, headers, JSON body) and parse each
  documented answer into the right model; checked with respx, fully offline, sync and async.

Most payloads here are the reference's own: the tests that use them carry the ``needs_reference`` mark
and skip without the reference text (fail under ``CI=true``); the rest run on the spec alone.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

import httpx
import pytest
import respx
from boogu_image_client import AuthenticatedClient
from boogu_image_client.api.image_edit import submit_image_edit
from boogu_image_client.api.status import get_request_status
from boogu_image_client.api.text_to_image import submit_text_to_image
from boogu_image_client.models import (
    CustomImageSize,
    ErrorResponse,
    ImageEditRequest,
    QueuedRequest,
    RequestOutput,
    RequestStatus,
    SubmitResult,
    TextToImageRequest,
)
from boogu_image_client.models.status import STATUS_VALUES
from boogu_image_client.types import UNSET, Response, Unset

from boogu_contract import shared_tls_context
from contract_tests.spec_helpers import (
    ReferenceBlock,
    canonical_json,
    component_schema_name,
    iter_spec_examples,
    json_pointer,
    load_reference_text,
    needs_reference,
    reference_blocks,
    reference_here,
    reference_params,
    reference_schema_name,
    request_body_validator,
    resolve_pointer,
)

BASE_URL: Final = "https://gateway.pixazo.ai"
API_KEY: Final = "YOUR_API_KEY"
KEY_HEADER: Final = "Ocp-Apim-Subscription-Key"
WEBHOOK_URL: Final = "https://your-server.com/webhook/callback"
TEXT_PATH: Final = "/boogu-image/v1/boogu-image-request"
EDIT_PATH: Final = "/boogu-image-edit/v1/boogu-image-edit-request"
STATUS_PREFIX: Final = "/v2/requests/status/"
EDIT_SECTION_HEADING: Final = "### Image to Image (Image Editing)"

Model = type[
    TextToImageRequest | ImageEditRequest | QueuedRequest | RequestStatus | SubmitResult | ErrorResponse
]
MODELS: Final[dict[str, Model]] = {
    "TextToImageRequest": TextToImageRequest,
    "ImageEditRequest": ImageEditRequest,
    "QueuedRequest": QueuedRequest,
    "RequestStatus": RequestStatus,
    "SubmitResult": SubmitResult,
    "ErrorResponse": ErrorResponse,
}
Mode = Literal["sync", "async"]
MODES: Final[tuple[Mode, ...]] = ("sync", "async")


# ------------------------------------------------------------------------------ the reference's payloads


def section_of(block: ReferenceBlock) -> str:
    cut = load_reference_text().index(EDIT_SECTION_HEADING)
    return "image_edit" if block.offset > cut else "text_to_image"


def reference_payload(section: str, schema_name: str, **match: Any) -> dict[str, Any]:
    """The one JSON block of the reference's ``section`` that is a ``schema_name`` with ``match``'s values.

    Without the reference: an empty placeholder (the tests that use it are marked ``needs_reference``).
    """
    if not reference_here():
        return {}
    found = [
        block.value
        for block in reference_blocks()
        if section_of(block) == section
        and reference_schema_name(block.value) == schema_name
        and all(block.value.get(key) == value for key, value in match.items())
    ]
    assert found, f"no {schema_name} {match} in the reference's {section} half"
    value: dict[str, Any] = copy.deepcopy(found[0])
    return value


def spec_example(name: str) -> dict[str, Any]:
    value: dict[str, Any] = copy.deepcopy(
        resolve_pointer(json_pointer("components", "examples", name, "value"))
    )
    return value


TEXT_BODY: Final = reference_payload("text_to_image", "TextToImageRequest")
EDIT_BODY: Final = reference_payload("image_edit", "ImageEditRequest")
TEXT_QUEUED: Final = reference_payload("text_to_image", "QueuedRequest")
EDIT_QUEUED: Final = reference_payload("image_edit", "QueuedRequest")
COMPLETED: Final = reference_payload("text_to_image", "RequestStatus", status="COMPLETED")
ERROR: Final = reference_payload("text_to_image", "RequestStatus", status="ERROR")
EDIT_COMPLETED: Final = reference_payload("image_edit", "RequestStatus", status="COMPLETED")
EDIT_ERROR: Final = reference_payload("image_edit", "RequestStatus", status="ERROR")
INSUFFICIENT_BALANCE: Final = reference_payload(
    "text_to_image", "ErrorResponse", error="Insufficient Balance"
)
MODEL_NOT_FOUND: Final = reference_payload("text_to_image", "ErrorResponse", error="Model not found")
EDIT_MODEL_NOT_FOUND: Final = reference_payload("image_edit", "ErrorResponse", error="Model not found")
QUEUED_STATUS: Final = spec_example("StatusQueued")
SYNC_COMPLETED: Final = spec_example("StatusCompletedSync")
RATE_LIMITED: Final = {
    "error": "Too Many Requests",
    "message": "Rate limit is exceeded. Try again in 3 seconds.",
}
NOT_FOUND: Final = {
    "error": "Not Found",
    "message": "Request 'boogu-image_019dxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx' not found",
}
REQUEST_ID: Final = str(COMPLETED.get("request_id", "no-reference"))


# ----------------------------------------------------------------------------------------- round trip


def reference_round_trip_cases() -> Iterator[Any]:
    for block in reference_blocks():
        name = reference_schema_name(block.value)
        yield pytest.param(name, block.value, id=f"reference-{block.index:02d}-{section_of(block)}-{name}")


def round_trip_cases() -> Iterator[Any]:
    yield from reference_params(reference_round_trip_cases, arity=2)
    extra: list[tuple[str, str, dict[str, Any]]] = [
        ("text-image_size-preset", "TextToImageRequest", {**TEXT_BODY, "image_size": "landscape_16_9"}),
        (
            "text-image_size-object",
            "TextToImageRequest",
            {**TEXT_BODY, "image_size": {"width": 1280, "height": 720}},
        ),
        ("edit-image_size-preset", "ImageEditRequest", {**EDIT_BODY, "image_size": "portrait_4_3"}),
        (
            "edit-image_size-object",
            "ImageEditRequest",
            {**EDIT_BODY, "image_size": {"width": 1280, "height": 720}},
        ),
        ("text-seed-and-floats", "TextToImageRequest", {**TEXT_BODY, "seed": 42, "guidance_scale": 4.5}),
        ("status-output-null-error-null", "RequestStatus", QUEUED_STATUS),
        ("status-extra-field", "RequestStatus", {**COMPLETED, "queue_position": 3}),
        ("error-extra-field", "ErrorResponse", {**INSUFFICIENT_BALANCE, "balance": "0.00"}),
    ]
    for label, name, payload in extra:
        built_on_the_reference = payload is not QUEUED_STATUS
        marks = needs_reference if built_on_the_reference else ()
        yield pytest.param(name, payload, id=f"extra-{label}", marks=marks)
    for example in iter_spec_examples():
        model_name = component_schema_name(example.schema_pointer)
        if model_name in MODELS and example.kind in ("request_body", "response"):
            yield pytest.param(model_name, example.value, id=f"spec-{example.id}")


@pytest.mark.parametrize(("schema_name", "payload"), list(round_trip_cases()))
def test_model_round_trip_keeps_the_json(schema_name: str, payload: dict[str, Any]) -> None:
    before = canonical_json(payload)
    model = MODELS[schema_name].from_dict(payload)
    assert canonical_json(payload) == before, "from_dict must not change its argument"
    assert canonical_json(model.to_dict()) == before


@needs_reference
def test_image_size_parses_to_preset_or_custom_size() -> None:
    preset = TextToImageRequest.from_dict(TEXT_BODY)
    assert preset.image_size == "square_hd"
    custom = ImageEditRequest.from_dict({**EDIT_BODY, "image_size": {"width": 1280, "height": 720}})
    assert custom.image_size == CustomImageSize(width=1280, height=720)


@needs_reference
def test_status_payloads_parse_to_typed_fields() -> None:
    completed = RequestStatus.from_dict(COMPLETED)
    assert completed.status == "COMPLETED"
    assert completed.error is None
    assert completed.output == RequestOutput(
        media_url=COMPLETED["output"]["media_url"], media_type="image/jpeg"
    )
    assert completed.completed_at == "2026-03-31T10:00:15.000Z"
    error = RequestStatus.from_dict(ERROR)
    assert (error.status, error.error, error.output) == ("ERROR", "Description of the error", None)
    assert isinstance(error.created_at, Unset)
    assert isinstance(error.completed_at, Unset)
    queued = RequestStatus.from_dict(QUEUED_STATUS)
    assert (queued.output, queued.error, queued.completed_at) == (None, None, None)


@pytest.mark.parametrize(
    ("model", "schema_name", "required"),
    [
        pytest.param(TextToImageRequest, "TextToImageRequest", {"prompt": "x"}, id="TextToImageRequest"),
        pytest.param(
            ImageEditRequest,
            "ImageEditRequest",
            {"prompt": "x", "image_url": "https://x.example/a.png"},
            id="ImageEditRequest",
        ),
    ],
)
def test_model_defaults_are_the_spec_defaults(
    model: type[TextToImageRequest | ImageEditRequest], schema_name: str, required: dict[str, Any]
) -> None:
    """A model built in code sends every default explicitly; each must be the spec's default."""
    properties = resolve_pointer(json_pointer("components", "schemas", schema_name, "properties"))
    sent = model(**required).to_dict()
    defaults = {name: prop["default"] for name, prop in properties.items() if "default" in prop}
    assert set(sent) == set(required) | set(defaults)
    for name, default in defaults.items():
        if properties[name].get("type") == "number":
            assert isinstance(sent[name], int | float)
            assert sent[name] == default, name
        else:
            assert canonical_json(sent[name]) == canonical_json(default), name
    assert not list(
        request_body_validator(TEXT_PATH if model is TextToImageRequest else EDIT_PATH, "post").iter_errors(
            sent
        )
    )


# ------------------------------------------------------------------------------------------ operations


def make_client() -> AuthenticatedClient:
    """A fresh client, on the process's one TLS context (httpx would build one a client: 45 ms)."""
    return AuthenticatedClient(
        base_url=BASE_URL,
        token=API_KEY,
        auth_header_name=KEY_HEADER,
        prefix="",
        verify_ssl=shared_tls_context(),
    )


@dataclass(frozen=True)
class Operation:
    id: str
    method: str
    path: str
    body: dict[str, Any] | None
    """The JSON body that the call sends (the reference's example request), or None for a GET."""


OPERATIONS: Final = {
    "submit_text_to_image": Operation("submit_text_to_image", "POST", TEXT_PATH, TEXT_BODY),
    "submit_image_edit": Operation("submit_image_edit", "POST", EDIT_PATH, EDIT_BODY),
    "get_request_status": Operation("get_request_status", "GET", STATUS_PREFIX + REQUEST_ID, None),
}


def call_sync(op: Operation, client: AuthenticatedClient, webhook: str | Unset) -> Response[Any]:
    if op.id == "submit_text_to_image":
        body = TextToImageRequest.from_dict(TEXT_BODY)
        return submit_text_to_image.sync_detailed(client=client, body=body, x_webhook_url=webhook)
    if op.id == "submit_image_edit":
        edit = ImageEditRequest.from_dict(EDIT_BODY)
        return submit_image_edit.sync_detailed(client=client, body=edit, x_webhook_url=webhook)
    assert isinstance(webhook, Unset), "the status operation takes no webhook"
    return get_request_status.sync_detailed(REQUEST_ID, client=client)


async def call_async(op: Operation, client: AuthenticatedClient, webhook: str | Unset) -> Response[Any]:
    if op.id == "submit_text_to_image":
        body = TextToImageRequest.from_dict(TEXT_BODY)
        return await submit_text_to_image.asyncio_detailed(client=client, body=body, x_webhook_url=webhook)
    if op.id == "submit_image_edit":
        edit = ImageEditRequest.from_dict(EDIT_BODY)
        return await submit_image_edit.asyncio_detailed(client=client, body=edit, x_webhook_url=webhook)
    assert isinstance(webhook, Unset), "the status operation takes no webhook"
    return await get_request_status.asyncio_detailed(REQUEST_ID, client=client)


async def send(op: Operation, mode: Mode, webhook: str | None = None) -> Response[Any]:
    """Call ``op`` with a fresh client, closed afterwards."""
    client = make_client()
    header: str | Unset = UNSET if webhook is None else webhook
    if mode == "sync":
        with client:
            return call_sync(op, client, header)
    async with client:
        return await call_async(op, client, header)


def request_cases() -> Iterator[Any]:
    for op_id in OPERATIONS:
        for mode in MODES:
            webhooks: tuple[str | None, ...] = (
                (None,) if op_id == "get_request_status" else (None, WEBHOOK_URL)
            )
            for webhook in webhooks:
                label = f"{op_id}-{mode}-{'with' if webhook else 'without'}-webhook"
                yield pytest.param(OPERATIONS[op_id], mode, webhook, id=label)


@needs_reference
@pytest.mark.parametrize(("op", "mode", "webhook"), list(request_cases()))
async def test_request_is_what_the_contract_says(op: Operation, mode: Mode, webhook: str | None) -> None:
    answer = TEXT_QUEUED if op.id == "submit_text_to_image" else EDIT_QUEUED if op.body else COMPLETED
    status = 202 if op.body else 200
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as router:
        route = router.route(method=op.method, path=op.path).respond(status, json=answer)
        response = await send(op, mode, webhook)
    assert route.call_count == 1
    request: httpx.Request = route.calls.last.request
    assert request.method == op.method
    assert request.url.scheme == "https"
    assert request.url.host == "gateway.pixazo.ai"
    assert request.url.raw_path.decode() == op.path
    assert request.headers[KEY_HEADER] == API_KEY
    assert "Authorization" not in request.headers
    if op.body is None:
        assert request.content == b""
        for header in ("Content-Type", "Cache-Control", "X-Webhook-URL"):
            assert header not in request.headers
    else:
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["Cache-Control"] == "no-cache"
        if webhook is None:
            assert "X-Webhook-URL" not in request.headers
        else:
            assert request.headers["X-Webhook-URL"] == webhook
        sent = json.loads(request.content)
        assert canonical_json(sent) == canonical_json(op.body)
        assert not list(request_body_validator(op.path, "post").iter_errors(sent))
    assert response.status_code == status
    assert response.parsed is not None


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    model: Model
    headers: tuple[tuple[str, str], ...] = ()


SUBMIT_ANSWERS: Final = {
    "202-queued": Answer(202, TEXT_QUEUED, QueuedRequest),
    "200-sync-completed": Answer(200, SYNC_COMPLETED, SubmitResult),
    "400-model-not-found": Answer(400, MODEL_NOT_FOUND, ErrorResponse),
    "402-insufficient-balance": Answer(402, INSUFFICIENT_BALANCE, ErrorResponse),
    "429-rate-limited": Answer(429, RATE_LIMITED, ErrorResponse, (("Retry-After", "3"),)),
}
EDIT_ANSWERS: Final = {
    **SUBMIT_ANSWERS,
    "202-queued": Answer(202, EDIT_QUEUED, QueuedRequest),
    "400-model-not-found": Answer(400, EDIT_MODEL_NOT_FOUND, ErrorResponse),
}
STATUS_ANSWERS: Final = {
    "200-completed": Answer(200, COMPLETED, RequestStatus),
    "200-completed-edit": Answer(200, EDIT_COMPLETED, RequestStatus),
    "200-error": Answer(200, ERROR, RequestStatus),
    "200-error-edit": Answer(200, EDIT_ERROR, RequestStatus),
    "200-queued": Answer(200, QUEUED_STATUS, RequestStatus),
    "404-not-found": Answer(404, NOT_FOUND, ErrorResponse),
    "429-rate-limited": Answer(429, RATE_LIMITED, ErrorResponse, (("Retry-After", "3"),)),
}
ANSWERS: Final = {
    "submit_text_to_image": SUBMIT_ANSWERS,
    "submit_image_edit": EDIT_ANSWERS,
    "get_request_status": STATUS_ANSWERS,
}


def answer_cases() -> Iterator[Any]:
    for op_id, answers in ANSWERS.items():
        for label, answer in answers.items():
            for mode in MODES:
                yield pytest.param(OPERATIONS[op_id], answer, mode, id=f"{op_id}-{label}-{mode}")


def check_fields(parsed: Any, body: dict[str, Any]) -> None:
    """The parsed model's fields hold the body's values."""
    if isinstance(parsed, QueuedRequest):
        assert (parsed.request_id, parsed.status, parsed.polling_url) == (
            body["request_id"],
            "QUEUED",
            body["polling_url"],
        )
    elif isinstance(parsed, RequestStatus | SubmitResult):
        assert (parsed.request_id, parsed.status, parsed.model_id, parsed.error) == (
            body["request_id"],
            body["status"],
            body["model_id"],
            body["error"],
        )
        if body["output"] is None:
            assert parsed.output is None
        else:
            assert isinstance(parsed.output, RequestOutput)
            assert parsed.output.media_url == body["output"]["media_url"]
            assert parsed.output.media_type == body["output"]["media_type"]
        for name in ("created_at", "updated_at", "completed_at"):
            assert getattr(parsed, name) == body.get(name, UNSET), name
    elif isinstance(parsed, ErrorResponse):
        assert (parsed.error, parsed.message) == (body["error"], body["message"])
    else:
        pytest.fail(f"unexpected model {type(parsed).__name__}")


@needs_reference
@pytest.mark.parametrize(("op", "answer", "mode"), list(answer_cases()))
async def test_answer_parses_into_the_right_model(op: Operation, answer: Answer, mode: Mode) -> None:
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as router:
        router.route(method=op.method, path=op.path).respond(
            answer.status, json=answer.body, headers=dict(answer.headers)
        )
        response = await send(op, mode)
    assert response.status_code == answer.status
    assert type(response.parsed) is answer.model
    check_fields(response.parsed, answer.body)
    assert canonical_json(response.parsed.to_dict()) == canonical_json(answer.body)
    for name, value in answer.headers:
        assert response.headers[name] == value


@needs_reference
@pytest.mark.parametrize("mode", MODES)
async def test_sync_mode_answer_holds_data_uri(mode: Mode) -> None:
    with respx.mock(base_url=BASE_URL) as router:
        router.post(TEXT_PATH).respond(200, json=SYNC_COMPLETED)
        response = await send(OPERATIONS["submit_text_to_image"], mode)
    assert isinstance(response.parsed, SubmitResult)
    assert isinstance(response.parsed.output, RequestOutput)
    assert response.parsed.output.media_url[0].startswith("data:image/png;base64,")


@needs_reference
@pytest.mark.parametrize(
    ("op_id", "mode"),
    [pytest.param(op_id, mode, id=f"{op_id}-{mode}") for op_id in OPERATIONS for mode in MODES],
)
async def test_unknown_status_value_is_kept_not_raised(op_id: str, mode: Mode) -> None:
    """`Status` is an open enum (clients/openapi-python-client/literal_enum.py.jinja): a status body
    with a value the spec does not list (here ``CANCELLED``) still parses, the value kept as sent."""
    op = OPERATIONS[op_id]
    body = {**(SYNC_COMPLETED if op.body else COMPLETED), "status": "CANCELLED"}
    with respx.mock(base_url=BASE_URL) as router:
        router.route(method=op.method, path=op.path).respond(200, json=body)
        response = await send(op, mode)
    assert isinstance(response.parsed, SubmitResult if op.body else RequestStatus)
    kept: str = response.parsed.status  # typed Status, holding a value outside it
    assert kept == "CANCELLED"
    assert kept not in STATUS_VALUES


@needs_reference
@pytest.mark.parametrize("value", [5, None, ["COMPLETED"]], ids=["int", "null", "list"])
def test_a_status_that_is_not_a_string_still_raises(value: object) -> None:
    with pytest.raises(TypeError, match="Expected a string"):
        RequestStatus.from_dict({**COMPLETED, "status": value})


@needs_reference
@pytest.mark.parametrize(
    "op_id", [pytest.param(op_id, id=op_id) for op_id in ("submit_text_to_image", "submit_image_edit")]
)
async def test_queued_answer_with_other_status_raises_value_error(op_id: str) -> None:
    """Current behaviour: ``QueuedRequest.status`` is ``const: QUEUED``; anything else is a ValueError."""
    op = OPERATIONS[op_id]
    with respx.mock(base_url=BASE_URL) as router:
        router.route(method=op.method, path=op.path).respond(
            202, json={**TEXT_QUEUED, "status": "PROCESSING"}
        )
        with pytest.raises(ValueError, match="status must match const 'QUEUED'"):
            await send(op, "sync")


@pytest.mark.parametrize("mode", MODES)
async def test_undocumented_status_code_parses_to_none(mode: Mode) -> None:
    """Current behaviour: an undeclared code (418) gives ``parsed=None`` unless the client is built with
    ``raise_on_unexpected_status=True``."""
    with respx.mock(base_url=BASE_URL) as router:
        router.get(OPERATIONS["get_request_status"].path).respond(
            418, json={"error": "teapot", "message": "no"}
        )
        response = await send(OPERATIONS["get_request_status"], mode)
    assert response.status_code == 418
    assert response.parsed is None
