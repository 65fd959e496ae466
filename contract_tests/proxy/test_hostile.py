"""The proxy under hostile conditions: hanging or absent upstreams, huge and odd bodies, many calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mock_gateway.contract_tools._proxy import ContractProxy
from mock_gateway.testing import LiveServer, MockGateway, free_port_socket

from .test_mock_upstream import STATUS, SUBMIT

KEY = {"Ocp-Apim-Subscription-Key": "k"}


def client(proxy: ContractProxy) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(proxy), base_url="http://proxy.test", headers=KEY)


async def hang(request: Request) -> Response:
    """Never answers; gives up once the proxy has (so that the server can stop)."""
    while not await request.is_disconnected():
        await asyncio.sleep(0.05)
    return Response()


async def huge(request: Request) -> Response:
    return Response(b"x" * 5000, media_type="application/json")


UPSTREAM = Starlette(routes=[Route("/hang", hang), Route("/huge", huge)])


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    server = LiveServer(UPSTREAM)
    server.start()
    yield server.base_url
    server.stop()


@pytest.fixture
async def proxy(upstream: str) -> AsyncIterator[ContractProxy]:
    proxy = ContractProxy(upstream, timeout=0.2, max_body_bytes=1000)
    yield proxy
    await proxy.aclose()


async def test_an_upstream_that_hangs_gets_a_504(proxy):
    async with client(proxy) as http:
        response = await asyncio.wait_for(http.get("/hang"), 10)
    assert response.status_code == 504
    assert response.json() == {
        "error": "Gateway Timeout",
        "message": "The upstream did not answer within 0.2 s.",
    }


async def test_an_upstream_that_is_down_gets_a_502():
    with free_port_socket() as sock:
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    proxy = ContractProxy(f"http://127.0.0.1:{port}", timeout=5)
    async with client(proxy) as http:
        response = await http.get(STATUS.format("x"))
    await proxy.aclose()
    assert response.status_code == 502
    assert response.json()["error"] == "Bad Gateway"
    assert proxy.violations.entries() == []  # the proxy's own answer is not the gateway's


async def test_huge_bodies_are_refused_both_ways(proxy):
    async with client(proxy) as http:
        request = await http.post(SUBMIT, content=b"{" * 2000, headers={"Content-Type": "application/json"})
        answer = await http.get("/huge")
    assert request.status_code == 413
    assert request.json()["message"] == "The proxy reads request bodies up to 1000 bytes."
    assert answer.status_code == 502
    assert "larger than the proxy reads (1000 bytes)" in answer.json()["message"]


@pytest.fixture
async def mock_proxy() -> AsyncIterator[tuple[MockGateway, ContractProxy]]:
    with MockGateway(served=True) as gateway:
        proxy = ContractProxy(gateway.base_url)
        yield gateway, proxy
        await proxy.aclose()


async def test_deep_nesting_and_non_utf8_are_reported_on_the_request_side(mock_proxy):
    gateway, proxy = mock_proxy
    deep = b'{"prompt": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    async with client(proxy) as http:
        headers = {**KEY, "Ocp-Apim-Subscription-Key": gateway.api_key, "Content-Type": "application/json"}
        nested = await http.post(SUBMIT, content=deep, headers=headers)
        latin = await http.post(SUBMIT, content='{"prompt": "café"}'.encode("latin-1"), headers=headers)
    assert nested.status_code in (400, 500) and latin.status_code == 400
    assert {(e["side"], e["pointer"], e["rule"]) for e in proxy.violations.entries()} == {
        ("request", "/body", "json")
    }


async def test_many_calls_at_once(mock_proxy):
    gateway, proxy = mock_proxy
    async with client(proxy) as http:
        http.headers["Ocp-Apim-Subscription-Key"] = gateway.api_key
        queued = await asyncio.gather(*(http.post(SUBMIT, json={"prompt": f"p{i}"}) for i in range(30)))
        ids = [answer.json()["request_id"] for answer in queued]
        gateway.advance(60)
        polls = await asyncio.gather(*(http.get(STATUS.format(rid)) for rid in ids * 2))
    assert {poll.json()["status"] for poll in polls} == {"COMPLETED"}
    assert {poll.headers["x-contract-violations"] for poll in polls} == {"0"}
    assert proxy.violations.entries() == []
