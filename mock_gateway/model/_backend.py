"""The gateway model: keys, wallet, rate limits, jobs, media and webhooks, with no HTTP server in sight.

Like a moto backend, it is usable on its own (tests drive it directly) and `mock_gateway.server` is
a thin translation of HTTP requests into calls on it. Every answer that is not a success is a
`GatewayError` carrying the status and the `{error, message}` body of openapi.yaml.
"""

from __future__ import annotations

import asyncio
import heapq
import random
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, NoReturn
from urllib.parse import urlsplit

import httpx

from boogu_contract import Contract, iso_time, wire

from . import _media as media
from ._budget import stored_inputs
from ._clock import Clock, OffsetClock, sleep_until
from ._config import DEFAULT_API_KEY, LostAnswerMode, MockConfig, money
from ._jobs import Job, JobStore, Outcome, media_filename, split_params, uuid7
from ._journal import Journal
from ._ratelimit import RateLimiter, retry_after_seconds
from ._scheduler import Slot, WorkerPool, jitter, timeline
from ._wallet import InsufficientBalance, Wallet
from ._webhooks import Delivery, Sender, WebhookDispatcher, check_webhook_target, post_json

OUTCOME_HEADER = "X-Mock-Outcome"
OUTCOMES: dict[str, Outcome] = {"completed": "COMPLETED", "failed": "FAILED", "error": "ERROR"}
SAFETY_TRIGGER = re.compile(r"\bnsfw\b", re.IGNORECASE)
"""With enable_safety_checker, a prompt containing the word `nsfw` ends FAILED, as flagged content would."""


def _flagged(prompt: str) -> bool:
    # The regex is tried at every character (4 µs a submit), so a cheap test goes first; casefold
    # maps what IGNORECASE matches (the long s, U+017F, is an s).
    return "nsfw" in prompt.casefold() and SAFETY_TRIGGER.search(prompt) is not None


MEDIA_PATH = re.compile(r"/media/(?P<request_id>[^/]+)/(?P<name>output(?:_(?P<index>\d+))?\.(?:jpeg|png))$")

FAILED_MESSAGES: dict[str, str] = {
    "safety": "The generated image was flagged by the safety checker (NSFW content detected).",
    "forced": "The model could not generate an image for this request.",
}
ERROR_MESSAGE = "Internal model error: the worker stopped unexpectedly. You were not charged."

Fault = Literal["server_error", "drop"]
LOST_ANSWERS: dict[LostAnswerMode, Fault] = {"drop": "drop", "500": "server_error"}
"""`lost_answer_mode` → the fault that loses an accepted submit's answer."""
LOST_ANSWER_TOKENS: dict[str, Fault] = {f"lost-answer-{mode}": fault for mode, fault in LOST_ANSWERS.items()}
"""`X-Mock-Outcome: lost-answer-drop` / `lost-answer-500`: this submit's answer is lost, whatever the rate."""


class GatewayError(Exception):
    """An error answer: HTTP status, the `{error, message}` body, and any extra headers."""

    def __init__(self, status: int, error: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        return {"error": self.error, "message": self.message}


def validation_error(message: str) -> GatewayError:
    return GatewayError(400, "Validation Error", message)


def internal_error() -> GatewayError:
    return GatewayError(
        500, "Internal Server Error", "The gateway could not process the request. Try again later."
    )


class DroppedConnection(httpx.RemoteProtocolError):
    """A simulated dropped connection (`drop_rate`, a lost answer): in-process clients see this
    transport error as-is, and a served gateway turns it into a response cut short, which a socket
    client sees as one."""

    def __init__(self, reason: str = "drop_rate") -> None:
        super().__init__(f"the mock gateway dropped the connection ({reason})")


def fail(fault: Fault, reason: str) -> NoReturn:
    """Play out a drawn fault: the documented 500, or a dropped connection."""
    if fault == "server_error":
        raise internal_error()
    raise DroppedConnection(reason)


MAX_KEY_LENGTH = 256


def check_key(key: Any) -> str:
    """`key` if it can be an API key, else a ValueError naming the rule: it must travel unchanged in a
    header and in a URL path, so every key created authenticates and can be read back."""
    if not isinstance(key, str) or not key:
        raise ValueError("key: is required and must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"key: must be at most {MAX_KEY_LENGTH} characters")
    if not (key.isascii() and key.isprintable()):
        raise ValueError("key: must be printable ASCII characters")
    if key != key.strip():
        raise ValueError("key: must not start or end with a space")
    return key


@dataclass
class ApiKey:
    key: str
    enabled: bool = True
    models: frozenset[str] | None = None
    """Models this key may call; None means all."""

    def to_dict(self, balance: Decimal, charged: Decimal) -> dict[str, Any]:
        return {
            "key": self.key,
            "balance": money(balance),
            "charged": money(charged),
            "enabled": self.enabled,
            "models": sorted(self.models) if self.models is not None else None,
        }


@dataclass(frozen=True, slots=True)
class Admission:
    """A call's fate at the gateway's door: the caller's key, a submit's operation, and what was drawn
    for it (a latency, a fault) or why its model is refused. `wait` plays it out."""

    key: ApiKey
    model_id: str | None = None
    operation_id: str | None = None
    delay: float = 0.0
    fault: Fault | None = None
    refusal: GatewayError | None = None

    async def wait(self) -> None:
        """In the gateway's order: the latency, then the fault, then the refusal of the model."""
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fault is not None:
            fail(self.fault, "drop_rate")
        if self.refusal is not None:
            raise self.refusal


@dataclass(frozen=True)
class Submission:
    """What an accepted submit answers: 202 with the queued body, or 200 with the finished job;
    unless `lost` says how that answer is lost (`lost_answer_rate`)."""

    status_code: int
    body: dict[str, Any]
    job: Job = field(repr=False)
    lost: Fault | None = None


@dataclass(frozen=True)
class SyncWait:
    """An accepted sync-mode job: answer `finish_sync(job)` once the clock reaches `until` (its worker
    may be busy), as the gateway holds a sync request open until its job is done. Rendering is the
    caller's to schedule, off its event loop."""

    job: Job = field(repr=False)
    until: float
    lost: Fault | None = None


class GatewayBackend:
    """The whole state of one mock gateway; thread-safe, driven by an injected clock."""

    def __init__(
        self,
        config: MockConfig | None = None,
        *,
        clock: Clock | None = None,
        contract: Contract | None = None,
        api_key: str = DEFAULT_API_KEY,
        webhook_sender: Sender | None = None,
    ) -> None:
        self.config = config or MockConfig()
        self.clock: Clock = clock or OffsetClock()
        self.contract = contract or Contract()
        self.dev_key = api_key
        self.models = self._models_from_contract()
        self.wallet = Wallet(self.clock)
        self.limiter = RateLimiter(self.clock, self.config.rate_limit)
        self.jobs = JobStore()
        self.workers = WorkerPool()
        self.journal = Journal(self.config.journal_size, self.config.journal_entry_bytes)
        self.webhooks = self._dispatcher(webhook_sender or post_json)
        self._deliveries: set[asyncio.Task[Any]] = set()
        self._keys: dict[str, ApiKey] = {}
        self._unfinished: dict[str, list[float]] = {}  # key → finish times of its jobs, a heap
        self._media_cache: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._settling = threading.Lock()
        """Held through a whole `tick`: a job is marked settled and then charged, and another thread's
        tick (a media download's runs on a worker thread) must not see it settled before it is charged."""
        self.rng = random.Random(self.config.seed)
        self.put_key(api_key, balance=self.config.default_balance)

    def _models_from_contract(self) -> dict[str, str]:
        """model id → operationId, read from the submit paths `/{model}/v1/{model}-request` of the spec."""
        models = {}
        for operation in self.contract.operations.values():
            model = wire.submit_model(operation.path)
            if model is not None and operation.method == "POST":
                models[model] = operation.operation_id
        return models

    def _dispatcher(self, sender: Sender) -> WebhookDispatcher:
        return WebhookDispatcher(
            self.clock,
            sender,
            max_attempts=self.config.webhook_max_attempts,
            backoff=self.config.webhook_backoff,
            concurrency=self.config.webhook_concurrency,
        )

    # Administration -------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to a fresh gateway with the same configuration: keys, money, jobs and logs cleared."""
        with self._lock:
            self.jobs.clear()
            self.workers.clear()
            self.journal.clear()
            self.wallet.reset()
            self.webhooks.reset()
            self.limiter.configure(self.config.rate_limit)
            self._keys.clear()
            self._unfinished.clear()
            self._media_cache.clear()
            self.rng = random.Random(self.config.seed)
        self.put_key(self.dev_key, balance=self.config.default_balance)

    def configure(self, changes: dict[str, Any]) -> MockConfig:
        config = self.config.updated(changes)
        with self._lock:
            self.config = config
            if "rate_limit" in changes:
                self.limiter.configure(config.rate_limit)
            if "seed" in changes:
                self.rng = random.Random(config.seed)
            if {"journal_size", "journal_entry_bytes"} & changes.keys():
                self.journal.resize(config.journal_size, config.journal_entry_bytes)
            if {"webhook_max_attempts", "webhook_backoff", "webhook_concurrency"} & changes.keys():
                self.webhooks.configure(
                    max_attempts=config.webhook_max_attempts,
                    backoff=config.webhook_backoff,
                    concurrency=config.webhook_concurrency,
                )
        return config

    def put_key(
        self,
        key: str,
        *,
        balance: Decimal | None = None,
        enabled: bool = True,
        models: frozenset[str] | None = None,
    ) -> ApiKey:
        """Create or update a key; a new key without a balance gets the configured default."""
        with self._lock:
            record = ApiKey(key=key, enabled=enabled, models=models)
            known = key in self._keys
            self._keys[key] = record
        if balance is not None:
            self.wallet.set_balance(key, balance)
        elif not known:
            self.wallet.set_balance(key, self.config.default_balance)
        return record

    def get_key(self, key: str) -> ApiKey | None:
        return self._keys.get(key)

    def describe_key(self, key: str) -> dict[str, Any] | None:
        record = self._keys.get(key)
        if record is None:
            return None
        return record.to_dict(self.wallet.balance(key), self.wallet.charged(key))

    # The API --------------------------------------------------------------------------------

    def authenticate(self, key: str | None) -> ApiKey:
        """401 for a missing or unknown key and 403 for a disabled one, as Azure API Management answers."""
        if not key:
            raise GatewayError(
                401,
                "Unauthorized",
                "Access denied due to missing subscription key. "
                "Make sure to include subscription key when making requests to an API.",
            )
        record = self._keys.get(key)
        if record is None:
            raise GatewayError(
                401,
                "Unauthorized",
                "Access denied due to invalid subscription key. "
                "Make sure to provide a valid key for an active subscription.",
            )
        if not record.enabled:
            raise GatewayError(403, "Forbidden", "The subscription key is disabled.")
        return record

    def throttle(self, key: str) -> None:
        wait = self.limiter.acquire(key)
        if wait > 0:
            seconds = retry_after_seconds(wait)
            raise GatewayError(
                429,
                "Too Many Requests",
                f"Rate limit is exceeded. Try again in {seconds} second{'' if seconds == 1 else 's'}.",
                headers={"Retry-After": str(seconds)},
            )

    def draw_fault(self) -> Fault | None:
        """Whether this call fails on purpose (configured fault and drop rates)."""
        config = self.config
        if config.fault_rate == 0 and config.drop_rate == 0:
            return None
        draw = self.rng.random()
        if draw < config.fault_rate:
            return "server_error"
        if draw < config.fault_rate + config.drop_rate:
            return "drop"
        return None

    def draw_latency(self) -> float:
        config = self.config
        if config.latency_rate and self.rng.random() < config.latency_rate:
            return config.latency_seconds
        return 0.0

    def admit(self, key: str | None, model_id: str | None = None) -> Admission:
        """Decide a call's fate before any work: its key (401, 403) and rate limit (429) at once, then
        the configured latency and faults, then a submit's model (400, 403), for `Admission.wait`."""
        record = self.authenticate(key)
        self.throttle(record.key)
        delay, fault = self.draw_latency(), self.draw_fault()
        if model_id is None:
            return Admission(record, delay=delay, fault=fault)
        operation_id = self.models.get(model_id)
        refusal = None
        if operation_id is None:
            refusal = GatewayError(400, "Model not found", f"Model '{model_id}' not found or is disabled")
        elif record.models is not None and model_id not in record.models:
            refusal = GatewayError(
                403, "Forbidden", f"The subscription key has no access to model '{model_id}'."
            )
        return Admission(record, model_id, operation_id, delay, fault, refusal)

    def submit(
        self,
        admission: Admission,
        body: Any,
        *,
        base_url: str,
        webhook_url: str | None = None,
        outcome: str | None = None,
        own_address: tuple[str, int] | None = None,
        body_size: int | None = None,
    ) -> Submission | SyncWait:
        """Validate, charge and queue the job of an admitted submit; in sync mode, say when to finish it.
        `body_size`, the request body's bytes, spares looking for long texts in a small one."""
        if admission.refusal is not None:
            raise admission.refusal
        record, model_id, operation_id = admission.key, admission.model_id, admission.operation_id
        if model_id is None or operation_id is None:
            raise ValueError("submit takes the admission of a submit (admit with its model_id)")
        violation = self.contract.check_body(operation_id, body)
        if violation is not None:
            raise validation_error(str(violation))
        params = self.contract.with_defaults(operation_id, body)
        if webhook_url is not None:
            self._check_webhook(operation_id, webhook_url)
        forced, forced_loss = self._parse_outcome(outcome)
        loaded = self._load_source(params["image_url"]) if "image_url" in params else None
        source = loaded if isinstance(loaded, bytes) else None
        params, input_size = stored_inputs(params, source, body_size)

        now = self.clock.now()
        with self._lock:
            self._check_unfinished(record.key, now)
            request_id = f"{model_id}_{uuid7(now, self.rng)}"
            seed = int(params["seed"]) if "seed" in params else self.rng.getrandbits(32)
            job_outcome, error = (
                ("ERROR", f"Could not load the input image. {loaded} You were not charged.")
                if isinstance(loaded, str)
                else self._decide_outcome(params, forced)
            )
            lost = forced_loss or self._draw_lost_answer()
        cost = self.config.price_per_image * int(params["num_images"])
        try:
            self.wallet.hold(record.key, cost, request_id)
        except InsufficientBalance:
            raise GatewayError(
                402, "Insufficient Balance", "Your wallet does not have enough balance."
            ) from None

        slot = self._slot(model_id, params, now)
        param_names, param_values = split_params(params)
        job = Job(
            request_id=request_id,
            model_id=model_id,
            key=record.key,
            param_names=param_names,
            param_values=param_values,
            seed=seed,
            outcome=job_outcome,
            error=error,
            created_at=now,
            base_url=base_url,
            webhook_url=webhook_url,
            webhook_refusal=None
            if webhook_url is None
            else check_webhook_target(webhook_url, self.config.webhook_allowlist, own_address),
            cost=cost,
            source=source,
            footprint=input_size,
            started_at=slot.start,
            finished_at=slot.finish,
        )
        self.jobs.add(job)
        with self._lock:
            heapq.heappush(self._unfinished.setdefault(record.key, []), job.finished_at)
        self._drop_over_budget()
        if params["sync_mode"]:
            return SyncWait(job, job.finished_at, lost)
        return Submission(
            202,
            {
                "request_id": request_id,
                "status": "QUEUED",
                "polling_url": base_url + wire.status_path(request_id),
            },
            job,
            lost,
        )

    def finish_sync(self, job: Job) -> Submission:
        """The 200 answer of a sync-mode job, once it has finished: its images inline as data URIs."""
        self.tick()
        inline = None
        if job.outcome == "COMPLETED":
            inline = [media.to_data_uri(image, job.output_format) for image in self._render(job)]
        return Submission(200, job.to_status(job.finished_at, media_urls=inline), job)

    def _check_unfinished(self, key: str, now: float) -> None:
        """429 while `key` has `max_unfinished_per_key` jobs not yet finished: free jobs (`ERROR`, or a
        price of 0) cost no balance, so without it one key could hold any number. `Retry-After` is when
        the key's next job finishes. Called under the lock."""
        finishing = self._unfinished.get(key)
        if finishing is None:
            return
        while finishing and finishing[0] <= now:
            heapq.heappop(finishing)
        if not finishing:
            del self._unfinished[key]
        elif len(finishing) >= self.config.max_unfinished_per_key:
            seconds = retry_after_seconds(finishing[0] - now)
            raise GatewayError(
                429,
                "Too Many Requests",
                f"Too many unfinished requests for this key ({len(finishing):,}). "
                f"Try again in {seconds} second{'' if seconds == 1 else 's'}.",
                headers={"Retry-After": str(seconds)},
            )

    def _slot(self, model_id: str, params: dict[str, Any], now: float) -> Slot:
        """When the job starts and finishes: the size model with its jitter, then a worker in arrival order.

        A sync-mode job renders at once but still waits for a worker.
        """
        config = self.config
        if params["sync_mode"]:
            queued = processing = 0.0
        else:
            steps, images = int(params["num_inference_steps"]), int(params["num_images"])
            queued, processing = timeline(steps, images, config.speed, config.queue_seconds)
            if config.duration_jitter:  # drawn only with a spread: seeded runs without one keep their draws
                with self._lock:
                    queued *= jitter(self.rng, config.duration_jitter)
                    processing *= jitter(self.rng, config.duration_jitter)
        return self.workers.schedule(
            model_id, ready_at=now + queued, processing=processing, capacity=config.capacity, now=now
        )

    def status(self, record: ApiKey, request_id: str) -> dict[str, Any]:
        """The job's status; another key's job is as unknown as a missing one (no id probing)."""
        self.tick()
        job = self.jobs.get(request_id)
        if job is None or job.key != record.key:
            raise GatewayError(404, "Not Found", f"Request '{request_id}' not found")
        return job.to_status(self.clock.now())

    def media(self, request_id: str, name: str) -> tuple[bytes, str]:
        """An image of a COMPLETED job, rendered on first download and cached."""
        self.tick()
        job = self.jobs.get(request_id)
        names = (
            []
            if job is None
            else [media_filename(i, job.num_images, job.output_format) for i in range(job.num_images)]
        )
        if job is None or name not in names or job.status(self.clock.now()) != "COMPLETED":
            raise GatewayError(404, "Not Found", f"No media '{name}' for request '{request_id}'")
        return self._render(job)[names.index(name)], f"image/{job.output_format}"

    def tick(self) -> list[Job]:
        """Settle the jobs that finished: charge or refund them and queue their webhooks."""
        with self._settling:
            settled = self.jobs.settle_due(self.clock.now(), self.config.job_ttl)
            for job in settled:
                if job.outcome == "ERROR":
                    self.wallet.release(job.request_id)
                else:
                    self.wallet.capture(job.request_id)
                if job.webhook_url is not None:
                    self.webhooks.enqueue(
                        job.request_id,
                        job.webhook_url,
                        job.to_status(job.finished_at),
                        blocked=job.webhook_refusal,
                    )
        if settled:
            self._drop_over_budget()
        return settled

    def _drop_over_budget(self) -> None:
        self.jobs.drop_over(self.config.job_input_bytes)

    async def finish(self, waiting: Submission | SyncWait) -> Submission:
        """A submit's answer: a sync-mode job's once the clock reaches its end, rendered off the loop.
        A lost answer is lost at once, as a proxy that gives up would lose it; the job runs on."""
        if waiting.lost is not None:
            fail(waiting.lost, "lost answer")
        if isinstance(waiting, Submission):
            return waiting
        await sleep_until(self.clock, waiting.until)
        return await asyncio.to_thread(self.finish_sync, waiting.job)

    async def pump(self, *, wait: bool = False) -> tuple[list[Job], int]:
        """Settle the jobs that finished and deliver the webhooks due: in the background, or with `wait`
        to the end of this round's attempts, for at most one attempt's timeout: with more due than
        `webhook_concurrency`, a receiver that never answers would hold the caller for many. Returns the
        settled jobs and the attempts started."""
        settled = self.tick()
        if not wait:
            self.deliver_webhooks_soon()
            return settled, 0
        attempted: list[Delivery] = []
        await asyncio.wait({self._deliver_in_background(attempted)}, timeout=self.webhooks.attempt_timeout)
        return settled, len(attempted)

    def deliver_webhooks_soon(self) -> None:
        """On the event loop: deliver due webhooks in the background, without delaying the caller."""
        if self.webhooks.ready():
            self._deliver_in_background()

    def _deliver_in_background(self, attempted: list[Delivery] | None = None) -> asyncio.Task[list[Delivery]]:
        """A round of deliveries as a task kept until it ends (the loop keeps only weak references)."""
        task = asyncio.get_running_loop().create_task(self.webhooks.deliver_due(attempted))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)
        return task

    def now_iso(self) -> str:
        return iso_time(self.clock.now())

    # Helpers --------------------------------------------------------------------------------

    def _check_webhook(self, operation_id: str, url: str) -> None:
        """Only the contract decides: a target the mock will not call is accepted and recorded `blocked`."""
        violation = self.contract.check_header(operation_id, wire.WEBHOOK_HEADER, url)
        if violation is not None:
            raise validation_error(str(violation))

    @staticmethod
    def _parse_outcome(value: str | None) -> tuple[Outcome | None, Fault | None]:
        """`X-Mock-Outcome`: a job outcome, a way to lose the answer, or both, comma-separated."""
        if value is None:
            return None, None
        outcome: Outcome | None = None
        lost: Fault | None = None
        for token in (part.strip().lower() for part in value.split(",")):
            if token in OUTCOMES and outcome is None:
                outcome = OUTCOMES[token]
            elif token in LOST_ANSWER_TOKENS and lost is None:
                lost = LOST_ANSWER_TOKENS[token]
            else:
                raise validation_error(
                    f"{OUTCOME_HEADER}: expected one of {', '.join(OUTCOMES)} and/or one of "
                    f"{', '.join(LOST_ANSWER_TOKENS)}, comma-separated, got {value!r}"
                )
        return outcome, lost

    def _draw_lost_answer(self) -> Fault | None:
        """Whether an accepted submit's answer is lost (`lost_answer_rate`); drawn only when the rate
        is set, so seeded runs without it keep their draws. Called under the lock."""
        config = self.config
        if config.lost_answer_rate and self.rng.random() < config.lost_answer_rate:
            return LOST_ANSWERS[config.lost_answer_mode]
        return None

    def _decide_outcome(self, params: dict[str, Any], forced: Outcome | None) -> tuple[Outcome, str | None]:
        if forced is not None:
            return forced, {"COMPLETED": None, "FAILED": FAILED_MESSAGES["forced"], "ERROR": ERROR_MESSAGE}[
                forced
            ]
        if params["enable_safety_checker"] and _flagged(str(params["prompt"])):
            return "FAILED", FAILED_MESSAGES["safety"]
        draw = self.rng.random()
        if draw < self.config.failed_rate:
            return "FAILED", FAILED_MESSAGES["forced"]
        if draw < self.config.failed_rate + self.config.error_rate:
            return "ERROR", ERROR_MESSAGE
        return "COMPLETED", None

    def _load_source(self, image_url: str) -> bytes | str | None:
        """The edit's input: a data URI or one of this mock's own images; None for any other URL, which
        the mock (offline) stands in for when it renders the job's images (`_stand_in`).

        An input that cannot be loaded is returned as the reason why: the gateway fetches the image
        after accepting the job, so such a job is accepted and ends ERROR, not answered 400.
        """
        if image_url.startswith("data:"):
            try:
                data = media.decode_data_uri(image_url)
            except ValueError as exc:
                return f"image_url: {exc}"
            problem = media.check_source_image(data)
            return data if problem is None else f"image_url: {problem}"
        match = MEDIA_PATH.search(urlsplit(image_url).path)
        own = self.jobs.get(match["request_id"]) if match is not None else None
        if match is not None and own is not None and image_url.startswith(f"{own.base_url}/media/"):
            try:
                return self.media(match["request_id"], match["name"])[0]
            except GatewayError:
                return f"image_url: the mock's image {image_url!r} is not available"
        return None

    @staticmethod
    def _stand_in(image_url: str) -> bytes:
        """No network here: a remote image is stood in for by one derived from its URL. Rendered with
        the job's images, not at submit, where it held the event loop 16 ms and the job 28 KB more."""
        spec = media.RenderSpec(
            prompt=image_url,
            negative_prompt="",
            width=512,
            height=512,
            output_format="png",
            seed=0,
            num_images=1,
            guidance_scale=4.0,
            num_inference_steps=20,
        )
        return media.render(spec)[0]

    def _render(self, job: Job) -> list[bytes]:
        cached = [self._media_cache.get((job.request_id, i)) for i in range(job.num_images)]
        if all(image is not None for image in cached):
            return [image for image in cached if image is not None]
        params = job.params
        width, height = media.image_dimensions(params["image_size"])
        source = job.source
        if source is None and "image_url" in params:
            source = self._stand_in(str(params["image_url"]))
        images = media.render(
            media.RenderSpec(
                prompt=str(params["prompt"]),
                negative_prompt=str(params["negative_prompt"]),
                width=width,
                height=height,
                output_format=params["output_format"],
                seed=job.seed,
                num_images=job.num_images,
                guidance_scale=float(params["guidance_scale"]),
                num_inference_steps=int(params["num_inference_steps"]),
                source=source,
                image_guidance_scale=float(params.get("image_guidance_scale", 1.0)),
            )
        )
        with self._lock:
            for index, image in enumerate(images):
                self._media_cache[(job.request_id, index)] = image
            while len(self._media_cache) > MEDIA_CACHE_IMAGES:
                self._media_cache.popitem(last=False)
        return images


MEDIA_CACHE_IMAGES = 64
