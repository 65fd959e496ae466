"""One timer for all the polls of an `AsyncBoogu`.

Five hundred concurrent waits as five hundred independent sleepers wake one by one and race for the
connection pool. Here every wait parks a future in one heap, and a single task wakes at the earliest
due time and releases everything due by then (within `tolerance`) in due order, so polls due together
leave together and the most overdue go first. The clock and the sleep are injected, as everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Awaitable, Callable


class PollScheduler:
    def __init__(
        self,
        monotonic: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        tolerance: float = 0.005,
    ) -> None:
        self._monotonic = monotonic
        self._sleep = sleep
        self._tolerance = tolerance
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._runner: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._target = float("inf")

    async def sleep(self, seconds: float) -> None:
        """Return after `seconds`, woken by the shared timer."""
        moment = self._monotonic() + seconds
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (moment, next(self._order), future))
        if self._runner is None or self._runner.done():
            self._changed = asyncio.Event()  # on this event loop: a client may outlive one
            self._runner = asyncio.create_task(self._run())
        elif moment < self._target:
            self._changed.set()
        try:
            await future
        finally:
            future.cancel()  # when the waiter was cancelled: its entry is dropped at its turn

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        for _, _, future in self._heap:
            future.cancel()
        self._heap.clear()

    async def _run(self) -> None:
        while self._heap:
            horizon = self._monotonic() + self._tolerance
            while self._heap and (self._heap[0][0] <= horizon or self._heap[0][2].done()):
                future = heapq.heappop(self._heap)[2]
                if not future.done():
                    future.set_result(None)
            if not self._heap:
                break
            self._target = self._heap[0][0]
            self._changed.clear()
            sleeper = asyncio.ensure_future(self._sleep(self._target - self._monotonic()))
            woken = asyncio.ensure_future(self._changed.wait())
            try:
                await asyncio.wait((sleeper, woken), return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                woken.cancel()
        self._target = float("inf")
