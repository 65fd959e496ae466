"""Clocks: the mock's state follows an injected clock, so tests advance time instead of sleeping."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol

MAX_ADVANCE = 10 * 366 * 86400.0
"""Seconds one `POST /__mock/clock/advance` may move the clock (1e300 broke every timestamp for good)."""
LATEST = 32_503_680_000.0
"""3000-01-01T00:00:00Z: no advance moves the clock past it, so timestamps always format."""


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to; starts at a fixed instant so outputs are reproducible."""

    def __init__(self, start: float = 1_774_951_200.0) -> None:  # 2026-03-31T10:00:00Z, as in the reference
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._now += seconds
            return self._now


class OffsetClock:
    """Wall-clock time plus an offset that `advance` grows: lets a live server skip ahead on request."""

    def __init__(self, base: Clock | None = None) -> None:
        self._base = base or SystemClock()
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._base.now() + self._offset  # reading one float needs no lock

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._offset += seconds
        return self.now()


async def sleep_until(clock: Clock, at: float, poll: float = 0.05) -> None:
    """Wait until `clock` reads `at`: in real time on a live clock, or as soon as a test advances it."""
    while (remaining := at - clock.now()) > 0:
        await asyncio.sleep(min(remaining, poll))
