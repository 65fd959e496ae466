"""GatewayBackend on its own: the gateway's rules with a manual clock, no HTTP in between."""

from __future__ import annotations

import base64
import io
import re
import threading
import uuid
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from PIL import Image, ImageStat

from contract_tests.spec_helpers import needs_reference, reference_json_blocks, schema_validator
from mock_gateway.model import _media as media
from mock_gateway.model._backend import FAILED_MESSAGES, GatewayBackend, GatewayError, Submission, SyncWait
from mock_gateway.model._clock import ManualClock
from mock_gateway.model._config import ConfigError, MockConfig
from mock_gateway.model._jobs import Outcome

BASE = "http://gateway.test"
TEXT = "boogu-image"
EDIT = "boogu-image-edit"
PRICE = Decimal("0.02")
REQUEST_ID = re.compile(
    r"^(?P<model>boogu-image(?:-edit)?)_"
    r"(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})$"
)
INSUFFICIENT = {"error": "Insufficient Balance", "message": "Your wallet does not have enough balance."}
HOOK = "http://127.0.0.1:9/hook"


class FakeSender:
    """Records webhook POSTs and answers 200."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, url: str, payload: dict[str, Any]) -> int:
        self.calls.append((url, payload))
        return 200


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


def make_backend(clock: ManualClock, sender: FakeSender | None = None, **settings: Any) -> GatewayBackend:
    return GatewayBackend(MockConfig().updated({"seed": 7, **settings}), clock=clock, webhook_sender=sender)


@pytest.fixture
def backend(clock: ManualClock, sender: FakeSender) -> GatewayBackend:
    return make_backend(clock, sender)


def submit(
    backend: GatewayBackend,
    body: Any,
    *,
    model: str = TEXT,
    key: str = "test-key",
    webhook_url: str | None = None,
    outcome: str | None = None,
) -> Submission:
    admission = backend.admit(key, model)
    answer = backend.submit(admission, body, base_url=BASE, webhook_url=webhook_url, outcome=outcome)
    if isinstance(answer, SyncWait):  # unlimited capacity: sync mode never waits for a worker
        assert answer.until <= backend.clock.now()
        return backend.finish_sync(answer.job)
    return answer


def status(backend: GatewayBackend, request_id: str, key: str = "test-key") -> dict[str, Any]:
    return backend.status(backend.authenticate(key), request_id)


def finish(backend: GatewayBackend, clock: ManualClock, seconds: float = 15.0) -> None:
    clock.advance(seconds)
    backend.tick()


def money(backend: GatewayBackend, key: str = "test-key") -> tuple[Decimal, Decimal, Decimal]:
    """(balance, held, charged)."""
    return backend.wallet.balance(key), backend.wallet.held(key), backend.wallet.charged(key)


def png_data_uri(color: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def decode_image(uri_or_bytes: str | bytes) -> Image.Image:
    data = media.decode_data_uri(uri_or_bytes) if isinstance(uri_or_bytes, str) else uri_or_bytes
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def mean_rgb(image: Image.Image) -> tuple[float, float, float]:
    red, green, blue = ImageStat.Stat(image.convert("RGB")).mean
    return red, green, blue


def expect_error(status_code: int, call: Any, *args: Any, **kwargs: Any) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        call(*args, **kwargs)
    assert caught.value.status == status_code, caught.value
    schema_validator("ErrorResponse").validate(caught.value.body())
    return caught.value


# --- authentication ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "message"),
    [
        pytest.param(None, "missing subscription key", id="missing"),
        pytest.param("", "missing subscription key", id="empty"),
        pytest.param("who-knows", "invalid subscription key", id="unknown"),
        pytest.param("TEST-KEY", "invalid subscription key", id="wrong-case"),
    ],
)
def test_missing_or_unknown_key_is_401(backend: GatewayBackend, key: str | None, message: str) -> None:
    error = expect_error(401, backend.authenticate, key)
    assert error.error == "Unauthorized"
    assert message in error.message


def test_disabled_key_is_403(backend: GatewayBackend) -> None:
    backend.put_key("off", enabled=False)
    error = expect_error(403, backend.authenticate, "off")
    assert error.body() == {"error": "Forbidden", "message": "The subscription key is disabled."}


def test_key_limited_to_other_models_is_403_for_this_one(backend: GatewayBackend) -> None:
    backend.put_key("edit-only", models=frozenset({EDIT}))
    error = expect_error(403, submit, backend, {"prompt": "x"}, key="edit-only")
    assert "boogu-image" in error.message
    assert submit(backend, {"prompt": "x", "image_url": "https://x.test/a.png"}, model=EDIT, key="edit-only")


def test_re_enabling_a_key_keeps_its_balance(backend: GatewayBackend) -> None:
    backend.put_key("k", balance=Decimal("3"), enabled=False)
    backend.put_key("k")
    assert backend.authenticate("k").enabled
    assert backend.wallet.balance("k") == Decimal("3")


def test_a_new_key_gets_the_default_balance(clock: ManualClock) -> None:
    backend = make_backend(clock, default_balance="1.5")
    backend.put_key("fresh")
    assert backend.describe_key("fresh") == {
        "key": "fresh",
        "balance": "1.5",
        "charged": "0",
        "enabled": True,
        "models": None,
    }
    assert backend.describe_key("nobody") is None


def test_unknown_model_is_the_reference_400(backend: GatewayBackend) -> None:
    error = expect_error(400, submit, backend, {"prompt": "x"}, model="foo")
    assert error.body() == {"error": "Model not found", "message": "Model 'foo' not found or is disabled"}


# --- ids ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "body"),
    [
        pytest.param(TEXT, {"prompt": "x"}, id="text-to-image"),
        pytest.param(EDIT, {"prompt": "x", "image_url": "https://x.test/a.png"}, id="image-edit"),
    ],
)
def test_request_id_is_model_underscore_uuid7_of_now(
    backend: GatewayBackend, clock: ManualClock, model: str, body: dict[str, Any]
) -> None:
    clock.advance(12.345)
    submission = submit(backend, body, model=model)
    match = REQUEST_ID.match(submission.body["request_id"])
    assert match is not None, submission.body["request_id"]
    assert match["model"] == model
    value = uuid.UUID(match["uuid"])
    assert value.version == 7
    assert value.int >> 80 == int(clock.now() * 1000)
    assert submission.body == {
        "request_id": submission.job.request_id,
        "status": "QUEUED",
        "polling_url": f"{BASE}/v2/requests/status/{submission.job.request_id}",
    }
    assert submission.status_code == 202
    schema_validator("QueuedRequest").validate(submission.body)


def test_request_ids_are_unique(backend: GatewayBackend) -> None:
    request_ids = {submit(backend, {"prompt": "x"}).job.request_id for _ in range(100)}
    assert len(request_ids) == 100


# --- validation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "body", "expected"),
    [
        pytest.param(
            TEXT,
            {"prompt": "x", "num_inference_steps": 60},
            "num_inference_steps: 60 is greater than the maximum of 50",
            id="steps-above-max",
        ),
        pytest.param(
            TEXT,
            {"prompt": "x", "num_inference_steps": 19},
            "num_inference_steps: 19 is less than the minimum of 20",
            id="steps-below-min",
        ),
        pytest.param(
            TEXT,
            {"prompt": "x", "guidance_scale": 8.5},
            "guidance_scale: 8.5 is greater than the maximum of 8",
            id="guidance-above-max",
        ),
        pytest.param(
            TEXT,
            {"prompt": "x", "cfg_range_end": -0.1},
            "cfg_range_end: -0.1 is less than the minimum of 0",
            id="cfg-below-min",
        ),
        pytest.param(
            TEXT,
            {"prompt": "x", "num_images": 5},
            "num_images: 5 is greater than the maximum of 4",
            id="images-above-max",
        ),
        pytest.param(
            TEXT,
            {"prompt": "x", "output_format": "gif"},
            "output_format: 'gif' is not one of ['jpeg', 'png']",
            id="format-enum",
        ),
        pytest.param(
            TEXT,
            {"prompt": "x", "num_images": "2"},
            "num_images: '2' is not of type 'integer'",
            id="images-type",
        ),
        pytest.param(
            TEXT,
            {"prompt": "x", "num_images": 1.5},
            "num_images: 1.5 is not of type 'integer'",
            id="images-fraction",
        ),
        pytest.param(
            TEXT,
            {"prompt": "x", "enable_safety_checker": "yes"},
            "enable_safety_checker: 'yes' is not of type 'boolean'",
            id="safety-type",
        ),
        pytest.param(
            TEXT, {"prompt": "x", "seed": "42"}, "seed: '42' is not of type 'integer'", id="seed-type"
        ),
        pytest.param(TEXT, {}, "prompt: is required", id="prompt-required"),
        pytest.param(TEXT, {"prompt": ""}, "prompt: '' should be non-empty", id="prompt-empty"),
        pytest.param(TEXT, {"prompt": 42}, "prompt: 42 is not of type 'string'", id="prompt-type"),
        pytest.param(
            TEXT,
            {"prompt": "x", "promt": "y"},
            "unknown property ('promt' was unexpected)",
            id="unknown-property",
        ),
        pytest.param(
            TEXT,
            {"prompt": "x", "image_url": "https://x.test/a.png"},
            "unknown property ('image_url' was unexpected)",
            id="edit-field-on-text",
        ),
        pytest.param(
            TEXT,
            {"prompt": "x", "image_size": "huge"},
            "image_size: 'huge' is not valid: expected ImageSizePreset or CustomImageSize",
            id="size-unknown-preset",
        ),
        pytest.param(
            TEXT,
            {"prompt": "x", "image_size": {"width": 512}},
            "'height' is a required property",
            id="size-object-missing-height",
        ),
        pytest.param(
            TEXT,
            {"prompt": "x", "image_size": {"width": 0, "height": 10}},
            "0 is less than the minimum of 1",
            id="size-width-zero",
        ),
        pytest.param(
            TEXT,
            {"prompt": "x", "image_size": {"width": 10, "height": 5000}},
            "5000 is greater than the maximum of 4096",
            id="size-too-tall",
        ),
        pytest.param(TEXT, [], "[] is not of type 'object'", id="body-not-object"),
        pytest.param(EDIT, {"prompt": "x"}, "image_url: is required", id="edit-image-required"),
        pytest.param(EDIT, {"prompt": "x", "image_url": ""}, "image_url: ''", id="edit-image-empty"),
        pytest.param(
            EDIT,
            {"prompt": "x", "image_url": "https://x.test/a.png", "image_guidance_scale": 0.5},
            "image_guidance_scale: 0.5 is less than the minimum of 1",
            id="edit-image-guidance-below-min",
        ),
    ],
)
def test_validation_error_names_the_field_and_rule(
    backend: GatewayBackend, model: str, body: Any, expected: str
) -> None:
    before = money(backend)
    error = expect_error(400, submit, backend, body, model=model)
    assert error.error == "Validation Error"
    assert expected in error.message
    assert money(backend) == before
    assert len(backend.jobs) == 0


def test_size_object_error_names_image_size(backend: GatewayBackend) -> None:
    error = expect_error(400, submit, backend, {"prompt": "x", "image_size": {"width": 512}})
    assert error.message.startswith("image_size: ")


def test_bad_outcome_header_is_400(backend: GatewayBackend) -> None:
    error = expect_error(400, submit, backend, {"prompt": "x"}, outcome="explode")
    assert "X-Mock-Outcome" in error.message


TEXT_DEFAULTS = {
    "negative_prompt": "",
    "image_size": "square_hd",
    "num_inference_steps": 30,
    "guidance_scale": 4,
    "cfg_range_start": 0,
    "cfg_range_end": 1,
    "num_images": 1,
    "output_format": "jpeg",
    "enable_safety_checker": True,
    "sync_mode": False,
}


def test_defaults_of_the_spec_are_applied(backend: GatewayBackend) -> None:
    job = submit(backend, {"prompt": "a fox"}).job
    assert job.params == {"prompt": "a fox", **TEXT_DEFAULTS}
    assert isinstance(job.seed, int)
    assert job.cost == PRICE
    assert job.finished_at - job.created_at == 15.0


def test_jobs_with_the_same_parameter_names_share_them(backend: GatewayBackend) -> None:
    """A held job keeps its parameters' values in a tuple, on names it shares with the other jobs:
    no dict of its own, which took 632 bytes (glibc's heap, past Python's small-object allocator)."""
    first = submit(backend, {"prompt": "a fox", "seed": 1}).job
    second = submit(backend, {"seed": 2, "prompt": "a hare"}).job  # the same names, in another order
    assert first.param_names is second.param_names
    assert type(first.param_values) is tuple
    assert second.params == {"prompt": "a hare", "seed": 2, **TEXT_DEFAULTS}
    assert (first.num_images, first.output_format) == (1, "jpeg")


def test_edit_defaults_include_image_guidance_scale(backend: GatewayBackend) -> None:
    body = {"prompt": "x", "image_url": "https://x.test/a.png"}
    job = submit(backend, body, model=EDIT).job
    assert job.params == {**body, **TEXT_DEFAULTS, "image_guidance_scale": 1}


def test_given_values_win_over_defaults(backend: GatewayBackend) -> None:
    body = {
        "prompt": "x",
        "num_inference_steps": 50,
        "num_images": 3,
        "output_format": "png",
        "image_size": {"width": 64, "height": 32},
        "seed": 42,
    }
    job = submit(backend, body).job
    assert {k: job.params[k] for k in body} == body
    assert job.seed == 42
    assert job.cost == 3 * PRICE
    assert job.finished_at - job.created_at == 75.0  # 0.5 s x 50 steps x 3 images


def test_speed_divides_the_job_time(clock: ManualClock) -> None:
    backend = make_backend(clock, speed=10)
    job = submit(backend, {"prompt": "x"}).job
    assert job.finished_at - job.created_at == pytest.approx(1.5)


# --- outcomes -----------------------------------------------------------------------------------------


def run_to_end(backend: GatewayBackend, clock: ManualClock, body: Any, **kwargs: Any) -> dict[str, Any]:
    request_id = submit(backend, body, **kwargs).job.request_id
    finish(backend, clock, 100)
    return status(backend, request_id)


def test_default_outcome_is_completed(backend: GatewayBackend, clock: ManualClock) -> None:
    final = run_to_end(backend, clock, {"prompt": "x"})
    assert final["status"] == "COMPLETED"
    assert final["error"] is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("completed", "COMPLETED", id="completed"),
        pytest.param("failed", "FAILED", id="failed"),
        pytest.param("error", "ERROR", id="error"),
        pytest.param(" Failed ", "FAILED", id="case-and-space-insensitive"),
    ],
)
def test_outcome_header_forces_the_final_status(
    backend: GatewayBackend, clock: ManualClock, header: str, expected: Outcome
) -> None:
    final = run_to_end(backend, clock, {"prompt": "x"}, outcome=header)
    assert final["status"] == expected
    assert (final["error"] is None) == (expected == "COMPLETED")
    assert (final["output"] is None) == (expected != "COMPLETED")
    schema_validator("RequestStatus").validate(final)


@pytest.mark.parametrize(
    ("prompt", "checker", "expected"),
    [
        pytest.param("an nsfw scene", True, "FAILED", id="nsfw-checked"),
        pytest.param("NSFW, please", True, "FAILED", id="uppercase-checked"),
        pytest.param("an nsfw scene", False, "COMPLETED", id="nsfw-unchecked"),
        pytest.param("nsfwish", True, "COMPLETED", id="not-a-word"),
        pytest.param("a calm lake", True, "COMPLETED", id="clean"),
    ],
)
def test_safety_checker_fails_prompts_with_the_trigger_word(
    backend: GatewayBackend, clock: ManualClock, prompt: str, checker: bool, expected: str
) -> None:
    final = run_to_end(backend, clock, {"prompt": prompt, "enable_safety_checker": checker})
    assert final["status"] == expected
    if expected == "FAILED":
        assert final["error"] == FAILED_MESSAGES["safety"]


def outcome_counts(clock: ManualClock, count: int, **settings: Any) -> tuple[list[Outcome], Counter[str]]:
    backend = make_backend(clock, **settings)
    outcomes = [submit(backend, {"prompt": "x"}).job.outcome for _ in range(count)]
    return outcomes, Counter(outcomes)


def test_configured_rates_draw_outcomes_reproducibly_from_the_seed(clock: ManualClock) -> None:
    outcomes, counts = outcome_counts(clock, 1000, failed_rate=0.3, error_rate=0.2)
    assert 250 <= counts["FAILED"] <= 350
    assert 150 <= counts["ERROR"] <= 250
    assert 430 <= counts["COMPLETED"] <= 570
    again, _ = outcome_counts(clock, 1000, failed_rate=0.3, error_rate=0.2)
    assert again == outcomes
    other, _ = outcome_counts(clock, 1000, failed_rate=0.3, error_rate=0.2, seed=8)
    assert other != outcomes


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        pytest.param({"failed_rate": 1.0}, "FAILED", id="failed-rate-1"),
        pytest.param({"error_rate": 1.0}, "ERROR", id="error-rate-1"),
        pytest.param({"failed_rate": 0.0, "error_rate": 0.0}, "COMPLETED", id="rates-0"),
    ],
)
def test_certain_rates_give_certain_outcomes(
    clock: ManualClock, settings: dict[str, float], expected: str
) -> None:
    _, counts = outcome_counts(clock, 50, **settings)
    assert counts == {expected: 50}


def test_outcome_header_wins_over_rates(clock: ManualClock) -> None:
    backend = make_backend(clock, failed_rate=1.0)
    assert submit(backend, {"prompt": "x"}, outcome="completed").job.outcome == "COMPLETED"


# --- the wallet ---------------------------------------------------------------------------------------


def test_price_is_held_at_submit_and_charged_when_completed(
    backend: GatewayBackend, clock: ManualClock
) -> None:
    job = submit(backend, {"prompt": "x", "num_images": 2}).job
    assert money(backend) == (Decimal("99.96"), Decimal("0.04"), Decimal(0))
    finish(backend, clock, 14.999)
    assert money(backend) == (Decimal("99.96"), Decimal("0.04"), Decimal(0))
    finish(backend, clock, 100)
    assert money(backend) == (Decimal("99.96"), Decimal(0), Decimal("0.04"))
    assert [e.kind for e in backend.wallet.entries("test-key") if e.reference == job.request_id] == [
        "hold",
        "capture",
    ]


@pytest.mark.parametrize(
    ("outcome", "balance", "charged", "settlement"),
    [
        pytest.param("failed", Decimal("99.98"), PRICE, "capture", id="failed-is-charged"),
        pytest.param("error", Decimal("100"), Decimal(0), "release", id="error-is-not-charged"),
    ],
)
def test_failed_is_charged_and_error_is_released(
    backend: GatewayBackend,
    clock: ManualClock,
    outcome: str,
    balance: Decimal,
    charged: Decimal,
    settlement: str,
) -> None:
    job = submit(backend, {"prompt": "x"}, outcome=outcome).job
    assert money(backend) == (Decimal("99.98"), PRICE, Decimal(0))
    finish(backend, clock, 15)
    assert money(backend) == (balance, Decimal(0), charged)
    kinds = [e.kind for e in backend.wallet.entries("test-key") if e.reference == job.request_id]
    assert kinds == ["hold", settlement]


def test_a_status_read_while_another_thread_settles_its_job_sees_it_charged(
    backend: GatewayBackend, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A media download ticks on a worker thread: a status read meanwhile must not answer FAILED for a
    job whose charge that tick has yet to make (the served suite met it once under load)."""
    job = submit(backend, {"prompt": "x"}, outcome="failed").job
    clock.advance(15)
    charging, release = threading.Event(), threading.Event()
    capture = backend.wallet.capture

    def slow_capture(reference: str) -> None:
        charging.set()
        release.wait(5)
        capture(reference)

    monkeypatch.setattr(backend.wallet, "capture", slow_capture)
    settling = threading.Thread(target=backend.tick)
    settling.start()
    assert charging.wait(5)
    seen: list[tuple[str, Decimal]] = []
    reader = threading.Thread(
        target=lambda: seen.append((status(backend, job.request_id)["status"], money(backend)[2]))
    )
    reader.start()
    reader.join(0.2)
    assert reader.is_alive() and seen == []  # it waits for the settling tick
    release.set()
    settling.join(5)
    reader.join(5)
    assert seen == [("FAILED", PRICE)]


@needs_reference
def test_insufficient_balance_is_the_reference_402_and_holds_nothing(backend: GatewayBackend) -> None:
    backend.put_key("poor", balance=Decimal("0.03"))
    error = expect_error(402, submit, backend, {"prompt": "x", "num_images": 2}, key="poor")
    assert error.body() == INSUFFICIENT
    assert INSUFFICIENT in reference_json_blocks()
    assert money(backend, "poor") == (Decimal("0.03"), Decimal(0), Decimal(0))
    assert [e.kind for e in backend.wallet.entries("poor")] == ["credit"]
    assert len(backend.jobs) == 0
    assert submit(backend, {"prompt": "x", "num_images": 1}, key="poor").status_code == 202
    assert money(backend, "poor") == (Decimal("0.01"), PRICE, Decimal(0))


def test_sync_mode_is_charged_at_once(backend: GatewayBackend) -> None:
    submit(backend, {"prompt": "x", "sync_mode": True, "image_size": {"width": 8, "height": 8}})
    assert money(backend) == (Decimal("99.98"), Decimal(0), PRICE)


def test_ledger_is_exact_under_concurrent_submits(clock: ManualClock) -> None:
    backend = make_backend(clock)
    backend.put_key("shared", balance=Decimal("0.50"))
    accepted: list[Decimal] = []
    refused: list[int] = []
    lowest: list[Decimal] = []
    lock = threading.Lock()
    barrier = threading.Barrier(12)

    def client(index: int) -> None:
        barrier.wait()
        for attempt in range(25):
            images = 1 + (index + attempt) % 3
            try:
                job = submit(backend, {"prompt": "x", "num_images": images}, key="shared").job
            except GatewayError as error:
                with lock:
                    refused.append(error.status)
            else:
                with lock:
                    accepted.append(job.cost)
            with lock:
                lowest.append(backend.wallet.balance("shared"))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    balance, held, charged = money(backend, "shared")
    assert set(refused) == {402}
    assert len(accepted) + len(refused) == 12 * 25
    assert sum(accepted) == held + charged == Decimal("0.50") - balance
    assert balance < PRICE  # the money ran out: nothing that fits was refused
    assert min(lowest) >= 0
    assert all(entry.balance >= 0 for entry in backend.wallet.entries("shared"))
    finish(backend, clock, 1000)
    assert money(backend, "shared") == (balance, Decimal(0), sum(accepted))


# --- rate limit and faults ----------------------------------------------------------------------------


def test_rate_limit_is_429_with_retry_after(backend: GatewayBackend, clock: ManualClock) -> None:
    backend.configure({"rate_limit": {"rate": 1, "burst": 2}})
    backend.throttle("test-key")
    backend.throttle("test-key")
    error = expect_error(429, backend.throttle, "test-key")
    assert error.headers == {"Retry-After": "1"}
    assert error.body() == {
        "error": "Too Many Requests",
        "message": "Rate limit is exceeded. Try again in 1 second.",
    }
    backend.throttle("another-key")  # each key has its own bucket
    clock.advance(1)
    backend.throttle("test-key")
    expect_error(429, backend.throttle, "test-key")


def test_retry_after_rounds_the_wait_up(backend: GatewayBackend) -> None:
    backend.configure({"rate_limit": {"rate": 0.25, "burst": 1}})
    backend.throttle("test-key")
    assert expect_error(429, backend.throttle, "test-key").headers == {"Retry-After": "4"}


def test_rate_limit_null_turns_it_off(backend: GatewayBackend) -> None:
    backend.configure({"rate_limit": {"rate": 1, "burst": 1}})
    backend.throttle("test-key")
    backend.configure({"rate_limit": None})
    for _ in range(50):
        backend.throttle("test-key")


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        pytest.param({}, None, id="none-by-default"),
        pytest.param({"fault_rate": 1.0}, "server_error", id="fault-rate-1"),
        pytest.param({"drop_rate": 1.0}, "drop", id="drop-rate-1"),
    ],
)
def test_fault_draws(clock: ManualClock, settings: dict[str, Any], expected: str | None) -> None:
    backend = make_backend(clock, **settings)
    assert {backend.draw_fault() for _ in range(20)} == {expected}


def test_latency_draw(clock: ManualClock) -> None:
    assert make_backend(clock).draw_latency() == 0.0
    assert make_backend(clock, latency_rate=1.0, latency_seconds=0.25).draw_latency() == 0.25


# --- sync mode and media ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "size", "image_format"),
    [
        pytest.param(
            {"image_size": {"width": 64, "height": 48}, "output_format": "png"},
            (64, 48),
            "PNG",
            id="custom-png",
        ),
        pytest.param({"image_size": "square"}, (512, 512), "JPEG", id="square-jpeg"),
        pytest.param(
            {"image_size": "landscape_16_9", "num_images": 2}, (1024, 576), "JPEG", id="landscape-two"
        ),
        pytest.param(
            {"image_size": "portrait_4_3", "output_format": "png"}, (768, 1024), "PNG", id="portrait-png"
        ),
    ],
)
def test_sync_mode_answers_200_with_images_as_data_uris(
    backend: GatewayBackend, body: dict[str, Any], size: tuple[int, int], image_format: str
) -> None:
    submission = submit(backend, {"prompt": "x", "sync_mode": True, **body})
    assert submission.status_code == 200
    answer = submission.body
    schema_validator("RequestStatus").validate(answer)
    assert answer["status"] == "COMPLETED"
    assert answer["created_at"] == answer["updated_at"] == answer["completed_at"]
    urls = answer["output"]["media_url"]
    assert len(urls) == body.get("num_images", 1)
    assert answer["output"]["media_type"] == f"image/{image_format.lower()}"
    for url in urls:
        assert url.startswith(f"data:image/{image_format.lower()};base64,")
        image = decode_image(url)
        assert (image.size, image.format) == (size, image_format)


def test_sync_mode_failure_answers_200_with_the_failed_status(backend: GatewayBackend) -> None:
    submission = submit(backend, {"prompt": "x", "sync_mode": True}, outcome="failed")
    assert submission.status_code == 200
    assert submission.body["status"] == "FAILED"
    assert submission.body["output"] is None


def test_sync_mode_job_is_then_hosted_like_any_other(backend: GatewayBackend) -> None:
    submission = submit(backend, {"prompt": "x", "sync_mode": True, "image_size": "square"})
    hosted = status(backend, submission.job.request_id)
    assert hosted["output"]["media_url"] == submission.job.media_urls()
    image, media_type = backend.media(submission.job.request_id, "output.jpeg")
    assert media_type == "image/jpeg"
    assert base64.b64encode(image).decode() in submission.body["output"]["media_url"][0]


def sync_image(backend: GatewayBackend, **body: Any) -> bytes:
    body = {"prompt": "a red fox", "sync_mode": True, "image_size": {"width": 48, "height": 32}, **body}
    return media.decode_data_uri(submit(backend, body).body["output"]["media_url"][0])


def test_media_bytes_are_deterministic_for_the_same_seed_and_params(clock: ManualClock) -> None:
    first = sync_image(make_backend(clock), seed=11)
    assert sync_image(make_backend(ManualClock(start=0)), seed=11) == first
    assert sync_image(make_backend(clock, seed=99), seed=11) == first  # the gateway's seed does not matter
    assert sync_image(make_backend(clock), seed=12) != first
    assert sync_image(make_backend(clock), seed=11, prompt="a blue fox") != first
    assert sync_image(make_backend(clock), seed=11, output_format="png") != first


def test_images_without_a_seed_are_reproducible_from_the_gateway_seed(clock: ManualClock) -> None:
    assert sync_image(make_backend(clock, seed=3)) == sync_image(make_backend(clock, seed=3))


def test_several_images_of_one_request_differ(backend: GatewayBackend) -> None:
    urls = submit(backend, {"prompt": "x", "sync_mode": True, "num_images": 3, "image_size": "square"}).body[
        "output"
    ]["media_url"]
    assert len(set(urls)) == 3


def test_media_exists_only_once_completed(backend: GatewayBackend, clock: ManualClock) -> None:
    job = submit(backend, {"prompt": "x", "image_size": "square"}).job
    expect_error(404, backend.media, job.request_id, "output.jpeg")
    finish(backend, clock, 15)
    image, media_type = backend.media(job.request_id, "output.jpeg")
    assert media_type == "image/jpeg"
    assert decode_image(image).size == (512, 512)
    assert backend.media(job.request_id, "output.jpeg")[0] == image
    expect_error(404, backend.media, job.request_id, "output.png")
    expect_error(404, backend.media, job.request_id, "output_0.jpeg")
    expect_error(404, backend.media, "boogu-image_nope", "output.jpeg")


def test_failed_job_has_no_media(backend: GatewayBackend, clock: ManualClock) -> None:
    job = submit(backend, {"prompt": "x"}, outcome="failed").job
    finish(backend, clock, 15)
    expect_error(404, backend.media, job.request_id, "output.jpeg")


# --- edits --------------------------------------------------------------------------------------------


def edit(backend: GatewayBackend, image_url: str, **body: Any) -> Submission:
    return submit(
        backend,
        {"prompt": "make it pop", "image_url": image_url, "image_size": "square", **body},
        model=EDIT,
    )


def test_edit_derives_from_a_data_uri_source(backend: GatewayBackend) -> None:
    red = png_data_uri((230, 20, 20))
    submission = edit(backend, red, sync_mode=True, image_guidance_scale=8, seed=1)
    image = decode_image(submission.body["output"]["media_url"][0])
    assert image.size == (512, 512)
    r, g, b = mean_rgb(image)
    assert r > 170
    assert g < 90
    assert b < 90
    blue = edit(backend, png_data_uri((20, 20, 230)), sync_mode=True, image_guidance_scale=8, seed=1)
    assert mean_rgb(decode_image(blue.body["output"]["media_url"][0]))[2] > 170


def test_edit_derives_from_the_mocks_own_media_url(backend: GatewayBackend, clock: ManualClock) -> None:
    original = submit(backend, {"prompt": "a lighthouse", "image_size": "square"}).job
    finish(backend, clock, 15)
    url = original.media_urls()[0]
    submission = edit(backend, url, seed=1)
    assert submission.job.source == backend.media(original.request_id, "output.jpeg")[0]
    finish(backend, clock, 15)
    derived = backend.media(submission.job.request_id, "output.jpeg")[0]
    stand_in = edit(backend, "https://elsewhere.test/other.jpeg", seed=1)
    finish(backend, clock, 15)
    assert backend.media(stand_in.job.request_id, "output.jpeg")[0] != derived


def test_a_remote_image_is_stood_in_for_when_rendered_not_at_submit(
    backend: GatewayBackend, clock: ManualClock
) -> None:
    """The submit renders nothing and holds no image (it held the event loop 16 ms); the images still
    derive from the URL, the same each time, and differ from another URL's."""
    first = edit(backend, "https://elsewhere.test/photo.png", seed=1)
    assert first.job.source is None
    again = edit(backend, "https://elsewhere.test/photo.png", seed=1)
    other = edit(backend, "https://elsewhere.test/other.png", seed=1)
    finish(backend, clock, 30)
    images = [backend.media(s.job.request_id, "output.jpeg")[0] for s in (first, again, other)]
    assert images[0] == images[1] != images[2]


def test_edit_of_an_unfinished_mock_image_is_accepted_and_ends_error_uncharged(
    backend: GatewayBackend, clock: ManualClock
) -> None:
    """The gateway fetches the input after accepting the job: an unreadable one fails the job."""
    job = submit(backend, {"prompt": "x"}).job
    edited = edit(backend, job.media_urls()[0])
    assert edited.status_code == 202
    finish(backend, clock, 60)
    final = status(backend, edited.job.request_id)
    assert final["status"] == "ERROR"
    assert "image_url" in final["error"]
    assert "not available" in final["error"]
    assert money(backend) == (Decimal("99.98"), Decimal(0), Decimal("0.02"))  # only the first job


def test_edit_of_a_remote_url_stands_in_deterministically(backend: GatewayBackend) -> None:
    first = edit(backend, "https://elsewhere.test/a.jpeg", sync_mode=True, seed=5).body
    second = edit(backend, "https://elsewhere.test/a.jpeg", sync_mode=True, seed=5).body
    third = edit(backend, "https://elsewhere.test/b.jpeg", sync_mode=True, seed=5).body
    assert first["output"]["media_url"] == second["output"]["media_url"]
    assert first["output"]["media_url"] != third["output"]["media_url"]


def test_data_uri_of_another_media_type_is_400(backend: GatewayBackend) -> None:
    error = expect_error(400, edit, backend, "data:text/plain;base64,aGVsbG8=")
    assert error.message.startswith("image_url: ")
    assert money(backend) == (Decimal(100), Decimal(0), Decimal(0))


@pytest.mark.parametrize(
    ("image_url", "expected"),
    [
        pytest.param("data:image/png;base64,!!!!", "invalid base64", id="bad-base64"),
        pytest.param("data:image/png,rawdata", "not base64-encoded", id="not-base64"),
        pytest.param(
            "data:image/png;base64,aGVsbG8=", "not a JPG, PNG, WebP, GIF or AVIF file", id="not-an-image"
        ),
        pytest.param("data:image/png;base64,", "empty", id="empty"),
    ],
)
def test_unreadable_data_uri_is_accepted_and_the_job_ends_error_uncharged(
    backend: GatewayBackend, clock: ManualClock, image_url: str, expected: str
) -> None:
    """Schema-valid, so accepted as the gateway would; the image cannot be loaded, so the job errs."""
    accepted = edit(backend, image_url)
    assert accepted.status_code == 202
    finish(backend, clock, 60)
    final = status(backend, accepted.job.request_id)
    assert final["status"] == "ERROR"
    assert "image_url: " in final["error"]
    assert expected in final["error"]
    assert money(backend) == (Decimal(100), Decimal(0), Decimal(0))


# --- webhooks -----------------------------------------------------------------------------------------


async def test_webhook_is_enqueued_at_the_terminal_status_and_not_before(
    backend: GatewayBackend, clock: ManualClock, sender: FakeSender
) -> None:
    job = submit(backend, {"prompt": "x"}, webhook_url=HOOK).job
    for seconds in (0.0, 1.0, 13.999):
        finish(backend, clock, seconds)
        assert backend.webhooks.deliveries() == []
        assert await backend.webhooks.deliver_due() == []
    finish(backend, clock, 0.001)
    deliveries = backend.webhooks.deliveries()
    assert len(deliveries) == 1
    final = status(backend, job.request_id)
    assert deliveries[0].payload == final
    assert deliveries[0].url == HOOK
    await backend.webhooks.deliver_due()
    assert sender.calls == [(HOOK, final)]
    schema_validator("RequestStatus").validate(sender.calls[0][1])
    finish(backend, clock, 100)
    await backend.webhooks.deliver_due()
    assert len(sender.calls) == 1
    assert backend.webhooks.deliveries()[0].state == "delivered"


@pytest.mark.parametrize("outcome", ["failed", "error"])
async def test_webhook_carries_failed_and_error_statuses(
    backend: GatewayBackend, clock: ManualClock, sender: FakeSender, outcome: str
) -> None:
    submit(backend, {"prompt": "x"}, webhook_url=HOOK, outcome=outcome)
    finish(backend, clock, 15)
    await backend.webhooks.deliver_due()
    payload = sender.calls[0][1]
    assert payload["status"] == outcome.upper()
    assert payload["error"]
    schema_validator("RequestStatus").validate(payload)


def test_no_webhook_without_the_header(backend: GatewayBackend, clock: ManualClock) -> None:
    submit(backend, {"prompt": "x"})
    finish(backend, clock, 15)
    assert backend.webhooks.deliveries() == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("ftp://127.0.0.1/hook", "does not match '^https?://'", id="ftp-scheme"),
        pytest.param("https://\u00cf", "is not a 'uri'", id="not-ascii"),
        pytest.param("https://a b/", "is not a 'uri'", id="space"),
    ],
)
def test_webhook_url_outside_the_contract_is_400_naming_the_rule(
    backend: GatewayBackend, url: str, expected: str
) -> None:
    error = expect_error(400, submit, backend, {"prompt": "x"}, webhook_url=url)
    assert error.message.startswith("X-Webhook-URL: ")
    assert expected in error.message
    assert len(backend.jobs) == 0


@pytest.mark.parametrize("image_url", ["https://\u00cf/a.png", "https://a b/c.png", "http://[::1/x"])
def test_image_url_that_is_no_uri_is_400(backend: GatewayBackend, image_url: str) -> None:
    error = expect_error(400, edit, backend, image_url)
    assert error.message.startswith("image_url: ")
    assert len(backend.jobs) == 0


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("http://example.com/hook", "host 'example.com' is not allowed", id="public-host"),
        pytest.param(
            "https://your-server.com/webhook/callback", "host 'your-server.com'", id="reference-example"
        ),
        pytest.param("http://10.0.0.1/hook", "host '10.0.0.1' is not allowed", id="private-address"),
        pytest.param("http://169.254.169.254/latest", "is not allowed", id="metadata-address"),
        pytest.param("http:///nohost", "has no host", id="no-host"),
    ],
)
async def test_webhook_the_mock_will_not_call_is_accepted_and_recorded_blocked(
    backend: GatewayBackend,
    clock: ManualClock,
    sender: FakeSender,
    caplog: pytest.LogCaptureFixture,
    url: str,
    expected: str,
) -> None:
    """The contract allows the URL, so the gateway's 202; the mock never contacts a host off its list."""
    for _ in range(3):
        assert submit(backend, {"prompt": "x"}, webhook_url=url).status_code == 202
    finish(backend, clock, 15)
    await backend.webhooks.deliver_due()
    finish(backend, clock, 120)
    await backend.webhooks.deliver_due()
    assert sender.calls == []
    deliveries = backend.webhooks.deliveries()
    assert [d.state for d in deliveries] == ["blocked"] * 3
    assert all(d.attempts == [] and d.reason is not None and expected in d.reason for d in deliveries)
    assert deliveries[0].to_dict()["reason"] == deliveries[0].reason
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "blocked" in r.getMessage()]
    assert len(warnings) == 1  # once, not once per job
    assert expected in warnings[0].getMessage()


@pytest.mark.parametrize("url", ["http://localhost:8000/x", "http://127.0.0.1/x", "http://[::1]:9/x"])
def test_loopback_webhook_urls_are_accepted(backend: GatewayBackend, url: str) -> None:
    assert submit(backend, {"prompt": "x"}, webhook_url=url).status_code == 202


def test_allowlisted_webhook_host_is_accepted(backend: GatewayBackend) -> None:
    backend.configure({"webhook_allowlist": ["hooks.example.com"]})
    assert submit(backend, {"prompt": "x"}, webhook_url="https://hooks.example.com/x").status_code == 202


# --- status, expiry and reset -------------------------------------------------------------------------


def test_status_of_unknown_or_foreign_jobs_is_404(backend: GatewayBackend) -> None:
    job = submit(backend, {"prompt": "x"}).job
    backend.put_key("other")
    error = expect_error(404, status, backend, job.request_id, key="other")
    assert error.body() == {"error": "Not Found", "message": f"Request '{job.request_id}' not found"}
    expect_error(404, status, backend, "boogu-image_nope")
    assert status(backend, job.request_id)["status"] == "QUEUED"


def test_jobs_expire_after_the_ttl(clock: ManualClock) -> None:
    backend = make_backend(clock, job_ttl=60)
    job = submit(backend, {"prompt": "x"}).job
    finish(backend, clock, 15)
    assert status(backend, job.request_id)["status"] == "COMPLETED"
    finish(backend, clock, 59.9)
    assert status(backend, job.request_id)["status"] == "COMPLETED"
    finish(backend, clock, 0.1)
    expect_error(404, status, backend, job.request_id)
    expect_error(404, backend.media, job.request_id, "output.jpeg")
    assert len(backend.jobs) == 0


def test_reset_forgets_everything_but_the_configuration(backend: GatewayBackend, clock: ManualClock) -> None:
    backend.configure({"price_per_image": "0.05"})
    first_id = submit(backend, {"prompt": "x"}, webhook_url=HOOK).job.request_id
    backend.put_key("extra", balance=Decimal(5))
    finish(backend, clock, 15)
    assert backend.webhooks.deliveries()

    backend.reset()

    assert len(backend.jobs) == 0
    expect_error(404, status, backend, first_id)
    assert backend.get_key("extra") is None
    assert money(backend) == (Decimal(100), Decimal(0), Decimal(0))
    assert backend.webhooks.deliveries() == []
    assert backend.journal.entries() == []
    assert backend.config.price_per_image == Decimal("0.05")


def test_reset_reseeds_so_a_run_repeats_exactly(clock: ManualClock) -> None:
    backend = make_backend(clock, failed_rate=0.5)

    def run() -> list[tuple[str, str]]:
        return [
            (s.job.request_id, s.job.outcome) for s in (submit(backend, {"prompt": "x"}) for _ in range(5))
        ]

    first = run()
    backend.reset()
    assert run() == first


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"speed": 0}, id="speed-zero"),
        pytest.param({"speed": float("nan")}, id="speed-nan"),
        pytest.param({"speed": float("inf")}, id="speed-inf"),
        pytest.param({"job_ttl": float("inf")}, id="ttl-inf"),
        pytest.param({"latency_seconds": float("nan")}, id="latency-nan"),
        pytest.param({"default_balance": "1e400"}, id="balance-too-large-for-a-float"),
        pytest.param({"failed_rate": 1.5}, id="rate-above-1"),
        pytest.param({"failed_rate": 0.6, "error_rate": 0.6}, id="rates-sum-above-1"),
        pytest.param({"price_per_image": "NaN"}, id="price-nan"),
        pytest.param({"price_per_image": "-1"}, id="price-negative"),
        pytest.param({"rate_limit": {"rate": 0, "burst": 1}}, id="rate-limit-zero"),
        pytest.param({"rate_limit": {"rate": 1}}, id="rate-limit-no-burst"),
        pytest.param({"colour": "blue"}, id="unknown-setting"),
    ],
)
def test_invalid_configuration_is_refused_and_changes_nothing(
    backend: GatewayBackend, changes: dict[str, Any]
) -> None:
    before = backend.config
    with pytest.raises(ConfigError):
        backend.configure(changes)
    assert backend.config == before


@pytest.fixture
def many_keys(backend: GatewayBackend) -> list[str]:
    keys = [f"k{i}" for i in range(3)]
    for key in keys:
        backend.put_key(key, balance=Decimal(1))
    return keys


def test_keys_are_independent(backend: GatewayBackend, clock: ManualClock, many_keys: list[str]) -> None:
    jobs = {key: submit(backend, {"prompt": "x"}, key=key).job for key in many_keys}
    finish(backend, clock, 15)
    for key, job in jobs.items():
        assert status(backend, job.request_id, key=key)["status"] == "COMPLETED"
        assert money(backend, key) == (Decimal("0.98"), Decimal(0), PRICE)
    assert money(backend) == (Decimal(100), Decimal(0), Decimal(0))
