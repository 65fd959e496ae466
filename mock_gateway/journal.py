"""The request journal: what clients sent and got, for tests to assert on; API keys never shown.

Recording is on every request's path, so it only keeps references; redaction, trimming and
formatting happen when someone reads the journal.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .jobs import iso_time

REDACTED = "[redacted]"
SECRET_HEADERS = frozenset({"ocp-apim-subscription-key", "authorization", "cookie"})
MAX_BODY_CHARS = 4096


RawHeaders = Sequence[tuple[bytes, bytes]]
"""Headers as ASGI carries them; decoded only when the journal is read."""


def decode_headers(headers: RawHeaders) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in headers}


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: REDACTED if name.lower() in SECRET_HEADERS else value for name, value in headers.items()}


def summarize_body(body: Any) -> Any:
    """Keep JSON bodies as sent, but cut long strings (data URIs) so the journal stays readable."""
    if isinstance(body, str) and len(body) > MAX_BODY_CHARS:
        return f"{body[:MAX_BODY_CHARS]}…({len(body)} characters)"
    if isinstance(body, dict):
        return {key: summarize_body(value) for key, value in body.items()}
    if isinstance(body, list):
        return [summarize_body(value) for value in body]
    return body


@dataclass(frozen=True, slots=True)
class JournalEntry:
    id: int
    at: float
    method: str
    path: str
    query: str
    headers: RawHeaders
    body: Any
    status: int
    """0 when the connection was dropped on purpose."""
    response: Any
    response_headers: RawHeaders
    operation_id: str | None
    request_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": iso_time(self.at),
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": redact_headers(decode_headers(self.headers)),
            "body": summarize_body(self.body),
            "status": self.status,
            "response": summarize_body(self.response),
            "response_headers": decode_headers(self.response_headers),
            "operation_id": self.operation_id,
            "request_id": self.request_id,
        }


class Journal:
    """A bounded, thread-safe log of API requests, newest last."""

    def __init__(self, size: int) -> None:
        self._entries: deque[JournalEntry] = deque(maxlen=size)
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
        body: Any,
        status: int,
        response: Any,
        response_headers: RawHeaders,
        operation_id: str | None,
        request_id: str | None,
    ) -> None:
        with self._lock:
            self._entries.append(
                JournalEntry(
                    next(self._ids),
                    at,
                    method,
                    path,
                    query,
                    headers,
                    body,
                    status,
                    response,
                    response_headers,
                    operation_id,
                    request_id,
                )
            )

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            entries = list(self._entries)
        return [entry.to_dict() for entry in entries]

    def resize(self, size: int) -> None:
        with self._lock:
            self._entries = deque(self._entries, maxlen=size)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
