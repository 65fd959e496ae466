"""The validating proxy's own server (`WholeServer`): each request read whole, answered whole, under the
limits of every server we ship. Served in this process, in a thread, with a stand-in for the proxy."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import signal
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contract_tests.fuzzing import whole_answer
from mock_gateway.contract_tools._asgi import Answer, Request, error_answer
from mock_gateway.contract_tools._served import Limits, WholeServer
from mock_gateway.testing import free_port_socket, gateway_popen

from .drift import served

BODY_TIMEOUT = 0.5
MAX_BODY = 1024 * 1024
TOKEN = "admin-token-1"


class Stand:
    """Echoes the request it was handed; a path that starts with /fail raises, /bad answers a header
    no HTTP answer may carry, /slow takes 0.3 s, /hold 2 s, /big answers 1 MB."""

    max_body_bytes = MAX_BODY

    def __init__(self) -> None:
        self.calls = 0
        self.closed = False

    async def answer(self, request: Request) -> Answer:
        method, path, query, headers, body, _, _ = request
        self.calls += 1
        if path.startswith("/slow"):
            await asyncio.sleep(0.3)
        if path.startswith("/hold"):
            await asyncio.sleep(2)
        if path.startswith("/fail"):
            raise RuntimeError("the proxy failed")
        if path.startswith("/big"):
            return Answer(200, [("content-type", "image/jpeg")], bytes(range(256)) * 4096)
        if path.startswith("/bad"):
            return Answer(200, [("x-summary", "1; /body/a\nb")], b"{}")
        seen = {"method": method, "path": path, "query": query, "headers": headers, "body": body.decode()}
        return Answer(200, [("content-type", "application/json")], orjson.dumps(seen))

    def too_large(self) -> Answer:
        return error_answer(413, "Payload Too Large", f"up to {MAX_BODY} bytes")

    async def aclose(self) -> None:
        self.closed = True


class Serving:
    """A `WholeServer` on a free loopback port, in a thread with its own event loop."""

    def __init__(self, app: Stand, limits: Limits, admin_token: str | None = None) -> None:
        self.server = WholeServer(app, limits, admin_token)
        self._socket = free_port_socket()
        self.base_url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._started = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._thread.start()
        assert self._started.wait(10)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._loop.call_soon(self._started.set)
        await self.server.run(self._socket, self._stop)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        assert not self._thread.is_alive()


LIMITS = Limits(max_header_bytes=8192, body_timeout=BODY_TIMEOUT, keep_alive=1.0, max_connections=64)


@pytest.fixture(scope="module")
def direct() -> Stand:
    return Stand()


@pytest.fixture(scope="module")
def base_url(direct: Stand) -> Iterator[str]:
    serving = Serving(direct, LIMITS)
    yield serving.base_url
    serving.stop()


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


def test_a_call_reaches_the_app_whole(base_url, direct):
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
    """The proxy forwards the raw target (`wire_target`); its checks read the decoded path."""
    assert httpx.get(f"{base_url}/v1/caf%C3%A9").json()["path"] == "/v1/café"


@pytest.mark.parametrize(
    "request_head",
    [
        b"POST /v1/x HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"POST /v1/x HTTP/1.1\r\nhost: x\r\nExpect: 100-Continue\r\ncontent-length: 3\r\n\r\nabc",
        b"GET /__mock/violations HTTP/1.1\r\nhost: x\r\n\r\n",
    ],
    ids=["chunked", "expect-100", "admin-route"],
)
def test_chunked_bodies_expect_100_and_admin_routes_reach_the_app(base_url, request_head):
    answer = exchange(base_url, request_head)
    if b"Expect" in request_head:
        assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        answer = answer.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert orjson.loads(answer.partition(b"\r\n\r\n")[2])["body"] in ("", "abc")


@pytest.mark.parametrize(
    "offer",
    [b"connection: upgrade\r\nupgrade: h2c", b"connection: keep-alive, Upgrade\r\nupgrade: websocket"],
    ids=["h2c", "websocket"],
)
def test_an_upgrade_offer_is_served_as_plain_http_1_1_with_its_body(base_url, offer):
    """RFC 9110 7.8 lets a server ignore the offer: its head is read again without it (httptools
    would skip the body of any request that offers one)."""
    request = b"POST /v1/x HTTP/1.1\r\nhost: x\r\n%s\r\ncontent-length: 2\r\n\r\nhi" % offer
    seen = orjson.loads(exchange(base_url, request).partition(b"\r\n\r\n")[2])
    assert seen["body"] == "hi" and not any(name == "upgrade" for name, _ in seen["headers"])


def test_an_h2c_offer_without_a_body(base_url):
    offer = b"GET /v1/x HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: h2c\r\n\r\n"
    answer = exchange(base_url, offer)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert orjson.loads(answer.partition(b"\r\n\r\n")[2])["headers"] == [["host", "x"]]


def test_a_body_past_the_apps_limit_gets_its_413_and_a_closed_connection(base_url, direct):
    before = direct.calls
    assert httpx.post(f"{base_url}/v1/x", content=b"x" * MAX_BODY).status_code == 200
    declared = exchange(
        base_url, b"POST /v1/x HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % (MAX_BODY + 1)
    )
    assert declared.startswith(b"HTTP/1.1 413 ") and b"connection: close" in declared, declared[:200]
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)
    chunked = b"POST /v1/x HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n" + chunk * 17
    assert exchange(base_url, chunked).startswith(b"HTTP/1.1 413 ")
    assert direct.calls == before + 1


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


def test_a_failing_app_and_a_header_no_answer_may_carry_are_a_500_that_closes_the_connection(base_url):
    for path in (b"/fail", b"/bad"):
        answer = exchange(base_url, b"GET %s HTTP/1.1\r\nhost: x\r\n\r\n" % path)
        assert answer.startswith(b"HTTP/1.1 500 ") and b"connection: close" in answer, answer
        assert orjson.loads(answer.partition(b"\r\n\r\n")[2])["error"] == "Internal Server Error"
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
    nested = b"[" * 400_000 + b"]" * 400_000
    assert httpx.post(f"{base_url}/v1/x", content=nested).json()["body"] == nested.decode()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /v1/x HTTP/1.1\r\nhost: x\r\nx-pad: %s\r\n\r\n" % (b"a" * 40 * LIMITS.max_header_bytes),
        b"POST /v1/x HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s"
        % (4 * MAX_BODY, b"x" * 4 * MAX_BODY),
    ],
    ids=["head", "body"],
)
def test_a_refusal_is_read_whole_while_the_caller_still_sends(base_url, request_bytes):
    """Closed with bytes unread, a socket sends a reset, and the caller loses the answer: a refused
    connection reads on (and drops what comes) until the caller closes (`linger`)."""
    answer = whole_answer(base_url, request_bytes)
    assert answer.startswith((b"HTTP/1.1 431 ", b"HTTP/1.1 413 ")) and b"connection: close" in answer


def test_headers_past_the_limit_get_a_431_whole_or_trickled(base_url):
    huge = b"GET /v1/x HTTP/1.1\r\nhost: x\r\nx-pad: %s\r\n\r\n" % (b"a" * 2 * LIMITS.max_header_bytes)
    assert exchange(base_url, huge).startswith(b"HTTP/1.1 431 ")
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /v1/x HTTP/1.1\r\nhost: x\r\n")
        with contextlib.suppress(OSError):
            for _ in range(LIMITS.max_header_bytes // 100 + 2):
                sock.sendall(b"x-pad: %s\r\n" % (b"a" * 92))
        assert sock.recv(65536).startswith(b"HTTP/1.1 431 ")


def test_a_slow_head_gets_a_408_and_an_idle_connection_is_closed(base_url):
    host, port = base_url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /v1/x HTTP/1.1\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 408 ")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /v1/x HTTP/1.1\r\nhost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        assert sock.recv(65536) == b""  # closed, idle past keep_alive
    assert time.monotonic() - started < BODY_TIMEOUT + LIMITS.keep_alive + 4


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"CONNECT x:443 HTTP/1.1\r\nhost: x:443\r\n\r\n", 405),
        (b"GET /v1/x HTTP/2.0\r\nhost: x\r\n\r\n", 505),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
        (b"POST /v1/x HTTP/1.1\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),
        (b"GET /v1/%ff\xff HTTP/1.1\r\nhost: x\r\n\r\n", 400),
    ],
    ids=["connect", "http-2.0", "h2-preface", "length-and-chunked", "tls-hello", "non-ascii-target"],
)
def test_requests_the_server_cannot_serve_are_refused_and_the_connection_closed(
    base_url, request_bytes, status
):
    answer = exchange(base_url, request_bytes)
    assert answer.startswith(b"HTTP/1.1 %d " % status) and b"connection: close" in answer, answer[:200]
    assert orjson.loads(answer.partition(b"\r\n\r\n")[2])["message"]


def test_the_admin_token_guards_the_admin_routes_but_health():
    app = Stand()
    serving = Serving(app, LIMITS, admin_token=TOKEN)
    try:
        refused = httpx.get(f"{serving.base_url}/__mock/violations")
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert refused.json()["error"] == "Unauthorized" and app.calls == 0
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{serving.base_url}/__mock/violations", headers=bearer).status_code == 200
        assert httpx.get(f"{serving.base_url}/__mock/health").status_code == 200
        assert httpx.get(f"{serving.base_url}/v1/x").status_code == 200
    finally:
        serving.stop()


def test_past_max_connections_an_idle_one_makes_room_else_a_503():
    app = Stand()
    serving = Serving(app, Limits(max_connections=2, body_timeout=5, keep_alive=30, shutdown_seconds=0.1))
    host, port = serving.base_url.removeprefix("http://").split(":")
    try:
        idle = socket.create_connection((host, int(port)), timeout=5)
        busy = socket.create_connection((host, int(port)), timeout=5)
        busy.sendall(b"GET /v1/x HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nab")  # a body under way
        time.sleep(0.2)
        with socket.create_connection((host, int(port)), timeout=5) as third:
            third.sendall(b"GET /v1/x HTTP/1.1\r\nhost: x\r\n\r\n")
            assert third.recv(65536).startswith(b"HTTP/1.1 200 ")
            assert idle.recv(65536) == b""  # closed to make room
            calls = app.calls
            third.sendall(b"GET /hold HTTP/1.1\r\nhost: x\r\n\r\n")
            while app.calls == calls:  # the held call under way: no connection is idle now
                time.sleep(0.01)
            with socket.create_connection((host, int(port)), timeout=5) as fourth:
                assert fourth.recv(65536).startswith(b"HTTP/1.1 503 ")
        busy.close()
        idle.close()
    finally:
        serving.stop()


def test_stopping_answers_what_began_then_closes_the_app():
    app = Stand()
    serving = Serving(app, LIMITS)
    host, port = serving.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /slow/last HTTP/1.1\r\nhost: x\r\n\r\n")
        while not app.calls:  # the call under way
            time.sleep(0.01)
        serving.stop()
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ") and b"connection: close" in answer and app.closed


# The proxy as a process ---------------------------------------------------------------------------


SLOW_BEGUN = threading.Event()


async def slow(request: StarletteRequest) -> Response:
    SLOW_BEGUN.set()
    await asyncio.sleep(0.5)
    return JSONResponse({"status": "ok"})


async def healthy(request: StarletteRequest) -> Response:
    return JSONResponse({"status": "ok"})


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    """Takes 0.5 s on /slow, and sets `SLOW_BEGUN` when it begins."""
    yield from served(Starlette(routes=[Route("/slow", slow), Route("/__mock/health", healthy)]))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_proxy_within_5_seconds_after_the_call_under_way(upstream, signum):
    with gateway_popen("--upstream", upstream, subcommand=["proxy"]) as (url, process):
        host, port = url.removeprefix("http://").split(":")
        with (
            socket.create_connection((host, int(port))) as stalled,
            socket.create_connection((host, int(port))) as busy,
        ):
            stalled.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
            SLOW_BEGUN.clear()
            busy.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            assert SLOW_BEGUN.wait(10)  # the call under way, upstream
            process.send_signal(signum)
            started = time.monotonic()
            assert process.wait(timeout=10) == 0
            assert time.monotonic() - started < 5
            assert busy.recv(65536).startswith(b"HTTP/1.1 200 ")  # answered before the stop


def _limit_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


def test_idle_connections_cannot_lock_everyone_out(upstream):
    with gateway_popen("--upstream", upstream, subcommand=["proxy"], preexec_fn=_limit_descriptors) as (
        url,
        _,
    ):
        host, port = url.removeprefix("http://").split(":")
        idle = []
        try:
            for _ in range(300):
                with contextlib.suppress(OSError):
                    idle.append(socket.create_connection((host, int(port)), timeout=2))
            answered = httpx.get(f"{url}/__mock/violations", timeout=10)
        finally:
            for sock in idle:
                sock.close()
    assert answered.status_code == 200
