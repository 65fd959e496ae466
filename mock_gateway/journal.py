"""The request journal: what clients sent and got, for tests to assert on; API keys never stored."""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

REDACTED = "[redacted]"
SECRET_HEADERS = frozenset({"ocp-apim-subscription-key", "authorization", "cookie"})
MAX_BODY_CHARS = 4096


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: REDACTED if name.lower() in SECRET_HEADERS else value for name, value in headers.items()}


def summarize_body(body: Any) -> Any:
    """Keep JSON bodies as sent, but cut long strings (data URIs) so the journal stays small."""
    if isinstance(body, str) and len(body) > MAX_BODY_CHARS:
        return f"{body[:MAX_BODY_CHARS]}…({len(body)} characters)"
    if isinstance(body, dict):
        return {key: summarize_body(value) for key, value in body.items()}
    if isinstance(body, list):
        return [summarize_body(value) for value in body]
    return body


@dataclass(frozen=True)
class JournalEntry:
    id: int
    at: str
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    status: int
    response: Any
    response_headers: dict[str, str]
    operation_id: str | None
    request_id: str | None


class Journal:
    """A bounded, thread-safe log of API requests, newest last."""

    def __init__(self, size: int) -> None:
        self._entries: deque[JournalEntry] = deque(maxlen=size)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def record(
        self,
        *,
        at: str,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: Any,
        status: int,
        response: Any,
        response_headers: Mapping[str, str],
        operation_id: str | None,
        request_id: str | None,
    ) -> None:
        with self._lock:
            self._entries.append(
                JournalEntry(
                    id=next(self._ids),
                    at=at,
                    method=method,
                    path=path,
                    query=query,
                    headers=redact_headers(headers),
                    body=summarize_body(body),
                    status=status,
                    response=summarize_body(response),
                    response_headers=dict(response_headers),
                    operation_id=operation_id,
                    request_id=request_id,
                )
            )

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(entry) for entry in self._entries]

    def resize(self, size: int) -> None:
        with self._lock:
            self._entries = deque(self._entries, maxlen=size)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
