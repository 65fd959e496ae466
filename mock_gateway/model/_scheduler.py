"""When a job starts and ends: the step-image duration model, its jitter, and a FIFO pool of workers.

A real gateway runs each model on a fixed number of GPU workers; jobs beyond them wait `QUEUED` in
order of arrival. The mock fixes a job's whole timeline when it is accepted, from the jobs already
queued ahead of it, so its status at any instant stays a pure function of the clock and the seed:
`POST /__mock/clock/advance` settles it exactly, and nothing sleeps.
"""

from __future__ import annotations

import bisect
import math
import random
import threading
from typing import NamedTuple

SECONDS_PER_STEP_IMAGE = 0.5
"""30 steps × 1 image = 15 s, the span between created_at and completed_at in the reference."""


def timeline(steps: int, images: int, speed: float, queue_seconds: float = 1.0) -> tuple[float, float]:
    """Seconds spent QUEUED and then PROCESSING for a job of this size on an idle gateway.

    The queue time is part of the job's total, and at most half of it, so a 30-step image takes the
    reference's 15 s whatever the queue time.
    """
    total = SECONDS_PER_STEP_IMAGE * steps * images / speed
    queued = min(queue_seconds / speed, total / 2)
    return queued, total - queued


def jitter(rng: random.Random, spread: float) -> float:
    """A log-normal factor with mean 1 and relative spread `spread` (its coefficient of variation).

    Log-normal, as GPU job times are: never negative, and a long tail of slow jobs rather than fast ones.
    """
    if spread == 0:
        return 1.0
    sigma = math.sqrt(math.log1p(spread * spread))
    return rng.lognormvariate(-sigma * sigma / 2, sigma)


class Slot(NamedTuple):
    """A job's place on a worker: when it starts processing and when it finishes."""

    start: float
    finish: float


class WorkerPool:
    """Each model's workers: at most `capacity` jobs processing at once, started in arrival order.

    Since jobs start in arrival order, every job already scheduled starts no later than the newest one;
    so at any instant after that, the jobs running are exactly those not yet finished. The start of a
    new job is therefore the first instant at which fewer than `capacity` of the known finish times
    lie ahead. A changed capacity applies from the next job on.
    """

    def __init__(self) -> None:
        self._finishes: dict[str, list[float]] = {}  # sorted finish times of the jobs not yet finished
        self._last_start: dict[str, float] = {}
        self._lock = threading.Lock()

    def schedule(
        self, model: str, *, ready_at: float, processing: float, capacity: int | None, now: float
    ) -> Slot:
        """The slot of a job that can start at `ready_at` and runs for `processing` seconds."""
        if capacity is None:
            return Slot(ready_at, ready_at + processing)
        with self._lock:
            finishes = self._finishes.setdefault(model, [])
            del finishes[: bisect.bisect_right(finishes, now)]  # finished: their workers are free
            earliest = max(ready_at, self._last_start.get(model, ready_at))
            ahead = finishes[bisect.bisect_right(finishes, earliest) :]
            start = earliest if len(ahead) < capacity else ahead[len(ahead) - capacity]
            slot = Slot(start, start + processing)
            bisect.insort(finishes, slot.finish)
            self._last_start[model] = start
            return slot

    def clear(self) -> None:
        with self._lock:
            self._finishes.clear()
            self._last_start.clear()
