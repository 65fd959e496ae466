"""The request journal: what clients sent and got, for tests to assert on; API keys never shown.

Recording is on every request's path, so it only keeps references and the bodies' texts, except
what is over the entry's byte budget: that is cut at once (a journal of 8 MB headers would hold
gigabytes).
Redaction, formatting and the parsing of bodies happen when someone reads the journal.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson

from boogu_contract import MAX_BODY_CHARS, iso_time, redact_headers, redact_query, summarize_body

from ._json import strict_json

RawHeaders = Sequence[tuple[bytes, bytes]]
"""Headers as ASGI carries them; decoded only when the journal is read."""
FlatHeaders = tuple[bytes, ...]
"""Headers as the journal keeps them: names and values alternating, in one tuple. Kept as ASGI's
pairs (a tuple each), they left the collector seven or eight more young objects to walk a call, each
a cache miss in the heap of a mock holding many jobs: its submits ran at 0.89× a fresh mock's, and
0.94× with flat headers (`make bench`)."""
JsonText = bytes | bytearray
"""A body as the wire carried it, JSON that parsed: kept as text (a copy of its own: orjson's output
holds 4 KiB whatever its length), parsed when the journal is read. Kept parsed, a status answer's
dicts and list were young objects that the collector walked again and again, in a mock holding many
jobs a cache miss each; an entry of texts holds no container, and after a collection or two the
collector walks it no more. In-process, a status call to a mock holding 1,000,000 jobs went from
14.2–14.6 µs to 12.0–13.0 µs (a fresh mock: 11.5–12.5 µs)."""


def flat(headers: RawHeaders) -> FlatHeaders:
    return tuple(itertools.chain.from_iterable(headers))


def pairs(headers: FlatHeaders) -> RawHeaders:
    values = iter(headers)
    return list(zip(values, values, strict=True))


def decode_headers(headers: FlatHeaders) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in pairs(headers)}


def truncated(text: str, size: int) -> str:
    """The kept start of a value and a mark; ASCII, as header values are latin-1."""
    return f"{text}[truncated: {size} bytes]"


def clip_headers(headers: RawHeaders, limit: int) -> RawHeaders:
    """Headers cut to `limit` bytes in all, each cut value marked."""
    clipped, left = [], limit
    for name, value in headers:
        kept = value[: max(0, left - len(name))]
        if len(kept) < len(value):
            kept = truncated(kept.decode("latin-1"), len(value)).encode("latin-1")
        clipped.append((name, kept))
        left -= len(name) + len(value)
    return clipped


def clip_body(body: Any, limit: int) -> Any:
    """A body over `limit` bytes: its long strings cut, and if that is still too large, the start
    of its JSON text, marked."""
    summary = summarize_body(body)
    try:
        text = orjson.dumps(summary)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, which the standard library writes
        text = json.dumps(summary, ensure_ascii=False).encode()
    if len(text) <= limit:
        return summary
    # No longer than the journal shows any string, so that the mark survives reading.
    return truncated(text[: min(limit, MAX_BODY_CHARS - 64)].decode("utf-8", "ignore"), len(text))


class JournalEntry(NamedTuple):
    """One API call as received and answered. The journal keeps each as a plain tuple, its headers
    flat (`FlatHeaders`; `LedgerEntry` says why: the collector then stops walking what holds no
    container)."""

    id: int
    at: float
    method: str
    path: str
    query: str
    headers: FlatHeaders
    body: JsonText | Any
    """The request's JSON text, or the parsed body cut to size (`clip_body`) when it was over budget."""
    status: int
    """0 when the connection was dropped on purpose."""
    response: JsonText | Any
    response_headers: FlatHeaders
    operation_id: str | None
    request_id: str | None
    truncated: bool
    """Part of the request or response was over `journal_entry_bytes` and was cut."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": iso_time(self.at),
            "method": self.method,
            "path": self.path,
            "query": redact_query(self.query),
            "headers": redact_headers(decode_headers(self.headers)),
            "body": summarize_body(_parsed(self.body)),
            "status": self.status,
            "response": summarize_body(_parsed(self.response)),
            "response_headers": decode_headers(self.response_headers),
            "operation_id": self.operation_id,
            "request_id": self.request_id,
            "truncated": self.truncated,
        }


class Journal:
    """A bounded, thread-safe log of API requests, newest last: at most `size` entries, each with at
    most `entry_bytes` of request line and headers, of body and of response."""

    def __init__(self, size: int, entry_bytes: int) -> None:
        self._entries: deque[tuple[Any, ...]] = deque(maxlen=size)
        self._entry_bytes = entry_bytes
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def record(
        self,
        *,
        at: float,
        method: str,
        path: str,
        query: str,
        headers: RawHeaders,
        body: JsonText | None,
        status: int,
        response: JsonText | None,
        response_headers: RawHeaders,
        operation_id: str | None,
        request_id: str | None,
    ) -> None:
        """`body` and `response` are JSON texts that parsed (None: no JSON body)."""
        limit = self._entry_bytes
        head_size = len(path) + len(query) + sum(map(len, itertools.chain.from_iterable(headers)))
        (body_kept, body_cut), (response_kept, response_cut) = _kept(body, limit), _kept(response, limit)
        cut = head_size > limit or body_cut or response_cut
        if head_size > limit:
            path, query, headers = path[:limit], query[:limit], clip_headers(headers, limit)
        with self._lock:
            self._entries.append(
                (
                    next(self._ids),
                    at,
                    method,
                    path,
                    query,
                    flat(headers),
                    body_kept,
                    status,
                    response_kept,
                    flat(response_headers),
                    operation_id,
                    request_id,
                    cut,
                )
            )

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            entries = list(self._entries)
        return [JournalEntry._make(entry).to_dict() for entry in entries]

    def resize(self, size: int, entry_bytes: int) -> None:
        with self._lock:
            self._entries = deque(self._entries, maxlen=size)
            self._entry_bytes = entry_bytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _kept(text: JsonText | None, limit: int) -> tuple[Any, bool]:
    """A body as the journal keeps it, and whether it was cut: a copy of its text, or, over `limit`
    bytes, parsed and cut (`clip_body`)."""
    if text is None:
        return None, False
    if len(text) > limit:
        return clip_body(_parsed(text), limit), True
    return bytes(memoryview(text)), False


def _parsed(kept: JsonText | Any) -> Any:
    """A kept body as JSON: its text parsed as it was when it came (`strict_json`), or as cut."""
    return strict_json(kept) if isinstance(kept, bytes | bytearray) else kept
