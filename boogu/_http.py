"""The httpx clients under the generated client: the key as an auth flow (so it goes to the gateway's
API and nowhere else, and no repr shows it), default timeouts, and per-call timeouts.

The generated functions take no timeout argument, so a per-call timeout travels in a context variable
that a request hook copies into the request; the same hook pair keeps the raw response, so a body the
generated parser refuses (a status value from a newer gateway) can still be read.

The response hook also guards every body before it is read (`BodyGuard`): httpx's read timeout counts
from the last byte, so a body trickling a byte a second never trips it, and `read()` takes a body of
any size. An API answer must arrive whole within the read timeout and be at most `MAX_ANSWER_BYTES`;
a download may go on past its read timeout only at `MIN_MEDIA_RATE`; and neither outlives the deadline
of the call that asked for it.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from boogu_contract import wire

KEY_HEADER: Final = wire.KEY_HEADER
DEFAULT_TIMEOUT: Final = httpx.Timeout(30.0, connect=5.0)
"""Every call has a timeout unless the caller turns it off explicitly (the generated client has none)."""


class NotGiven:
    """Marks an argument left out, so that `timeout=None` can mean "no timeout"."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __bool__(self) -> bool:
        return False


NOT_GIVEN: Final = NotGiven()
TimeoutArg = float | httpx.Timeout | None | NotGiven


class Secret(str):
    """A string that does not show itself in a repr, for the key inside the generated client."""

    def __repr__(self) -> str:
        return "'<redacted>'"


class SubscriptionKeyAuth(httpx.Auth):
    """Adds `Ocp-Apim-Subscription-Key` to API calls; media downloads pass `auth=None` and go without."""

    def __init__(self, key: str) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[KEY_HEADER] = self._key
        yield request

    def __repr__(self) -> str:
        return "SubscriptionKeyAuth(<redacted>)"


def as_timeout(value: float | httpx.Timeout | None) -> httpx.Timeout:
    return value if isinstance(value, httpx.Timeout) else httpx.Timeout(value)


def capped(timeout: httpx.Timeout, seconds: float | None) -> httpx.Timeout:
    """`timeout` with no phase longer than `seconds`, so one slow call cannot overrun a deadline."""
    if seconds is None:
        return timeout
    seconds = max(seconds, 0.001)

    def cap(value: float | None) -> float:
        return seconds if value is None else min(value, seconds)

    return httpx.Timeout(
        connect=cap(timeout.connect), read=cap(timeout.read), write=cap(timeout.write), pool=cap(timeout.pool)
    )


MAX_ANSWER_BYTES: Final = 4 * 1024 * 1024
"""The longest API answer (status object, acceptance or error body) read: a status object is a few KiB,
so a longer one is refused at this size, never read whole into memory."""
MIN_MEDIA_RATE: Final = 64 * 1024
"""Bytes per second a download must average to go on past its read timeout: a large image on a slow
link arrives whole, a trickle is abandoned."""


@dataclass(frozen=True)
class BodyRules:
    max_bytes: int | None
    min_rate: float | None
    """Past the read timeout, the body goes on only while it averages this many bytes/s (None: never)."""


ANSWER: Final = BodyRules(MAX_ANSWER_BYTES, None)
MEDIA: Final = BodyRules(None, MIN_MEDIA_RATE)


class BodyTooLarge(httpx.RequestError):
    """An answer longer than its cap: refused at the cap. Not retried: the same call gets the same answer."""


class BodyTooSlow(httpx.ReadTimeout):
    """A body still arriving past its read timeout or its call's deadline."""


class BodyGuard(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body that stops with `BodyTooLarge` or `BodyTooSlow` as soon as a chunk breaks the rules.

    `patience` (seconds from the first byte of the answer, its read timeout) is when a slow body is
    abandoned; `deadline` (monotonic) is when any body is.
    """

    def __init__(
        self,
        inner: httpx.SyncByteStream | httpx.AsyncByteStream,
        *,
        rules: BodyRules,
        patience: float | None,
        deadline: float | None,
        declared: str | None,
    ) -> None:
        self._inner = inner
        self._rules = rules
        self._start = time.monotonic()
        self._patience = patience
        self._deadline = deadline
        self._declared = declared
        self._size = 0

    def _admit(self) -> None:
        cap, declared = self._rules.max_bytes, self._declared
        if cap is not None and declared is not None and declared.isdigit() and int(declared) > cap:
            raise BodyTooLarge(
                f"the answer is {int(declared)} bytes (Content-Length), over the {_mib(cap)} cap"
            )

    def _check(self, chunk: bytes) -> None:
        self._size += len(chunk)
        cap = self._rules.max_bytes
        if cap is not None and self._size > cap:
            raise BodyTooLarge(f"the answer is over the {_mib(cap)} cap; not read further")
        now = time.monotonic()
        took = now - self._start
        if self._deadline is not None and now > self._deadline:
            raise BodyTooSlow(
                f"the body was still arriving at the deadline ({self._size} bytes in {took:.1f} s)"
            )
        rate = self._rules.min_rate
        if (
            self._patience is not None
            and took > self._patience
            and (rate is None or self._size < rate * took)
        ):
            raise BodyTooSlow(
                f"the body took longer than the {self._patience:g} s read timeout ({self._size} bytes)"
            )

    def __iter__(self) -> Iterator[bytes]:
        assert isinstance(self._inner, httpx.SyncByteStream)
        self._admit()
        for chunk in self._inner:
            self._check(chunk)
            yield chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        assert isinstance(self._inner, httpx.AsyncByteStream)
        self._admit()
        async for chunk in self._inner:
            self._check(chunk)
            yield chunk

    def close(self) -> None:
        if isinstance(self._inner, httpx.SyncByteStream):
            self._inner.close()

    async def aclose(self) -> None:
        if isinstance(self._inner, httpx.AsyncByteStream):
            await self._inner.aclose()


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:g} MiB"


@dataclass
class CallScope:
    timeout: httpx.Timeout | None
    deadline: float | None
    """When (`time.monotonic()`) the call must have ended, its body included (None: no deadline)."""
    rules: BodyRules
    response: httpx.Response | None = None


_SCOPE: contextvars.ContextVar[CallScope | None] = contextvars.ContextVar("boogu_call_scope", default=None)


@contextlib.contextmanager
def call_scope(
    timeout: httpx.Timeout | None, budget: float | None = None, rules: BodyRules = ANSWER
) -> Iterator[CallScope]:
    """Within the block, requests use `timeout` (None: the client's), end within `budget` seconds,
    have their bodies held to `rules`, and the last response is kept."""
    scope = CallScope(timeout, None if budget is None else time.monotonic() + budget, rules)
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


def _on_request(request: httpx.Request) -> None:
    scope = _SCOPE.get()
    if scope is not None and scope.timeout is not None:
        request.extensions["timeout"] = scope.timeout.as_dict()


def _on_response(response: httpx.Response) -> None:
    """Keep the response, and guard its body (not read yet). Outside a scope (`client.api` used
    directly) an answer is held to the API's rules with no deadline."""
    scope = _SCOPE.get()
    if scope is not None:
        scope.response = response
    timeouts = dict(response.request.extensions.get("timeout") or {})
    read = timeouts.get("read")
    deadline = None if scope is None else scope.deadline
    if deadline is not None:
        # httpcore takes the read timeout of the body's reads when it starts reading it (after this
        # hook): a body that stops arriving is abandoned at the deadline, not a read timeout after it.
        left = max(deadline - time.monotonic(), 0.001)
        timeouts["read"] = left if read is None else min(read, left)
        response.request.extensions["timeout"] = timeouts
    response.stream = BodyGuard(
        response.stream,
        rules=ANSWER if scope is None else scope.rules,
        patience=read,
        deadline=deadline,
        declared=response.headers.get("content-length"),
    )


async def _on_request_async(request: httpx.Request) -> None:
    _on_request(request)


async def _on_response_async(response: httpx.Response) -> None:
    _on_response(response)


SYNC_HOOKS: Final = (_on_request, _on_response)
ASYNC_HOOKS: Final = (_on_request_async, _on_response_async)


DEFAULT_CONNECTIONS = 100
"""httpx's own default, but all kept alive (httpx keeps 20, so a client busier than 20 calls at once
opened and closed a connection per call)."""
BATCH_CONNECTIONS = 64
"""The most connections a batch uses. More is slower, not faster: every request makes httpcore scan
its connections, and the gateway serves each one; a 1,000-line batch at concurrency 256 ran at 0.78x
the jobs/s of concurrency 64 with 256 connections, at 1.00x with 64. A job makes one call at a time
and spends most of its time between calls, so 64 connections serve hundreds of jobs."""


KEEPALIVE_EXPIRY = 2.0
"""Seconds an idle connection is kept (httpx: 5): well under the 5 s after which uvicorn, the mock's
server and a common one, closes it. Reusing a connection that the server is closing fails the
request with a ReadError after it was sent: for a submit, an uncertain job that cannot be retried."""


def pool_size(max_connections: int | None, httpx_args: Mapping[str, Any] | None) -> int:
    """Connections (and so API calls in flight) of a client: `max_connections`, else the `limits`
    passed in `httpx_args`, else `DEFAULT_CONNECTIONS`."""
    limits = (httpx_args or {}).get("limits")
    if max_connections is None and isinstance(limits, httpx.Limits) and limits.max_connections:
        return limits.max_connections
    size = DEFAULT_CONNECTIONS if max_connections is None else max_connections
    if size < 1:
        raise ValueError("max_connections must be >= 1")
    return size


def client_args(
    *,
    base_url: str,
    key: str,
    timeout: httpx.Timeout,
    user_agent: str,
    hooks: tuple[Callable[..., Any], Callable[..., Any]],
    httpx_args: Mapping[str, Any] | None,
    connections: int,
) -> dict[str, Any]:
    """Arguments for `httpx.Client` (SYNC_HOOKS) or `httpx.AsyncClient` (ASYNC_HOOKS); `httpx_args`
    (a transport, a proxy, limits, more headers or hooks) are merged in. The pool keeps `connections`
    open, all of them alive between calls, unless `httpx_args` brings its own `limits`."""
    args = dict(httpx_args or {})
    extra_hooks = dict(args.pop("event_hooks", None) or {})
    args.setdefault(
        "limits",
        httpx.Limits(
            max_connections=connections,
            max_keepalive_connections=connections,
            keepalive_expiry=KEEPALIVE_EXPIRY,
        ),
    )
    return {
        **args,
        "base_url": base_url,
        "auth": SubscriptionKeyAuth(key),
        "timeout": timeout,
        # Uncompressed answers, so that a server that does as asked cannot pass the size cap with a
        # few KiB of gzip that decode to gigabytes; status objects are small, images compressed already.
        "headers": {
            "User-Agent": user_agent,
            "Accept-Encoding": "identity",
            **dict(args.get("headers") or {}),
        },
        "event_hooks": {
            "request": [hooks[0], *extra_hooks.get("request", [])],
            "response": [hooks[1], *extra_hooks.get("response", [])],
        },
    }
