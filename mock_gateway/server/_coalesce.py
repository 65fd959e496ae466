"""One socket write per small response instead of two.

uvicorn writes a response's status line and headers as soon as the app sends `http.response.start`,
and its body with `http.response.body`: two `send` system calls, which were 44% of the CPU a status
call costs the served mock. An app sends both in one turn of the event loop, so this transport holds
each write until the end of that turn (or the next write, or a close) and sends what it holds at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

LARGE = 64 * 1024
"""Bytes past which a write goes out at once: joining an image to its headers would copy it."""


class CoalescingTransport:
    """Wraps the connection's transport for the protocol and its request cycles; everything but
    `write` and `close` is the wrapped transport's."""

    __slots__ = ("_held", "_loop", "_size", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._size + len(data) > LARGE:
            self.flush()
            self._transport.write(data)
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))
        self._size += len(data)

    def flush(self) -> None:
        if self._held:
            held, self._held, self._size = self._held, [], 0
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def is_closing(self) -> bool:  # asked on every request: not through __getattr__
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
