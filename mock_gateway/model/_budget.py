"""What accepted jobs keep of their inputs, and what that counts for in the byte budget.

A job needs its inputs only to render its images, which depend on a prompt through a hash of it: so
a long text is kept as its start plus a digest (same text, same images), and an edit keeps its
decoded source image. Those and the job's record are its `footprint`; past `job_input_bytes`, the
job store forgets the oldest finished jobs (status answers 404, as after `job_ttl`), never unfinished ones.
"""

from __future__ import annotations

import hashlib
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
