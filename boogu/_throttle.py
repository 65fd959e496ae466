"""Keeps all the calls of one client inside the gateway's rate limit, without being told the limit.

The limit is per key, so one limiter serves every call of a client (concurrent waits, a batch). It is
a token bucket whose rate is learned by AIMD from the answers:

- until the first 429 the rate is unknown and calls go out as fast as they come (or at `--max-rps`);
- a 429 sets the rate to a little under the rate of calls that succeeded in the last second (which,
  while calls are being refused, is what the gateway lets through), at most once per second so that
  the 429s of one burst count once;
- while callers queue for slots, the rate grows by a share of itself per second: quickly at first, to
  find a limit after a too-cautious first guess, then gently, so that overshooting costs a 429 or two.

Calls take slots in turn, `1 / rate` apart, so calls held back (retries after a 429 included) are
released one by one, not together. A `Retry-After` of a second or less is the refill of a token, and
only the refused call waits it out; a longer one means the key is shut for a while, so every call
waits. `max_per_second` caps the rate either way.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class LimiterPolicy:
    decrease: float = 0.95
    """After a 429: this share of the calls that succeeded in the last `window` seconds, per second."""
    window: float = 1.0
    min_span: float = 0.25
    fast_growth: float = 1.0
    """Growth per second (a share of the rate) until the second 429: the first guess is crude."""
    growth: float = 0.04
    """Growth per second afterwards: about one call per second more at 25 per second."""
    min_rate: float = 0.2
    global_pause_after: float = 1.0
    """A `Retry-After` longer than this holds every call, not only the refused one."""


class RateLimiter:
    """Thread-safe; every method takes `now`, a monotonic time, so the rules are tested without sleeping."""

    def __init__(self, max_per_second: float | None = None, policy: LimiterPolicy | None = None) -> None:
        if max_per_second is not None and not (max_per_second > 0 and math.isfinite(max_per_second)):
            raise ValueError("max_per_second must be a finite number > 0")
        self.cap = max_per_second
        self.policy = policy or LimiterPolicy()
        self._learned: float | None = None
        self._decreases = 0
        self._last_decrease = -math.inf
        self._grown_at = 0.0
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._successes: deque[float] = deque()
        self._first_success = math.inf
        self._lock = threading.Lock()

    @property
    def rate(self) -> float | None:
        """Calls per second now allowed: the learned rate under the cap; None when unlimited."""
        rates = [rate for rate in (self._learned, self.cap) if rate is not None]
        return min(rates) if rates else None

    def reserve(self, now: float) -> float:
        """Seconds to wait before sending a call at `now`; the slot is taken, so call it once per call."""
        with self._lock:
            self._grow(now)
            rate = self.rate
            slot = max(now, self._paused_until, self._next_slot)
            self._next_slot = slot + (1.0 / rate if rate else 0.0)
            return slot - now

    def succeeded(self, now: float) -> None:
        with self._lock:
            if not self._successes and self._first_success == math.inf:
                self._first_success = now
            self._successes.append(now)
            self._forget(now)

    def limited(self, now: float, retry_after: float | None) -> None:
        """A 429: learn a lower rate, and hold every call when the key is shut for longer than a token."""
        with self._lock:
            self._forget(now)
            if retry_after is not None and retry_after > self.policy.global_pause_after:
                self._paused_until = max(self._paused_until, now + retry_after)
            if now - self._last_decrease < self.policy.window or not self._successes:
                return  # the same burst of refusals, or no evidence of what gets through
            # Calls per second that got through: over the last `window`, or since the first success
            # when that is shorter (at least `min_span`, so that a start-up burst is not a rate).
            span = min(self.policy.window, max(now - self._first_success, self.policy.min_span))
            observed = len(self._successes) / span
            current = self._learned if self._learned is not None else math.inf
            self._learned = max(self.policy.min_rate, min(current, observed) * self.policy.decrease)
            self._decreases += 1
            self._last_decrease = now
            self._grown_at = now
            # Slots handed out at the old rate are not taken back, but new ones follow the new rate.
            self._next_slot = max(self._next_slot, now + 1.0 / self._learned)

    def _grow(self, now: float) -> None:
        if self._learned is None:
            return
        elapsed = now - self._grown_at
        if elapsed <= 0:
            return
        self._grown_at = now
        if self._next_slot <= now:
            return  # callers are not queueing: the rate is not what holds them back
        share = self.policy.fast_growth if self._decreases < 2 else self.policy.growth
        grown = self._learned * (1.0 + share * min(elapsed, self.policy.window))
        # Slots already handed out keep their spacing, so what is sent lags behind the rate: growing
        # far past what gets through would only make the first 429 a storm of them.
        self._forget(now)
        ceiling = 2 * len(self._successes) / self.policy.window
        self._learned = max(self._learned, min(grown, ceiling))

    def _forget(self, now: float) -> None:
        while self._successes and self._successes[0] <= now - self.policy.window:
            self._successes.popleft()
