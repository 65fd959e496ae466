"""When to ask for a job's status: pure functions of the time since the job began and its expected
duration, so the schedule is tested without sleeping.

The reference suggests polling every 5-10 s, which notices a 15 s job 2.5-5 s late on average. The
duration of a job is predictable (about 0.5 s per inference step and image), so this schedule polls
sparsely while the job cannot be done, densely around its expected end, then backs off gently in case
the gateway is slower than expected: a 15 s job costs about 13 calls and is noticed within ~0.5 s.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

SECONDS_PER_UNIT = 0.5
"""Gateway seconds per inference step per image: 30 steps × 1 image take 15 s."""
DEFAULT_UNITS = 30
"""The size of a job with default parameters, for a job whose parameters are unknown."""


@dataclass(frozen=True)
class PollPolicy:
    first_poll: float = 1.0
    """The first check (at most a quarter of the expected duration): catches jobs far faster than expected."""
    dense_interval: float = 0.5
    """The interval near the expected end; shorter for short jobs, never below `min_interval`."""
    min_interval: float = 0.05
    window: float = 0.2
    """The dense window spans the expected end ± this share of the expected duration..."""
    max_window: float = 5.0
    """...but no more than this many seconds either side, so long jobs stay cheap."""
    late_growth: float = 0.5
    """After the window, the interval grows by this share of the time the job is overdue..."""
    max_interval: float = 10.0
    """...up to this ceiling, the reference's own interval."""

    def __post_init__(self) -> None:
        if not 0 < self.min_interval <= self.dense_interval <= self.max_interval:
            raise ValueError("intervals must satisfy 0 < min_interval <= dense_interval <= max_interval")
        if self.first_poll <= 0 or self.window < 0 or self.max_window < 0 or self.late_growth < 0:
            raise ValueError("first_poll must be > 0; window, max_window and late_growth >= 0")


def next_poll_at(elapsed: float, expected: float, policy: PollPolicy) -> float:
    """When to poll next, in seconds since the job began, given the last poll at `elapsed`.

    - early: the gap doubles from `first_poll` (few calls while the job cannot be done, but a job far
      faster than expected is still caught early);
    - around `expected`: every `dense_interval`;
    - later: an interval that grows with the time overdue, up to `max_interval`.
    """
    expected = max(expected, policy.min_interval)
    margin = min(max(policy.window * expected, min(1.0, expected / 2)), policy.max_window)
    dense = min(max(expected / 10, policy.min_interval), policy.dense_interval)
    start, end = expected - margin, expected + margin
    elapsed = max(elapsed, 0.0)
    if elapsed < start:
        first = min(policy.first_poll, expected / 4)
        return min(max(2 * elapsed, first), start)
    if elapsed < end:
        return elapsed + dense
    return elapsed + min(max(dense, dense + policy.late_growth * (elapsed - end)), policy.max_interval)


def poll_times(expected: float, until: float, policy: PollPolicy) -> list[float]:
    """Every poll the schedule makes up to `until` seconds, for tests and for the benchmark's report."""
    times: list[float] = []
    elapsed = 0.0
    while True:
        elapsed = next_poll_at(elapsed, expected, policy)
        if elapsed > until:
            return times
        times.append(elapsed)


class PaceModel:
    """The gateway's seconds per step-image, learned from the jobs this client saw finish.

    The mock can be sped up a hundredfold and a real gateway's pace varies with load, so the estimate
    moves by a weighted geometric mean of `(completed_at - created_at) / units`: it follows a change
    of scale within two or three jobs, and one odd job cannot throw it far.
    """

    def __init__(self, seconds_per_unit: float = SECONDS_PER_UNIT, weight: float = 0.5) -> None:
        self._seconds_per_unit = seconds_per_unit
        self._weight = weight
        self._lock = threading.Lock()

    @property
    def seconds_per_unit(self) -> float:
        return self._seconds_per_unit

    def expected(self, units: int) -> float:
        return units * self._seconds_per_unit

    def observe(self, units: int, seconds: float) -> None:
        if units <= 0 or not seconds > 0:
            return
        with self._lock:
            self._seconds_per_unit **= 1 - self._weight
            self._seconds_per_unit *= (seconds / units) ** self._weight
