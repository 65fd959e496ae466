"""The clients end to end against the mock gateway, in-process and served, sync and async: every
outcome of a job, the typed errors, downloads checked with Pillow, the wallet, webhooks, and the
guarantees that need a real server (timeouts, dropped connections, no duplicate submit)."""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image

from boogu import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    CustomImageSize,
    ForbiddenError,
    InsufficientBalanceError,
    JobErroredError,
    JobFailedError,
    NotFoundError,
    RateLimitError,
    Result,
    RetryPolicy,
    TextToImageRequest,
    UnauthorizedError,
)
from boogu.webhooks import WebhookReceiver
from contract_tests.client.helpers import image_bytes, journal, mock_async_client, mock_client, wallet
from mock_gateway.testing import MockGateway

SPEED = 100
PRICE = Decimal("0.02")
pytestmark = pytest.mark.mock_gateway(speed=SPEED, seed=11)


@pytest.fixture(params=["in-process", "served"])
def gateway(request: pytest.FixtureRequest) -> MockGateway:
    fixture = "mock_gateway" if request.param == "in-process" else "mock_gateway_server"
    gateway: MockGateway = request.getfixturevalue(fixture)
    return gateway


def add_key(gateway: MockGateway, key: str, **settings: object) -> None:
    with gateway.http() as http:
        http.post("/__mock/keys", json={"key": key, **settings}).raise_for_status()


def check_images(files: list[Path], *, count: int, kind: str, size: tuple[int, int]) -> None:
    assert len(files) == count
    assert len(set(files)) == count
    for path in files:
        assert path.suffix == {"JPEG": ".jpg", "PNG": ".png"}[kind]
        with Image.open(path) as image:
            assert (image.format, image.size) == (kind, size)
            image.verify()


# COMPLETED -----------------------------------------------------------------------------------


def test_generate_waits_and_downloads(gateway: MockGateway, tmp_path: Path) -> None:
    with mock_client(gateway) as client:
        result = client.generate(
            "a lighthouse in a storm",
            num_images=2,
            image_size=CustomImageSize(width=320, height=240),
            output_format="png",
            seed=7,
        )
        files = client.download(result, tmp_path)
    assert result.model_id == "boogu-image" and result.media_type == "image/png"
    assert result.status.status == "COMPLETED" and len(result.media_urls) == 2
    assert result.timings.duration == pytest.approx(0.5 * 30 * 2 / SPEED, abs=0.002)
    assert 1 <= result.timings.status_calls <= 20
    check_images(files, count=2, kind="PNG", size=(320, 240))
    assert wallet(gateway)["charged"] == 2 * PRICE


async def test_async_generate_waits_and_downloads(gateway: MockGateway, tmp_path: Path) -> None:
    async with mock_async_client(gateway) as client:
        results = await asyncio.gather(
            *(client.generate(f"fox {i}", image_size="square", seed=i) for i in range(3))
        )
        files = [path for result in results for path in await client.download(result, tmp_path)]
    assert len({result.request_id for result in results}) == 3
    check_images(files, count=3, kind="JPEG", size=(512, 512))
    assert wallet(gateway)["charged"] == 3 * PRICE


def test_submit_then_wait_on_the_id(mock_gateway: MockGateway) -> None:
    with mock_client(mock_gateway) as client:
        submission = client.submit(TextToImageRequest(prompt="a red fox", num_inference_steps=20))
        assert submission.polling_url is not None and submission.polling_url.endswith(submission.request_id)
        mock_gateway.advance(15)
        assert client.status(submission.request_id).status == "COMPLETED"
        result = client.wait(submission.request_id)
    assert result.timings.status_calls == 1


def test_edit_of_a_local_image(mock_gateway: MockGateway, tmp_path: Path) -> None:
    source = tmp_path / "photo.png"
    source.write_bytes(image_bytes("PNG", (64, 48)))
    with mock_client(mock_gateway) as client:
        result = client.edit("make it look like a pencil sketch", source, image_size="landscape_4_3")
        files = client.download(result, tmp_path / "out")
    assert result.model_id == "boogu-image-edit"
    check_images(files, count=1, kind="JPEG", size=(1024, 768))


async def test_sync_mode_images_arrive_inline(mock_gateway: MockGateway, tmp_path: Path) -> None:
    async with mock_async_client(mock_gateway) as client:
        result = await client.generate("a teapot", sync_mode=True, output_format="png", image_size="square")
        files = await client.download(result, tmp_path)
    assert result.media_urls[0].startswith("data:image/png;base64,")
    assert result.timings.status_calls == 0
    check_images(files, count=1, kind="PNG", size=(512, 512))


# FAILED and ERROR ----------------------------------------------------------------------------


def test_failed_job_raises_with_its_payload_and_is_charged(gateway: MockGateway) -> None:
    with mock_client(gateway) as client, pytest.raises(JobFailedError) as caught:
        client.generate("nsfw content, please", num_images=3)
    error = caught.value
    assert error.charged is True
    assert error.status.status == "FAILED" and "safety checker" in (error.error or "")
    assert error.status.raw["output"] is None and error.status.completed_at is not None
    assert wallet(gateway)["charged"] == 3 * PRICE


async def test_errored_job_raises_and_is_not_charged(gateway: MockGateway) -> None:
    outcome = {"headers": {"X-Mock-Outcome": "error"}, **gateway.httpx_args()}
    async with mock_async_client(gateway, httpx_args=outcome) as client:
        with pytest.raises(JobErroredError) as caught:
            await client.generate("anything", num_images=2)
    assert caught.value.charged is False
    assert caught.value.status.status == "ERROR" and "not charged" in (caught.value.error or "")
    assert wallet(gateway)["charged"] == 0
    assert wallet(gateway)["balance"] == 100


# Errors the gateway answers ------------------------------------------------------------------


def test_typed_errors_for_402_401_403_400_404(gateway: MockGateway) -> None:
    add_key(gateway, "poor", balance=0.01)
    add_key(gateway, "disabled", enabled=False)
    with mock_client(gateway, "poor") as client, pytest.raises(InsufficientBalanceError) as poor:
        client.generate("a fox", num_images=1)
    with mock_client(gateway, "nobody") as client, pytest.raises(UnauthorizedError):
        client.generate("a fox")
    with mock_client(gateway, "disabled") as client, pytest.raises(ForbiddenError):
        client.generate("a fox")
    with mock_client(gateway) as client:
        with pytest.raises(BadRequestError, match="num_inference_steps") as bad:
            client.generate("a fox", num_inference_steps=99)
        with pytest.raises(NotFoundError) as missing:
            client.status("boogu-image_nope")
    assert (poor.value.status_code, poor.value.error) == (402, "Insufficient Balance")
    assert bad.value.status_code == 400 and missing.value.request_id == "boogu-image_nope"
    submits = [e for e in journal(gateway) if e["method"] == "POST"]
    assert [e["status"] for e in submits] == [402, 401, 403, 400]  # each sent once: never retried
    assert wallet(gateway, "poor")["charged"] == 0


def test_rate_limited_submit_is_retried_after_retry_after_without_duplicates(
    mock_gateway: MockGateway,
) -> None:
    gateway = mock_gateway
    gateway.configure(rate_limit={"rate": 2, "burst": 1})
    with mock_client(gateway) as client:
        first = client.submit(TextToImageRequest(prompt="one"))
        second = client.submit(TextToImageRequest(prompt="two"))  # 429, Retry-After 1, then accepted
    assert first.request_id != second.request_id
    submits = [
        (e["status"], (e["body"] or {}).get("prompt")) for e in journal(gateway) if e["method"] == "POST"
    ]
    assert submits == [(202, "one"), (429, None), (202, "two")]  # refused before reading, then accepted once


def test_rate_limit_error_when_retries_are_off(mock_gateway: MockGateway) -> None:
    mock_gateway.configure(rate_limit={"rate": 0.1, "burst": 1})
    with mock_client(mock_gateway, max_retries=0) as client:
        client.submit(TextToImageRequest(prompt="one"))
        with pytest.raises(RateLimitError) as caught:
            client.submit(TextToImageRequest(prompt="two"))
    assert caught.value.retry_after is not None and caught.value.retry_after >= 1


# What needs a real server --------------------------------------------------------------------


@pytest.mark.mock_gateway(speed=SPEED, latency_rate=1.0, latency_seconds=0.3)
def test_a_timed_out_submit_is_never_sent_twice(mock_gateway_server: MockGateway) -> None:
    with mock_client(mock_gateway_server, timeout=0.1, max_retries=5) as client:
        started = time.monotonic()
        with pytest.raises(APITimeoutError) as caught:
            client.submit(TextToImageRequest(prompt="slow gateway"))
        assert time.monotonic() - started < 0.3
    assert caught.value.request_sent and "may have accepted the job" in str(caught.value)
    time.sleep(0.35)  # let the gateway finish the call the client gave up on
    submits = [e for e in journal(mock_gateway_server) if e["method"] == "POST"]
    assert len(submits) == 1  # sent once: retrying could have made a second, charged job


@pytest.mark.mock_gateway(speed=SPEED, drop_rate=1.0)
def test_dropped_connections(mock_gateway_server: MockGateway) -> None:
    fast = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.02)
    with mock_client(mock_gateway_server, retry=fast) as client:
        with pytest.raises(APIConnectionError) as submit:
            client.submit(TextToImageRequest(prompt="x"))
        with pytest.raises(APIConnectionError):
            client.status("boogu-image_x")
    assert submit.value.request_sent
    calls = [(e["method"], e["status"]) for e in journal(mock_gateway_server)]
    assert calls == [("POST", 0)] + [("GET", 0)] * 3  # the submit once, the status call retried


def test_the_key_never_reaches_a_log_line(
    mock_gateway_server: MockGateway, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-mock-9f8e7d6c5b4a-PRIVATE"
    add_key(mock_gateway_server, secret, balance=0)
    caplog.set_level(logging.DEBUG)
    with mock_client(mock_gateway_server, secret) as client:
        with pytest.raises(InsufficientBalanceError) as caught:
            client.generate("x")
        texts = [str(caught.value), repr(caught.value), repr(client), repr(client.api)]
    assert "send_request_headers" in caplog.text  # httpcore's debug trace was on
    assert all(secret not in text for text in [*texts, caplog.text])


def test_webhooks_deliver_the_final_status(mock_gateway_server: MockGateway) -> None:
    seen: list[str] = []
    with (
        WebhookReceiver(on_status=lambda status: seen.append(status.status)) as receiver,
        mock_client(mock_gateway_server) as client,
    ):
        submission = client.submit(TextToImageRequest(prompt="a fox"), webhook_url=receiver.url)
        final = receiver.wait_for(submission.request_id, timeout=10)
        polled = client.status(submission.request_id)  # the body is not signed: confirm it
    assert final.status == "COMPLETED" == polled.status
    assert final.to_dict() == polled.to_dict()
    assert seen == ["COMPLETED"]


def test_results_of_sync_and_async_clients_agree(mock_gateway: MockGateway) -> None:
    with mock_client(mock_gateway) as client:
        sync_result = client.generate("same", seed=5)

    async def generate() -> Result:
        async with mock_async_client(mock_gateway) as client:
            return await client.generate("same", seed=5)

    async_result = asyncio.run(generate())
    assert type(sync_result) is type(async_result)
    assert sync_result.media_type == async_result.media_type
