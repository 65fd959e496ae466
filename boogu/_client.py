"""`Boogu` and `AsyncBoogu`: one engine (`_flows`), performed with blocking or with asyncio I/O.

Everything but the I/O — building requests, retries, polling, errors, results — is shared; each class
only runs the engine's effects (an API call through the generated client, a sleep, a download).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, Self, TypedDict, TypeVar, Unpack, cast

import httpx
from boogu_image_client import AuthenticatedClient
from boogu_image_client.models import ImageEditRequest, TextToImageRequest

from boogu_contract import wire

from ._errors import ConfigurationError
from ._flows import (
    GENERATED_PARSE_ERRORS,
    ApiCall,
    Await,
    Done,
    Effect,
    Engine,
    Exchange,
    Fetch,
    Fetched,
    Flow,
    RetryCallback,
    Runtime,
    Sink,
    Sleep,
    StatusCallback,
    SubmitRequest,
    SubmitWatch,
    refused,
    step,
)
from ._gate import PriorityGate
from ._http import (
    ASYNC_HOOKS,
    DEFAULT_TIMEOUT,
    KEY_HEADER,
    MEDIA,
    NOT_GIVEN,
    SYNC_HOOKS,
    Secret,
    TimeoutArg,
    as_timeout,
    backstop,
    bound_sockets,
    call_scope,
    client_args,
    pool_size,
)
from ._media import image_reference
from ._models import ImageEditParams, JobStatus, Result, Submission, TextToImageParams
from ._polling import SECONDS_PER_UNIT, PaceModel, PollPolicy
from ._retry import RetryPolicy, retry_after_delay
from ._scheduler import PollScheduler
from ._throttle import RateLimiter

API_KEY_ENV = wire.API_KEY_ENV
BASE_URL_ENV = wire.BASE_URL_ENV
DEFAULT_BASE_URL = wire.DEFAULT_BASE_URL
DEFAULT_WAIT_TIMEOUT = 600.0
"""Seconds `wait` gives a job by default: far beyond the longest job (50 steps × 4 images ≈ 100 s)."""

T = TypeVar("T")

try:
    __version__ = version("boogu-image-toolkit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that is not installed
    __version__ = "0.0.0"


class ClientOptions(TypedDict, total=False):
    """Settings shared by `Boogu` and `AsyncBoogu`; every one is optional."""

    base_url: str | None
    """Default `BOOGU_BASE_URL`, else https://gateway.pixazo.ai."""
    timeout: float | httpx.Timeout | None
    """Per HTTP call. Default 30 s (5 s to connect); None turns timeouts off."""
    wait_timeout: float | None
    """Default deadline of `wait`, `generate` and `edit` (600 s); None waits for ever."""
    max_retries: int
    """Shortcut for `retry=RetryPolicy(max_retries=...)`; default 2."""
    retry: RetryPolicy
    poll: PollPolicy
    seconds_per_unit: float
    """The gateway's pace per inference step and image (0.5 s), where the client's learning starts;
    lower it for a sped-up mock (`--speed 100`: 0.005)."""
    max_requests_per_second: float | None
    """A cap on API calls per second; under it, the client learns the gateway's limit from its 429s."""
    max_connections: int
    """Connections kept open at once (default 100), and API calls in flight at once; more calls wait
    for a free connection in order, not in the pool's queue. More rarely helps (see
    `_http.BATCH_CONNECTIONS`)."""
    on_retry: RetryCallback
    """Called before every retry with why and how long (each retry is also logged on `boogu`)."""
    httpx_args: Mapping[str, Any]
    """Passed to the httpx client: `transport`, `proxy`, `limits`, extra `headers` or `event_hooks`."""
    runtime: Runtime
    """Clocks and randomness, for tests."""


class WaitOptions(TypedDict, total=False):
    timeout: float | None
    """The deadline for the job to finish, in seconds; default the client's `wait_timeout`."""
    request_timeout: float | httpx.Timeout | None
    """Overrides the client's timeout for each HTTP call."""
    on_update: StatusCallback
    """Called with every status polled; `AsyncBoogu` awaits it if it is a coroutine function."""
    expected_seconds: float
    """How long the job should take, if you know better than the client's estimate."""


class RunOptions(WaitOptions, total=False):
    webhook_url: str
    """The gateway POSTs the final status object here too (see `boogu.webhooks`)."""


class GenerateArgs(TextToImageParams, RunOptions, total=False):
    pass


class EditArgs(ImageEditParams, RunOptions, total=False):
    pass


def _split(args: Mapping[str, Any]) -> tuple[dict[str, Any], RunOptions]:
    """(request parameters, run options): the two kinds of keyword `generate` and `edit` take."""
    params = {key: value for key, value in args.items() if key not in RunOptions.__optional_keys__}
    options = {key: value for key, value in args.items() if key in RunOptions.__optional_keys__}
    return params, cast(RunOptions, options)


class _ClientBase:
    """Configuration (arguments, else the environment) and the engine; no I/O."""

    def __init__(self, api_key: str | None, options: ClientOptions) -> None:
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
        if not key:
            raise ConfigurationError(f"no API key: pass api_key=... or set {API_KEY_ENV}")
        base_url = (options.get("base_url") or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        try:
            url = httpx.URL(base_url)
        except httpx.InvalidURL as exc:
            raise ConfigurationError(f"base URL {base_url!r} is not a URL: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigurationError(f"base URL {base_url!r} must be http(s)://host[:port]")
        self.base_url = base_url
        self._key = Secret(key)
        retry = options.get("retry") or RetryPolicy()
        if "max_retries" in options:
            retry = replace(retry, max_retries=options["max_retries"])
        self._engine = Engine(
            timeout=as_timeout(options.get("timeout", DEFAULT_TIMEOUT)),
            wait_timeout=options.get("wait_timeout", DEFAULT_WAIT_TIMEOUT),
            retry=retry,
            poll=options.get("poll") or PollPolicy(),
            limiter=RateLimiter(options.get("max_requests_per_second")),
            runtime=options.get("runtime") or Runtime(),
            on_retry=options.get("on_retry"),
            pace=PaceModel(options.get("seconds_per_unit", SECONDS_PER_UNIT)),
            base_url=base_url,
        )
        self._slots = pool_size(options.get("max_connections"), options.get("httpx_args"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _http_args(
        self, options: ClientOptions, hooks: tuple[Callable[..., Any], Callable[..., Any]]
    ) -> dict[str, Any]:
        return client_args(
            base_url=self.base_url,
            key=self._key,
            timeout=self._engine.timeout,
            user_agent=f"boogu-python/{__version__} httpx/{httpx.__version__}",
            hooks=hooks,
            httpx_args=options.get("httpx_args"),
            connections=self._slots,
        )

    def rate_limit_delay(self, retry_after: float | None) -> float | None:
        """How long to wait after a `RateLimitError` before trying again: its `retry_after` (else 1 s),
        lengthened by a random share, so that calls refused together come back apart. None when the
        wait is not worth it: a `Retry-After` longer than the retry policy's `max_retry_after`, or
        one that ends past the deadline of the `time_limit` block."""
        engine = self._engine
        wait = retry_after or 1.0
        deadline = engine.deadline()
        if wait > engine.retry.max_retry_after or (
            deadline is not None and engine.runtime.monotonic() + wait >= deadline
        ):
            return None
        return retry_after_delay(wait, engine.retry, engine.runtime.random())

    def time_limit(self, seconds: float | None) -> contextlib.AbstractContextManager[None]:
        """A block whose calls all end within `seconds` of its start (None: no limit), retries, waits
        for `Retry-After` and the rate limit, polls and downloads included; in asyncio, tasks started
        inside it inherit it. At the deadline a call in flight is abandoned — a submit then raises
        `APITimeoutError` with `request_sent=True`: the job may exist — and `wait` raises
        `WaitTimeoutError`. Blocks nest: the earliest deadline holds."""
        return self._engine.time_limit(seconds)

    def _generated(self) -> AuthenticatedClient:
        """The generated client, for calls this layer does not wrap; it shares our httpx client."""
        return AuthenticatedClient(
            base_url=self.base_url, token=self._key, auth_header_name=KEY_HEADER, prefix=""
        )

    def _generate(self, prompt: str, args: Mapping[str, Any]) -> Flow[Result]:
        params, options = _split(args)
        return self._run_flow(TextToImageRequest(prompt=prompt, **params), options)

    def _edit(
        self, prompt: str, image: str | os.PathLike[str] | bytes, args: Mapping[str, Any]
    ) -> Flow[Result]:
        params, options = _split(args)
        request = ImageEditRequest(prompt=prompt, image_url=image_reference(image), **params)
        return self._run_flow(request, options)

    def _run_flow(self, request: SubmitRequest, options: RunOptions) -> Flow[Result]:
        return self._engine.run(
            request,
            timeout=options.get("timeout", NOT_GIVEN),
            request_timeout=options.get("request_timeout", NOT_GIVEN),
            on_update=options.get("on_update"),
            webhook_url=options.get("webhook_url"),
            expected_seconds=options.get("expected_seconds"),
        )

    def _wait(self, job: str | Submission, options: WaitOptions) -> Flow[Result]:
        return self._engine.wait(
            job,
            timeout=options.get("timeout", NOT_GIVEN),
            on_update=options.get("on_update"),
            expected_seconds=options.get("expected_seconds"),
            request_timeout=options.get("request_timeout", NOT_GIVEN),
        )


def _refuse_awaitable(value: Awaitable[object]) -> NoReturn:
    """The blocking client cannot run an async callback: say so (and close the coroutine unawaited)."""
    if asyncio.iscoroutine(value):
        value.close()
    raise ConfigurationError("Boogu cannot await an async callback (on_update, ...); use AsyncBoogu")


class Boogu(_ClientBase):
    """The Boogu Image API, blocking.

    >>> client = Boogu()                      # BOOGU_API_KEY, BOOGU_BASE_URL from the environment
    >>> result = client.generate("a red fox in the snow", num_images=2)
    >>> client.download(result, "images/")

    Thread-safe: one client (and its connection pool) can serve many threads. `api` is the generated
    `AuthenticatedClient` on the same connections, for anything this layer does not wrap.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(api_key, options)
        self._sleep = sleep
        self._http = httpx.Client(**self._http_args(options, SYNC_HOOKS))
        bound_sockets(self._http)
        self._connections = threading.BoundedSemaphore(self._slots)
        self.api = self._generated().set_httpx_client(self._http)

    def generate(self, prompt: str, **args: Unpack[GenerateArgs]) -> Result:
        """Submit a text-to-image job and wait for it; returns the Result or raises its JobError.

        Takes the request's parameters (`num_images=2`, `image_size="landscape_16_9"`, ...) and the
        options of `wait` (`timeout`, `on_update`, ...), plus `webhook_url`.
        """
        return self._run(self._generate(prompt, args))

    def edit(self, prompt: str, image: str | os.PathLike[str] | bytes, **args: Unpack[EditArgs]) -> Result:
        """Submit an edit of `image` (a URL, a data URI, a local file or bytes) and wait for it."""
        return self._run(self._edit(prompt, image, args))

    def submit(
        self,
        request: SubmitRequest,
        *,
        webhook_url: str | None = None,
        timeout: TimeoutArg = NOT_GIVEN,
        expected_seconds: float | None = None,
        watch: SubmitWatch | None = None,
    ) -> Submission:
        """Queue a job without waiting. Retried only when the gateway provably did not accept it.

        `watch` is told when the request is handed to the transport and when an attempt is refused.
        """
        return self._run(
            self._engine.submit(
                request,
                webhook_url=webhook_url,
                timeout=timeout,
                expected_seconds=expected_seconds,
                watch=watch,
            )
        )

    def status(self, request_id: str, *, timeout: TimeoutArg = NOT_GIVEN) -> JobStatus:
        """The job's current status (retried on 429, 5xx and connection errors)."""
        return self._run(self._engine.status(request_id, timeout=timeout))

    def wait(self, job: str | Submission, **options: Unpack[WaitOptions]) -> Result:
        """Poll until the job finishes; its Result, or JobFailedError, JobErroredError, WaitTimeoutError.

        Pass the Submission from `submit` rather than its id when you have it: the job's size makes
        the poll schedule tight.
        """
        return self._run(self._wait(job, options))

    def download(
        self,
        result: Result | JobStatus,
        folder: str | os.PathLike[str],
        *,
        stem: str | None = None,
        timeout: TimeoutArg = NOT_GIVEN,
    ) -> list[Path]:
        """Stream each image to `folder/<stem>_<i>.<ext>` (stem: the request id), check it, list the files."""
        return self._run(self._engine.download(result, folder, stem=stem, timeout=timeout))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self, flow: Flow[T]) -> T:
        try:
            effect = step(flow, None, None)
            while not isinstance(effect, Done):
                try:
                    outcome, failure = self._perform(effect), None
                except httpx.RequestError as exc:
                    outcome, failure = None, exc
                effect = step(flow, outcome, failure)
            return effect.value
        finally:
            flow.close()

    def _perform(self, effect: Effect) -> Any:
        if isinstance(effect, Sleep):
            self._sleep(effect.seconds)
            return None
        if isinstance(effect, Await):
            _refuse_awaitable(effect.awaitable)
        with self._connections:
            if isinstance(effect, ApiCall):
                return self._call(effect)
            return self._fetch(effect)

    def _call(self, call: ApiCall) -> Exchange:
        with call_scope(call.timeout, call.budget) as scope:
            if call.on_send is not None and inspect.isawaitable(sent := call.on_send()):
                _refuse_awaitable(sent)
            try:
                return Exchange.of(call.sync(client=self.api, **call.kwargs))
            except GENERATED_PARSE_ERRORS:
                if scope.response is None:
                    raise
                return Exchange.of(scope.response)

    def _fetch(self, fetch: Fetch) -> Fetched:
        with (
            call_scope(fetch.timeout, fetch.budget, MEDIA),
            self._http.stream(
                "GET", fetch.url, auth=None, timeout=fetch.timeout, follow_redirects=True
            ) as response,
        ):
            if response.status_code != 200:
                return refused(response)
            with Sink(fetch.path) as sink:
                for chunk in response.iter_bytes():
                    sink.write(chunk)
            return sink.fetched(response)


class AsyncBoogu(_ClientBase):
    """The Boogu Image API for asyncio; the same methods as `Boogu`, awaited.

    >>> async with AsyncBoogu() as client:
    ...     result = await client.generate("a red fox in the snow")
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(api_key, options)
        self._sleep = sleep
        self._http = httpx.AsyncClient(**self._http_args(options, ASYNC_HOOKS))
        bound_sockets(self._http)
        self._connections = PriorityGate(self._slots)
        self._polls = PollScheduler(self._engine.runtime.monotonic, sleep)
        self.api = self._generated().set_async_httpx_client(self._http)

    async def generate(self, prompt: str, **args: Unpack[GenerateArgs]) -> Result:
        """See `Boogu.generate`."""
        return await self._run(self._generate(prompt, args))

    async def edit(
        self, prompt: str, image: str | os.PathLike[str] | bytes, **args: Unpack[EditArgs]
    ) -> Result:
        """See `Boogu.edit`."""
        return await self._run(self._edit(prompt, image, args))

    async def submit(
        self,
        request: SubmitRequest,
        *,
        webhook_url: str | None = None,
        timeout: TimeoutArg = NOT_GIVEN,
        expected_seconds: float | None = None,
        watch: SubmitWatch | None = None,
    ) -> Submission:
        """See `Boogu.submit`."""
        return await self._run(
            self._engine.submit(
                request,
                webhook_url=webhook_url,
                timeout=timeout,
                expected_seconds=expected_seconds,
                watch=watch,
            )
        )

    async def status(self, request_id: str, *, timeout: TimeoutArg = NOT_GIVEN) -> JobStatus:
        """See `Boogu.status`."""
        return await self._run(self._engine.status(request_id, timeout=timeout))

    async def wait(self, job: str | Submission, **options: Unpack[WaitOptions]) -> Result:
        """See `Boogu.wait`."""
        return await self._run(self._wait(job, options))

    async def download(
        self,
        result: Result | JobStatus,
        folder: str | os.PathLike[str],
        *,
        stem: str | None = None,
        timeout: TimeoutArg = NOT_GIVEN,
    ) -> list[Path]:
        """See `Boogu.download`."""
        return await self._run(self._engine.download(result, folder, stem=stem, timeout=timeout))

    async def aclose(self) -> None:
        await self._polls.close()
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _run(self, flow: Flow[T]) -> T:
        try:
            effect = step(flow, None, None)
            while not isinstance(effect, Done):
                try:
                    outcome, failure = await self._perform(effect), None
                except httpx.RequestError as exc:
                    outcome, failure = None, exc
                effect = step(flow, outcome, failure)
            return effect.value
        finally:
            flow.close()

    async def _perform(self, effect: Effect) -> Any:
        if isinstance(effect, Sleep):
            await (self._polls.sleep if effect.poll else self._sleep)(effect.seconds)
            return None
        if isinstance(effect, Await):
            return await effect.awaitable
        new_job = isinstance(effect, ApiCall) and effect.operation.startswith("submit_")
        async with self._connections.slot(1 if new_job else 0):  # jobs already accepted go first
            if isinstance(effect, ApiCall):
                return await self._call(effect)
            return await self._fetch(effect)

    async def _call(self, call: ApiCall) -> Exchange:
        with call_scope(call.timeout, call.budget) as scope:
            if call.on_send is not None and inspect.isawaitable(sent := call.on_send()):
                await sent
            try:
                async with backstop(call.budget):
                    return Exchange.of(await call.asyncio(client=self.api, **call.kwargs))
            except GENERATED_PARSE_ERRORS:
                if scope.response is None:
                    raise
                return Exchange.of(scope.response)

    async def _fetch(self, fetch: Fetch) -> Fetched:
        with call_scope(fetch.timeout, fetch.budget, MEDIA):
            async with (
                backstop(fetch.budget),
                self._http.stream(
                    "GET", fetch.url, auth=None, timeout=fetch.timeout, follow_redirects=True
                ) as response,
            ):
                if response.status_code != 200:
                    return refused(response)
                with Sink(fetch.path) as sink:
                    async for chunk in response.aiter_bytes():
                        sink.write(chunk)
                return sink.fetched(response)
