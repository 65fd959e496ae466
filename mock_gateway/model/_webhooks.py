"""Webhook delivery: the core decides when to send and records what happened; an injected sender does the
POST, so retries and backoff are testable with a fake sender and a manual clock."""

from __future__ import annotations

import asyncio
import copy
import heapq
import ipaddress
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from boogu_contract import redact_url, shared_tls_context, without_userinfo

from ._clock import Clock

Sender = Callable[[str, dict[str, Any]], Awaitable[int]]
"""POSTs the payload as JSON and returns the status code; raises on connection errors and timeouts."""

ATTEMPT_TIMEOUT = 5.0
"""Seconds one attempt may take, connection to answer: a receiver that never answers costs that, and
`POST /__mock/clock/advance`, which awaits a round of attempts, answers within it."""
DeliveryState = Literal["pending", "delivered", "failed", "blocked"]
logger = logging.getLogger("mock_gateway")
WARNED_REASONS_MAX = 1024


def check_webhook_target(
    url: str, allowlist: Sequence[str], own_address: tuple[str, int] | None = None
) -> str | None:
    """Returns why the mock must not call `url`, or None.

    A mock that POSTs to any URL a client names could be steered at internal services (SSRF), so only
    loopback hosts and allowlisted hosts are called. Hosts are never resolved: a name could resolve to
    anything, so `localhost` is the only loopback name. Nor is the mock's own port on such a host
    (`own_address`, where it listens), at any path: a webhook at `/__mock/reset` would wipe every key.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        return f"X-Webhook-URL: {url!r} is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return f"X-Webhook-URL: scheme {parts.scheme!r} is not allowed; use http or https"
    host = parts.hostname
    if not host:
        return f"X-Webhook-URL: {url!r} has no host"
    if own_address is not None and port == own_address[1] and _may_be_own(host, own_address[0]):
        return f"X-Webhook-URL: {host}:{port} is the mock gateway itself; webhooks never go there"
    if is_loopback(host) or _is_allowlisted(host, port, allowlist):
        return None
    return (
        f"X-Webhook-URL: host {host!r} is not allowed; "
        "the mock only calls loopback addresses unless --webhook-allow lists the host"
    )


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address, as a URL or a bind address gives it) is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _may_be_own(host: str, own_host: str) -> bool:
    """Whether `host` may reach a server bound to `own_host` (0.0.0.0 and :: listen on every address)."""
    everywhere = own_host in ("0.0.0.0", "::", "")  # noqa: S104 (a comparison, not a bind)
    return everywhere or is_loopback(host) or host == own_host.strip("[]").lower()


def _is_allowlisted(host: str, port: int, allowlist: Sequence[str]) -> bool:
    # `host` is lowercase and unbracketed (urlsplit's `hostname`); entries are `host` or `host:port`,
    # and `*.example.test` matches any subdomain of example.test, with or without a port.
    candidates = (host, f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    for entry in (e.strip().lower() for e in allowlist):
        if entry in candidates:
            return True
        if entry.startswith("*.") and any(c.endswith(entry[1:]) for c in candidates):
            return True
    return False


@dataclass
class Attempt:
    at: float
    status_code: int | None
    error: str | None
    duration_ms: float


@dataclass
class Delivery:
    id: str
    request_id: str
    url: str
    """As shown: userinfo and credential-like query parameters redacted."""
    payload: dict[str, Any]
    target: str = field(repr=False)
    """Where the POST goes: the URL without userinfo (httpx would send it as Basic credentials)."""
    attempts: list[Attempt] = field(default_factory=list)
    state: DeliveryState = "pending"
    next_attempt_at: float | None = None
    reason: str | None = None
    """Why a `blocked` delivery was never sent."""

    def to_dict(self) -> dict[str, Any]:
        shown = asdict(self)
        del shown["target"]
        return shown


class WebhookDispatcher:
    """Retries failed deliveries with exponential backoff, up to `max_attempts` attempts in all.

    Deliveries being sent are out of the schedule, so a second `deliver_due` running meanwhile cannot
    send them again. At most `concurrency` attempts run at once, whatever the job rate: each holds a
    socket, and a receiver that never answers would otherwise make the mock open one per job. Due
    deliveries beyond the cap wait in the schedule, a heap, so finding the next one costs no scan.
    Only the newest `max_records` finished deliveries are kept.
    """

    def __init__(
        self,
        clock: Clock,
        sender: Sender,
        max_attempts: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        max_records: int = 10_000,
        attempt_timeout: float = ATTEMPT_TIMEOUT,
        concurrency: int = 32,
    ) -> None:
        if max_backoff < 0:
            raise ValueError(f"max_backoff must be >= 0, got {max_backoff}")
        if max_records < 0:
            raise ValueError(f"max_records must be >= 0, got {max_records}")
        self._clock = clock
        self._sender = sender
        self._max_backoff = max_backoff
        self._max_records = max_records
        self._attempt_timeout = attempt_timeout
        self._lock = threading.Lock()  # enqueue may run in a worker thread while the loop delivers
        self.configure(max_attempts=max_attempts, backoff=backoff, concurrency=concurrency)
        self._ids = itertools.count(1)  # not reset, so ids stay unique across resets
        self._deliveries: dict[str, Delivery] = {}  # all kept deliveries, oldest first
        self._scheduled: dict[str, Delivery] = {}  # pending and not being sent
        self._schedule: list[tuple[float, int, str]] = []  # (next attempt, order, id); stale entries skipped
        self._order = itertools.count()
        self._sending = 0  # attempts running now, at most `concurrency`
        self._finished: deque[str] = deque()  # ids of finished deliveries, oldest first
        self._warned: set[str] = set()  # reasons of blocked deliveries already logged

    def configure(self, *, max_attempts: int, backoff: float, concurrency: int | None = None) -> None:
        """Applies from the next attempt on: deliveries keep their attempts and their next attempt time."""
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        if backoff < 0:
            raise ValueError(f"backoff must be >= 0, got {backoff}")
        if concurrency is not None and concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        with self._lock:
            self._max_attempts = max_attempts
            self._backoff = backoff
            if concurrency is not None:
                self._concurrency = concurrency

    def enqueue(
        self, request_id: str, url: str, payload: dict[str, Any], *, blocked: str | None = None
    ) -> Delivery:
        """Sends a snapshot of `payload`: the status object may change before the attempt is made.

        With a `blocked` reason the delivery is only recorded, never sent, and its host is logged once.
        """
        with self._lock:
            delivery = Delivery(
                id=f"wh_{next(self._ids)}",
                request_id=request_id,
                url=redact_url(url),
                payload=copy.deepcopy(payload),
                target=without_userinfo(url),
                next_attempt_at=self._clock.now(),
                reason=blocked,
            )
            self._deliveries[delivery.id] = delivery
            if blocked is None:
                self._reschedule(delivery)
            else:
                self._finish(delivery, "blocked")
                self._warn_once(blocked)
            return delivery

    def _warn_once(self, reason: str) -> None:
        """One line per refused host (the reason names it), not one per job: a shared mock stays readable."""
        if reason in self._warned or len(self._warned) >= WARNED_REASONS_MAX:
            return
        self._warned.add(reason)
        logger.warning("webhook not sent, recorded as blocked in /__mock/webhooks: %s", reason)

    def due(self) -> list[Delivery]:
        with self._lock:
            return self._due()

    def ready(self) -> bool:
        """Whether `deliver_due` would start an attempt now: a slot is free and a delivery is due.
        Cheap (the top of the heap), as every API call asks."""
        with self._lock:
            return self._sending < self._concurrency and self._next_due() is not None

    @property
    def attempt_timeout(self) -> float:
        return self._attempt_timeout

    async def deliver_due(self, attempted: list[Delivery] | None = None) -> list[Delivery]:
        """Attempts the deliveries due now once each, at most `concurrency` at a time (counting those
        other calls are sending), and returns those attempted, each also added to `attempted` as it
        starts. Due deliveries left over when no slot frees up stay scheduled for the next call."""
        attempted = [] if attempted is None else attempted
        with self._lock:
            until, first_later = self._clock.now(), next(self._order)  # retries scheduled meanwhile wait

        async def worker() -> None:
            while (delivery := self._take(until, first_later)) is not None:
                attempted.append(delivery)
                try:
                    await self._attempt(delivery)
                finally:
                    with self._lock:
                        self._sending -= 1

        with self._lock:
            workers = max(0, self._concurrency - self._sending)
        await asyncio.gather(*(worker() for _ in range(workers)))
        return attempted

    def _take(self, until: float, first_later: int) -> Delivery | None:
        """The next delivery due by `until` and scheduled before `first_later`, out of the schedule and
        counted as sending, if a slot is free."""
        with self._lock:
            if self._sending >= self._concurrency:
                return None
            delivery = self._next_due(until=until, first_later=first_later)
            if delivery is not None:
                self._sending += 1
            return delivery

    def _next_due(self, *, until: float | None = None, first_later: int | None = None) -> Delivery | None:
        """The earliest scheduled delivery if due (by `until`, default now), dropping stale heap entries;
        with `first_later` (an order), taken out of the schedule unless scheduled at or after it.
        Called under the lock."""
        limit = self._clock.now() if until is None else until
        while self._schedule:
            at, order, delivery_id = self._schedule[0]
            delivery = self._scheduled.get(delivery_id)
            if delivery is None or delivery.next_attempt_at != at:
                heapq.heappop(self._schedule)  # sent, finished, reset or rescheduled since
                continue
            if at > limit or (first_later is not None and order >= first_later):
                return None
            if first_later is not None:
                heapq.heappop(self._schedule)
                del self._scheduled[delivery_id]
            return delivery
        return None

    def _reschedule(self, delivery: Delivery) -> None:
        """Back in the schedule at its `next_attempt_at`. Called under the lock."""
        self._scheduled[delivery.id] = delivery
        if delivery.next_attempt_at is not None:
            heapq.heappush(self._schedule, (delivery.next_attempt_at, next(self._order), delivery.id))

    def deliveries(self, request_id: str | None = None) -> list[Delivery]:
        with self._lock:
            return [d for d in self._deliveries.values() if request_id is None or d.request_id == request_id]

    def reset(self) -> None:
        with self._lock:
            self._deliveries.clear()
            self._scheduled.clear()
            self._schedule.clear()
            self._finished.clear()

    def _due(self) -> list[Delivery]:
        now = self._clock.now()
        return [
            d for d in self._scheduled.values() if d.next_attempt_at is not None and d.next_attempt_at <= now
        ]

    async def _attempt(self, delivery: Delivery) -> None:
        at = self._clock.now()
        started = time.perf_counter()  # the mock clock may be advanced mid-send; durations are real time
        status_code: int | None = None
        error: str | None = None
        try:
            async with asyncio.timeout(self._attempt_timeout):  # whatever the sender's own (per-phase) ones
                status_code = await self._sender(delivery.target, delivery.payload)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        except BaseException:  # cancelled: not an attempt, so it stays due for the next round
            with self._lock:
                if delivery.id in self._deliveries:
                    self._reschedule(delivery)
            raise
        duration_ms = (time.perf_counter() - started) * 1000
        with self._lock:
            if delivery.id not in self._deliveries:  # reset while sending
                return
            delivery.attempts.append(Attempt(at, status_code, error, duration_ms))
            if status_code is not None and 200 <= status_code < 300:
                self._finish(delivery, "delivered")
            elif len(delivery.attempts) >= self._max_attempts:
                self._finish(delivery, "failed")
            else:
                wait = min(self._max_backoff, self._backoff * 2 ** (len(delivery.attempts) - 1))
                delivery.next_attempt_at = self._clock.now() + wait
                self._reschedule(delivery)

    def _finish(self, delivery: Delivery, state: DeliveryState) -> None:
        delivery.state = state
        delivery.next_attempt_at = None
        self._finished.append(delivery.id)
        while len(self._finished) > self._max_records:
            del self._deliveries[self._finished.popleft()]


async def post_json(url: str, payload: dict[str, Any]) -> int:
    """Deliver one webhook: POST the status object as JSON and report the HTTP status.

    Redirects are not followed, so an allowed loopback target cannot bounce the POST elsewhere.
    """
    # trust_env=False: a proxy from the environment must not carry loopback deliveries elsewhere.
    async with httpx.AsyncClient(
        timeout=ATTEMPT_TIMEOUT, verify=shared_tls_context(), follow_redirects=False, trust_env=False
    ) as client:
        response = await client.post(url, json=payload, headers={"User-Agent": "boogu-mock-gateway"})
        return response.status_code
