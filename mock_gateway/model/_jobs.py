"""Jobs and their life, QUEUED → PROCESSING → COMPLETED | FAILED | ERROR, read off the clock.

A job's whole timeline is fixed when it is accepted (`_scheduler.py`), so its status at any instant is a
pure function of the clock: tests advance time instead of sleeping, and polling never races a worker.
"""

from __future__ import annotations

import functools
import heapq
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from boogu_contract import iso_time
from boogu_contract.wire import TERMINAL_STATUSES

Outcome = Literal["COMPLETED", "FAILED", "ERROR"]


def uuid7(at: float, rng: random.Random) -> str:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits, so ids sort by time.
    Formatted here, not by `uuid.UUID`, whose checks cost a submit 5 µs."""
    value = (int(at * 1000) & (2**48 - 1)) << 80
    value |= 0x7 << 76 | rng.getrandbits(12) << 64
    value |= 0b10 << 62 | rng.getrandbits(62)
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def media_filename(index: int, count: int, output_format: str) -> str:
    """`output.jpeg` for one image, as in the reference; `output_0.jpeg`, ... for several."""
    return f"output.{output_format}" if count == 1 else f"output_{index}.{output_format}"


MAX_NAME_SETS = 1024
"""Sets of parameter names shared (`split_params`): the spec's optional properties make a few dozen."""
_NAME_SETS: dict[tuple[str, ...], tuple[str, ...]] = {}


def split_params(params: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """A job's parameters as it keeps them: their names, sorted and shared, and their values.

    As a dict of its own, a job's parameters took 632 bytes, past the 512 that Python's small-object
    allocator serves: each job held was a chunk of glibc's heap, between which every call's larger
    buffers (orjson's, a deque's block) then had to be fitted. With 1,000,000 jobs held, status calls
    went from 0.89x to 0.93x of a fresh mock's rate (by CPU 0.91x to 0.94x), submits from 0.94x to
    0.97x (by CPU 0.96x to 1.01x), the median of three rounds each; and a job holds 500 bytes less."""
    names = tuple(sorted(params))
    if len(_NAME_SETS) < MAX_NAME_SETS:
        names = _NAME_SETS.setdefault(names, names)
    return names, tuple(params[name] for name in names)


@dataclass
class Job:
    request_id: str
    model_id: str
    key: str
    param_names: tuple[str, ...]
    """The names of `params`, sorted: one tuple shared by every job with the same names (`split_params`)."""
    param_values: tuple[Any, ...]
    seed: int
    outcome: Outcome
    error: str | None
    created_at: float
    started_at: float
    finished_at: float
    base_url: str
    webhook_url: str | None
    cost: Decimal
    source: bytes | None = None
    """The input image of an edit, encoded; None for a remote image, stood in for when rendered."""
    footprint: int = 0
    """Bytes it counts for in the store's budget (`job_input_bytes`): its record and kept inputs."""
    webhook_refusal: str | None = None
    """Why the mock will not call `webhook_url` (not loopback or allowlisted, or itself): kept `blocked`."""
    settled: bool = field(default=False, compare=False)

    @property
    def params(self) -> dict[str, Any]:
        """The request body with the spec's defaults applied (a copy)."""
        return dict(zip(self.param_names, self.param_values, strict=True))

    def param(self, name: str) -> Any:
        return self.param_values[self.param_names.index(name)]

    def status(self, now: float) -> str:
        if now >= self.finished_at:
            return self.outcome
        return "PROCESSING" if now >= self.started_at else "QUEUED"

    @property
    def output_format(self) -> str:
        return str(self.param("output_format"))

    @property
    def num_images(self) -> int:
        return int(self.param("num_images"))

    @functools.cached_property
    def _hosted_media_urls(self) -> tuple[str, ...]:
        count = self.num_images
        return tuple(
            f"{self.base_url}/media/{self.request_id}/{media_filename(i, count, self.output_format)}"
            for i in range(count)
        )

    def media_urls(self) -> list[str]:
        return list(self._hosted_media_urls)

    @functools.cached_property
    def _times(self) -> tuple[str, str, str]:
        """created, started and finished as ISO strings, formatted once: status is the hot path."""
        return iso_time(self.created_at), iso_time(self.started_at), iso_time(self.finished_at)

    def to_status(self, now: float, media_urls: list[str] | None = None) -> dict[str, Any]:
        """The RequestStatus object at `now`; `media_urls` replaces the hosted URLs (sync mode)."""
        status = self.status(now)
        finished = status in TERMINAL_STATUSES
        created, started, completed = self._times
        updated = completed if finished else started if status == "PROCESSING" else created
        output = None
        if status == "COMPLETED":
            output = {
                "media_url": media_urls if media_urls is not None else self.media_urls(),
                "media_type": f"image/{self.output_format}",
            }
        return {
            "request_id": self.request_id,
            "status": status,
            "model_id": self.model_id,
            "error": self.error if finished else None,
            "output": output,
            "created_at": created,
            "updated_at": updated,
            "completed_at": completed if finished else None,
        }


class JobStore:
    """Jobs by id: the finished ones settled once, then forgotten after a time-to-live, or sooner when
    the bytes the jobs hold pass a budget (`drop_over`).

    A held job is in two tables, this index and the expiry heap: with a million jobs held, each table
    an insert goes through is a cache miss on every submit, so the budget keeps no order of its own.
    """

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._finishing: list[tuple[float, str]] = []
        self._expiring: list[tuple[float, str]] = []
        self._footprint = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._jobs)

    @property
    def footprint(self) -> int:
        """Bytes the jobs held count for (the sum of their `footprint`)."""
        return self._footprint

    def add(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.request_id] = job
            self._footprint += job.footprint
            heapq.heappush(self._finishing, (job.finished_at, job.request_id))

    def get(self, request_id: str) -> Job | None:
        return self._jobs.get(request_id)

    def settle_due(self, now: float, ttl: float) -> list[Job]:
        """Jobs that reached their terminal status since the last call, each returned exactly once."""
        due: list[Job] = []
        with self._lock:
            while self._finishing and self._finishing[0][0] <= now:
                _, request_id = heapq.heappop(self._finishing)
                job = self._jobs.get(request_id)
                if job is None or job.settled:
                    continue
                job.settled = True
                due.append(job)
                heapq.heappush(self._expiring, (job.finished_at + ttl, request_id))
            while self._expiring and self._expiring[0][0] <= now:
                self._forget(heapq.heappop(self._expiring)[1])
        return due

    def drop_over(self, limit: int) -> list[str]:
        """Forget settled jobs, the closest to expiry (the oldest finished) first, until the bytes held
        fit `limit` if they can: an unfinished job is never dropped. Returns the ids dropped."""
        dropped: list[str] = []
        if self._footprint <= limit:  # read without the lock: a stale answer only defers the drop
            return dropped
        with self._lock:
            while self._footprint > limit and self._expiring:
                request_id = heapq.heappop(self._expiring)[1]
                if self._forget(request_id):
                    dropped.append(request_id)
        return dropped

    def _forget(self, request_id: str) -> bool:
        job = self._jobs.pop(request_id, None)
        if job is not None:
            self._footprint -= job.footprint
        return job is not None

    def clear(self) -> None:
        with self._lock:
            self._jobs.clear()
            self._finishing.clear()
            self._expiring.clear()
            self._footprint = 0
