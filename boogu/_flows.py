"""What the client does, written once for the sync and the async client.

Each operation is a generator that yields effects — an API call, a sleep, a download into a file —
and is sent each effect's outcome, or has the transport error thrown in. `Boogu` performs effects
with `httpx.Client` and `time.sleep`, `AsyncBoogu` with `httpx.AsyncClient` and `asyncio.sleep`;
retries, rate limiting, polling, deadlines, errors and results live here, once.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import inspect
import json
import logging
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Generic, TypeVar

import httpx
from boogu_image_client.api.image_edit import submit_image_edit
from boogu_image_client.api.status import get_request_status
from boogu_image_client.api.text_to_image import submit_text_to_image
from boogu_image_client.models import ImageEditRequest, QueuedRequest, TextToImageRequest
from boogu_image_client.types import Response

from boogu_contract import wire
from boogu_contract._json import loads

from ._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    DownloadError,
    NotTheGatewayError,
    RateLimitError,
    WaitTimeoutError,
    connection_error,
    job_error,
    status_error,
)
from ._http import NotGiven, TimeoutArg, as_timeout, capped
from ._media import SNIFF_BYTES, check_image, decode_data_uri, extension_for
from ._models import JobStatus, Result, Submission
from ._polling import DEFAULT_UNITS, Latency, PaceModel, PollPolicy, Timeline, job_units
from ._retry import (
    RetryPolicy,
    backoff_delay,
    decide,
    describe,
    parse_retry_after,
    request_was_sent,
    seconds,
)
from ._throttle import RateLimiter

logger = logging.getLogger("boogu")
T = TypeVar("T")

DEADLINE_GRACE = 1.0
"""A poll started just before a wait's own deadline may take this long past it, rather than failing at
once (never past the deadline of a `time_limit` block)."""
SYNC_MODE_SLACK = 10.0
"""Extra read time for a sync-mode submit, whose answer waits for the images."""


# Effects ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiCall:
    """Call a generated `*_detailed` function (sync or asyncio flavour) with this timeout.

    `on_send` is called at the last moment before the request is handed to the transport (after
    every wait for the rate limit or a free connection): from then on, the gateway may have it.
    """

    operation: str
    sync: Callable[..., Response[Any]]
    asyncio: Callable[..., Awaitable[Response[Any]]]
    kwargs: Mapping[str, Any]
    timeout: httpx.Timeout
    on_send: Callable[[], object] | None = None
    budget: float | None = None
    """Seconds the whole call may take, its body included: what is left of its deadline."""


@dataclass(frozen=True)
class Sleep:
    seconds: float
    poll: bool = False
    """A wait for a job's next status: the async client times all of them with one scheduler."""


@dataclass(frozen=True)
class Await:
    """An awaitable returned by a callback (an async `on_update`): only the async client can run it."""

    awaitable: Awaitable[object]


@dataclass(frozen=True)
class Fetch:
    """Stream `url` into the file `path`, without the API key."""

    url: str
    path: Path
    timeout: httpx.Timeout
    budget: float | None = None


Effect = ApiCall | Sleep | Fetch | Await
Flow = Generator[Effect, Any, T]


@dataclass(frozen=True)
class Exchange:
    """An API answer: the generated client's parse, or None where it refused the body."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes
    parsed: Any
    note: str | None = None
    """Why an error answer that could have been retried was not (see `RetryDecision.note`)."""

    @classmethod
    def of(cls, response: Response[Any] | httpx.Response) -> Exchange:
        parsed = response.parsed if isinstance(response, Response) else None
        return cls(int(response.status_code), response.headers, response.content, parsed)


GENERATED_PARSE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, RecursionError)
"""What the generated parsers raise on a body they do not expect (an unknown enum value, non-JSON,
JSON nested past the interpreter's recursion limit, which `response.json()` reads whole)."""


@dataclass(frozen=True)
class Fetched:
    status_code: int
    headers: Mapping[str, str]
    size: int
    """Bytes written to the file."""
    head: bytes
    """The file's first bytes (its magic number)."""


class Sink:
    """Writes a streamed body to a (`.part`) file, keeping what the checks need; shared by both clients
    and by inline images. A write or close that fails (a full disk), or a body cut short, removes the
    file: no part file is left behind."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file: IO[bytes] = path.open("wb")
        self._size = 0
        self._head = b""

    def write(self, chunk: bytes) -> None:
        if len(self._head) < SNIFF_BYTES:
            self._head += chunk[: SNIFF_BYTES - len(self._head)]
        self._file.write(chunk)
        self._size += len(chunk)

    def fetched(self, response: httpx.Response) -> Fetched:
        return Fetched(200, response.headers, self._size, self._head)

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self._file.close()  # a buffered write to a full disk fails here
        except BaseException:
            self._path.unlink(missing_ok=True)
            raise
        if exc is not None:
            self._path.unlink(missing_ok=True)


def publish(part: Path, path: Path) -> None:
    """Rename a checked `.part` file to its name; if that fails, remove it."""
    try:
        os.replace(part, path)
    except OSError:
        part.unlink(missing_ok=True)
        raise


def refused(response: httpx.Response) -> Fetched:
    """A download answered with something other than 200: its body, of any size, is not read."""
    return Fetched(response.status_code, response.headers, 0, b"")


@dataclass(frozen=True)
class Done(Generic[T]):
    value: T


def step(flow: Flow[T], outcome: Any, failure: httpx.RequestError | None) -> Effect | Done[T]:
    """Resume `flow` with an effect's outcome (or its transport error): its next effect, or its result."""
    try:
        return flow.throw(failure) if failure is not None else flow.send(outcome)
    except StopIteration as stop:
        return Done(stop.value)


# The engine ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Runtime:
    """Where the client reads clocks and randomness; tests pass fakes so that nothing really sleeps."""

    wall: Callable[[], float] = time.time
    """Unix seconds, compared with the gateway's timestamps."""
    monotonic: Callable[[], float] = time.monotonic
    """For deadlines and spacing calls."""
    random: Callable[[], float] = random.random
    """Draws the jitter of retry delays."""


@dataclass(frozen=True)
class RetryEvent:
    """Passed to `on_retry` before each retry, so a slow call can say why it is slow."""

    operation: str
    attempt: int
    """The attempt about to be made: 2 for the first retry."""
    max_attempts: int
    delay: float
    reason: str
    request_id: str | None = None


StatusCallback = Callable[[JobStatus], object]
"""Called with every status polled; `AsyncBoogu` also awaits what it returns, if awaitable."""
RetryCallback = Callable[[RetryEvent], object]


@dataclass(frozen=True)
class SubmitWatch:
    """What a caller that journals submits (a batch) needs to know, at the moment it happens."""

    sending: Callable[[], object]
    """The request is being handed to the transport: from now on the job may exist. `AsyncBoogu`
    awaits what it returns, if awaitable, before the request leaves."""
    refused: Callable[[str], object]
    """The attempt provably made no job (a 429, or a request that never left): before any retry wait."""


@dataclass
class Tally:
    calls: int = 0


SubmitRequest = TextToImageRequest | ImageEditRequest


MAX_STEM = 120
"""Characters of a file name stem: with `_<index>.<ext>.part` it stays far below a file name's 255 bytes."""
_SAFE_STEM = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_STEM - 1}}}")


def safe_stem(name: str, *, tagged: bool = False) -> str:
    """A file name stem from a request id or a batch key: ASCII letters, digits, `.`, `_` and `-`.

    A name that is one already is kept as it is, unless `tagged` (a batch tags names that differ only
    in case). Any other keeps a readable part and gets 8 hex digits of the name's SHA-256, so that two
    names never share a file: `a/b` → `a_b-<hash>`, `a b` → `a_b-<another hash>`, `猫` → `image-<hash>`.
    """
    if _SAFE_STEM.fullmatch(name) and not tagged:
        return name
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[: MAX_STEM // 2].strip("._-") or "image"
    return f"{readable}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("boogu_deadline", default=None)
"""The deadline (on the client's monotonic clock) of the innermost `time_limit` block."""
_LIMIT: contextvars.ContextVar[float | None] = contextvars.ContextVar("boogu_limit", default=None)
"""The seconds of the `time_limit` block whose deadline holds: what a timeout message names."""


class Engine:
    def __init__(
        self,
        *,
        timeout: httpx.Timeout,
        wait_timeout: float | None,
        retry: RetryPolicy,
        poll: PollPolicy,
        limiter: RateLimiter,
        runtime: Runtime,
        on_retry: RetryCallback | None,
        pace: PaceModel,
        base_url: str,
    ) -> None:
        self.timeout = timeout
        self.wait_timeout = wait_timeout
        self.retry = retry
        self.poll = poll
        self.limiter = limiter
        self.base_url = base_url
        self.latency = Latency()
        self.runtime = runtime
        self.on_retry = on_retry
        self.pace = pace

    def resolve(self, timeout: TimeoutArg) -> httpx.Timeout:
        return self.timeout if isinstance(timeout, NotGiven) else as_timeout(timeout)

    @contextlib.contextmanager
    def time_limit(self, seconds: float | None) -> Iterator[None]:
        """Within the block, every call ends within `seconds` (None: no limit) of the block's start."""
        if seconds is None:
            yield
            return
        own = self.runtime.monotonic() + seconds
        deadline = self.deadline(own)
        token = _DEADLINE.set(deadline)
        limit = _LIMIT.set(seconds if deadline == own else _LIMIT.get())
        try:
            yield
        finally:
            _LIMIT.reset(limit)
            _DEADLINE.reset(token)

    @staticmethod
    def deadline(own: float | None = None) -> float | None:
        """The earlier of `own` and the deadline of the `time_limit` block the caller runs in."""
        scoped = _DEADLINE.get()
        if own is None:
            return scoped
        return own if scoped is None else min(own, scoped)

    # One call, with retries ------------------------------------------------------------------

    def send(
        self,
        call: ApiCall,
        *,
        idempotent: bool,
        request_id: str | None = None,
        deadline: float | None = None,
        tally: Tally | None = None,
        watch: SubmitWatch | None = None,
    ) -> Flow[Exchange]:
        """Make `call`, retrying as `decide` allows; returns any HTTP answer, raises on transport errors.

        Every attempt first takes a slot from the client's rate limiter, and every answer teaches it.
        No attempt outlives `deadline` (or that of the `time_limit` block): each is given what is left,
        and one that the rate limit would hold past it waits until the deadline and is not sent.
        """
        clock = self.runtime
        retries = 0
        deadline = self.deadline(deadline)
        if watch is not None:
            call = replace(call, on_send=watch.sending)
        while True:
            now = clock.monotonic()
            pause = self.limiter.reserve(now)
            if deadline is not None and now + pause >= deadline:
                if deadline > now:
                    yield Sleep(deadline - now)  # the call ends at its deadline, not before
                raise APITimeoutError(
                    f"{call.operation} was not sent: its deadline came first"
                    + (f" (the rate limit held calls for {pause:.1f} s)" if pause > 0 else ""),
                    operation=call.operation,
                    request_sent=False,
                )
            if pause > 0:
                yield Sleep(pause)
            sent_at = clock.monotonic()
            left = None if deadline is None else deadline - sent_at
            exchange: Exchange | None = None
            error: httpx.RequestError | None = None
            try:
                exchange = yield replace(call, timeout=capped(call.timeout, left), budget=left)
            except httpx.RequestError as exc:
                error = exc
            if idempotent:  # a status call; a sync-mode submit waits for the images
                self.latency.observe(clock.monotonic() - sent_at)
            if tally is not None:
                tally.calls += 1
            retry_after = None
            if exchange is not None:
                retry_after = parse_retry_after(exchange.headers, clock.wall())
                if exchange.status_code == 429:
                    # A Retry-After beyond the cap is not honoured, so it holds no other call either.
                    honoured = retry_after is not None and retry_after <= self.retry.max_retry_after
                    self.limiter.limited(clock.monotonic(), retry_after if honoured else None)
                else:
                    self.limiter.succeeded(clock.monotonic())
                    self._check_gateway(exchange, call.operation)
            if watch is not None and (
                (exchange is not None and exchange.status_code == 429)
                or (error is not None and not request_was_sent(error))
            ):
                watch.refused(describe(exchange.status_code if exchange else None, error))
            decision = decide(
                idempotent=idempotent,
                retries_done=retries,
                policy=self.retry,
                rand=clock.random(),
                status_code=exchange.status_code if exchange is not None else None,
                retry_after=retry_after,
                error=error,
                time_left=None if deadline is None else deadline - clock.monotonic(),
            )
            if not decision.retry:
                if error is not None:
                    raise connection_error(
                        error,
                        operation=call.operation,
                        request_sent=request_was_sent(error),
                        note=decision.note,
                    ) from error
                assert exchange is not None
                return replace(exchange, note=decision.note)
            retries += 1
            self._report(
                RetryEvent(
                    call.operation,
                    retries + 1,
                    self.retry.max_retries + 1,
                    decision.delay,
                    decision.reason,
                    request_id,
                )
            )
            yield Sleep(decision.delay)

    def _check_gateway(self, exchange: Exchange, operation: str) -> None:
        """An answer that is not JSON below 500 (a captive portal, a web server at the wrong address)
        did not come from the gateway; 5xx pages of a proxy in front of it are common and retried."""
        if exchange.status_code >= 500 or _json(exchange) is not None or not exchange.content.strip():
            return
        kind = exchange.headers.get("content-type", "").split(";")[0].strip()
        label = "HTML" if "html" in kind else (kind or "non-JSON")
        raise NotTheGatewayError(
            f"{operation}: the server at {self.base_url} is not the gateway ({label} {exchange.status_code})",
            operation=operation,
        )

    def _report(self, event: RetryEvent) -> None:
        logger.info(
            "retrying %s%s in %.2f s (attempt %d of %d): %s",
            event.operation,
            f" {event.request_id}" if event.request_id else "",
            event.delay,
            event.attempt,
            event.max_attempts,
            event.reason,
        )
        if self.on_retry is not None:
            self.on_retry(event)

    # Operations ------------------------------------------------------------------------------

    def submit(
        self,
        request: SubmitRequest,
        *,
        webhook_url: str | None,
        timeout: TimeoutArg,
        expected_seconds: float | None,
        watch: SubmitWatch | None = None,
    ) -> Flow[Submission]:
        edit = isinstance(request, ImageEditRequest)
        endpoint = submit_image_edit if edit else submit_text_to_image
        kwargs: dict[str, Any] = {"body": request}
        if webhook_url is not None:
            kwargs["x_webhook_url"] = webhook_url
        units = job_units(request)
        call_timeout = self.resolve(timeout)
        if request.sync_mode is True and isinstance(timeout, NotGiven) and call_timeout.read is not None:
            # The answer waits for the images; timing out would leave an accepted, charged job unknown.
            needed = 2 * (expected_seconds or self.pace.expected(units)) + SYNC_MODE_SLACK
            call_timeout = httpx.Timeout(
                connect=call_timeout.connect,
                read=max(call_timeout.read, needed),
                write=call_timeout.write,
                pool=call_timeout.pool,
            )
        operation = "submit_image_edit" if edit else "submit_text_to_image"
        sent_at = self.runtime.wall()
        call = ApiCall(operation, endpoint.sync_detailed, endpoint.asyncio_detailed, kwargs, call_timeout)
        exchange = yield from self.send(call, idempotent=False, watch=watch)
        if not 200 <= exchange.status_code < 300:
            raise status_error(
                exchange.status_code,
                exchange.headers,
                exchange.content,
                request_id=None,
                retry_after=parse_retry_after(exchange.headers, self.runtime.wall()),
                note=exchange.note,
            )
        submission = Submission(
            request_id="", submitted_at=sent_at, units=units, expected_seconds=expected_seconds
        )
        if isinstance(exchange.parsed, QueuedRequest):
            return replace(
                submission, request_id=exchange.parsed.request_id, polling_url=exchange.parsed.polling_url
            )
        body = _json(exchange)
        if exchange.status_code == 200 and isinstance(body, dict) and "model_id" in body:  # sync mode
            finished = _status(exchange)
            return replace(submission, request_id=finished.request_id, finished=finished)
        # A newer gateway's acceptance that the generated model refuses: the job exists, keep its id.
        if isinstance(body, dict) and isinstance(body.get("request_id"), str) and body["request_id"]:
            polling_url = body.get("polling_url")
            return replace(
                submission,
                request_id=body["request_id"],
                polling_url=polling_url if isinstance(polling_url, str) else None,
            )
        raise APIResponseValidationError(
            f"{operation}: the gateway accepted the job ({exchange.status_code}) but sent no request_id",
            status_code=exchange.status_code,
            body=exchange.content,
        )

    def status(
        self,
        request_id: str,
        *,
        timeout: TimeoutArg,
        deadline: float | None = None,
        tally: Tally | None = None,
    ) -> Flow[JobStatus]:
        if not request_id:
            raise ValueError("request_id must not be empty")
        call = ApiCall(
            "get_request_status",
            get_request_status.sync_detailed,
            get_request_status.asyncio_detailed,
            {"request_id": request_id},
            self.resolve(timeout),
        )
        exchange = yield from self.send(
            call, idempotent=True, request_id=request_id, deadline=deadline, tally=tally
        )
        if exchange.status_code != 200:
            raise status_error(
                exchange.status_code,
                exchange.headers,
                exchange.content,
                request_id=request_id,
                retry_after=parse_retry_after(exchange.headers, self.runtime.wall()),
                note=exchange.note,
            )
        return _status(exchange)

    def wait(
        self,
        job: str | Submission,
        *,
        timeout: float | NotGiven | None,
        on_update: StatusCallback | None,
        expected_seconds: float | None,
        request_timeout: TimeoutArg,
    ) -> Flow[Result]:
        """Poll until the job finishes (see `_polling`), then its Result or its JobError.

        Ends by `timeout` (or the `time_limit` block's deadline, if sooner) with `WaitTimeoutError` —
        at once when the gateway's `Retry-After` ends past it; a `Retry-After` longer than the retry
        policy's cap raises its `RateLimitError`.
        """
        clock = self.runtime
        submission = job if isinstance(job, Submission) else None
        request_id = job.request_id if isinstance(job, Submission) else job
        limit = self.wait_timeout if isinstance(timeout, NotGiven) else timeout
        start = clock.monotonic()
        own = None if limit is None else start + limit
        deadline = self.deadline(own)
        # The timeout the user gave: this wait's own, or the whole command's (`--timeout`).
        budget = limit if limit is not None and deadline == own else (_LIMIT.get() or 0.0)
        expected = self._expected(submission, expected_seconds)
        window = self.pace.window(self.poll)
        tally = Tally()
        status = submission.finished if submission else None
        # A fresh submit counts as the first look; for a bare id, the first status tells when it began.
        timeline = Timeline(submission.submitted_at if submission else None)
        not_before = 0.0
        while status is None or not status.finished:
            now = clock.wall()
            due = timeline.next_look(expected, self.poll, window, self.latency.seconds)
            delay = max(0.0 if due is None else due - now, not_before - now, 0.0)
            if deadline is not None:
                left = deadline - clock.monotonic()
                if left <= 0:
                    raise WaitTimeoutError(request_id, budget, status)
                delay = min(delay, left)  # a last look at the deadline
            if delay > 0:
                yield Sleep(delay, poll=True)
            try:
                status = yield from self.status(
                    request_id,
                    timeout=request_timeout,
                    deadline=None if deadline is None else deadline + DEADLINE_GRACE,
                    tally=tally,
                )
            except RateLimitError as exc:
                # Throttled beyond the retry budget: the job is unaffected, so look again later,
                # unless the gateway's Retry-After ends past the deadline or is beyond all reason.
                pause = exc.retry_after
                if deadline is not None and pause is not None and clock.monotonic() + pause >= deadline:
                    raise WaitTimeoutError(
                        request_id,
                        budget,
                        status,
                        f"the gateway asks for {seconds(pause)} s (Retry-After) before the next status call,"
                        " so the wait ended at once",
                    ) from exc
                if pause is not None and pause > self.retry.max_retry_after:
                    raise
                not_before = clock.wall() + (pause or self.poll.max_interval)
                continue
            except APIConnectionError as exc:
                if deadline is not None and clock.monotonic() >= deadline:
                    raise WaitTimeoutError(request_id, budget, status, str(exc)) from exc
                raise
            timeline.observe(status, clock.wall())
            if on_update is not None:
                answer = on_update(status)
                if inspect.isawaitable(answer):
                    yield Await(answer)
        return self._finish(status, submission, tally.calls, timeline)

    def _expected(self, submission: Submission | None, hint: float | None) -> float:
        if hint is not None:
            return hint
        if submission is not None and submission.expected_seconds is not None:
            return submission.expected_seconds
        units = submission.units if submission is not None and submission.units else DEFAULT_UNITS
        return self.pace.expected(units)

    def _finish(
        self, status: JobStatus, submission: Submission | None, calls: int, timeline: Timeline
    ) -> Result:
        began, completed = timeline.started_at or status.created_at, status.completed_at
        if (
            submission is not None
            and submission.units
            and submission.finished is None  # a sync-mode answer says nothing about the pace
            and began
            and completed
            and status.status in wire.CHARGED_STATUSES  # ran to its end
        ):
            self.pace.observe(submission.units, (completed - began).total_seconds())
        return self.result_of(status, status_calls=calls)

    def result_of(self, status: JobStatus, *, status_calls: int = 0) -> Result:
        """The Result of a COMPLETED status; the matching JobError for any other."""
        if status.status != "COMPLETED":
            raise job_error(status)
        try:
            return Result.from_status(status, noticed_at=self.runtime.wall(), status_calls=status_calls)
        except ValueError as exc:
            raise APIResponseValidationError(
                str(exc), status_code=200, body=json.dumps(status.to_dict()).encode()
            ) from None

    def run(
        self,
        request: SubmitRequest,
        *,
        timeout: float | NotGiven | None,
        request_timeout: TimeoutArg,
        on_update: StatusCallback | None,
        webhook_url: str | None,
        expected_seconds: float | None,
    ) -> Flow[Result]:
        """Submit, then wait: what `generate` and `edit` do."""
        submission = yield from self.submit(
            request, webhook_url=webhook_url, timeout=request_timeout, expected_seconds=expected_seconds
        )
        return (
            yield from self.wait(
                submission,
                timeout=timeout,
                on_update=on_update,
                expected_seconds=None,
                request_timeout=request_timeout,
            )
        )

    # Downloads -------------------------------------------------------------------------------

    def download(
        self,
        target: Result | JobStatus,
        folder: str | os.PathLike[str],
        *,
        stem: str | None,
        timeout: TimeoutArg,
    ) -> Flow[list[Path]]:
        """Save every image as `<stem>_<index><ext>` (stem: the request id), checking each one."""
        result = target if isinstance(target, Result) else self.result_of(target)
        directory = Path(folder)
        directory.mkdir(parents=True, exist_ok=True)
        name = safe_stem(stem or result.request_id)
        extension = extension_for(result.media_type)
        saved: list[Path] = []
        for index, url in enumerate(result.media_urls):
            path = directory / f"{name}_{index}{extension}"
            if url.startswith("data:"):
                _save_inline(url, path, result.media_type)
            elif url.startswith(("https://", "http://")):
                yield from self._fetch(url, path, result.media_type, self.resolve(timeout))
            else:
                raise DownloadError(f"refusing to download {url[:40]!r}: not an http(s) or data URL", url=url)
            saved.append(path)
        return saved

    def _fetch(self, url: str, path: Path, media_type: str, timeout: httpx.Timeout) -> Flow[None]:
        """Stream into `<file>.part`, check it, then rename: a file that exists is a whole, verified image.
        Within a `time_limit` block each attempt gets what is left of its deadline."""
        part = path.with_name(path.name + ".part")
        retries = 0
        deadline = self.deadline()
        while True:
            left = None if deadline is None else deadline - self.runtime.monotonic()
            if left is not None and left <= 0:
                part.unlink(missing_ok=True)
                raise DownloadError(f"download of {url} failed: its deadline came first", url=url)
            fetched: Fetched | None = None
            error: httpx.RequestError | None = None
            try:
                fetched = yield Fetch(url, part, capped(timeout, left), left)
            except httpx.RequestError as exc:
                error = exc
            if fetched is not None and fetched.status_code == 200:
                problem, retryable = check_image(
                    head=fetched.head,
                    size=fetched.size,
                    # absent when the body came compressed (`_http.BodyGuard` decoded it)
                    content_length=fetched.headers.get("content-length"),
                    expected_type=media_type,
                )
                if problem is None:
                    publish(part, path)
                    return
                delay, reason = backoff_delay(retries, self.retry, self.runtime.random()), problem
                in_time = deadline is None or delay < deadline - self.runtime.monotonic()
                retry = retryable and retries < self.retry.max_retries and in_time
            else:
                decision = decide(
                    idempotent=True,
                    retries_done=retries,
                    policy=self.retry,
                    rand=self.runtime.random(),
                    status_code=fetched.status_code if fetched is not None else None,
                    retry_after=parse_retry_after(fetched.headers, self.runtime.wall()) if fetched else None,
                    error=error,
                    time_left=None if deadline is None else deadline - self.runtime.monotonic(),
                )
                retry, delay, reason = decision.retry, decision.delay, decision.reason
            if not retry:
                part.unlink(missing_ok=True)
                raise DownloadError(f"download of {url} failed: {reason}", url=url) from error
            retries += 1
            self._report(RetryEvent("download", retries + 1, self.retry.max_retries + 1, delay, reason))
            yield Sleep(delay)


def _json(exchange: Exchange) -> Any:
    try:
        return loads(exchange.content)
    except ValueError:  # not JSON, or nested deeper than any answer
        return None


def _status(exchange: Exchange) -> JobStatus:
    try:
        return JobStatus.parse(_json(exchange))
    except ValueError as exc:
        raise APIResponseValidationError(
            f"the status object does not match the contract: {exc}",
            status_code=exchange.status_code,
            body=exchange.content,
        ) from None


def _save_inline(url: str, path: Path, media_type: str) -> None:
    """A sync-mode image, carried in the status as a data URI: checked and written like a download."""
    try:
        _, data = decode_data_uri(url)
    except ValueError as exc:
        raise DownloadError(f"bad inline image: {exc}", url=url[:64]) from None
    problem, _ = check_image(
        head=data[:SNIFF_BYTES], size=len(data), content_length=None, expected_type=media_type
    )
    if problem is not None:
        raise DownloadError(f"bad inline image: {problem}", url=url[:64])
    part = path.with_name(path.name + ".part")
    with Sink(part) as sink:
        sink.write(data)
    publish(part, path)
