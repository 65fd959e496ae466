"""The connection slots of an `AsyncBoogu`, served by priority.

With a plain FIFO semaphore, 500 concurrent `generate` calls queue their polls behind the submits
still waiting for a connection: a job finished 0.15 s after its submit was noticed only once every
submit queued before its poll had been sent. Here a waiter with a lower priority number goes first
(then in arrival order), so work on jobs already accepted (polls, downloads) overtakes new submits.
Polls are paced by the schedule, so submits are delayed, never starved.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class PriorityGate:
    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("slots must be >= 1")
        self._free = slots
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @asynccontextmanager
    async def slot(self, priority: int) -> AsyncIterator[None]:
        """Hold one slot for the body; waiters of lower `priority` numbers get freed slots first."""
        await self._acquire(priority)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, priority: int) -> None:
        if self._free:  # a free slot means that nobody waits: `_release` hands slots to waiters first
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # granted, then cancelled: pass the slot on
                self._release()
            raise  # still waiting: its entry is skipped at its turn

    def _release(self) -> None:
        while self._waiters:
            future = heapq.heappop(self._waiters)[2]
            if not future.done():
                future.set_result(None)
                return
        self._free += 1
