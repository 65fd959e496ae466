"""The served proxy's direct path (`DirectProtocol`): plain requests skip the ASGI cycle, every other
request takes it, and callers cannot tell the two apart. Served by uvicorn in this process, with a
stand-in for the proxy on each path: the direct one answers 200, the ASGI one 299."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from types import SimpleNamespace

import httpx
import orjson
import pytest
from starlette.types import Receive, Scope, Send

from mock_gateway.contract_tools._asgi import Answer, Request, read_body, send_answer, text_headers
from mock_gateway.contract_tools._direct import DIRECT_BODY_BYTES, DirectProtocol
from mock_gateway.model import MockConfig
from mock_gateway.testing import LiveServer

BODY_TIMEOUT = 0.5


class Direct:
    """Echoes what the direct path handed it; a path that starts with /fail raises, /bad answers a header
    no HTTP answer may carry."""

    def __init__(self) -> None:
        self.calls = 0

    async def answer(self, request: Request) -> Answer:
        method, path, query, headers, body, _, _ = request
        self.calls += 1
        if path.startswith("/slow"):
            await asyncio.sleep(0.3)
        if path.startswith("/fail"):
            raise RuntimeError("the proxy failed")
        if path.startswith("/big"):
            return Answer(200, [("content-type", "image/jpeg")], bytes(range(256)) * 4096)
        if path.startswith("/bad"):
            return Answer(200, [("x-summary", "1; /body/a\nb")], b"{}")
        seen = {"method": method, "path": path, "query": query, "headers": headers, "body": body.decode()}
        return Answer(200, [("content-type", "application/json")], orjson.dumps(seen))


class Asgi:
    """The ASGI path's stand-in: answers 299 with the body's length."""

    state = SimpleNamespace(backend=SimpleNamespace(config=MockConfig(body_timeout=BODY_TIMEOUT)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive, 10 * DIRECT_BODY_BYTES)
        seen = {"path": scope["path"], "length": len(body), "headers": text_headers(scope["headers"])}
        await send_answer(send, Answer(299, [("content-type", "application/json")], orjson.dumps(seen)))


@pytest.fixture(scope="module")
def direct() -> Direct:
    return Direct()


@pytest.fixture(scope="module")
def base_url(direct: Direct) -> Iterator[str]:
    server = LiveServer(Asgi(), protocol=DirectProtocol, protocol_attributes={"direct": direct})
    server.start()
    yield server.base_url
    server.stop()


def exchange(base_url: str, data: bytes, *, wait: float = 5.0, answers: int = 1) -> bytes:
    """Send raw bytes on a fresh connection; read until `answers` bodies came or the server closed."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        sock.sendall(data)
        received = b""
        with contextlib.suppress(OSError):
            while received.count(b"\r\n\r\n{") < answers and (chunk := sock.recv(65536)):
                received += chunk
        return received


def test_a_plain_call_takes_the_direct_path(base_url, direct):
    before = direct.calls
    response = httpx.post(f"{base_url}/v1/x?a=1&b=%C3%A9", content=b'{"prompt": "x"}', headers={"X-Key": "k"})
    assert response.status_code == 200 and direct.calls == before + 1
    seen = response.json()
    assert (seen["method"], seen["path"], seen["query"], seen["body"]) == (
        "POST",
        "/v1/x",
        "a=1&b=%C3%A9",
        '{"prompt": "x"}',
    )
    assert ["x-key", "k"] in seen["headers"]
    assert response.headers["content-length"] == str(len(response.content))


def test_a_percent_encoded_path_is_decoded_as_uvicorn_decodes_it(base_url):
    assert httpx.get(f"{base_url}/v1/caf%C3%A9").json()["path"] == "/v1/café"


@pytest.mark.parametrize(
    "request_head",
    [
        b"POST /v1/x HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"POST /v1/x HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 3\r\n\r\nabc",
        b"GET /__mock/violations HTTP/1.1\r\nhost: x\r\n\r\n",
    ],
    ids=["chunked", "expect-100", "admin-route"],
)
def test_other_requests_take_the_asgi_path(base_url, request_head):
    answer = exchange(base_url, request_head).removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 299 "), answer[:200]


def test_an_h2c_offer_is_served_as_plain_http_1_1_on_the_direct_path(base_url):
    """`GuardedHttpToolsProtocol` replays its head without the offer, a plain request."""
    offer = b"GET /v1/x HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: h2c\r\n\r\n"
    answer = exchange(base_url, offer)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert orjson.loads(answer.partition(b"\r\n\r\n")[2])["headers"] == [["host", "x"]]


def test_a_body_past_the_direct_limit_takes_the_asgi_path_whole(base_url):
    body = b"x" * (DIRECT_BODY_BYTES + 1)
    response = httpx.post(f"{base_url}/v1/x", content=body)
    assert response.status_code == 299 and response.json()["length"] == len(body)


def test_head_gets_no_body_and_http_1_0_a_closed_connection(base_url):
    head = exchange(base_url, b"HEAD /v1/x HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    status_line, _, rest = head.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 200 OK" and rest.endswith(b"\r\n\r\n") and b"connection: close" in rest
    old = exchange(base_url, b"GET /v1/x HTTP/1.0\r\n\r\n")
    assert old.startswith(b"HTTP/1.1 200 OK") and b"connection: close\r\n" in old


def test_pipelined_requests_are_answered_in_order(base_url):
    first = b"GET /slow/1 HTTP/1.1\r\nhost: x\r\n\r\n"
    second = b"POST /v1/2 HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nhi"
    third = b"GET /v1/3 HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
    answers = exchange(base_url, first + second + third, answers=3)
    assert answers.count(b"HTTP/1.1 ") == 3, answers
    assert answers.index(b'"/slow/1"') < answers.index(b'"/v1/2"') < answers.index(b'"/v1/3"')


def test_a_pipelined_request_whose_body_comes_after_the_answer_before_it(base_url):
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        first, second_head = b"GET /slow/1 HTTP/1.1\r\nhost: x\r\n\r\n", b"POST /v1/2 HTTP/1.1\r\nhost: x\r\n"
        sock.sendall(first + second_head + b"content-length: 4\r\n\r\n")
        received = b""
        while b'"/slow/1"' not in received:
            received += sock.recv(65536)
        sock.sendall(b"late")
        while b'"late"' not in received:
            received += sock.recv(65536)
    assert received.count(b"HTTP/1.1 200 ") == 2


def test_a_body_that_comes_late_is_waited_for_and_one_that_never_comes_gets_a_408(base_url):
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"POST /v1/late HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\n\r\nab")
        time.sleep(0.1)
        sock.sendall(b"cd")
        assert b'"body":"abcd"' in sock.recv(65536)
    started = time.monotonic()
    answer = exchange(base_url, b"POST /v1/never HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nab")
    assert answer.startswith(b"HTTP/1.1 408 ") and time.monotonic() - started < BODY_TIMEOUT + 3


def test_malformed_and_non_utf8_requests_are_refused_and_the_server_goes_on(base_url):
    assert exchange(base_url, b"GET /v1/x HTTP/1.1\r\nhost x\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    non_ascii = exchange(base_url, b"GET /v1/caf\xc3\xa9 HTTP/1.1\r\nhost: x\r\nx-name: caf\xe9\r\n\r\n")
    assert non_ascii.startswith(b"HTTP/1.1 "), non_ascii
    latin = exchange(base_url, b"GET /v1/x HTTP/1.1\r\nhost: x\r\nx-name: caf\xe9\r\n\r\n")
    assert ["x-name", "café"] in orjson.loads(latin.partition(b"\r\n\r\n")[2])["headers"]
    assert httpx.get(f"{base_url}/v1/x").status_code == 200


def test_a_failing_proxy_is_a_500_and_a_forbidden_header_closes_the_connection(base_url):
    """As on uvicorn's ASGI path: a header that no answer may carry is found once the answer has
    started, so the connection is closed without one."""
    answer = exchange(base_url, b"GET /fail HTTP/1.1\r\nhost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 500 ") and answer.endswith(b"Internal Server Error"), answer
    assert b"connection: close" in answer
    assert exchange(base_url, b"GET /bad HTTP/1.1\r\nhost: x\r\n\r\n") == b""
    assert httpx.get(f"{base_url}/v1/x").status_code == 200


def test_a_caller_gone_before_the_answer_leaves_the_server_serving(base_url, direct):
    host, port = base_url.removeprefix("http://").split(":")
    before = direct.calls
    for _ in range(20):
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(b"GET /slow/gone HTTP/1.1\r\nhost: x\r\n\r\n")
    time.sleep(0.5)
    assert direct.calls >= before + 1
    assert httpx.get(f"{base_url}/v1/x").status_code == 200


async def test_many_calls_at_once(base_url):
    async with httpx.AsyncClient(base_url=base_url, limits=httpx.Limits(max_connections=50)) as http:
        answers = await asyncio.gather(*(http.post(f"/v1/{n}", content=str(n)) for n in range(100)))
    assert [answer.json()["body"] for answer in answers] == [str(n) for n in range(100)]


def test_a_large_answer_comes_whole_and_a_head_without_it(base_url):
    response = httpx.get(f"{base_url}/big")
    assert response.content == bytes(range(256)) * 4096
    head = httpx.head(f"{base_url}/big")
    assert head.content == b"" and head.headers["content-length"] == str(256 * 4096)


def test_deeply_nested_and_huge_bodies_pass_whole(base_url):
    nested = b"[" * 50_000 + b"]" * 50_000
    response = httpx.post(f"{base_url}/v1/x", content=nested[:DIRECT_BODY_BYTES])
    assert response.status_code == 200 and len(response.json()["body"]) == DIRECT_BODY_BYTES
    assert httpx.post(f"{base_url}/v1/x", content=nested).json()["length"] == len(nested)
