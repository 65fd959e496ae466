"""The replay: a recorded session served offline, deterministically, from a cassette.

Each request is answered by the recording that `cassette.Matcher` picks, byte for byte; a request
that no recording matches gets a 404 `Not Recorded` error naming the closest recording, is logged,
and is listed by `GET /__mock/unmatched`: the latest `MAX_UNMATCHED`, each cut to an excerpt, so that
no caller can grow the list past a few megabytes.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from boogu_contract import Contract, redact_url
from boogu_contract.wire import ADMIN_PREFIX, KEY_HEADER

from ._asgi import HOP_BY_HOP, Answer, TooLarge, error_answer, lifespan, read_body, send_answer
from ._cassette import Matcher, Miss, Recording, excerpt, load

logger = logging.getLogger("mock_gateway.replay")
_KEY = KEY_HEADER.lower().encode()
NOT_REPLAYED = HOP_BY_HOP | {"date", "server"}
"""Headers the serving HTTP server writes itself."""
MAX_UNMATCHED = 1000
"""Unmatched requests listed by `/__mock/unmatched`, the latest kept."""


class ReplayApp:
    """An ASGI app answering from recordings; `from_file` reads a cassette."""

    def __init__(
        self,
        recordings: Sequence[Recording],
        *,
        contract: Contract | None = None,
        max_body_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self.matcher = Matcher(recordings, (contract or Contract()).body_defaults)
        self.max_body_bytes = max_body_bytes
        self._unmatched: deque[dict[str, Any]] = deque(maxlen=MAX_UNMATCHED)

    @property
    def unmatched(self) -> list[dict[str, Any]]:
        """The latest unmatched requests, oldest first."""
        return list(self._unmatched)

    @classmethod
    def from_file(cls, path: str | Path) -> ReplayApp:
        return cls(load(path))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        await send_answer(send, await self.answer(scope, receive))

    async def answer(self, scope: Scope, receive: Receive) -> Answer:
        method, path = scope["method"], scope["path"]
        if path == f"{ADMIN_PREFIX}/health":
            health = {"status": "ok", "recordings": len(self.matcher.recordings)}
            return Answer(200, [("content-type", "application/json")], orjson.dumps(health))
        if path == f"{ADMIN_PREFIX}/unmatched":
            return Answer(200, [("content-type", "application/json")], orjson.dumps(self.unmatched))
        try:
            body = await read_body(receive, self.max_body_bytes)
        except TooLarge:
            return error_answer(
                413, "Payload Too Large", f"The replay reads bodies up to {self.max_body_bytes} bytes."
            )
        query = scope.get("query_string", b"").decode("latin-1")
        target = redact_url(path + (f"?{query}" if query else ""))  # as the proxy recorded it: keyless
        has_key = any(name.lower() == _KEY and value for name, value in scope["headers"])
        found = self.matcher.match(method, target, body, has_key)
        if isinstance(found, Miss):
            message = found.message(method, target)
            logger.warning("%s", message)
            self._unmatched.append({"method": excerpt(method), "path": excerpt(target), "message": message})
            return error_answer(404, "Not Recorded", message)
        headers = [
            (name, value) for name, value in found.response_headers if name.lower() not in NOT_REPLAYED
        ]
        return Answer(found.status, headers, found.response_body)
