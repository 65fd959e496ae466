"""Smoke test of the OpenAPI Generator `python` client (pydantic v2) against a live gateway (the mock).

Both submit operations polled to COMPLETED and their images downloaded and decoded (Pillow), one
402 and one 429, a `sync_mode` answer read by the same typed call, and the fields the spec does not
list (the mock's `extra_fields`) kept.

Run by tools/client_smoke.py with the Python of the client's own venv (the generated package and
its dependencies installed from the package index), which passes BOOGU_BASE_URL, BOOGU_API_KEY,
BOOGU_BROKE_KEY (balance 0) and BOOGU_THROTTLED_KEY (its own rate-limit bucket).
Standard unittest, so that venv needs no test runner.
"""

from __future__ import annotations

import io
import os
import time
import unittest
import urllib.request
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

from boogu_openapi_client import (
    ApiClient,
    Configuration,
    CustomImageSize,
    ErrorResponse,
    ImageEditApi,
    ImageEditRequest,
    ImageSize,
    QueuedRequest,
    RequestStatus,
    StatusApi,
    SubmitResult,
    TextToImageApi,
    TextToImageRequest,
)
from boogu_openapi_client.exceptions import ApiException
from PIL import Image

BASE_URL = os.environ["BOOGU_BASE_URL"]
FINISHED = {"COMPLETED", "FAILED", "ERROR"}
POLL_SECONDS = 0.15
WAIT_SECONDS = 30.0


class Apis:
    """The generated APIs, sending `key` in Ocp-Apim-Subscription-Key (the spec's security scheme).

    `retries` goes to urllib3, whose default already waits out a 429's Retry-After (3 times).
    """

    def __init__(self, key: str, retries: int | None = None) -> None:
        configuration = Configuration(host=BASE_URL, api_key={"subscriptionKey": key}, retries=retries)
        client = ApiClient(configuration)
        self.text_to_image = TextToImageApi(client)
        self.image_edit = ImageEditApi(client)
        self.status = StatusApi(client)

    def wait(self, request_id: str) -> RequestStatus:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            current = self.status.get_request_status(request_id)
            if current.status.value in FINISHED:
                return current
            if time.monotonic() > deadline:
                raise AssertionError(f"{request_id} still {current.status.value} after {WAIT_SECONDS} s")
            time.sleep(POLL_SECONDS)


def raised(call: Callable[[], object]) -> ApiException | None:
    """The ApiException that `call` raises (an answer outside 2xx), or None."""
    try:
        call()
    except ApiException as exc:
        return exc
    return None


def error_of(call: Callable[[], object]) -> tuple[ApiException, ErrorResponse]:
    """The ApiException that `call` raises, with its `{error, message}` body."""
    exc = raised(call)
    assert exc is not None, "expected an error answer"
    return exc, ErrorResponse.from_json(exc.body)


def decoded(url: str, content_type: str) -> Image.Image:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (the mock's own http URL)
        assert response.headers["Content-Type"] == content_type, response.headers["Content-Type"]
        image = Image.open(io.BytesIO(response.read()))
        image.load()
        return image


class OpenApiGeneratorPythonClient(unittest.TestCase):
    state: ClassVar[dict[str, Any]] = {}
    client: ClassVar[Apis]

    @classmethod
    def setUpClass(cls) -> None:
        cls.client = Apis(os.environ.get("BOOGU_API_KEY", "test-key"))

    def queued(self, answer: object) -> QueuedRequest:
        assert isinstance(answer, QueuedRequest), f"expected a 202 QueuedRequest, got {answer!r}"
        assert answer.status == "QUEUED"
        assert answer.polling_url == f"{BASE_URL}/v2/requests/status/{answer.request_id}"
        return answer

    def media(self, status: RequestStatus, model_id: str) -> list[str]:
        assert status.status.value == "COMPLETED", status.error
        assert status.model_id == model_id
        assert status.output is not None
        assert status.output.media_url
        return status.output.media_url

    def test_1_text_to_image_to_completed_and_downloaded(self) -> None:
        size = ImageSize(CustomImageSize(width=320, height=240))
        request = TextToImageRequest(prompt="A lighthouse in a storm", image_size=size, seed=7)
        submitted = self.queued(self.client.text_to_image.submit_text_to_image(request))
        assert submitted.request_id.startswith("boogu-image_")
        [url] = self.media(self.client.wait(submitted.request_id), "boogu-image")
        assert decoded(url, "image/jpeg").size == (320, 240)
        self.state["image_url"] = url

    def test_2_image_edit_to_completed_and_downloaded(self) -> None:
        assert "image_url" in self.state, "needs the text-to-image test before it"
        request = ImageEditRequest(
            prompt="Make it a pencil sketch", image_url=self.state["image_url"], output_format="png"
        )
        submitted = self.queued(self.client.image_edit.submit_image_edit(request))
        assert submitted.request_id.startswith("boogu-image-edit_")
        for url in self.media(self.client.wait(submitted.request_id), "boogu-image-edit"):
            assert decoded(url, "image/png").format == "PNG"

    def test_3_insufficient_balance_is_a_402(self) -> None:
        broke = Apis(os.environ["BOOGU_BROKE_KEY"])
        exc, body = error_of(lambda: broke.text_to_image.submit_text_to_image(TextToImageRequest(prompt="x")))
        assert exc.status == 402
        assert body.error == "Insufficient Balance"

    def test_4_rate_limit_is_a_429_with_retry_after_that_waiting_out_passes(self) -> None:
        throttled = Apis(os.environ["BOOGU_THROTTLED_KEY"], retries=0)
        submitted = self.queued(throttled.text_to_image.submit_text_to_image(TextToImageRequest(prompt="x")))
        poll = partial(throttled.status.get_request_status, submitted.request_id)
        limited = next(filter(None, (raised(poll) for _ in range(200))), None)
        assert limited is not None, (
            "200 status polls in a row were never answered 429: is the rate limit set?"
        )
        assert limited.status == 429, limited.body
        assert ErrorResponse.from_json(limited.body).error == "Too Many Requests"
        assert limited.headers is not None
        retry_after = int(limited.headers["Retry-After"])
        assert retry_after >= 0
        time.sleep(retry_after)
        self.media(throttled.wait(submitted.request_id), "boogu-image")

    def test_5_by_default_urllib3_waits_out_429s_itself(self) -> None:
        patient = Apis(os.environ["BOOGU_THROTTLED_KEY"])
        submitted = self.queued(patient.text_to_image.submit_text_to_image(TextToImageRequest(prompt="x")))
        for _ in range(15):  # more than the burst of 10: some answers are 429s, retried after Retry-After
            patient.status.get_request_status(submitted.request_id)

    def test_6_sync_mode_is_read_by_the_same_typed_submit(self) -> None:
        request = TextToImageRequest(prompt="a red fox", image_size=ImageSize("square"), sync_mode=True)
        finished = self.client.text_to_image.submit_text_to_image(request)
        assert isinstance(finished, SubmitResult), f"expected the 200 SubmitResult, got {finished!r}"
        assert finished.status.value == "COMPLETED"
        assert finished.model_id == "boogu-image"
        assert finished.output is not None
        assert finished.output.media_url[0].startswith("data:image/jpeg;base64,")

    def test_7_fields_the_spec_does_not_list_are_kept(self) -> None:
        submitted = self.queued(
            self.client.text_to_image.submit_text_to_image(TextToImageRequest(prompt="x"))
        )
        status = self.client.status.get_request_status(submitted.request_id)
        assert status.additional_properties.get("region") == "eu-1", status.additional_properties


if __name__ == "__main__":
    unittest.main(verbosity=2)
