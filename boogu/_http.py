"""The httpx clients under the generated client: the key as an auth flow (so it goes to the gateway's
API and nowhere else, and no repr shows it), default timeouts, and per-call timeouts.

The generated functions take no timeout argument, so a per-call timeout travels in a context variable
that a request hook copies into the request; the same hook pair keeps the raw response, so a body the
generated parser refuses (a status value from a newer gateway) can still be read.

The response hook also guards every body before it is read (`BodyGuard`): httpx's read timeout counts
from the last byte, so a body trickling a byte a second never trips it, and `read()` takes a body of
any size. An API answer must arrive whole within the read timeout and be at most `MAX_ANSWER_BYTES`;
a download may go on past its read timeout only at `MIN_MEDIA_RATE`; and neither outlives the deadline
of the call that asked for it. A body the server compressed although asked not to is decoded here, a
piece at a time, and held to a cap on what it decodes to (a few KiB of gzip can decode to gigabytes).

Below httpx, every socket operation is bounded (`BoundedBackend`, on each connection pool of a client):
httpcore gives each read its read timeout afresh, so a status line and headers dripped a byte at a
time would never end. Each read, write and connect waits no longer than what is left of its call's
deadline, and the status line and headers must arrive whole within the read timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import httpcore
import httpx

from boogu_contract import shared_tls_args, wire

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
so a longer one is refused at this size, never read whole into memory. It counts the bytes on the wire
and, for an answer compressed although the client asked for none, the bytes it decodes to."""
MAX_DECODED_MEDIA_BYTES: Final = 64 * 1024 * 1024
"""What a compressed download may decode to. Images come compressed already, so the gateway sends
them as they are; a compressed one is decoded, and refused at this size: a few MiB of gzip of zeros
decode to gigabytes. (An image sent as it is has no cap: it is streamed to its file.)"""
MIN_MEDIA_RATE: Final = 64 * 1024
"""Bytes per second a download must average to go on past its read timeout: a large image on a slow
link arrives whole, a trickle is abandoned."""
DECODED_PIECE: Final = 64 * 1024
"""The most a compressed body decodes to at a time: what one read of it can add to memory."""
ASYNC_BACKSTOP: Final = 0.5
"""Seconds after its deadline at which asyncio itself cancels an async call that is still running:
only a transport whose sockets `BoundedBackend` does not see (one passed in `httpx_args`) gets there."""


@dataclass(frozen=True)
class BodyRules:
    max_bytes: int | None
    """The cap on the bytes on the wire, and on what a compressed body decodes to (None: no cap)."""
    min_rate: float | None
    """Past the read timeout, the body goes on only while it averages this many bytes/s (None: never)."""
    max_decoded: int | None
    """The cap on what a compressed body decodes to."""


ANSWER: Final = BodyRules(MAX_ANSWER_BYTES, None, MAX_ANSWER_BYTES)
MEDIA: Final = BodyRules(None, MIN_MEDIA_RATE, MAX_DECODED_MEDIA_BYTES)


class AnswerRefused(httpx.DecodingError):
    """A body that breaks a rule of its own (too large, encoded as asked not to be): refused, and not
    retried, since the same call gets the same answer."""


class BodyTooLarge(AnswerRefused):
    """An answer longer than its cap, or that decodes to more: refused at the cap."""


class BodyTooSlow(httpx.ReadTimeout):
    """A body still arriving past its read timeout or its call's deadline."""


class _Inflater:
    """A gzip or deflate body decoded a piece of at most `DECODED_PIECE` bytes at a time (httpx decodes
    each read whole: 64 KiB of gzip of zeros become 64 MiB at once)."""

    def __init__(self, encoding: str) -> None:
        # gzip, or zlib-wrapped deflate (with 32 zlib also reads a gzip header)
        self._inflate = zlib.decompressobj(zlib.MAX_WBITS | (16 if "gzip" in encoding else 32))

    def decode(self, data: bytes) -> Iterator[bytes]:
        """What `data` decodes to, in pieces; a full piece may leave more pending, so it asks again."""
        while not self._inflate.eof:
            try:
                piece = self._inflate.decompress(data, DECODED_PIECE)
            except zlib.error as exc:
                raise httpx.DecodingError(f"the compressed body is corrupt: {exc}") from None
            data = self._inflate.unconsumed_tail
            if piece:
                yield piece
            if not data and len(piece) < DECODED_PIECE:
                return


DECODABLE: Final = frozenset({"gzip", "x-gzip", "deflate"})


class BodyGuard(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body that stops with `BodyTooLarge` or `BodyTooSlow` as soon as a chunk breaks the rules.

    `patience` (seconds from the first byte of the answer, its read timeout) is when a slow body is
    abandoned; `deadline` (monotonic) is when any body is. A body with a `Content-Encoding` (`encoding`)
    comes out decoded, its decoded size held to `rules.max_decoded`.
    """

    def __init__(
        self,
        inner: httpx.SyncByteStream | httpx.AsyncByteStream,
        *,
        rules: BodyRules,
        patience: float | None,
        deadline: float | None,
        declared: str | None,
        encoding: str | None = None,
    ) -> None:
        self._inner = inner
        self._rules = rules
        self._start = time.monotonic()
        self._patience = patience
        self._deadline = deadline
        self._declared = declared
        self._encoding = encoding
        self._inflater = _Inflater(encoding) if encoding in DECODABLE else None
        self._size = 0
        self._decoded = 0

    def _admit(self) -> None:
        cap, declared = self._rules.max_bytes, self._declared
        if cap is not None and declared is not None and declared.isdigit() and int(declared) > cap:
            raise BodyTooLarge(
                f"the answer is {int(declared)} bytes (Content-Length), over the {_mib(cap)} cap"
            )
        if self._encoding is not None and self._inflater is None:
            raise AnswerRefused(
                f"the answer is encoded as {self._encoding!r}, which the client did not ask for"
                " and does not decode"
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

    def _decode(self, chunk: bytes) -> Iterable[bytes]:
        """`chunk` as it reads (decoded, a piece at a time), each piece held to the decoded cap."""
        if self._inflater is None:
            yield chunk
            return
        cap = self._rules.max_decoded
        for piece in self._inflater.decode(chunk):
            self._decoded += len(piece)
            if cap is not None and self._decoded > cap:
                raise BodyTooLarge(
                    f"the body, sent {self._encoding}-compressed although the client asked for no"
                    f" compression, decodes to over the {_mib(cap)} cap; not read further"
                )
            yield piece

    def __iter__(self) -> Iterator[bytes]:
        assert isinstance(self._inner, httpx.SyncByteStream)
        self._admit()
        for chunk in self._inner:
            self._check(chunk)
            yield from self._decode(chunk)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        assert isinstance(self._inner, httpx.AsyncByteStream)
        self._admit()
        async for chunk in self._inner:
            self._check(chunk)
            for piece in self._decode(chunk):
                yield piece

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
    awaiting_headers: bool = False
    """A request has been sent and its status line and headers have not all arrived yet."""
    headers_by: float | None = None
    """When they must have: the read timeout after the first read for them."""


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


@contextlib.asynccontextmanager
async def backstop(budget: float | None) -> AsyncIterator[None]:
    """asyncio's own timeout, `ASYNC_BACKSTOP` after the call's deadline: an async call ends then even
    on a transport whose reads `BoundedBackend` does not bound. What it cuts short may have been sent."""
    if budget is None:
        yield
        return
    limit = asyncio.timeout(budget + ASYNC_BACKSTOP)
    try:
        async with limit:
            yield
    except TimeoutError:
        if not limit.expired():
            raise
        raise httpx.ReadTimeout("the call was still running at its deadline") from None


def _on_request(request: httpx.Request) -> None:
    scope = _SCOPE.get()
    if scope is not None:
        scope.awaiting_headers, scope.headers_by = True, None
        if scope.timeout is not None:
            request.extensions["timeout"] = scope.timeout.as_dict()


def _on_response(response: httpx.Response) -> None:
    """Keep the response, and guard its body (not read yet). Outside a scope (`client.api` used
    directly) an answer is held to the API's rules with no deadline. A body compressed despite
    `Accept-Encoding: identity` is decoded by the guard, so httpx is told it is not."""
    scope = _SCOPE.get()
    if scope is not None:
        scope.response = response
        scope.awaiting_headers = False
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    declared = response.headers.get("content-length")
    if encoding != "identity":
        del response.headers["content-encoding"]
        response.headers.pop("content-length", None)  # of the compressed body
    response.stream = BodyGuard(
        response.stream,
        rules=ANSWER if scope is None else scope.rules,
        patience=(response.request.extensions.get("timeout") or {}).get("read"),
        deadline=None if scope is None else scope.deadline,
        declared=declared,
        encoding=None if encoding == "identity" else encoding,
    )


async def _on_request_async(request: httpx.Request) -> None:
    _on_request(request)


async def _on_response_async(response: httpx.Response) -> None:
    _on_response(response)


SYNC_HOOKS: Final = (_on_request, _on_response)
ASYNC_HOOKS: Final = (_on_request_async, _on_response_async)


# Bounded sockets ------------------------------------------------------------------------------------

E = TypeVar("E", httpcore.ReadTimeout, httpcore.WriteTimeout, httpcore.ConnectTimeout)
R = TypeVar("R")


@dataclass(frozen=True)
class _Bound:
    """The timeout of one socket operation, and what shortened it, for the error when it runs out."""

    timeout: float | None
    reason: str | None = None

    def run(self, operation: Callable[[float | None], R], error: type[E]) -> R:
        self._check(error)
        try:
            return operation(self.timeout)
        except error:
            raise self._expired(error) from None

    async def arun(self, operation: Callable[[float | None], Awaitable[R]], error: type[E]) -> R:
        self._check(error)
        try:
            return await operation(self.timeout)
        except error:
            raise self._expired(error) from None

    def _check(self, error: type[E]) -> None:
        if self.timeout is not None and self.timeout <= 0:
            raise error(self.reason or "timed out")

    def _expired(self, error: type[E]) -> E:
        return error(self.reason or "timed out")


def _bound(timeout: float | None, doing: str, *, reading: bool = False) -> _Bound:
    """`timeout` for one socket operation of the call in scope, shortened to what is left of its
    deadline and, while its status line and headers are awaited, of their read timeout."""
    scope = _SCOPE.get()
    if scope is None:
        return _Bound(timeout)
    now = time.monotonic()
    limits: list[tuple[float, str]] = []
    if scope.deadline is not None:
        limits.append((scope.deadline - now, f"{doing} at the call's deadline"))
    if reading and scope.awaiting_headers and timeout is not None:
        if scope.headers_by is None:
            scope.headers_by = now + timeout
        limits.append(
            (
                scope.headers_by - now,
                f"the status line and headers took longer than the {timeout:g} s read timeout",
            )
        )
    if not limits:
        return _Bound(timeout)
    left, reason = min(limits)
    return _Bound(timeout) if timeout is not None and timeout < left else _Bound(left, reason)


def _connecting(timeout: float | None) -> _Bound:
    return _bound(timeout, "no connection (or TLS) yet")


class _BoundedStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        bound = _bound(timeout, "the answer was still arriving", reading=True)
        return bound.run(lambda left: self._inner.read(max_bytes, left), httpcore.ReadTimeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        bound = _bound(timeout, "the request was still being sent")
        bound.run(lambda left: self._inner.write(buffer, left), httpcore.WriteTimeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        start = self._inner.start_tls
        return _BoundedStream(
            _connecting(timeout).run(
                lambda left: start(ssl_context, server_hostname, left), httpcore.ConnectTimeout
            )
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _AsyncBoundedStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        bound = _bound(timeout, "the answer was still arriving", reading=True)
        return await bound.arun(lambda left: self._inner.read(max_bytes, left), httpcore.ReadTimeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        bound = _bound(timeout, "the request was still being sent")
        await bound.arun(lambda left: self._inner.write(buffer, left), httpcore.WriteTimeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        start = self._inner.start_tls
        return _AsyncBoundedStream(
            await _connecting(timeout).arun(
                lambda left: start(ssl_context, server_hostname, left), httpcore.ConnectTimeout
            )
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class BoundedBackend(httpcore.NetworkBackend):
    """httpcore's network backend with every socket operation bounded by `_bound`."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        connect = self._inner.connect_tcp
        return self._connect(timeout, lambda left: connect(host, port, left, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        connect = self._inner.connect_unix_socket
        return self._connect(timeout, lambda left: connect(path, left, socket_options))

    def _connect(
        self, timeout: float | None, connect: Callable[[float | None], httpcore.NetworkStream]
    ) -> httpcore.NetworkStream:
        return _BoundedStream(_connecting(timeout).run(connect, httpcore.ConnectTimeout))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class AsyncBoundedBackend(httpcore.AsyncNetworkBackend):
    """`BoundedBackend` for asyncio."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        connect = self._inner.connect_tcp
        return await self._connect(
            timeout, lambda left: connect(host, port, left, local_address, socket_options)
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        connect = self._inner.connect_unix_socket
        return await self._connect(timeout, lambda left: connect(path, left, socket_options))

    async def _connect(
        self, timeout: float | None, connect: Callable[[float | None], Awaitable[httpcore.AsyncNetworkStream]]
    ) -> httpcore.AsyncNetworkStream:
        return _AsyncBoundedStream(await _connecting(timeout).arun(connect, httpcore.ConnectTimeout))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def bound_sockets(client: httpx.Client | httpx.AsyncClient) -> None:
    """Put `BoundedBackend` under every connection pool of `client` (its transport, and those of its
    proxies); a transport without a pool of httpcore's (a mock's, one passed in) is left as it is.

    httpx has no argument for a network backend, so this reaches into its transports' pools: pinned
    to httpx 0.28, and proved by the tests of dripped headers."""
    for transport in (client._transport, *client._mounts.values()):
        pool: Any = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, BoundedBackend | AsyncBoundedBackend):
            continue
        if isinstance(backend, httpcore.NetworkBackend):
            pool._network_backend = BoundedBackend(backend)
        elif isinstance(backend, httpcore.AsyncNetworkBackend):
            pool._network_backend = AsyncBoundedBackend(backend)


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
    args = shared_tls_args(httpx_args)
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
