"""The pure core: retry decisions, backoff, Retry-After, the poll schedule, pacing, media checks,
and the lenient status model. No network, no sleeping."""

from __future__ import annotations

import asyncio
import base64
import itertools
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from boogu import JobStatus, PollPolicy, RetryPolicy, UnknownStatusError, WebhookError
from boogu._media import check_image, decode_data_uri, extension_for, image_reference, sniff, to_data_uri
from boogu._polling import Latency, PaceModel, Timeline, next_poll_at, poll_times
from boogu._retry import backoff_delay, decide, parse_retry_after
from boogu._scheduler import PollScheduler
from boogu._throttle import RateLimiter
from boogu.webhooks import parse_webhook
from boogu_contract import iso_time as iso
from contract_tests.client.helpers import START, FakeClock, image_bytes, status_body

POLICY = RetryPolicy()
NEVER_SENT = [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow dns"), httpx.PoolTimeout("pool full")]
MAYBE_SENT = [
    httpx.ReadTimeout("no answer"),
    httpx.WriteTimeout("stuck writing"),
    httpx.RemoteProtocolError("Server disconnected without sending a response."),
    httpx.ReadError("reset by peer"),
    httpx.WriteError("broken pipe"),
]


# Retry decisions -----------------------------------------------------------------------------


@pytest.mark.parametrize("status_code", [400, 401, 402, 403, 404, 413, 415, 422])
@pytest.mark.parametrize("idempotent", [True, False])
def test_client_errors_are_never_retried(status_code: int, idempotent: bool) -> None:
    decision = decide(idempotent=idempotent, retries_done=0, policy=POLICY, rand=0.5, status_code=status_code)
    assert not decision.retry


@pytest.mark.parametrize("status_code", [408, 429, 500, 502, 503, 504])
def test_status_calls_retry_429_408_and_5xx(status_code: int) -> None:
    assert decide(idempotent=True, retries_done=0, policy=POLICY, rand=0.5, status_code=status_code).retry


@pytest.mark.parametrize("status_code", [408, 500, 502, 503, 504])
def test_submits_are_not_retried_after_an_answer_that_may_have_created_a_job(status_code: int) -> None:
    assert not decide(
        idempotent=False, retries_done=0, policy=POLICY, rand=0.5, status_code=status_code
    ).retry


def test_submits_are_retried_after_429() -> None:
    assert decide(idempotent=False, retries_done=0, policy=POLICY, rand=0.5, status_code=429).retry


@pytest.mark.parametrize("error", NEVER_SENT, ids=lambda e: type(e).__name__)
def test_submits_are_retried_when_the_request_never_left(error: httpx.RequestError) -> None:
    assert decide(idempotent=False, retries_done=0, policy=POLICY, rand=0.5, error=error).retry


@pytest.mark.parametrize("error", MAYBE_SENT, ids=lambda e: type(e).__name__)
def test_submits_are_not_retried_when_the_request_may_have_arrived(error: httpx.RequestError) -> None:
    assert not decide(idempotent=False, retries_done=0, policy=POLICY, rand=0.5, error=error).retry
    assert decide(idempotent=True, retries_done=0, policy=POLICY, rand=0.5, error=error).retry


def test_2xx_is_not_retried() -> None:
    assert not decide(idempotent=True, retries_done=0, policy=POLICY, rand=0.5, status_code=200).retry


def test_retries_stop_at_the_budget() -> None:
    policy = RetryPolicy(max_retries=3)
    allowed = [
        decide(idempotent=True, retries_done=n, policy=policy, rand=0.5, status_code=503).retry
        for n in range(5)
    ]
    assert allowed == [True, True, True, False, False]
    assert not decide(
        idempotent=True, retries_done=0, policy=RetryPolicy(max_retries=0), rand=0, status_code=503
    ).retry


def test_backoff_doubles_is_capped_and_jitter_only_shortens() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=8.0, jitter=0.25)
    assert [backoff_delay(n, policy, 0.0) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    for n in range(7):
        full = backoff_delay(n, policy, 0.0)
        for rand in (0.0, 0.3, 0.999):
            assert 0.75 * full <= backoff_delay(n, policy, rand) <= full
    assert backoff_delay(2, policy, 0.1) != backoff_delay(2, policy, 0.9)


def test_retry_after_is_honored_as_a_minimum() -> None:
    for rand in (0.0, 0.5, 0.999):
        decision = decide(
            idempotent=True, retries_done=0, policy=POLICY, rand=rand, status_code=429, retry_after=3
        )
        assert decision.retry
        assert 3.0 <= decision.delay <= 3.0 * 1.25
        assert "Retry-After 3" in decision.reason


def test_a_retry_after_beyond_the_limit_goes_to_the_caller() -> None:
    decision = decide(
        idempotent=True, retries_done=0, policy=POLICY, rand=0.5, status_code=429, retry_after=3600
    )
    assert not decision.retry


def test_no_retry_overruns_a_deadline() -> None:
    assert not decide(
        idempotent=True, retries_done=0, policy=POLICY, rand=0, status_code=503, time_left=0.2
    ).retry
    assert decide(idempotent=True, retries_done=0, policy=POLICY, rand=0, status_code=503, time_left=5).retry


def test_parse_retry_after() -> None:
    assert parse_retry_after(httpx.Headers({"Retry-After": "3"}), START) == 3.0
    assert parse_retry_after(httpx.Headers({"Retry-After": "1.5"}), START) == 1.5
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "250"}), START) == 0.25
    date = format_datetime(datetime.fromtimestamp(START + 7, UTC), usegmt=True)
    assert parse_retry_after(httpx.Headers({"Retry-After": date}), START) == pytest.approx(7.0)
    assert parse_retry_after(httpx.Headers({"Retry-After": "-4"}), START) == 0.0
    assert parse_retry_after(httpx.Headers({"Retry-After": "soon"}), START) is None
    assert parse_retry_after(httpx.Headers({}), START) is None


def test_retry_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=2)


# The rate limiter ----------------------------------------------------------------------------


def test_the_limiter_is_unlimited_until_told_and_holds_everyone_for_a_long_retry_after() -> None:
    limiter = RateLimiter()
    assert [limiter.reserve(100.0) for _ in range(50)] == [0.0] * 50
    limiter.limited(100.0, retry_after=3.0)  # the key is shut for a while, not a token away
    assert limiter.reserve(100.5) == pytest.approx(2.5)


def test_the_limiter_caps_at_max_per_second() -> None:
    limiter = RateLimiter(max_per_second=4)
    waits = [limiter.reserve(10.0) for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.25, 0.5, 0.75])
    assert limiter.reserve(20.0) == 0.0


def test_a_429_sets_the_rate_just_under_what_got_through_and_retries_come_back_one_by_one() -> None:
    limiter = RateLimiter()
    for i in range(20):  # 20 calls got through in the last second
        limiter.succeeded(10.0 + i * 0.05)
    limiter.limited(10.99, retry_after=1.0)
    assert limiter.rate == pytest.approx(19.0, rel=0.02)
    assert limiter.reserve(10.99) == pytest.approx(
        1 / 19, rel=0.02
    )  # a short Retry-After does not stop everyone
    waits = [limiter.reserve(12.0) for _ in range(5)]  # five refused calls back after their Retry-After
    gaps = [b - a for a, b in itertools.pairwise(waits)]
    assert gaps == pytest.approx([1 / 19] * 4, rel=0.2)
    limiter.limited(11.5, retry_after=1.0)  # the same burst of refusals counts once
    assert limiter.rate == pytest.approx(19.0, rel=0.1)


def test_a_burst_at_start_up_is_not_taken_for_the_rate() -> None:
    limiter = RateLimiter()
    for _ in range(5):  # the gateway's burst, all at once
        limiter.succeeded(50.0)
    limiter.limited(50.01, retry_after=1.0)
    assert limiter.rate == pytest.approx(0.95 * 5 / 0.25)  # over a quarter second, not over an instant


def test_the_learned_rate_grows_only_while_callers_queue() -> None:
    limiter = RateLimiter()
    for i in range(10):
        limiter.succeeded(10.0 + i * 0.1)
    limiter.limited(11.0, retry_after=1.0)
    rate = limiter.rate
    assert rate is not None
    limiter.reserve(20.0)  # idle for nine seconds: no evidence that more would get through
    assert limiter.rate == pytest.approx(rate)
    now = 30.0
    for _ in range(200):  # callers queue, and every call gets through
        now += limiter.reserve(now)
        limiter.succeeded(now)
    assert limiter.rate is not None and limiter.rate > rate
    assert RateLimiter(max_per_second=5).rate == 5


# The poll schedule ---------------------------------------------------------------------------


def test_a_15_second_job_is_noticed_within_half_a_second_in_at_most_20_calls() -> None:
    policy = PollPolicy()
    for actual in (14.0, 15.0, 15.3, 16.0, 17.5):  # the job may take a little more or less
        polls = poll_times(15.0, 60.0, policy)
        noticed = next(t for t in polls if t >= actual)
        assert noticed - actual <= 0.5 + 1e-9
        assert len([t for t in polls if t <= noticed]) <= 20


def test_the_schedule_is_sparse_early_dense_near_the_end_and_backs_off_after() -> None:
    policy = PollPolicy()
    polls = poll_times(15.0, 120.0, policy)
    assert polls == sorted(polls)
    early = [t for t in polls if t < 12.0]
    assert early == [1.0, 2.0, 4.0, 8.0]
    gaps = [b - a for a, b in itertools.pairwise(polls)]
    dense = [gap for a, gap in zip(polls, gaps, strict=False) if 12.0 <= a < 18.0]
    assert dense and all(gap == pytest.approx(0.5) for gap in dense)
    late = [gap for a, gap in zip(polls, gaps, strict=False) if a >= 18.0]
    assert late == sorted(late)
    assert max(late) == policy.max_interval


@pytest.mark.parametrize(
    ("expected", "lag"), [(0.15, 0.5), (1.5, 0.5), (5.0, 0.5), (30.0, 0.5), (100.0, 1.0)]
)
def test_any_job_size_is_noticed_quickly_and_cheaply(expected: float, lag: float) -> None:
    polls = poll_times(expected, expected * 3, PollPolicy())
    noticed = next(t for t in polls if t >= expected)
    assert noticed - expected <= lag
    assert len([t for t in polls if t <= noticed]) <= 20


def test_no_poll_comes_sooner_than_a_status_call_takes() -> None:
    policy = PollPolicy()
    for elapsed in (0.0, 0.1, 0.12, 0.15, 0.3, 2.0):
        assert next_poll_at(elapsed, 0.15, policy, floor=0.4) >= elapsed + 0.4
    assert next_poll_at(14.0, 15.0, policy, floor=0.01) == next_poll_at(14.0, 15.0, policy)
    latency = Latency()
    for _ in range(20):
        latency.observe(0.3)
    assert latency.seconds == pytest.approx(0.3, rel=0.02)


def status_at(status: str, *, created: float, updated: float) -> JobStatus:
    return JobStatus.parse(status_body(status, at=created, updated_at=iso(updated)))


def test_a_queued_job_is_polled_with_a_backoff_and_its_start_anchors_the_schedule() -> None:
    policy = PollPolicy()
    timeline = Timeline(begun=1000.0)
    assert timeline.next_look(15.0, policy) == 1001.0  # nothing seen: as if it started at the submit
    looks = []
    now = 1001.0
    while now < 1030.0:  # queued behind other jobs for 30 s
        timeline.observe(status_at("QUEUED", created=1000.0, updated=1000.0), now)
        next_look = timeline.next_look(15.0, policy)
        assert next_look is not None
        looks.append(next_look - now)
        now = next_look
    assert looks == sorted(looks) and max(looks) == pytest.approx(7.5)  # half the job's expected time
    assert len(looks) <= 8
    timeline.observe(status_at("PROCESSING", created=1000.0, updated=1029.0), now)
    assert timeline.started == 1029.0 and timeline.started_at is not None
    # The rest of the schedule counts from the start seen in updated_at, not from the submit.
    assert timeline.next_look(15.0, policy) == pytest.approx(
        1031.0 + next_poll_at(now - 1031.0, 15.0, policy)
    )
    timeline.observe(status_at("PROCESSING", created=1000.0, updated=1040.0), now + 9)
    assert timeline.started == 1029.0  # later progress updates do not move the start


def test_a_start_from_a_skewed_gateway_clock_stays_between_the_submit_and_now() -> None:
    timeline = Timeline(begun=1000.0)
    timeline.observe(status_at("PROCESSING", created=900.0, updated=5000.0), 1002.0)
    assert timeline.started == 1002.0
    timeline = Timeline(begun=1000.0)
    timeline.observe(status_at("PROCESSING", created=900.0, updated=900.0), 1002.0)
    assert timeline.started == 1000.0


def test_the_dense_window_widens_with_the_spread_of_durations_seen() -> None:
    policy = PollPolicy()
    steady, varied = PaceModel(), PaceModel()
    assert steady.window(policy) == policy.window
    for seconds in (15.0, 15.0, 15.1, 14.9):
        steady.observe(30, seconds)
    for seconds in (15.0, 21.0, 10.0, 19.0, 11.0):
        varied.observe(30, seconds)
    assert steady.window(policy) == policy.window
    assert policy.window < varied.window(policy) <= policy.max_window_share


def test_a_poll_is_never_scheduled_in_the_past() -> None:
    policy = PollPolicy()
    for elapsed in (0.0, 0.5, 3.0, 11.9, 14.0, 30.0, 500.0):
        assert next_poll_at(elapsed, 15.0, policy) > elapsed


def test_pace_model_learns_a_faster_gateway_within_a_few_jobs() -> None:
    pace = PaceModel()
    assert pace.expected(30) == 15.0
    for _ in range(4):
        pace.observe(30, 0.15)  # the mock at speed 100
    assert pace.expected(30) < 0.5
    pace.observe(0, 10.0)
    pace.observe(30, -1.0)
    assert pace.expected(30) < 0.5


# Media ---------------------------------------------------------------------------------------


def test_sniff_and_extensions() -> None:
    assert sniff(image_bytes("JPEG")) == "image/jpeg"
    assert sniff(image_bytes("PNG")) == "image/png"
    assert sniff(image_bytes("WEBP")) == "image/webp"
    assert sniff(b"<html>") is None
    assert extension_for("image/jpeg") == ".jpg"
    assert extension_for("image/png; charset=binary") == ".png"
    assert extension_for("application/x-unknown") == ".bin"


def test_check_image() -> None:
    jpeg = image_bytes("JPEG")
    head, size = jpeg[:16], len(jpeg)
    assert check_image(head=head, size=size, content_length=str(size), expected_type="image/jpeg") == (
        None,
        False,
    )
    truncated = check_image(head=head, size=size, content_length=str(size + 5), expected_type="image/jpeg")
    assert truncated[1] is True  # worth downloading again
    problem, retryable = check_image(
        head=jpeg[:16], size=len(jpeg), content_length=None, expected_type="image/png"
    )
    assert problem is not None and "image/png" in problem and not retryable
    assert check_image(head=b"", size=0, content_length=None, expected_type="image/png")[1] is True


def test_data_uris_round_trip(tmp_path) -> None:
    png = image_bytes("PNG")
    uri = to_data_uri(png)
    assert uri.startswith("data:image/png;base64,")
    assert decode_data_uri(uri) == ("image/png", png)
    path = tmp_path / "in.png"
    path.write_bytes(png)
    assert image_reference(path) == uri
    assert image_reference(str(path)) == uri
    assert image_reference(png) == uri
    assert image_reference("https://example.test/a.png") == "https://example.test/a.png"
    with pytest.raises(ValueError, match="not a JPEG"):
        to_data_uri(b"plain text")
    with pytest.raises(ValueError, match="base64"):
        decode_data_uri("data:image/png;base64,@@@")
    assert base64.b64decode(uri.split(",")[1]) == png


# The status model ----------------------------------------------------------------------------


def test_known_status_parses_through_the_generated_model_and_keeps_new_fields() -> None:
    status = JobStatus.parse(status_body("COMPLETED", nsfw_score=0.01))
    assert status.status == "COMPLETED"
    assert status.output is not None and status.output.media_type == "image/jpeg"
    assert status.raw["nsfw_score"] == 0.01
    assert status.to_model().additional_properties == {"nsfw_score": 0.01}
    assert status.finished
    assert status.completed_at == datetime.fromtimestamp(START + 15, UTC)


def test_unknown_status_is_surfaced_not_raised() -> None:
    status = JobStatus.parse(status_body("SCHEDULED", queue_position=3))
    assert (status.status, status.raw_status, status.raw["queue_position"]) == ("UNKNOWN", "SCHEDULED", 3)
    assert not status.finished
    with pytest.raises(ValueError, match="SCHEDULED"):
        status.to_model()
    ended = JobStatus.parse({**status_body("CANCELLED"), "completed_at": "2026-03-31T10:00:05.000Z"})
    assert ended.status == "UNKNOWN" and ended.finished


@pytest.mark.parametrize(
    "body",
    [[], {"status": "QUEUED"}, {"request_id": "x"}, {**status_body("COMPLETED"), "output": {"media_url": 3}}],
)
def test_broken_status_objects_are_refused(body: object) -> None:
    with pytest.raises(ValueError, match=r"status|request_id|output"):
        JobStatus.parse(body)


# Webhook bodies ------------------------------------------------------------------------------


def test_parse_webhook_gives_the_generated_model() -> None:
    import json

    model = parse_webhook(json.dumps(status_body("COMPLETED")).encode())
    assert model.status == "COMPLETED"
    assert parse_webhook(status_body("FAILED")).error == "flagged"


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"request_id": "x"}', {**status_body("COMPLETED"), "output": None}],
    ids=["not-json", "array", "no-status", "completed-without-output"],
)
def test_parse_webhook_refuses_invalid_bodies(body: bytes | dict[str, object]) -> None:
    with pytest.raises(WebhookError):
        parse_webhook(body)


def test_parse_webhook_reports_an_unknown_status_with_its_payload() -> None:
    with pytest.raises(UnknownStatusError) as caught:
        parse_webhook(status_body("EXPIRED"))
    assert caught.value.status.raw_status == "EXPIRED"
    assert caught.value.request_id == status_body("EXPIRED")["request_id"]


# The poll scheduler --------------------------------------------------------------------------


async def test_one_timer_wakes_every_poll_in_due_order_and_coalesces_those_due_together() -> None:
    clock = FakeClock()
    scheduler = PollScheduler(lambda: clock.mono, clock.asleep)
    woken: list[float] = []

    async def poll(delay: float) -> None:
        await scheduler.sleep(delay)
        woken.append(delay)

    delays = [float(i % 5) + 0.5 for i in range(500)]  # 500 waits, due at only five moments
    waits = [asyncio.create_task(poll(delay)) for delay in delays]
    cancelled = asyncio.create_task(poll(2.5))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(*waits)
    assert woken == sorted(delays)
    assert len(clock.sleeps) <= 5  # one sleep per distinct due time, not one per waiter
    await scheduler.close()
