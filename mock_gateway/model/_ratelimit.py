"""A token bucket per API key, so one noisy client is throttled without slowing the others."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

from ._clock import Clock

# Epoch seconds as a float step by ~0.2 µs and fractional clock advances accumulate that rounding,
# so a token due within a millisecond counts as available now.
_SLACK = 1e-3


@dataclass(frozen=True)
class RateLimit:
    rate: float
    """Tokens added per second."""
    burst: int
    """Bucket size: how many requests may arrive at once after a quiet spell."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"rate must be a finite number of tokens per second > 0, got {self.rate}")
        if self.burst < 1:
            raise ValueError(f"burst must be >= 1, got {self.burst}")


class RateLimiter:
    """Stores one number per key, the instant its bucket is full again (the GCRA form of a token bucket).

    A full bucket needs no state, so keys are forgotten once their bucket refills: memory is bounded by
    the keys seen within the last `burst / rate` seconds.
    """

    def __init__(self, clock: Clock, limit: RateLimit | None) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._limit = limit
        self._full_at: OrderedDict[str, float] = OrderedDict()  # by last token taken, oldest first

    @property
    def limit(self) -> RateLimit | None:
        return self._limit

    def configure(self, limit: RateLimit | None) -> None:
        """None turns limiting off. Every bucket starts full again, as after a restart."""
        with self._lock:
            self._limit = limit
            self._full_at.clear()

    def acquire(self, key: str) -> float:
        """Takes a token and returns 0.0, or takes nothing and returns the seconds until a token is free."""
        with self._lock:
            if self._limit is None:
                return 0.0
            now = self._clock.now()
            self._forget_full(now)
            interval = 1.0 / self._limit.rate
            full_at = max(self._full_at.get(key, now), now) + interval
            wait = full_at - now - self._limit.burst * interval
            if wait > _SLACK:
                return wait
            self._full_at[key] = full_at
            self._full_at.move_to_end(key)
            return 0.0

    def _forget_full(self, now: float) -> None:
        # A bucket is full at most `burst / rate` after its last token was taken, so scanning the oldest
        # first and stopping at the first bucket that is not full forgets every key idle for that long.
        while self._full_at and next(iter(self._full_at.values())) <= now:
            self._full_at.popitem(last=False)


def retry_after_seconds(wait: float) -> int:
    """`Retry-After` takes whole seconds; rounding down would invite a retry that fails again."""
    return max(1, math.ceil(wait))
