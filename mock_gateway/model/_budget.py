"""What accepted jobs keep of their inputs, and a byte budget for it.

A job needs its inputs only to render its images, which depend on a prompt through a hash of it: so
a long text is kept as its start plus a digest (same text, same images), and an edit keeps its
decoded source image. Those images are what the budget counts; past it, the oldest finished jobs
are forgotten (status answers 404, as after `job_ttl`), and unfinished ones are never dropped.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

JOB_RECORD_BYTES = 2048
"""What a held job costs besides its inputs (its record, parameters, heap and index entries; about
1.7 KB measured): counted in the budget, so that free jobs, which nothing else bounds until they
expire, cannot pile up for an hour (200,000 `X-Mock-Outcome: error` jobs held +332 MB)."""
LONG_TEXT = 4096
"""Characters of a text parameter kept verbatim; longer ones become their start and a digest."""
KEPT_START = 1024


def stored_inputs(
    params: dict[str, Any], source: bytes | None, body_size: int | None = None
) -> tuple[dict[str, Any], int]:
    """What a job keeps of its parameters (long strings replaced by a short stand-in unique to each)
    and roughly how many bytes that, its source image and its record hold. This is on every submit: a
    request body of `body_size` bytes, when known, too small to hold a long text settles it at once."""
    if body_size is not None and body_size <= LONG_TEXT:
        return params, JOB_RECORD_BYTES + body_size + (len(source) if source is not None else 0)
    lengths = [len(value) for value in params.values() if isinstance(value, str)]
    size = JOB_RECORD_BYTES + sum(lengths) + (len(source) if source is not None else 0)
    if max(lengths, default=0) <= LONG_TEXT:
        return params, size
    long_texts = [name for name, value in params.items() if isinstance(value, str) and len(value) > LONG_TEXT]
    kept = {**params, **{name: _stand_in(params[name]) for name in long_texts}}
    return kept, size - sum(len(params[name]) - len(kept[name]) for name in long_texts)


def _stand_in(text: str) -> str:
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"{text[:KEPT_START]}…({len(text)} characters, sha256 {digest})"


class InputBudget:
    """Bytes held by accepted jobs, and which finished jobs to forget, oldest first, past `limit`.

    Jobs that expired on their own are not reported here; they are the oldest finished, so they are
    the first popped when the budget is next exceeded, and dropping them again is harmless.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._sizes: dict[str, int] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._total = 0

    def add(self, request_id: str, size: int) -> None:
        with self._lock:
            self._sizes[request_id] = size
            self._total += size

    def finish(self, request_id: str) -> None:
        with self._lock:
            if request_id in self._sizes:
                self._finished[request_id] = None

    def over(self) -> list[str]:
        """Request ids of the finished jobs to drop so that the total fits the limit (if it can)."""
        dropped: list[str] = []
        if self._total <= self.limit:  # read without the lock: a stale answer only defers the drop
            return dropped
        with self._lock:
            while self._total > self.limit and self._finished:
                request_id, _ = self._finished.popitem(last=False)
                self._total -= self._sizes.pop(request_id)
                dropped.append(request_id)
        return dropped

    def clear(self) -> None:
        with self._lock:
            self._sizes.clear()
            self._finished.clear()
            self._total = 0
