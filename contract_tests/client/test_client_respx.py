"""The clients against a scripted gateway (respx), with a fake clock: retries and backoff, Retry-After,
no duplicate submit, timeouts, the wait deadline, unknown statuses, typed errors, downloads, and the
key never showing up where it must not."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from boogu import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    BadRequestError,
    Boogu,
    ConfigurationError,
    DownloadError,
    ForbiddenError,
    InsufficientBalanceError,
    JobErroredError,
    JobFailedError,
    JobNotFinishedError,
    JobStatus,
    ModelNotFoundError,
    NotFoundError,
    NotTheGatewayError,
    RateLimitError,
    RetryEvent,
    ServerError,
    Submission,
    TextToImageRequest,
    UnauthorizedError,
    UnknownStatusError,
    WaitTimeoutError,
)
from boogu_contract import shared_tls_context
from contract_tests.client.helpers import (
    BASE,
    RID,
    SECRET,
    STATUS_PATH,
    SUBMIT_PATH,
    FakeClock,
    answer,
    image_bytes,
    make_async_client,
    make_client,
    queued_body,
    status_body,
)

DEFAULT_TIMEOUT = {"connect": 5.0, "read": 30.0, "write": 30.0, "pool": 30.0}
ERRORS = {
    400: BadRequestError,
    401: UnauthorizedError,
    402: InsufficientBalanceError,
    403: ForbiddenError,
    404: NotFoundError,
    413: BadRequestError,
    415: BadRequestError,
}


def ok(status: str = "COMPLETED", **extra: Any) -> httpx.Response:
    return httpx.Response(200, json=status_body(status, **extra))


# Retries of status calls ---------------------------------------------------------------------


def test_status_retries_429_honoring_retry_after(router: respx.MockRouter, clock: FakeClock) -> None:
    route = router.get(STATUS_PATH).mock(side_effect=[answer(429, **{"Retry-After": "3"}), ok()])
    with make_client(clock, rand=0.0) as client:
        assert client.status(RID).status == "COMPLETED"
    assert route.call_count == 2
    assert clock.sleeps == [3.0]


def test_retry_after_jitter_only_lengthens_the_wait(router: respx.MockRouter, clock: FakeClock) -> None:
    router.get(STATUS_PATH).mock(side_effect=[answer(429, **{"Retry-After": "2"}), ok()])
    with make_client(clock, rand=0.999) as client:
        client.status(RID)
    assert len(clock.sleeps) == 1
    assert 2.0 <= clock.sleeps[0] <= 2.5


def test_status_retries_5xx_with_exponential_backoff(router: respx.MockRouter, clock: FakeClock) -> None:
    route = router.get(STATUS_PATH).mock(side_effect=[answer(500), answer(503), ok()])
    with make_client(clock, rand=0.0) as client:
        client.status(RID)
    assert route.call_count == 3
    assert clock.sleeps == [0.5, 1.0]


def test_backoff_has_jitter(router: respx.MockRouter, clock: FakeClock) -> None:
    router.get(STATUS_PATH).mock(side_effect=[answer(502), answer(502), ok()])
    with make_client(clock, rand=1.0) as client:
        client.status(RID)
    assert clock.sleeps == [0.375, 0.75]  # 25 % shorter at the top of the jitter


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped")],
    ids=lambda e: type(e).__name__,
)
def test_status_retries_connection_errors(
    router: respx.MockRouter, clock: FakeClock, error: Exception
) -> None:
    route = router.get(STATUS_PATH).mock(side_effect=[error, ok()])
    with make_client(clock) as client:
        assert client.status(RID).status == "COMPLETED"
    assert route.call_count == 2


def test_retries_are_bounded_and_configurable(router: respx.MockRouter, clock: FakeClock) -> None:
    route = router.get(STATUS_PATH).mock(return_value=answer(503))
    with make_client(clock) as client, pytest.raises(ServerError) as caught:
        client.status(RID)
    assert route.call_count == 3
    assert caught.value.status_code == 503
    route.reset()
    with make_client(clock, max_retries=5) as client, pytest.raises(ServerError):
        client.status(RID)
    assert route.call_count == 6
    route.reset()
    with make_client(clock, max_retries=0) as client, pytest.raises(ServerError):
        client.status(RID)
    assert route.call_count == 1


@pytest.mark.parametrize("code", sorted(ERRORS))
def test_client_errors_are_typed_and_never_retried(
    router: respx.MockRouter, clock: FakeClock, code: int
) -> None:
    status_route = router.get(STATUS_PATH).mock(return_value=answer(code))
    submit_route = router.post(SUBMIT_PATH).mock(return_value=answer(code))
    with make_client(clock) as client:
        with pytest.raises(ERRORS[code]) as caught:
            client.status(RID)
        error = caught.value
        assert (error.status_code, error.request_id) == (code, RID)
        assert error.message == f"the gateway says {code}"
        assert RID in str(error)
        with pytest.raises(ERRORS[code]):
            client.submit(TextToImageRequest(prompt="x"))
    assert status_route.call_count == submit_route.call_count == 1
    assert clock.sleeps == []


def test_model_not_found_has_its_own_error(router: respx.MockRouter, clock: FakeClock) -> None:
    body = {"error": "Model not found", "message": "Model 'boogu-image' not found or is disabled"}
    router.post(SUBMIT_PATH).mock(return_value=httpx.Response(400, json=body))
    with make_client(clock) as client, pytest.raises(ModelNotFoundError) as caught:
        client.submit(TextToImageRequest(prompt="x"))
    assert caught.value.error == "Model not found"
    assert isinstance(caught.value, BadRequestError)


def test_a_non_json_error_page_still_gives_a_typed_error(router: respx.MockRouter, clock: FakeClock) -> None:
    router.get(STATUS_PATH).mock(return_value=httpx.Response(502, text="<html>Bad Gateway</html>"))
    with make_client(clock, max_retries=0) as client, pytest.raises(ServerError) as caught:
        client.status(RID)
    assert caught.value.status_code == 502
    assert "Bad Gateway" in caught.value.message


# Submits: retried only when provably not accepted --------------------------------------------


def test_submit_is_retried_after_429_and_a_connection_never_made(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    route = router.post(SUBMIT_PATH).mock(
        side_effect=[
            answer(429, **{"Retry-After": "1"}),
            httpx.ConnectError("connection refused"),
            httpx.Response(202, json=queued_body()),
        ]
    )
    with make_client(clock, rand=0.0) as client:
        submission = client.submit(TextToImageRequest(prompt="a fox"))
    assert submission.request_id == RID
    assert route.call_count == 3
    # Only the last call reached a gateway that accepted it: one job.
    accepted = [c for c in route.calls if c.optional_response is not None and c.response.status_code == 202]
    assert len(accepted) == 1
    assert clock.sleeps == [1.0, 1.0]


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (httpx.ReadTimeout("no answer"), APITimeoutError),
        (httpx.WriteTimeout("stuck"), APITimeoutError),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), APIConnectionError),
        (httpx.ReadError("connection reset"), APIConnectionError),
    ],
    ids=lambda value: getattr(value, "__name__", type(value).__name__),
)
def test_submit_is_never_resent_after_it_may_have_arrived(
    router: respx.MockRouter, clock: FakeClock, error: Exception, kind: type[Exception]
) -> None:
    route = router.post(SUBMIT_PATH).mock(side_effect=[error, httpx.Response(202, json=queued_body())])
    with make_client(clock, max_retries=5) as client, pytest.raises(kind) as caught:
        client.submit(TextToImageRequest(prompt="a fox"))
    assert route.call_count == 1  # zero duplicate submits, zero double charges
    assert isinstance(caught.value, APIConnectionError)
    assert caught.value.request_sent
    assert "may have accepted the job" in str(caught.value)
    assert clock.sleeps == []


def test_submit_is_not_resent_after_a_5xx(router: respx.MockRouter, clock: FakeClock) -> None:
    route = router.post(SUBMIT_PATH).mock(side_effect=[answer(500), httpx.Response(202, json=queued_body())])
    with make_client(clock) as client, pytest.raises(ServerError):
        client.submit(TextToImageRequest(prompt="a fox"))
    assert route.call_count == 1


async def test_async_submit_follows_the_same_rules(router: respx.MockRouter, clock: FakeClock) -> None:
    route = router.post(SUBMIT_PATH).mock(
        side_effect=[answer(429, **{"Retry-After": "2"}), httpx.ReadTimeout("lost"), httpx.Response(202)]
    )
    async with make_async_client(clock, rand=0.0) as client:
        with pytest.raises(APITimeoutError):
            await client.submit(TextToImageRequest(prompt="a fox"))
    assert route.call_count == 2
    assert clock.sleeps == [2.0]


async def test_async_status_retries(router: respx.MockRouter, clock: FakeClock) -> None:
    route = router.get(STATUS_PATH).mock(side_effect=[httpx.ConnectError("refused"), answer(503), ok()])
    async with make_async_client(clock, rand=0.0) as client:
        assert (await client.status(RID)).status == "COMPLETED"
    assert route.call_count == 3
    assert clock.sleeps == [0.5, 1.0]


def test_a_newer_acceptance_body_still_gives_the_job(router: respx.MockRouter, clock: FakeClock) -> None:
    body = {"request_id": RID, "status": "ACCEPTED", "polling_url": f"{BASE}/v2/requests/status/{RID}"}
    router.post(SUBMIT_PATH).mock(return_value=httpx.Response(202, json=body))
    with make_client(clock) as client:
        assert client.submit(TextToImageRequest(prompt="x")).request_id == RID


def test_an_acceptance_without_request_id_is_reported(router: respx.MockRouter, clock: FakeClock) -> None:
    router.post(SUBMIT_PATH).mock(return_value=httpx.Response(202, json={"status": "QUEUED"}))
    with make_client(clock) as client, pytest.raises(APIResponseValidationError, match="no request_id"):
        client.submit(TextToImageRequest(prompt="x"))


# Rate limiting across calls ------------------------------------------------------------------


def test_a_429_holds_back_the_clients_next_calls(router: respx.MockRouter, clock: FakeClock) -> None:
    router.get(STATUS_PATH).mock(side_effect=[answer(429, **{"Retry-After": "4"}), ok()])
    with make_client(clock, max_retries=0) as client:
        with pytest.raises(RateLimitError) as caught:
            client.status(RID)
        assert caught.value.retry_after == 4.0
        client.status(RID)
    assert clock.sleeps == [4.0]


def test_max_requests_per_second_spaces_calls(router: respx.MockRouter, clock: FakeClock) -> None:
    router.get(STATUS_PATH).mock(return_value=ok())
    with make_client(clock, max_requests_per_second=2) as client:
        for _ in range(3):
            client.status(RID)
    assert clock.sleeps == [0.5, 0.5]


def test_retries_are_logged_and_reported_to_the_hook(
    router: respx.MockRouter, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[RetryEvent] = []
    router.get(STATUS_PATH).mock(side_effect=[answer(429, **{"Retry-After": "1"}), answer(500), ok()])
    caplog.set_level(logging.INFO, logger="boogu")
    with make_client(clock, rand=0.0, on_retry=events.append) as client:
        client.status(RID)
    assert [(e.attempt, e.max_attempts, e.delay) for e in events] == [(2, 3, 1.0), (3, 3, 1.0)]
    assert "HTTP 429, Retry-After 1 s" in events[0].reason
    assert events[0].operation == "get_request_status" and events[0].request_id == RID
    lines = [r.getMessage() for r in caplog.records if r.name == "boogu"]
    assert len(lines) == 2 and all(line.startswith("retrying get_request_status") for line in lines)


# Timeouts ------------------------------------------------------------------------------------


def capture_timeouts(router: respx.MockRouter) -> list[dict[str, float | None]]:
    seen: list[dict[str, float | None]] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return ok()

    router.get(STATUS_PATH).mock(side_effect=record)
    return seen


def test_timeouts_are_on_by_default(router: respx.MockRouter, clock: FakeClock) -> None:
    seen = capture_timeouts(router)
    with make_client(clock) as client:
        client.status(RID)
    assert seen == [DEFAULT_TIMEOUT]


def test_timeouts_per_client_and_per_call(router: respx.MockRouter, clock: FakeClock) -> None:
    seen = capture_timeouts(router)
    with make_client(clock, timeout=7.0) as client:
        client.status(RID)
        client.status(RID, timeout=2.0)
        client.status(RID, timeout=httpx.Timeout(9.0, connect=1.0))
        client.status(RID, timeout=None)
        client.status(RID)
    assert seen == [
        dict.fromkeys(DEFAULT_TIMEOUT, 7.0),
        dict.fromkeys(DEFAULT_TIMEOUT, 2.0),
        {"connect": 1.0, "read": 9.0, "write": 9.0, "pool": 9.0},
        dict.fromkeys(DEFAULT_TIMEOUT),
        dict.fromkeys(DEFAULT_TIMEOUT, 7.0),
    ]


def test_a_sync_mode_submit_gets_time_for_the_images(router: respx.MockRouter, clock: FakeClock) -> None:
    seen: list[dict[str, float | None]] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json=status_body("COMPLETED"))

    router.post(SUBMIT_PATH).mock(side_effect=record)
    with make_client(clock) as client:
        submission = client.submit(TextToImageRequest(prompt="x", sync_mode=True, num_images=4))
    assert submission.finished is not None and submission.finished.status == "COMPLETED"
    read = seen[0]["read"]
    assert read is not None and read >= 2 * 60 + 10  # 4 images, 30 steps, 0.5 s each: doubled


# Waiting -------------------------------------------------------------------------------------


def scripted_job(clock: FakeClock, duration: float, *, started: float | None = None):
    """A status endpoint whose job finishes `duration` s after `started` on the fake clock."""
    began = clock.wall if started is None else started

    def status(request: httpx.Request) -> httpx.Response:
        done = clock.wall >= began + duration
        body = status_body("COMPLETED" if done else "PROCESSING", at=began)
        if done:
            body["completed_at"] = body["updated_at"] = _iso(began + duration)
        return httpx.Response(200, json=body)

    return status


def _iso(at: float) -> str:
    from boogu_contract import iso_time

    return iso_time(at)


def test_wait_notices_a_15_second_job_fast_with_few_calls(router: respx.MockRouter, clock: FakeClock) -> None:
    route = router.get(STATUS_PATH).mock(side_effect=scripted_job(clock, 15.0))
    updates: list[JobStatus] = []
    with make_client(clock) as client:
        submission = Submission(request_id=RID, submitted_at=clock.wall, units=30)
        result = client.wait(submission, on_update=updates.append)
    assert result.request_id == RID and result.media_urls == ("https://cdn.test/out/output.jpeg",)
    assert result.timings.notice_delay is not None and 0 <= result.timings.notice_delay <= 0.5
    assert result.timings.duration == 15.0
    assert route.call_count == result.timings.status_calls == len(updates) <= 20
    assert [u.status for u in updates][-1] == "COMPLETED"


def test_wait_on_a_bare_id_looks_at_once_and_uses_created_at(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    router.get(STATUS_PATH).mock(side_effect=scripted_job(clock, 15.0, started=clock.wall - 14.0))
    with make_client(clock) as client:
        result = client.wait(RID)
    assert clock.sleeps[0] > 0  # first look at once, then the next poll near the expected end
    assert result.timings.status_calls <= 5
    assert result.timings.notice_delay is not None and result.timings.notice_delay <= 0.5


def test_wait_has_a_total_deadline(router: respx.MockRouter, clock: FakeClock) -> None:
    route = router.get(STATUS_PATH).mock(return_value=ok("PROCESSING"))
    start = clock.mono
    with make_client(clock) as client, pytest.raises(WaitTimeoutError) as caught:
        client.wait(RID, timeout=30)
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.last is not None and caught.value.last.status == "PROCESSING"
    assert caught.value.request_id == RID and "30 s" in str(caught.value)
    assert clock.mono - start == pytest.approx(30.0)
    assert route.call_count < 30  # sparse early, dense near 15 s, then backing off


def test_the_wait_deadline_caps_each_calls_timeout(router: respx.MockRouter, clock: FakeClock) -> None:
    seen: list[dict[str, float | None]] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return ok("PROCESSING")

    router.get(STATUS_PATH).mock(side_effect=record)
    with make_client(clock) as client, pytest.raises(WaitTimeoutError):
        client.wait(RID, timeout=3)
    assert all(value is not None and value <= 3 + 1.0 for t in seen for value in t.values())


async def test_async_wait_deadline(router: respx.MockRouter, clock: FakeClock) -> None:
    router.get(STATUS_PATH).mock(return_value=ok("QUEUED"))
    async with make_async_client(clock) as client:
        with pytest.raises(WaitTimeoutError):
            await client.wait(RID, timeout=12)


def test_wait_rides_out_rate_limiting(router: respx.MockRouter, clock: FakeClock) -> None:
    router.get(STATUS_PATH).mock(
        side_effect=[answer(429, **{"Retry-After": "2"}), answer(429, **{"Retry-After": "2"}), ok()]
    )
    with make_client(clock, max_retries=0) as client:
        assert client.wait(RID).status.status == "COMPLETED"
    assert sum(clock.sleeps) >= 4.0


def test_wait_raises_the_jobs_own_errors_with_the_payload(router: respx.MockRouter, clock: FakeClock) -> None:
    router.get(STATUS_PATH).mock(side_effect=[ok("FAILED"), ok("ERROR")])
    with make_client(clock) as client:
        with pytest.raises(JobFailedError) as failed:
            client.wait(RID)
        with pytest.raises(JobErroredError) as errored:
            client.wait(RID)
    assert failed.value.charged is True and failed.value.error == "flagged"
    assert failed.value.status.raw["status"] == "FAILED"
    assert errored.value.charged is False and errored.value.status.error == "worker died"


def test_unknown_status_is_visible_and_waited_through(router: respx.MockRouter, clock: FakeClock) -> None:
    router.get(STATUS_PATH).mock(side_effect=[ok("SCHEDULED", queue_position=4), ok(gpu="h100")])
    seen: list[JobStatus] = []
    with make_client(clock) as client:
        result = client.wait(RID, on_update=seen.append)
    assert [(s.status, s.raw_status) for s in seen] == [("UNKNOWN", "SCHEDULED"), ("COMPLETED", "COMPLETED")]
    assert seen[0].raw["queue_position"] == 4
    assert result.status.raw["gpu"] == "h100"


def test_status_with_an_unknown_value_does_not_crash(router: respx.MockRouter, clock: FakeClock) -> None:
    router.get(STATUS_PATH).mock(return_value=ok("PAUSED"))
    with make_client(clock) as client:
        status = client.status(RID)
    assert (status.status, status.raw_status, status.finished) == ("UNKNOWN", "PAUSED", False)


async def test_an_unknown_final_status_ends_the_wait(router: respx.MockRouter, clock: FakeClock) -> None:
    router.get(STATUS_PATH).mock(return_value=ok("CANCELLED", completed_at="2026-03-31T10:00:09.000Z"))
    async with make_async_client(clock) as client:
        with pytest.raises(UnknownStatusError) as caught:
            await client.wait(RID)
    assert caught.value.status.raw_status == "CANCELLED"


def test_a_200_that_breaks_the_contract_is_reported(router: respx.MockRouter, clock: FakeClock) -> None:
    router.get(STATUS_PATH).mock(return_value=httpx.Response(200, json={"request_id": 5}))
    with make_client(clock) as client, pytest.raises(APIResponseValidationError):
        client.status(RID)


@pytest.mark.parametrize(
    ("answer", "label"),
    [
        (httpx.Response(200, html="<html><body>Welcome to nginx!</body></html>"), "HTML 200"),
        (httpx.Response(200, text="oops"), "text/plain 200"),
        (httpx.Response(404, html="<h1>Not Found</h1>"), "HTML 404"),
    ],
)
def test_an_answer_that_is_not_json_is_not_from_the_gateway(
    router: respx.MockRouter, clock: FakeClock, answer: httpx.Response, label: str
) -> None:
    router.post(SUBMIT_PATH).mock(return_value=answer)
    router.get(STATUS_PATH).mock(return_value=answer)
    message = f"the server at {BASE} is not the gateway ({label})"
    with make_client(clock) as client:
        with pytest.raises(NotTheGatewayError, match=re.escape(message)) as caught:
            client.submit(TextToImageRequest(prompt="a fox"))
        assert caught.value.request_sent  # for a submit: the request did leave
        with pytest.raises(NotTheGatewayError, match=re.escape(message)):
            client.status(RID)
    assert len(router.calls) == 2  # never retried


async def test_async_on_update_callbacks_are_awaited(router: respx.MockRouter, clock: FakeClock) -> None:
    router.get(STATUS_PATH).mock(
        side_effect=[httpx.Response(200, json=status_body(s)) for s in ("PROCESSING", "COMPLETED")]
    )
    seen: list[str] = []

    async def on_update(status: JobStatus) -> None:
        await asyncio.sleep(0)
        seen.append(status.status)

    async with make_async_client(clock) as client:
        await client.wait(RID, on_update=on_update)
    assert seen == ["PROCESSING", "COMPLETED"]


def test_the_blocking_client_refuses_an_async_on_update(router: respx.MockRouter, clock: FakeClock) -> None:
    router.get(STATUS_PATH).mock(return_value=httpx.Response(200, json=status_body("COMPLETED")))

    async def on_update(status: JobStatus) -> None:
        del status

    with make_client(clock) as client, pytest.raises(ConfigurationError, match="use AsyncBoogu"):
        client.wait(RID, on_update=on_update)


def test_the_pool_is_sized_to_the_client_and_keeps_every_connection_alive(clock: FakeClock) -> None:
    for size in (1, 64, 1000):
        with make_client(clock, max_connections=size) as client:
            transport: Any = client._http._transport
            pool = transport._pool  # httpcore's pool: the figures that matter
            assert (pool._max_connections, pool._max_keepalive_connections) == (size, size)
            assert client._slots == size
    with make_client(clock) as client:
        default: Any = client._http._transport
        assert default._pool._max_keepalive_connections == 100
    limits = httpx.Limits(max_connections=7, max_keepalive_connections=3)
    with make_client(clock, httpx_args={"limits": limits}) as client:
        assert client._slots == 7  # what the caller chose wins
    with pytest.raises(ValueError, match="max_connections"):
        make_client(clock, max_connections=0)


def test_clients_share_one_tls_context_unless_given_their_own(clock: FakeClock) -> None:
    """httpx builds a context for each client (40 ms of CPU loading the CA bundle): one serves all."""
    with make_client(clock) as first, make_client(clock) as second:
        contexts = [client._http._transport._pool._ssl_context for client in (first, second)]  # type: ignore[attr-defined]
        assert contexts[0] is contexts[1] is shared_tls_context()
    with make_client(clock, httpx_args={"verify": False}) as own:
        assert own._http._transport._pool._ssl_context is not shared_tls_context()  # type: ignore[attr-defined]


async def test_no_more_calls_are_in_flight_than_connections(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    in_flight, most = 0, 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        return httpx.Response(200, json=status_body("PROCESSING"))

    router.get(STATUS_PATH).mock(side_effect=slow)
    async with make_async_client(clock, max_connections=3) as client:
        await asyncio.gather(*(client.status(RID) for _ in range(20)))
    assert most == 3


# Downloads -----------------------------------------------------------------------------------


def cdn(router: respx.MockRouter) -> respx.Route:
    return router.route(method="GET", scheme="https", host="cdn.test", path="/out/output.jpeg")


def completed(url: str = "https://cdn.test/out/output.jpeg", media_type: str = "image/jpeg") -> JobStatus:
    return JobStatus.parse(status_body("COMPLETED", output={"media_url": [url], "media_type": media_type}))


def test_download_streams_checks_and_never_sends_the_key(
    router: respx.MockRouter, clock: FakeClock, tmp_path
) -> None:
    jpeg = image_bytes("JPEG")
    route = cdn(router).mock(return_value=httpx.Response(200, content=jpeg))
    with make_client(clock) as client:
        files = client.download(completed(), tmp_path / "images")
    assert files == [tmp_path / "images" / f"{RID}_0.jpg"]
    assert files[0].read_bytes() == jpeg
    assert "ocp-apim-subscription-key" not in route.calls.last.request.headers
    assert list((tmp_path / "images").iterdir()) == files  # no .part left behind


def test_a_truncated_download_is_fetched_again(router: respx.MockRouter, clock: FakeClock, tmp_path) -> None:
    jpeg = image_bytes("JPEG")
    cut = httpx.Response(200, content=jpeg[:10], headers={"Content-Length": str(len(jpeg))})
    route = cdn(router).mock(side_effect=[cut, httpx.Response(200, content=jpeg)])
    with make_client(clock) as client:
        files = client.download(completed(), tmp_path)
    assert route.call_count == 2 and files[0].read_bytes() == jpeg


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(200, content=b"<html>login</html>"), "not an image"),
        (httpx.Response(200, content=b"\x89PNG\r\n\x1a\n...."), "is image/png"),
        (httpx.Response(404), "HTTP 404"),
    ],
    ids=["not-an-image", "wrong-type", "missing"],
)
def test_a_bad_download_raises_and_leaves_no_file(
    router: respx.MockRouter, clock: FakeClock, tmp_path, response: httpx.Response, message: str
) -> None:
    cdn(router).mock(return_value=response)
    with make_client(clock) as client, pytest.raises(DownloadError, match=message) as caught:
        client.download(completed(), tmp_path)
    assert caught.value.url == "https://cdn.test/out/output.jpeg"
    assert list(tmp_path.iterdir()) == []


def test_download_of_inline_sync_mode_images(clock: FakeClock, tmp_path) -> None:
    from boogu._media import to_data_uri

    png = image_bytes("PNG")
    with make_client(clock) as client:
        files = client.download(completed(to_data_uri(png), "image/png"), tmp_path, stem="inline")
    assert files == [tmp_path / "inline_0.png"] and files[0].read_bytes() == png


def test_download_of_an_unfinished_or_failed_job_says_so(clock: FakeClock, tmp_path) -> None:
    with make_client(clock) as client:
        with pytest.raises(JobNotFinishedError):
            client.download(JobStatus.parse(status_body("PROCESSING")), tmp_path)
        with pytest.raises(JobFailedError):
            client.download(JobStatus.parse(status_body("FAILED")), tmp_path)


# Configuration and secrecy -------------------------------------------------------------------


def test_configuration_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOOGU_API_KEY", raising=False)
    monkeypatch.delenv("BOOGU_BASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match="BOOGU_API_KEY"):
        Boogu()
    monkeypatch.setenv("BOOGU_API_KEY", SECRET)
    with Boogu() as client:
        assert client.base_url == "https://gateway.pixazo.ai"
    monkeypatch.setenv("BOOGU_BASE_URL", "http://127.0.0.1:8080/")
    with Boogu() as client:
        assert client.base_url == "http://127.0.0.1:8080"
    with pytest.raises(ConfigurationError, match="base URL"):
        Boogu(base_url="ftp://example.test")


def test_the_key_never_appears_in_errors_reprs_or_logs(
    router: respx.MockRouter, clock: FakeClock, caplog: pytest.LogCaptureFixture, tmp_path
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx, httpcore and boogu, all of it
    router.get(STATUS_PATH).mock(
        side_effect=[answer(401), answer(503), httpx.ConnectError("refused"), answer(503), ok("PROCESSING")]
    )
    router.post(SUBMIT_PATH).mock(side_effect=[httpx.ReadTimeout("lost"), answer(402)])
    cdn(router).mock(return_value=httpx.Response(500))
    texts: list[str] = []
    with make_client(clock, max_retries=2) as client:
        texts += [repr(client), str(client.__dict__), repr(client.api)]
        attempts: list[Callable[[], object]] = [
            lambda: client.status(RID),
            lambda: client.status(RID),
            lambda: client.submit(TextToImageRequest(prompt="x")),
            lambda: client.submit(TextToImageRequest(prompt="x")),
            lambda: client.wait(RID, timeout=0.5),
            lambda: client.download(completed(), tmp_path),
        ]
        for attempt in attempts:
            with pytest.raises(Exception) as caught:  # noqa: PT011 - every kind of failure, on purpose
                attempt()
            error = caught.value
            texts += [str(error), repr(error), repr(error.__dict__), repr(error.__cause__)]
    texts.append(caplog.text)
    sent = {
        call.request.url.host: call.request.headers.get("Ocp-Apim-Subscription-Key") for call in router.calls
    }
    assert sent == {"gateway.test": SECRET, "cdn.test": None}  # it was used, and only with the gateway
    leaks = [text for text in texts if SECRET in text]
    assert leaks == []


def test_edit_takes_a_local_file(router: respx.MockRouter, clock: FakeClock, tmp_path) -> None:
    png = image_bytes("PNG")
    (tmp_path / "photo.png").write_bytes(png)
    route = router.post("/boogu-image-edit/v1/boogu-image-edit-request").mock(
        return_value=httpx.Response(200, json=status_body("COMPLETED", model_id="boogu-image-edit"))
    )
    with make_client(clock) as client:
        client.edit("make it blue", tmp_path / "photo.png", sync_mode=True, image_guidance_scale=2.0)
    sent = json.loads(route.calls.last.request.content)
    assert sent["image_url"].startswith("data:image/png;base64,")
    assert sent["image_guidance_scale"] == 2.0 and sent["sync_mode"] is True


def test_unknown_parameters_fail_before_any_call(router: respx.MockRouter, clock: FakeClock) -> None:
    with make_client(clock) as client, pytest.raises(TypeError):
        client.generate("x", num_image=2)  # type: ignore[call-arg]
    assert not router.calls
