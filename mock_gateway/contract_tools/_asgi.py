"""What the proxy and the replay share at the ASGI edge: reading a body, answering, their own errors."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import orjson
from starlette.types import Message, Receive, Send

OWN_ANSWER_HEADER = "x-contract-proxy-answer"
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "http2-settings",
        "host",
        "content-length",
        "accept-encoding",
        "content-encoding",
    }
)
"""Not passed on: they describe one connection (an h2c offer's settings too), or a coding the proxy
undoes to read the body."""
DOT_SEGMENTS = frozenset({".", ".."})


def end_to_end(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers a proxy passes on: neither the hop-by-hop ones nor those that `Connection` names
    (RFC 9110 7.6.1), which describe one connection whatever their name."""
    dropped = HOP_BY_HOP
    for name, value in headers:
        if name.lower() == "connection":
            dropped = dropped | {token.strip().lower() for token in value.split(",")}
    return [(name, value) for name, value in headers if name.lower() not in dropped]


def text_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """Headers as the proxy and replay work with them: latin-1, which maps every byte."""
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]


class Request(NamedTuple):
    """A request read whole, as the proxy answers it: from an ASGI call or the served proxy's own
    server (`WholeServer`)."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    server: tuple[str, int | None] | None
    """Where the caller's connection arrived (ASGI's `server`)."""
    scheme: str

    @classmethod
    def of(cls, scope: Mapping[str, Any], body: bytes) -> Request:
        """From an ASGI scope and the body read whole."""
        query = scope.get("query_string", b"").decode("latin-1")
        headers = text_headers(scope["headers"])
        return cls(
            scope["method"],
            scope["path"],
            query,
            headers,
            body,
            scope.get("server"),
            scope.get("scheme", "http"),
        )


def has_dot_segments(path: str) -> bool:
    """`/__mock/../v2/...`: a path that names another once resolved, so that any check of it (the
    admin prefix, the operation) would judge the wrong path. `scope["path"]` is already decoded."""
    return "." in path and any(segment in DOT_SEGMENTS for segment in path.split("/"))


class TooLarge(Exception):
    pass


class Answer(NamedTuple):
    """A named tuple, not a frozen dataclass, whose `__init__` cost a microsecond: the proxy makes
    three a call."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    own: bool = False
    """The proxy's own answer (the upstream failed), neither validated nor recorded."""


def error_answer(status: int, error: str, message: str) -> Answer:
    """An answer of the proxy (or replay) itself, marked so that no one takes it for the gateway's."""
    body = orjson.dumps({"error": error, "message": message})
    return Answer(status, [("content-type", "application/json"), (OWN_ANSWER_HEADER, "1")], body, own=True)


async def lifespan(
    receive: Receive, send: Send, shutdown: Callable[[], Awaitable[None]] | None = None
) -> None:
    """The ASGI lifespan protocol, for apps with nothing to start and at most a client to close."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if shutdown is not None:
                await shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_body(receive: Receive, limit: int) -> bytes:
    body = bytearray()
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            break
        body += message.get("body", b"")
        if len(body) > limit:
            raise TooLarge
        if not message.get("more_body", False):
            break
    return bytes(body)


async def send_answer(send: Send, answer: Answer) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers]
    headers.append((b"content-length", b"%d" % len(answer.body)))
    with contextlib.suppress(OSError):
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})
