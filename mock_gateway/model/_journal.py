"""The request journal: what clients sent and got, for tests to assert on; API keys never shown.

Recording is on every request's path, so it only keeps references and the bodies' texts, except
what is over the entry's byte budget: that is cut at once (a journal of 8 MB headers would hold
gigabytes). Redaction, formatting and the parsing of bodies happen when someone reads the journal.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson

from boogu_contract import MAX_BODY_CHARS, iso_time, redact_headers, redact_query, summarize_body

from ._json import strict_json

RawHeaders = Sequence[tuple[bytes, bytes]]
"""Headers as ASGI carries them; decoded only when the journal is read."""
PackedHeaders = bytes | tuple[bytes, ...]
"""Headers as the journal keeps them: names and values in one bytes object, NUL between them, so that
an entry holds no container (see `Journal`); a value that holds a NUL itself (HTTP forbids it, a
caller in process may send it) keeps them as a flat tuple instead."""
JsonText = bytes | bytearray
"""A body as the wire carried it, JSON that parsed: kept as text (a copy of its own: orjson's output
holds 4 KiB whatever its length), parsed when the journal is read."""
_NUL = b"\0"


def packed(headers: RawHeaders) -> PackedHeaders:
    items = tuple(itertools.chain.from_iterable(headers))
    text = _NUL.join(items)
    return text if not items or text.count(_NUL) == len(items) - 1 else items


def pairs(headers: PackedHeaders) -> RawHeaders:
    items = iter(headers if isinstance(headers, tuple) else headers.split(_NUL) if headers else ())
    return list(zip(items, items, strict=True))


def decode_headers(headers: PackedHeaders) -> dict[str, str]:
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
    """One API call as received and answered; the journal keeps its fields apart (`Journal`)."""

    id: int
    at: float
    method: str
    path: str
    query: str
    headers: PackedHeaders
    body: JsonText | Any
    """The request's JSON text, or the parsed body cut to size (`clip_body`) when it was over budget."""
    status: int
    """0 when the connection was dropped on purpose."""
    response: JsonText | Any
    response_headers: PackedHeaders
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
    most `entry_bytes` of request line and headers, of body and of response.

    The entries' fields are kept in columns, a list each, written in turn as a ring: a call leaves
    nothing for the garbage collector to walk. Kept as objects of their own, the collector walked each
    entry and what it held (a status answer's dicts and list, the headers' tuples), a cache miss each
    in the heap of a mock holding many jobs; and as every entry recorded frees the oldest, the young
    ones piled up between collections that then walked tens of thousands at once (20-35 ms pauses).
    """

    def __init__(self, size: int, entry_bytes: int) -> None:
        self._size = size
        self._columns: list[list[Any]] = [[] for _ in JournalEntry._fields]
        self._count = 0
        """Entries recorded since the journal was last emptied: the newest is at `(count - 1) % size`."""
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
        fields = (
            at,
            method,
            path,
            query,
            packed(headers),
            body_kept,
            status,
            response_kept,
            packed(response_headers),
            operation_id,
            request_id,
            cut,
        )
        with self._lock:
            row = (next(self._ids), *fields)  # ids in the journal's order
            slot = self._count % self._size
            self._count += 1
            if slot == len(self._columns[0]):  # not yet full: the columns grow as a deque would
                for column, value in zip(self._columns, row, strict=True):
                    column.append(value)
            else:
                for column, value in zip(self._columns, row, strict=True):
                    column[slot] = value

    def kept(self) -> list[JournalEntry]:
        """The entries as held, oldest first: what `entries` shows, before redaction and formatting."""
        with self._lock:
            return self._rows()

    def entries(self) -> list[dict[str, Any]]:
        return [entry.to_dict() for entry in self.kept()]

    def resize(self, size: int, entry_bytes: int) -> None:
        """The newest `size` entries kept."""
        with self._lock:
            self._entry_bytes = entry_bytes
            self._refill(self._rows()[-size:], size)

    def clear(self) -> None:
        with self._lock:
            self._refill([], self._size)

    def _rows(self) -> list[JournalEntry]:
        first = max(0, self._count - self._size)
        slots = [number % self._size for number in range(first, self._count)]
        return [JournalEntry._make(column[slot] for column in self._columns) for slot in slots]

    def _refill(self, entries: list[JournalEntry], size: int) -> None:
        if entries:
            self._columns = [list(values) for values in zip(*entries, strict=True)]
        else:
            self._columns = [[] for _ in JournalEntry._fields]
        self._size, self._count = size, len(entries)


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
