"""The pure core of the mock's jobs: the timeline, the state machine, timestamps, ids and the job store.

No server and no gateway here: a job's life is a function of the clock, so every instant is checked
exactly, with a `ManualClock` or plain numbers.
"""

from __future__ import annotations

import json
import random
import re
import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from boogu_contract import iso_time
from contract_tests.spec_helpers import schema_validator
from mock_gateway.model._clock import ManualClock
from mock_gateway.model._jobs import Job, JobStore, Outcome, media_filename, uuid7
from mock_gateway.model._scheduler import timeline

T0 = 1_774_951_200.0
"""2026-03-31T10:00:00Z, the instant of the reference's examples and ManualClock's default start."""
ISO_MS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def make_job(
    *,
    request_id: str = "boogu-image_job",
    steps: int = 30,
    images: int = 1,
    speed: float = 1.0,
    outcome: Outcome = "COMPLETED",
    error: str | None = None,
    created_at: float = T0,
    output_format: str = "jpeg",
    footprint: int = 0,
) -> Job:
    queued, processing = timeline(steps, images, speed)
    return Job(
        request_id=request_id,
        model_id="boogu-image",
        key="test-key",
        param_names=("num_images", "num_inference_steps", "output_format"),
        param_values=(images, steps, output_format),
        seed=1,
        outcome=outcome,
        error=error,
        created_at=created_at,
        started_at=created_at + queued,
        finished_at=created_at + queued + processing,
        base_url="http://gateway.test",
        webhook_url=None,
        cost=Decimal("0.02") * images,
        footprint=footprint,
    )


def parse_iso(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


# --- timeline ---------------------------------------------------------------------------------------


def test_reference_job_takes_15_seconds_one_of_them_queued() -> None:
    """30 steps x 1 image at speed 1: created 10:00:00, completed 10:00:15, as in the reference."""
    assert timeline(30, 1, 1.0) == (1.0, 14.0)


@pytest.mark.parametrize(
    ("steps", "images", "speed", "total"),
    [
        pytest.param(30, 1, 1.0, 15.0, id="30steps-1image-speed1"),
        pytest.param(20, 1, 1.0, 10.0, id="20steps-1image"),
        pytest.param(50, 1, 1.0, 25.0, id="50steps-1image"),
        pytest.param(30, 2, 1.0, 30.0, id="30steps-2images"),
        pytest.param(30, 4, 1.0, 60.0, id="30steps-4images"),
        pytest.param(50, 4, 1.0, 100.0, id="50steps-4images"),
        pytest.param(30, 1, 10.0, 1.5, id="speed10"),
        pytest.param(30, 1, 0.5, 30.0, id="speed0.5-slower"),
        pytest.param(50, 4, 100.0, 1.0, id="50steps-4images-speed100"),
    ],
)
def test_total_time_is_half_a_second_per_step_and_image_divided_by_speed(
    steps: int, images: int, speed: float, total: float
) -> None:
    queued, processing = timeline(steps, images, speed)
    assert queued + processing == pytest.approx(total)
    assert queued > 0
    assert processing > 0


@pytest.mark.parametrize("speed", [0.5, 1.0, 2.0, 10.0, 100.0])
def test_queue_time_is_one_second_divided_by_speed(speed: float) -> None:
    queued, _ = timeline(30, 1, speed)
    assert queued == pytest.approx(1.0 / speed)


def test_queue_time_never_exceeds_half_of_a_tiny_job() -> None:
    queued, processing = timeline(1, 1, 1.0)  # 0.5 s in all: less than the usual 1 s queue
    assert queued == processing == 0.25


def test_total_time_grows_with_steps_and_images() -> None:
    totals = {(s, i): sum(timeline(s, i, 1.0)) for s in (20, 30, 40, 50) for i in (1, 2, 3, 4)}
    for (steps, images), total in totals.items():
        if steps < 50:
            assert totals[(steps + 10, images)] > total
        if images < 4:
            assert totals[(steps, images + 1)] > total


# --- the state machine ------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["COMPLETED", "FAILED", "ERROR"])
@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        pytest.param(-1.0, "QUEUED", id="before-creation"),
        pytest.param(0.0, "QUEUED", id="at-creation"),
        pytest.param(0.999, "QUEUED", id="0.999s"),
        pytest.param(1.0, "PROCESSING", id="1s"),
        pytest.param(7.5, "PROCESSING", id="7.5s"),
        pytest.param(14.999, "PROCESSING", id="14.999s"),
        pytest.param(15.0, "terminal", id="15s"),
        pytest.param(10_000.0, "terminal", id="much-later"),
    ],
)
def test_status_moves_queued_processing_terminal_at_the_right_instants(
    offset: float, expected: str, outcome: Outcome
) -> None:
    job = make_job(outcome=outcome)
    assert job.status(T0 + offset) == (outcome if expected == "terminal" else expected)


def test_status_instants_are_divided_by_speed() -> None:
    job = make_job(speed=10.0)  # 0.1 s queued, 1.5 s in all
    assert job.status(T0 + 0.099) == "QUEUED"
    assert job.status(T0 + 0.1) == "PROCESSING"
    assert job.status(T0 + 1.499) == "PROCESSING"
    assert job.status(T0 + 1.5) == "COMPLETED"


def test_status_instants_grow_with_images() -> None:
    job = make_job(images=4)  # 60 s in all
    assert job.status(T0 + 59.9) == "PROCESSING"
    assert job.status(T0 + 60.0) == "COMPLETED"


# --- the status object ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "status", "updated_at", "completed_at"),
    [
        pytest.param(0.0, "QUEUED", "2026-03-31T10:00:00.000Z", None, id="queued"),
        pytest.param(0.5, "QUEUED", "2026-03-31T10:00:00.000Z", None, id="queued-later"),
        pytest.param(1.0, "PROCESSING", "2026-03-31T10:00:01.000Z", None, id="processing"),
        pytest.param(9.0, "PROCESSING", "2026-03-31T10:00:01.000Z", None, id="processing-later"),
        pytest.param(15.0, "COMPLETED", "2026-03-31T10:00:15.000Z", "2026-03-31T10:00:15.000Z", id="done"),
        pytest.param(
            99.0, "COMPLETED", "2026-03-31T10:00:15.000Z", "2026-03-31T10:00:15.000Z", id="done-later"
        ),
    ],
)
def test_timestamps_follow_the_status(
    offset: float, status: str, updated_at: str, completed_at: str | None
) -> None:
    """updated_at is the last transition, not the time of the poll; completed_at is null until terminal."""
    body = make_job().to_status(T0 + offset)
    assert body["status"] == status
    assert body["created_at"] == "2026-03-31T10:00:00.000Z"
    assert body["updated_at"] == updated_at
    assert body["completed_at"] == completed_at


def test_completed_status_matches_the_reference_example_shape() -> None:
    job = make_job(request_id="boogu-image_abc")
    assert job.to_status(T0 + 15) == {
        "request_id": "boogu-image_abc",
        "status": "COMPLETED",
        "model_id": "boogu-image",
        "error": None,
        "output": {
            "media_url": ["http://gateway.test/media/boogu-image_abc/output.jpeg"],
            "media_type": "image/jpeg",
        },
        "created_at": "2026-03-31T10:00:00.000Z",
        "updated_at": "2026-03-31T10:00:15.000Z",
        "completed_at": "2026-03-31T10:00:15.000Z",
    }


@pytest.mark.parametrize("outcome", ["FAILED", "ERROR"])
def test_error_appears_only_once_the_job_has_ended(outcome: Outcome) -> None:
    job = make_job(outcome=outcome, error="it broke")
    for offset in (0.0, 1.0, 14.9):
        body = job.to_status(T0 + offset)
        assert body["error"] is None
        assert body["output"] is None
    body = job.to_status(T0 + 15)
    assert body["status"] == outcome
    assert body["error"] == "it broke"
    assert body["output"] is None
    assert body["completed_at"] == "2026-03-31T10:00:15.000Z"


@pytest.mark.parametrize(
    ("images", "output_format", "names"),
    [
        pytest.param(1, "jpeg", ["output.jpeg"], id="one-jpeg"),
        pytest.param(1, "png", ["output.png"], id="one-png"),
        pytest.param(3, "png", ["output_0.png", "output_1.png", "output_2.png"], id="three-png"),
    ],
)
def test_media_urls_name_each_image(images: int, output_format: str, names: list[str]) -> None:
    job = make_job(request_id="boogu-image_r", images=images, output_format=output_format)
    assert [media_filename(i, images, output_format) for i in range(images)] == names
    output = job.to_status(job.finished_at)["output"]
    assert output["media_url"] == [f"http://gateway.test/media/boogu-image_r/{name}" for name in names]
    assert output["media_type"] == f"image/{output_format}"


def test_inline_media_replace_the_hosted_urls() -> None:
    job = make_job()
    output = job.to_status(job.finished_at, media_urls=["data:image/jpeg;base64,AAAA"])["output"]
    assert output["media_url"] == ["data:image/jpeg;base64,AAAA"]


@pytest.mark.parametrize("outcome", ["COMPLETED", "FAILED", "ERROR"])
@pytest.mark.parametrize("offset", [0.0, 1.0, 15.0], ids=["queued", "processing", "terminal"])
def test_every_status_object_is_a_valid_request_status(offset: float, outcome: Outcome) -> None:
    body = make_job(outcome=outcome, error=None if outcome == "COMPLETED" else "x").to_status(T0 + offset)
    schema_validator("RequestStatus").validate(body)
    for name in ("created_at", "updated_at", "completed_at"):
        if body[name] is not None:
            assert ISO_MS_Z.match(body[name]), body[name]


def test_timestamps_are_ordered_at_every_instant() -> None:
    job = make_job(speed=3.0)
    for tenth in range(0, 60):
        body = job.to_status(T0 + tenth / 10)
        created, updated = parse_iso(body["created_at"]), parse_iso(body["updated_at"])
        assert created <= updated
        if body["completed_at"] is not None:
            assert parse_iso(body["completed_at"]) == updated


# --- timestamps and ids -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "text"),
    [
        pytest.param(T0, "2026-03-31T10:00:00.000Z", id="reference-start"),
        pytest.param(T0 + 15, "2026-03-31T10:00:15.000Z", id="reference-end"),
        pytest.param(T0 + 0.5, "2026-03-31T10:00:00.500Z", id="half-second"),
        pytest.param(T0 + 0.123, "2026-03-31T10:00:00.123Z", id="milliseconds"),
        pytest.param(T0 + 0.0019, "2026-03-31T10:00:00.001Z", id="truncated-to-ms"),
        pytest.param(T0 + 50_399.999, "2026-03-31T23:59:59.999Z", id="end-of-day"),
        pytest.param(0.0, "1970-01-01T00:00:00.000Z", id="epoch"),
    ],
)
def test_iso_time_is_utc_with_milliseconds_and_z(at: float, text: str) -> None:
    assert iso_time(at) == text
    assert ISO_MS_Z.match(iso_time(at))


def test_iso_time_round_trips_to_the_millisecond() -> None:
    rng = random.Random(3)
    for _ in range(1000):
        at = T0 + rng.uniform(0, 10 * 365 * 86400)
        parsed = datetime.strptime(iso_time(at), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert 0 <= at - parsed.timestamp() < 0.001 + 1e-6


def test_uuid7_is_a_version_7_uuid_carrying_the_clock_milliseconds() -> None:
    clock = ManualClock()
    text = uuid7(clock.now(), random.Random(1))
    value = uuid.UUID(text)
    assert str(value) == text  # canonical: lower-case hex in 8-4-4-4-12 groups
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert UUID7.match(str(value))
    assert value.int >> 80 == int(clock.now() * 1000) == 1_774_951_200_000
    assert str(value).startswith("019d4355-f500-7")  # 0x019d4355f500 ms: 2026-03-31T10:00:00.000Z


@pytest.mark.parametrize("offset", [0.001, 0.5, 15.0, 86_400.0])
def test_uuid7_timestamp_follows_the_clock(offset: float) -> None:
    clock = ManualClock()
    clock.advance(offset)
    assert uuid.UUID(uuid7(clock.now(), random.Random(1))).int >> 80 == int(clock.now() * 1000)


def test_uuid7_sorts_by_time_and_is_reproducible_from_the_seed() -> None:
    rng = random.Random(5)
    ids = [uuid7(T0 + ms / 1000, rng) for ms in range(200)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 200
    assert uuid7(T0, random.Random(9)) == uuid7(T0, random.Random(9))
    assert uuid7(T0, random.Random(9)) != uuid7(T0, random.Random(10))


# --- the store --------------------------------------------------------------------------------------


def store_with(*jobs: Job) -> JobStore:
    store = JobStore()
    for job in jobs:
        store.add(job)
    return store


def ids(jobs: list[Job]) -> list[str]:
    return [job.request_id for job in jobs]


def test_settle_due_returns_each_finished_job_once_in_finishing_order() -> None:
    short = make_job(request_id="short", steps=20)  # 10 s
    middle = make_job(request_id="middle", steps=30)  # 15 s
    long = make_job(request_id="long", images=2)  # 30 s
    store = store_with(long, short, middle)
    assert store.settle_due(T0, ttl=3600) == []
    assert store.settle_due(T0 + 9.999, ttl=3600) == []
    assert ids(store.settle_due(T0 + 10, ttl=3600)) == ["short"]
    assert store.settle_due(T0 + 10, ttl=3600) == []
    assert store.settle_due(T0 + 12, ttl=3600) == []
    assert ids(store.settle_due(T0 + 100, ttl=3600)) == ["middle", "long"]
    assert store.settle_due(T0 + 200, ttl=3600) == []
    assert all(job.settled for job in (short, middle, long))
    assert len(store) == 3


def test_a_job_finished_on_arrival_settles_at_the_next_call() -> None:
    job = make_job(request_id="sync")
    job.started_at = job.finished_at = job.created_at  # as in sync mode
    store = store_with(job)
    assert ids(store.settle_due(T0, ttl=60)) == ["sync"]
    assert store.settle_due(T0, ttl=60) == []


def test_finished_jobs_expire_after_the_ttl() -> None:
    job = make_job(request_id="j")  # finishes at T0 + 15
    store = store_with(job)
    assert ids(store.settle_due(T0 + 15, ttl=60)) == ["j"]
    assert store.get("j") is job
    store.settle_due(T0 + 74.999, ttl=60)
    assert store.get("j") is job
    assert store.settle_due(T0 + 75, ttl=60) == []
    assert store.get("j") is None
    assert len(store) == 0


def test_ttl_counts_from_the_finish_not_from_the_settling() -> None:
    store = store_with(make_job(request_id="late"))
    assert ids(store.settle_due(T0 + 50, ttl=60)) == ["late"]  # settled 35 s after it finished
    store.settle_due(T0 + 74, ttl=60)
    assert store.get("late") is not None
    store.settle_due(T0 + 75, ttl=60)
    assert store.get("late") is None


def test_a_job_settled_long_after_its_ttl_is_returned_once_and_forgotten() -> None:
    store = store_with(make_job(request_id="old"))
    assert ids(store.settle_due(T0 + 10_000, ttl=60)) == ["old"]
    assert store.get("old") is None
    assert store.settle_due(T0 + 20_000, ttl=60) == []


def test_unfinished_jobs_never_expire() -> None:
    store = store_with(make_job(request_id="slow", steps=50, images=4, speed=0.01))  # 10 000 s
    assert store.settle_due(T0 + 9_999, ttl=1) == []
    assert store.get("slow") is not None


def test_settle_due_hands_out_each_job_exactly_once_across_threads() -> None:
    jobs = [make_job(request_id=f"j{i}", steps=20 + i % 31, images=1 + i % 4) for i in range(300)]
    store = store_with(*jobs)
    seen: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for step in range(0, 110):
            settled = store.settle_due(T0 + step, ttl=3600)
            with lock:
                seen.extend(ids(settled))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == sorted(job.request_id for job in jobs)


def test_the_budget_drops_settled_jobs_oldest_finished_first_and_never_an_unfinished_one() -> None:
    # Finishing 10, 15, 20 and 25 s after T0.
    jobs = [make_job(request_id=f"j{i}", steps=20 + 10 * i, footprint=100) for i in range(4)]
    store = store_with(*jobs)
    assert store.footprint == 400
    assert store.drop_over(100) == []  # none has finished
    store.settle_due(T0 + 20, ttl=3600)  # j0, j1 and j2 finished
    assert store.drop_over(400) == []
    assert store.drop_over(250) == ["j0", "j1"]
    assert store.footprint == 200
    assert store.drop_over(0) == ["j2"]  # j3 is unfinished: kept, though over the budget
    assert [job.request_id for job in jobs if store.get(job.request_id)] == ["j3"]
    assert store.footprint == 100


def test_expired_jobs_leave_the_budget() -> None:
    store = store_with(
        make_job(request_id="a", footprint=70), make_job(request_id="b", steps=40, footprint=30)
    )
    store.settle_due(T0 + 15, ttl=10)  # a finished
    store.settle_due(T0 + 25, ttl=10)  # a expired; b finished
    assert store.footprint == 30
    assert store.drop_over(0) == ["b"]
    assert store.footprint == 0
    assert len(store) == 0


def test_clear_forgets_everything() -> None:
    store = store_with(make_job(request_id="a", footprint=5), make_job(request_id="b"))
    store.clear()
    assert len(store) == 0
    assert store.footprint == 0
    assert store.get("a") is None
    assert store.settle_due(T0 + 100, ttl=1) == []


def test_status_object_is_plain_json() -> None:
    """What to_status answers goes straight into a JSONResponse and a webhook body."""
    body: dict[str, Any] = make_job().to_status(T0 + 15)
    assert json.loads(json.dumps(body, allow_nan=False)) == body
