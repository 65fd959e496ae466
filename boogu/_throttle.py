"""Keeps all the calls of one client inside the gateway's rate limit.

A 429 answers one call, but the limit is per key: when one call is told to come back in three
seconds, every other call of the client (concurrent waits, a batch) is held back too, instead of
each collecting its own 429. An optional rate spaces calls out before the gateway has to say so.
"""

from __future__ import annotations

import threading


class Throttle:
    def __init__(self, max_per_second: float | None = None) -> None:
        if max_per_second is not None and not max_per_second > 0:
            raise ValueError("max_per_second must be > 0")
        self._interval = 1.0 / max_per_second if max_per_second else 0.0
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def reserve(self, now: float) -> float:
        """Seconds to wait before sending a call at `now`; the slot is taken, so call it once per call."""
        with self._lock:
            slot = max(now, self._paused_until, self._next_slot)
            self._next_slot = slot + self._interval
            return slot - now

    def pause_until(self, moment: float) -> None:
        """Hold every call until `moment` (from a 429's Retry-After)."""
        with self._lock:
            self._paused_until = max(self._paused_until, moment)
