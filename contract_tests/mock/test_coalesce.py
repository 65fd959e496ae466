"""The served mock's transport writes a small response (status line, headers, body) in one piece."""

from __future__ import annotations

import asyncio
from typing import Any

from mock_gateway.server._coalesce import LARGE, CoalescingTransport


class Recorder:
    """A transport that records each write and whether it was closed."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5555)}.get(name, default)


def coalescing() -> tuple[CoalescingTransport, Recorder]:
    inner = Recorder()
    return CoalescingTransport(inner, asyncio.get_running_loop()), inner  # type: ignore[arg-type]


async def test_the_writes_of_one_turn_go_out_as_one() -> None:
    transport, inner = coalescing()
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(memoryview(b"{}"))
    assert inner.writes == []
    await asyncio.sleep(0)
    assert inner.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]


async def test_writes_of_later_turns_are_sent_apart_in_order() -> None:
    transport, inner = coalescing()
    for chunk in (b"a", b"b"):
        transport.write(chunk)
        await asyncio.sleep(0)
    assert inner.writes == [b"a", b"b"]


async def test_a_large_write_goes_out_at_once_after_what_was_held() -> None:
    transport, inner = coalescing()
    image = b"x" * (LARGE + 1)
    transport.write(b"head")
    transport.write(image)
    assert inner.writes == [b"head", image]  # the image is not copied into a joined buffer
    await asyncio.sleep(0)
    assert inner.writes == [b"head", image]


async def test_close_sends_what_is_held_first() -> None:
    transport, inner = coalescing()
    transport.write(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
    transport.close()
    assert inner.writes == [b"HTTP/1.1 408 Request Timeout\r\n\r\n"]
    assert inner.closed and transport.is_closing()
    await asyncio.sleep(0)  # the scheduled flush finds nothing left
    assert len(inner.writes) == 1


async def test_everything_else_is_the_wrapped_transport() -> None:
    transport, _ = coalescing()
    assert transport.get_extra_info("peername") == ("127.0.0.1", 5555)
