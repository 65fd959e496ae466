"""When to ask for a job's status: pure functions of what the client has seen of the job and of its
expected duration, so the schedule is tested without sleeping.

The reference suggests polling every 5-10 s, which notices a 15 s job 2.5-5 s late on average. A
job's processing time is roughly proportional to its steps × images, so this schedule polls sparsely
while the job cannot be done, densely around its expected end, then backs off gently. Nothing here
assumes the gateway's figures: the pace and its spread are learned from the jobs the client sees
finish, a job seen QUEUED is polled with a backoff until it starts, and the moment it started —
`updated_at` of its first PROCESSING status — anchors the rest of the schedule, so time in a queue of
unknown length does not shift the dense window.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import attrs
from boogu_image_client.models import ImageEditRequest, TextToImageRequest
from boogu_image_client.types import Unset

from ._models import JobStatus

SECONDS_PER_UNIT = 0.5
"""Gateway seconds per inference step per image: 30 steps × 1 image take 15 s."""


def job_units(request: TextToImageRequest | ImageEditRequest) -> int:
    """Inference steps × images: what the job's duration is proportional to. A field left unset takes
    the spec's default, as the generated model carries it."""
    defaults = attrs.fields_dict(type(request))
    steps, images = request.num_inference_steps, request.num_images
    return _given(steps, defaults["num_inference_steps"].default) * _given(
        images, defaults["num_images"].default
    )


def _given(value: int | Unset, default: Any) -> int:
    return int(default) if isinstance(value, Unset) else value


DEFAULT_UNITS = job_units(TextToImageRequest(prompt=""))
"""The size of a job with the spec's default parameters, for a job whose parameters are unknown."""


@dataclass(frozen=True)
class PollPolicy:
    first_poll: float = 1.0
    """The first check (at most a quarter of the expected duration): catches jobs far faster than expected."""
    dense_interval: float = 1.0
    """The longest interval near the expected end..."""
    dense_calls: int = 12
    """...where the window is covered by this many polls (shorter intervals for narrow windows),
    never closer than `min_interval`."""
    min_interval: float = 0.05
    window: float = 0.2
    """The dense window spans the expected end ± this share of the expected duration (widened to
    twice the spread of the durations seen, up to `max_window_share`)..."""
    max_window_share: float = 0.45
    max_window: float = 8.0
    """...but no more than this many seconds either side, so long jobs stay cheap."""
    late_growth: float = 0.5
    """After the window, the interval grows by this share of the time the job is overdue..."""
    max_interval: float = 10.0
    """...up to this ceiling, the reference's own interval."""
    queued_share: float = 0.5
    """While a job is QUEUED the gap doubles, up to this share of its expected processing time: its
    start is then noticed before it can be done."""

    def __post_init__(self) -> None:
        if not 0 < self.min_interval <= self.dense_interval <= self.max_interval:
            raise ValueError("intervals must satisfy 0 < min_interval <= dense_interval <= max_interval")
        if self.dense_calls < 1 or self.first_poll <= 0 or self.window < 0 or self.max_window < 0:
            raise ValueError("dense_calls must be >= 1; first_poll > 0; window and max_window >= 0")
        if self.late_growth < 0 or not self.queued_share > 0:
            raise ValueError("late_growth must be >= 0 and queued_share > 0")


def next_poll_at(
    elapsed: float, expected: float, policy: PollPolicy, window: float | None = None, floor: float = 0.0
) -> float:
    """When to poll next, in seconds since the job began processing, given the last poll at `elapsed`.

    - early: the gap doubles from `first_poll` (few calls while the job cannot be done, but a job far
      faster than expected is still caught early);
    - around `expected`: 12 polls across the window (`dense_calls`), at most `dense_interval` apart;
    - later: an interval that grows with the time overdue, up to `max_interval`.

    No gap is shorter than `floor`: the time a status call takes now (see `Latency`).
    """
    expected = max(expected, policy.min_interval)
    share = policy.window if window is None else window
    margin = min(max(share * expected, min(1.0, expected / 2)), policy.max_window)
    dense = min(max(2 * margin / policy.dense_calls, policy.min_interval), policy.dense_interval)
    start, end = expected - margin, expected + margin
    elapsed = max(elapsed, 0.0)
    if elapsed < start:
        first = min(policy.first_poll, expected / 4)
        at = min(max(2 * elapsed, first), start)
    elif elapsed < end:
        at = elapsed + dense
    else:
        at = elapsed + min(max(dense, dense + policy.late_growth * (elapsed - end)), policy.max_interval)
    return max(at, elapsed + floor)


def next_queued_poll(queued_for: float, expected: float, policy: PollPolicy) -> float:
    """Seconds until the next look at a job QUEUED for `queued_for` seconds."""
    ceiling = max(policy.queued_share * expected, policy.min_interval)
    return min(max(queued_for, policy.first_poll), ceiling)


class Timeline:
    """What a wait has seen of one job, in client wall-clock seconds, and when it looks next."""

    def __init__(self, begun: float | None = None) -> None:
        self.begun = begun
        """The submit (or the job's `created_at`): where the schedule counts from until it starts."""
        self.started: float | None = None
        """When processing began, from `updated_at` of the first PROCESSING status seen."""
        self.started_at: datetime | None = None
        """The same moment on the gateway's clock, to measure the processing time."""
        self.queued = False
        self.last_look: float | None = begun

    def observe(self, status: JobStatus, now: float) -> None:
        if self.begun is None:
            self.begun = min(status.created_at.timestamp(), now) if status.created_at else now
        self.last_look = now
        self.queued = status.status == "QUEUED"
        if status.status == "PROCESSING" and self.started is None:
            moment = status.updated_at or status.created_at
            self.started_at = moment
            self.started = min(max(moment.timestamp(), self.begun), now) if moment else now

    def next_look(
        self, expected: float, policy: PollPolicy, window: float | None = None, floor: float = 0.0
    ) -> float | None:
        """The wall-clock time of the next poll; None to look at once (nothing seen yet)."""
        if self.begun is None or self.last_look is None:
            return None
        if self.queued:
            gap = next_queued_poll(self.last_look - self.begun, expected, policy)
            return self.last_look + max(gap, floor)
        origin = self.started if self.started is not None else self.begun
        return origin + next_poll_at(self.last_look - origin, expected, policy, window, floor)


class Latency:
    """A moving average of how long the client's API calls take, queueing for a connection included.

    Polling a job again sooner than a status call takes asks a busy gateway twice for one answer: at
    scale (hundreds of waits on one client) the schedule's shortest gaps widen to this, so the polls
    of all the waits together never ask for more than the gateway and the pool deliver.
    """

    def __init__(self, weight: float = 0.2) -> None:
        self._weight = weight
        self.seconds = 0.0

    def observe(self, seconds: float) -> None:
        if seconds >= 0:
            self.seconds += self._weight * (seconds - self.seconds)


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
    """The gateway's seconds per step-image and their spread, learned from the jobs this client saw finish.

    The mock can be sped up a hundredfold and a real gateway's pace varies with load, so the estimate
    moves by a weighted geometric mean of the processing time per unit (from the start seen in
    `updated_at`, else from `created_at`): it follows a change of scale within two or three jobs, and
    one odd job cannot throw it far. The spread is the moving root mean square of the log-deviations.
    """

    def __init__(self, seconds_per_unit: float = SECONDS_PER_UNIT, weight: float = 0.5) -> None:
        self._seconds_per_unit = seconds_per_unit
        self._weight = weight
        self._variance: float | None = None
        self._observed = False
        self._lock = threading.Lock()

    def window(self, policy: PollPolicy) -> float:
        """The share of the expected duration that the dense window spans either side of it."""
        if self._variance is None:
            return policy.window
        return min(max(2 * math.sqrt(self._variance), policy.window), policy.max_window_share)

    @property
    def seconds_per_unit(self) -> float:
        return self._seconds_per_unit

    def expected(self, units: int) -> float:
        return units * self._seconds_per_unit

    def observe(self, units: int, seconds: float) -> None:
        if units <= 0 or not seconds > 0:
            return
        with self._lock:
            deviation = math.log(seconds / units / self._seconds_per_unit)
            if self._variance is not None:
                self._variance += self._weight * (deviation**2 - self._variance)
            elif self._observed:  # the first job only sets the scale: the default may be far off
                self._variance = deviation**2
            self._observed = True
            self._seconds_per_unit **= 1 - self._weight
            self._seconds_per_unit *= (seconds / units) ** self._weight
