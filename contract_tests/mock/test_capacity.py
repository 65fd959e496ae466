"""A busy gateway: workers per model, a FIFO queue, jittered durations, the realistic preset, sync mode
waiting for a worker, and the public base URL of polling and media URLs."""

from __future__ import annotations

import asyncio
import random
import statistics
from typing import Any

import httpx
import pytest

from mock_gateway.cli import config_from, parser
from mock_gateway.model._backend import GatewayBackend, Submission, SyncWait
from mock_gateway.model._clock import ManualClock
from mock_gateway.model._config import REALISTIC, ConfigError, MockConfig
from mock_gateway.model._scheduler import WorkerPool, jitter, timeline
from mock_gateway.testing import MockGateway, gateway_process

TEXT = "boogu-image"
EDIT = "boogu-image-edit"
BASE = "http://gateway.test"
T0 = ManualClock().now()


def make_backend(clock: ManualClock, **settings: Any) -> GatewayBackend:
    return GatewayBackend(MockConfig().updated({"seed": 7, **settings}), clock=clock)


def submit(backend: GatewayBackend, model: str = TEXT, **body: Any) -> Submission | SyncWait:
    body = {"prompt": "a red fox", **body}
    if model == EDIT:
        body.setdefault("image_url", "https://elsewhere.test/a.jpeg")
    return backend.submit(backend.admit("test-key", model), body, base_url=BASE)


# --- the worker pool, alone ---------------------------------------------------------------------------


def test_unlimited_capacity_starts_every_job_when_it_is_ready() -> None:
    pool = WorkerPool()
    slots = [pool.schedule(TEXT, ready_at=1.0, processing=10.0, capacity=None, now=0.0) for _ in range(100)]
    assert {(slot.start, slot.finish) for slot in slots} == {(1.0, 11.0)}


def test_capacity_two_runs_two_at_once_in_arrival_order() -> None:
    pool = WorkerPool()
    slots = [pool.schedule(TEXT, ready_at=1.0, processing=10.0, capacity=2, now=0.0) for _ in range(5)]
    assert [(slot.start, slot.finish) for slot in slots] == [
        (1.0, 11.0),
        (1.0, 11.0),
        (11.0, 21.0),
        (11.0, 21.0),
        (21.0, 31.0),
    ]


def test_a_short_job_behind_a_long_one_waits_its_turn_fifo() -> None:
    """FIFO: no job overtakes one that arrived before it, even when a worker frees up for it first."""
    pool = WorkerPool()
    long = pool.schedule(TEXT, ready_at=0.0, processing=100.0, capacity=2, now=0.0)
    short = pool.schedule(TEXT, ready_at=0.0, processing=1.0, capacity=2, now=0.0)
    queued = [pool.schedule(TEXT, ready_at=0.0, processing=p, capacity=2, now=0.0) for p in (50.0, 1.0, 1.0)]
    starts = [slot.start for slot in (long, short, *queued)]
    assert starts == sorted(starts)
    assert [slot.start for slot in queued] == [1.0, 51.0, 52.0]
    assert max(sum(s.start <= t < s.finish for s in (long, short, *queued)) for t in range(0, 120)) == 2


def test_models_have_their_own_workers() -> None:
    pool = WorkerPool()
    first = pool.schedule(TEXT, ready_at=0.0, processing=10.0, capacity=1, now=0.0)
    other = pool.schedule(EDIT, ready_at=0.0, processing=10.0, capacity=1, now=0.0)
    assert first.start == other.start == 0.0


def test_workers_free_up_as_time_passes_and_a_new_capacity_applies_to_the_next_job() -> None:
    pool = WorkerPool()
    for _ in range(4):
        pool.schedule(TEXT, ready_at=0.0, processing=10.0, capacity=1, now=0.0)  # ends at 40
    assert pool.schedule(TEXT, ready_at=5.0, processing=1.0, capacity=1, now=5.0).start == 40.0
    # four workers now, but arrival order holds: not before the job ahead of it started, at 40
    assert pool.schedule(TEXT, ready_at=6.0, processing=1.0, capacity=4, now=6.0).start == 40.0
    assert pool.schedule(TEXT, ready_at=6.0, processing=1.0, capacity=4, now=6.0).start == 40.0
    assert pool.schedule(TEXT, ready_at=100.0, processing=1.0, capacity=1, now=100.0).start == 100.0


def test_a_cleared_pool_is_idle() -> None:
    pool = WorkerPool()
    pool.schedule(TEXT, ready_at=0.0, processing=1000.0, capacity=1, now=0.0)
    pool.clear()
    assert pool.schedule(TEXT, ready_at=0.0, processing=1.0, capacity=1, now=0.0).start == 0.0


# --- durations -------------------------------------------------------------------------------------------


def test_queue_seconds_replaces_the_constant_and_stays_within_half_the_job() -> None:
    assert timeline(30, 1, 1.0, queue_seconds=3.0) == (3.0, 12.0)
    assert timeline(30, 1, 1.0, queue_seconds=0.0) == (0.0, 15.0)
    assert timeline(2, 1, 1.0, queue_seconds=60.0) == (0.5, 0.5)


def test_jitter_is_one_without_spread_and_draws_nothing() -> None:
    rng = random.Random(1)
    state = rng.getstate()
    assert jitter(rng, 0.0) == 1.0
    assert rng.getstate() == state


def test_jitter_is_log_normal_with_mean_one_and_the_asked_spread() -> None:
    rng = random.Random(3)
    draws = [jitter(rng, 0.3) for _ in range(20_000)]
    assert min(draws) > 0
    assert statistics.fmean(draws) == pytest.approx(1.0, abs=0.01)
    assert statistics.stdev(draws) == pytest.approx(0.3, abs=0.01)
    assert statistics.median(draws) < statistics.fmean(draws)  # a tail of slow jobs, not of fast ones


# --- the backend -----------------------------------------------------------------------------------------


def test_default_timing_is_unchanged_by_the_new_settings() -> None:
    clock = ManualClock()
    job = submit(make_backend(clock)).job
    assert (job.started_at - job.created_at, job.finished_at - job.created_at) == (1.0, 15.0)


def test_jobs_beyond_capacity_stay_queued_in_fifo_order_until_a_worker_frees_up() -> None:
    clock = ManualClock()
    backend = make_backend(clock, capacity=2)
    jobs = [submit(backend).job for _ in range(5)]
    starts = [job.started_at - T0 for job in jobs]
    assert starts == [1.0, 1.0, 15.0, 15.0, 29.0]
    clock.advance(14.5)
    now = clock.now()
    assert [job.status(now) for job in jobs] == ["PROCESSING"] * 2 + ["QUEUED"] * 3
    status = backend.status(backend.authenticate("test-key"), jobs[2].request_id)
    assert status["status"] == "QUEUED"
    assert status["updated_at"] == status["created_at"]
    clock.advance(1.0)
    status = backend.status(backend.authenticate("test-key"), jobs[2].request_id)
    assert status["status"] == "PROCESSING"
    assert status["updated_at"] != status["created_at"]  # updated_at moves when the job starts


@pytest.mark.parametrize("capacity", [1, 3])
def test_queued_time_grows_with_the_queue_ahead(capacity: int) -> None:
    clock = ManualClock()
    backend = make_backend(clock, capacity=capacity)
    waits = [submit(backend).job for _ in range(3 * capacity)]
    queued = [job.started_at - job.created_at for job in waits]
    assert queued == sorted(queued)
    assert queued[0] == 1.0
    assert queued[-1] == pytest.approx(1.0 + 2 * 14.0)  # two full rounds of work ahead of it


def test_capacity_is_per_model() -> None:
    clock = ManualClock()
    backend = make_backend(clock, capacity=1)
    text, edit = submit(backend).job, submit(backend, EDIT).job
    assert text.started_at == edit.started_at


def test_same_seed_and_submissions_give_identical_timelines() -> None:
    def run(seed: int) -> list[tuple[float, float, float, str]]:
        clock = ManualClock()
        backend = make_backend(clock, seed=seed, capacity=2, duration_jitter=0.3, queue_seconds=2.0)
        answers = []
        for index in range(8):
            job = submit(backend, num_images=1 + index % 2, num_inference_steps=20 + index).job
            answers.append((job.created_at, job.started_at, job.finished_at, job.request_id))
            clock.advance(0.25)
        return answers

    assert run(11) == run(11)
    assert run(11) != run(12)
    durations = {round(finish - start, 6) for _, start, finish, _ in run(11)}
    assert len(durations) == 8  # jitter: no two jobs take the same time


def test_jitter_spreads_durations_around_the_step_image_model() -> None:
    clock = ManualClock()
    backend = make_backend(clock, duration_jitter=0.3)
    jobs = [submit(backend).job for _ in range(400)]
    totals = [job.finished_at - job.created_at for job in jobs]
    assert statistics.fmean(totals) == pytest.approx(15.0, rel=0.05)
    assert 0.2 < statistics.stdev(totals) / statistics.fmean(totals) < 0.4


def test_realistic_preset_sets_documented_values_and_explicit_settings_win() -> None:
    config = MockConfig().updated({"realistic": True})
    assert (config.capacity, config.duration_jitter, config.queue_seconds) == (4, 0.3, 2.0)
    assert {name: getattr(config, name) for name in REALISTIC} == REALISTIC
    assert MockConfig().updated({"realistic": True, "capacity": 1}).capacity == 1
    assert MockConfig().updated({"realistic": False}) == MockConfig()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"capacity": 0}, "capacity: must be null (unlimited) or an integer from 1 to 100,000"),
        ({"capacity": 10**19}, "capacity: must be null (unlimited) or an integer from 1 to 100,000"),
        ({"capacity": 1.5}, "capacity: expected an integer"),
        ({"capacity": True}, "capacity: expected an integer"),
        ({"duration_jitter": 1.5}, "duration_jitter: 1.5 is not between 0 and 1"),
        ({"duration_jitter": -0.1}, "duration_jitter"),
        ({"queue_seconds": -1}, "queue_seconds: must be a number from 0 to 3600"),
        ({"queue_seconds": 1e300}, "queue_seconds: must be a number from 0 to 3600"),
        ({"realistic": 1}, "realistic: expected true"),
        ({"realistic": "yes"}, "realistic: expected true"),
        ({"public_url": "ftp://x.test"}, "public_url: 'ftp://x.test' must be an absolute http or https URL"),
        ({"public_url": "/relative"}, "must be an absolute http or https URL"),
        ({"public_url": "http://a:b@x.test"}, "no query, fragment or credentials"),
        ({"public_url": "http://x.test/?q=1"}, "no query, fragment or credentials"),
        ({"public_url": "http://x.test:99999"}, "is not a valid URL"),
        ({"public_url": "http://[::1"}, "is not a valid URL"),
        ({"public_url": "http://x.test/\ud800"}, "no query, fragment or credentials"),
        ({"public_url": 5}, "public_url: expected null or an http(s) URL"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        MockConfig().updated(changes)
    assert message in str(caught.value)


def test_cli_flags_reach_the_config() -> None:
    args = parser().parse_args(
        [
            "--capacity",
            "3",
            "--duration-jitter",
            "0.2",
            "--queue-seconds",
            "0.5",
            "--public-url",
            "http://x.test/",
        ]
    )
    config = config_from(args)
    assert (config.capacity, config.duration_jitter, config.queue_seconds) == (3, 0.2, 0.5)
    assert config.public_url == "http://x.test"
    realistic = config_from(parser().parse_args(["--realistic", "--capacity", "8"]))
    assert (realistic.capacity, realistic.duration_jitter) == (8, 0.3)


# --- over HTTP, in-process -------------------------------------------------------------------------------


def test_clock_advance_settles_a_capacity_queue_exactly() -> None:
    config = MockConfig().updated({"capacity": 1, "seed": 1})
    with MockGateway(config, clock=ManualClock()) as gateway, gateway.http() as http:
        headers = {"Ocp-Apim-Subscription-Key": "test-key"}
        ids = [
            http.post("/boogu-image/v1/boogu-image-request", json={"prompt": "x"}, headers=headers).json()[
                "request_id"
            ]
            for _ in range(3)
        ]
        # one worker: done at 15, 29 and 43 s
        assert gateway.advance(14.999)["settled"] == []
        assert gateway.advance(0.001)["settled"] == ids[:1]
        assert gateway.advance(28.0)["settled"] == ids[1:]
        statuses = [http.get(f"/v2/requests/status/{i}", headers=headers).json()["status"] for i in ids]
        assert statuses == ["COMPLETED"] * 3


def test_config_patch_turns_capacity_on_and_off() -> None:
    with MockGateway() as gateway, gateway.http() as http:
        answer = http.patch("/__mock/config", json={"realistic": True})
        assert answer.status_code == 200
        assert (answer.json()["capacity"], answer.json()["duration_jitter"]) == (4, 0.3)
        assert "realistic" not in answer.json()
        refused = http.patch("/__mock/config", json={"capacity": -1})
        assert refused.status_code == 400
        assert refused.json()["message"].startswith("capacity: ")
        assert http.get("/__mock/config").json()["capacity"] == 4  # a refused change changes nothing
        assert http.patch("/__mock/config", json={"capacity": None}).json()["capacity"] is None


async def test_sync_mode_waits_for_a_worker_then_answers_200() -> None:
    clock = ManualClock()
    with MockGateway(MockConfig().updated({"capacity": 1}), clock=clock) as gateway:
        async with httpx.AsyncClient(base_url=gateway.base_url, **gateway.httpx_args()) as http:
            headers = {"Ocp-Apim-Subscription-Key": "test-key"}
            path = "/boogu-image/v1/boogu-image-request"
            busy = await http.post(path, json={"prompt": "x"}, headers=headers)
            assert busy.status_code == 202
            sync = asyncio.create_task(
                http.post(
                    path, json={"prompt": "y", "sync_mode": True, "image_size": "square"}, headers=headers
                )
            )
            await asyncio.sleep(0.3)
            assert not sync.done()  # the worker is busy for 15 s of the gateway's clock
            clock.advance(15)
            answer = await asyncio.wait_for(sync, timeout=10)
            assert answer.status_code == 200
            body = answer.json()
            assert body["status"] == "COMPLETED"
            assert body["created_at"] == "2026-03-31T10:00:00.000Z"
            assert body["completed_at"] == "2026-03-31T10:00:15.000Z"
            assert body["output"]["media_url"][0].startswith("data:image/jpeg;base64,")


def test_polling_and_media_urls_use_the_public_url_not_the_host_header() -> None:
    config = MockConfig().updated({"public_url": "https://mock.example.test/gw"})
    with MockGateway(config) as gateway, gateway.http() as http:
        headers = {"Ocp-Apim-Subscription-Key": "test-key", "Host": "attacker.test"}
        queued = http.post("/boogu-image/v1/boogu-image-request", json={"prompt": "x"}, headers=headers)
        request_id = queued.json()["request_id"]
        assert queued.json()["polling_url"] == (
            f"https://mock.example.test/gw/v2/requests/status/{request_id}"
        )
        gateway.advance(15)
        final = http.get(f"/v2/requests/status/{request_id}", headers=headers).json()
        assert final["output"]["media_url"] == [
            f"https://mock.example.test/gw/media/{request_id}/output.jpeg"
        ]


def test_without_a_public_url_the_listening_address_is_used_not_the_host_header() -> None:
    with MockGateway(served=True) as gateway, gateway.http() as http:
        headers = {"Ocp-Apim-Subscription-Key": "test-key", "Host": "attacker.test"}
        queued = http.post("/boogu-image/v1/boogu-image-request", json={"prompt": "x"}, headers=headers)
        assert queued.json()["polling_url"].startswith(f"{gateway.base_url}/v2/requests/status/")


def test_public_url_flag_of_the_served_mock() -> None:
    with gateway_process("--public-url", "http://gateway.example.test:9000/") as base_url:
        answer = httpx.post(
            f"{base_url}/boogu-image/v1/boogu-image-request",
            json={"prompt": "x"},
            headers={"Ocp-Apim-Subscription-Key": "test-key"},
        )
        assert answer.json()["polling_url"].startswith("http://gateway.example.test:9000/v2/requests/status/")
