"""The proxy's own HTTP/1.1 client against upstreams that answer in every way HTTP/1.1 allows, and in
some it does not: each answer read whole and bounded, connections reused only when that is safe."""

from __future__ import annotations

import asyncio
import base64
import gzip
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from mock_gateway.contract_tools._asgi import Answer, TooLarge
from mock_gateway.contract_tools._proxy import ContractProxy
from mock_gateway.contract_tools._upstream import MAX_HEAD_BYTES, Origin, Upstream, UpstreamError

OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
HANG_UP = b"<hang up>"
"""At the end of an answer: the server closes the connection once it is sent."""
Answers = Callable[[int], bytes | None]


@dataclass
class Scripted:
    """A loopback server that answers the n-th request it reads with `answers(n)` (None: hang up
    at once; ending with `HANG_UP`: after the answer)."""

    answers: Answers
    url: str = ""
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                sized = [line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")]
                body = await reader.readexactly(int(sized[0].split(b":")[1])) if sized else b""
                self.requests.append(head + body)
                answer = self.answers(len(self.requests) - 1)
                if answer is None:
                    break
                writer.write(answer.removesuffix(HANG_UP))
                await writer.drain()
                if answer.endswith(HANG_UP):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


Serve = Callable[[Answers], Awaitable[Scripted]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def start(answers: Answers) -> Scripted:
        script = Scripted(answers)
        server = await asyncio.start_server(script.serve, "127.0.0.1", 0)
        servers.append(server)
        script.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        return script

    yield start
    for server in servers:
        server.close()


@pytest.fixture
async def client() -> AsyncIterator[Upstream]:
    upstream = Upstream(timeout=2, max_body_bytes=1000)
    yield upstream
    await upstream.aclose()


async def get(client: Upstream, script: Scripted, target: str = "/x", method: str = "GET") -> Answer:
    return await client.request(method, Origin.of(script.url), target, [], b"")


def always(answer: bytes) -> Answers:
    return lambda _: answer


async def test_chunked_and_close_delimited_bodies_are_read_whole(serve, client):
    chunked = await serve(
        always(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    )
    until_close = await serve(always(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n[1, 2]" + HANG_UP))
    assert (await get(client, chunked)).body == b"{}"
    reply = await get(client, until_close)
    assert (reply.status, reply.body) == (200, b"[1, 2]")


async def test_informational_answers_are_skipped_and_head_reads_no_body(serve, client):
    continued = await serve(always(b"HTTP/1.1 100 Continue\r\n\r\n" + OK))
    assert (await get(client, continued)).body == b"{}"
    head = await serve(always(b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n"))
    reply = await asyncio.wait_for(get(client, head, method="HEAD"), 1)
    assert (reply.status, reply.body) == (200, b"")


async def test_a_connection_is_reused_and_an_idle_one_closed_by_the_server_is_replaced(serve, client):
    keeps = await serve(always(OK))
    for _ in range(3):
        await get(client, keeps)
    assert keeps.connections == 1
    hangs_up = await serve(lambda n: OK if n % 2 == 0 else None)  # closes after each answer's next request
    for _ in range(3):
        assert (await get(client, hangs_up)).status == 200
    with pytest.raises(UpstreamError):  # a POST that may have been taken is never sent twice
        await client.request("POST", Origin.of(hangs_up.url), "/x", [], b"{}")
    assert len(hangs_up.requests) == 6


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"HTTP/1.1 200 OK\r\n" + b"x-filler: " + b"y" * MAX_HEAD_BYTES + b"\r\n\r\n", UpstreamError),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n" + b"x" * 5000, TooLarge),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            + (b"100\r\n" + b"x" * 256 + b"\r\n") * 5,
            TooLarge,
        ),
        (b"SMTP ready\r\n\r\n", UpstreamError),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort" + HANG_UP, UpstreamError),
        (b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\nconnection: upgrade\r\n\r\n", UpstreamError),
    ],
)
async def test_answers_out_of_bounds_or_not_http_are_errors(serve, client, answer, error):
    script = await serve(lambda n: answer if n == 0 else OK)
    with pytest.raises(error):
        await get(client, script)
    assert (await get(client, script)).body == b"{}"  # on a fresh connection


async def test_a_second_answer_to_one_request_does_not_answer_the_next(serve, client):
    script = await serve(lambda n: OK.replace(b"{}", b"[]") + OK if n == 0 else OK)
    assert (await get(client, script)).body == b"[]"
    await asyncio.sleep(0.05)
    assert (await get(client, script)).body == b"{}"
    assert script.connections == 2


async def test_the_proxy_sends_a_request_line_that_names_the_path_it_was_asked(serve):
    """The path the proxy sees is decoded: what it holds is encoded again, `%`, `?` and `#` too; the
    base URL's path comes first and its userinfo is sent as Basic credentials."""
    script = await serve(always(OK))
    base = script.url.replace("http://", "http://user:p%40ss@") + "/base/"
    proxy = ContractProxy(base)
    transport = httpx.ASGITransport(proxy)
    async with httpx.AsyncClient(transport=transport, base_url="http://proxy.test") as http:
        answer = await http.get("/a%20b%25c%3Fd%23e/caf%C3%A9?q=1%202&r")
    await proxy.aclose()
    assert answer.status_code == 200
    line, *headers = script.requests[0].decode("latin-1").split("\r\n")
    assert line == "GET /base/a%20b%25c%3Fd%23e/caf%C3%A9?q=1%202&r HTTP/1.1"
    assert f"authorization: Basic {base64.b64encode(b'user:p@ss').decode()}" in headers


async def test_a_large_body_in_the_head_s_chunk_is_no_large_head(serve):
    body = b"[" + b"1," * 100_000 + b"1]"
    script = await serve(always(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)))
    upstream = Upstream(timeout=5, max_body_bytes=len(body))
    assert (await get(upstream, script)).body == body
    await upstream.aclose()


async def test_an_answer_that_never_comes_times_out_and_its_connection_is_not_reused(serve):
    script = await serve(lambda n: b"HTTP/1.1 200 OK\r\n" if n == 0 else OK)  # a head that never ends
    upstream = Upstream(timeout=0.2, max_body_bytes=1000)
    with pytest.raises(TimeoutError):
        await get(upstream, script)
    assert (await get(upstream, script)).body == b"{}"
    assert script.connections == 2
    await upstream.aclose()


def encoded(coding: bytes, body: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-encoding: %s\r\ncontent-length: %d\r\n\r\n" % (coding, len(body))
    return head + body


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (encoded(b"gzip", gzip.compress(b"{}")), b"{}"),
        (encoded(b"deflate", zlib.compress(b"[]")), b"[]"),
        (encoded(b"deflate", zlib.compress(b"[]")[2:-4]), b"[]"),  # raw deflate
        (encoded(b"gzip", gzip.compress(b" " * 5_000_000)), TooLarge),  # 5 MB from 5 KB
        (encoded(b"br", b"\x0b\x00\x80{}\x03"), UpstreamError),
        (encoded(b"gzip", b"{}"), UpstreamError),
        (encoded(b"gzip", gzip.compress(b"{}")[:-9]), UpstreamError),
    ],
    ids=["gzip", "deflate", "raw-deflate", "bomb", "brotli", "not-gzip", "truncated"],
)
async def test_a_coding_applied_though_identity_was_asked_is_undone_within_bounds(
    serve, client, answer, outcome
):
    script = await serve(always(answer))
    if isinstance(outcome, bytes):
        reply = await get(client, script)
        assert reply.body == outcome
        assert b"accept-encoding: identity" in script.requests[0]
    else:
        with pytest.raises(outcome):
            await get(client, script)
