"""When a failed call is tried again, and after how long: pure functions of what happened, so the
rules are tested without a network or a clock.

The one rule that matters most: a submit is sent again only when it provably did not create a job —
a 429 answer, or a connection that never carried the request. After a timeout, a broken connection
or a 5xx the job may exist, and a second submit would be a second job and a second charge.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from ._http import AnswerRefused

NEVER_SENT: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
"""Transport errors raised before any byte of the request left: no connection, or none free in the pool."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry (defaults as in the Stainless-generated SDKs)."""

    max_retries: int = 2
    """Retries after the first attempt; 0 turns retrying off."""
    initial_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    """Share of each delay drawn at random, so that clients which failed together do not retry together."""
    max_retry_after: float = 60.0
    """A longer `Retry-After` is not waited out (nor one past the caller's deadline): the error, which
    names it, goes to the caller, who can decide."""

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if not 0 <= self.initial_delay <= self.max_delay:
            raise ValueError("delays must satisfy 0 <= initial_delay <= max_delay")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay: float
    reason: str
    note: str | None = None
    """Why a call that could have been retried was not (no retries left, a `Retry-After` too long or
    past the deadline), for the error the caller gets."""


def backoff_delay(retries_done: int, policy: RetryPolicy, rand: float) -> float:
    """Exponential backoff, capped; `rand` in [0, 1) shortens it by up to `jitter` of itself."""
    base = min(policy.initial_delay * 2.0**retries_done, policy.max_delay)
    return base * (1.0 - policy.jitter * rand)


def retry_after_delay(retry_after: float, policy: RetryPolicy, rand: float) -> float:
    """`Retry-After` is a minimum: jitter only lengthens it, so that calls refused together (and told
    the same whole second) do not all come back at the same moment."""
    return retry_after * (1.0 + policy.jitter * rand)


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait from `Retry-After` (seconds or an HTTP date) or `retry-after-ms`; None if absent."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return max(0.0, value)
    header = headers.get("retry-after")
    if header is None:
        return None
    try:
        seconds = float(header)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return None
        seconds = moment.timestamp() - now
    return max(0.0, seconds) if math.isfinite(seconds) else None


def seconds(value: float) -> str:
    """`3`, `1.5`, `315360000`: a duration as a message shows it (no exponent)."""
    return f"{value:.0f}" if value >= 1000 else f"{value:g}"


def request_was_sent(error: httpx.RequestError) -> bool:
    """Whether the request may have reached the server (True unless it provably did not)."""
    return not isinstance(error, NEVER_SENT)


def describe(status_code: int | None, error: BaseException | None) -> str:
    if error is not None:
        return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return f"HTTP {status_code}"


def decide(
    *,
    idempotent: bool,
    retries_done: int,
    policy: RetryPolicy,
    rand: float,
    status_code: int | None = None,
    retry_after: float | None = None,
    error: httpx.RequestError | None = None,
    time_left: float | None = None,
) -> RetryDecision:
    """Whether to try a call again after an answer (`status_code`) or a transport `error`, and when.

    Idempotent calls (status, downloads) are retried on 408, 429, 5xx and any transport error but an
    answer refused by its own rules (over its size cap, or compressed in a way the client does not
    read); a submit only on 429 and on errors that prove the request was never sent. 4xx answers
    such as 400, 401, 402 and 403 are never retried: the same request gets the same answer (and 402
    is about money). A retry that would overrun `time_left` (a caller's
    deadline) is not made, nor one after a `Retry-After` beyond it or beyond `max_retry_after`.
    """
    reason = describe(status_code, error)
    if error is not None:
        retryable = (idempotent or not request_was_sent(error)) and not isinstance(error, AnswerRefused)
    elif status_code is not None:
        retryable = status_code == 429 or (idempotent and (status_code == 408 or status_code >= 500))
    else:
        retryable = False
    if not retryable:
        return RetryDecision(False, 0.0, reason)

    def give_up(note: str) -> RetryDecision:
        return RetryDecision(False, 0.0, f"{reason} ({note})", note)

    if retry_after is not None:
        if time_left is not None and retry_after >= time_left:
            away = max(time_left, 0.0)
            return give_up(
                f"not retried: Retry-After {seconds(retry_after)} s ends past the deadline, {away:.1f} s away"
            )
        if retry_after > policy.max_retry_after:
            cap = policy.max_retry_after
            return give_up(
                f"not retried: Retry-After {seconds(retry_after)} s is longer than the {cap:g} s cap"
            )
    if retries_done >= policy.max_retries:
        return give_up("no retries left")
    if retry_after is not None:
        delay = retry_after_delay(retry_after, policy, rand)
        reason = f"{reason}, Retry-After {seconds(retry_after)} s"
    else:
        delay = backoff_delay(retries_done, policy, rand)
    if time_left is not None and delay >= time_left:
        return give_up("not retried: the deadline comes first")
    return RetryDecision(True, delay, reason)
