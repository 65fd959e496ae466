"""Garbage collection paced for a process that holds up to a million jobs for an hour.

CPython's full collection walks every tracked object. A served mock holding 1,000,000 jobs spends
about a second on each, once every quarter of a million new jobs, and its throughput falls as jobs
pile up. Jobs hold no reference cycles (reference counting frees them), so walking them finds nothing:
after each full collection the survivors are moved out of the collector's sight (`gc.freeze`), and the
next full collection walks only what arrived since.

Cycles among frozen objects are never collected, so every `sweep_seconds` the frozen objects are
handed back (`gc.unfreeze`) and the next full collection walks everything once: a leak is bounded by
what one sweep period creates, and a full walk costs a second every ten minutes, not every minute.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

SWEEP_SECONDS = 600.0
FULL = 2
"""The oldest generation: its collection is the full one."""


class CollectionPacer:
    """Installed in a served mock's process (`serve`), never in a test process that embeds the mock,
    whose other objects it would keep out of the collector's sight."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, sweep_seconds: float = SWEEP_SECONDS
    ) -> None:
        self._clock = clock
        self.sweep_seconds = sweep_seconds
        self._sweep_at = clock() + sweep_seconds

    def install(self) -> None:
        """From now on; what startup left is collected and frozen at once."""
        gc.collect()
        gc.freeze()
        gc.callbacks.append(self._collected)

    def uninstall(self) -> None:
        """Hand everything back to the collector."""
        if self._collected in gc.callbacks:
            gc.callbacks.remove(self._collected)
        gc.unfreeze()

    def _collected(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info["generation"] != FULL:
            return
        now = self._clock()
        if now >= self._sweep_at:
            self._sweep_at = now + self.sweep_seconds
            gc.unfreeze()  # the next full collection walks everything, cycles among old objects included
        else:
            gc.freeze()  # nothing is left young after a full collection: only survivors are frozen
