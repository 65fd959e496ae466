"""Property-based fuzzing of the served proxy and replay (hypothesis): whatever an upstream answers, the
proxy's caller gets that answer (its media URLs pointed at the proxy) with headers that HTTP can carry;
whatever a caller sends, the proxy and the replay answer it, never with a 500 nor a closed connection.

Each of these cases once failed: a URL that `urlsplit` refuses made the proxy's check raise (a 500), a
JSON key with a newline made a notices header that no answer may carry (a closed connection), and a
body nested 500 deep took a walk past Python's recursion limit (a 500 from both servers). `make fuzz`
runs more examples.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contract_tests.fuzzing import FUZZ, answer_status, bodies, raw_requests, texts, values
from mock_gateway.testing import LiveServer, gateway_popen

from .drift import STATUS, SUBMIT, request_id, status_body

CASSETTE = Path(__file__).parent / "cassettes" / "lighthouse.yaml"

KEY = {"Ocp-Apim-Subscription-Key": "k"}
MEDIA = "/__proxy/media/"
NO_URLS = [
    "http://[gw.example/x",
    "http://gw.example]/x",
    "http://[::1x]/x",
    "http://a\uff03b/x",
    "http://",
    "",
]
"""Text that `urlsplit` refuses, or that names no host."""


class Scripted:
    """The upstream: answers each call with `answer` (status, body), and `/__mock/health` with 200."""

    def __init__(self) -> None:
        self.answer: tuple[int, bytes] = (200, b"{}")

    async def respond(self, request: Request) -> Response:
        await request.body()
        if request.url.path == "/__mock/health":
            return JSONResponse({"status": "ok"})
        status, body = self.answer
        return Response(body, status_code=status, media_type="application/json")


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, Scripted]]:
    scripted = Scripted()
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    server = LiveServer(Starlette(routes=[Route("/{path:path}", scripted.respond, methods=methods)]))
    server.start()
    yield server.base_url, scripted
    server.stop()


@pytest.fixture(scope="module")
def proxy(upstream: tuple[str, Scripted]) -> Iterator[str]:
    with gateway_popen("--upstream", upstream[0], "--rewrite-media", subcommand=["proxy"]) as (url, _):
        yield url


@pytest.fixture(scope="module")
def http(proxy: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy, headers=KEY, timeout=10) as client:
        yield client


urls = st.one_of(
    texts,
    st.sampled_from(NO_URLS),
    st.builds(lambda rid: f"http://gw.example{STATUS.format(request_id=rid)}", texts),
)


@st.composite
def answers(draw: st.DrawFn) -> tuple[int, bytes]:
    """A status object or ticket with fields replaced by hostile values and URLs, or any bytes at all."""
    body: dict[str, Any] = status_body(request_id(), draw(st.sampled_from(["QUEUED", "COMPLETED", "WEIRD"])))
    for name in draw(st.lists(st.one_of(st.sampled_from([*body, "polling_url"]), texts), max_size=3)):
        body[name] = draw(st.one_of(values, urls))
    if isinstance(body.get("output"), dict):
        body["output"]["media_url"] = draw(st.lists(st.one_of(urls, values), max_size=3))
    raw = draw(st.one_of(st.just(json.dumps(body).encode()), bodies))
    return draw(st.sampled_from([200, 202, 400, 418, 500])), raw


def replaced(value: Any, urls: dict[str, str]) -> Any:
    """`value` with each string that `urls` maps replaced, at any depth: the proxy rewrites a media
    URL's string wherever the body holds it."""
    if isinstance(value, str):
        return urls.get(value, value)
    if isinstance(value, list):
        return [replaced(item, urls) for item in value]
    if isinstance(value, dict):
        return {key: replaced(item, urls) for key, item in value.items()}
    return value


@FUZZ
@given(answer=answers(), submit=st.booleans())
def test_any_answer_reaches_the_caller_with_headers_http_can_carry(
    upstream: tuple[str, Scripted], proxy: str, http: httpx.Client, answer: tuple[int, bytes], submit: bool
) -> None:
    status, raw = answer
    upstream[1].answer = answer
    if submit:
        response = http.post(SUBMIT, json={"prompt": "a lighthouse"})
    else:
        response = http.get(f"{STATUS.format(request_id=request_id())}")
    assert response.status_code == status, response.text[:300]
    assert response.headers["x-contract-violations"].isprintable()
    assert response.headers["x-contract-violations"].isascii()
    if response.content != raw:  # media URLs rewritten, each to one of the proxy's own
        sent, got = json.loads(raw), response.json()
        pairs = zip(sent["output"]["media_url"], got["output"]["media_url"], strict=True)
        urls = {before: after for before, after in pairs if after != before}
        assert all(after.startswith(f"{proxy}{MEDIA}") for after in urls.values()), urls
        assert got == replaced(sent, urls)


paths = st.one_of(
    st.sampled_from([SUBMIT, "/boogu-image-edit/v1/boogu-image-edit-request", "/__mock/violations"]),
    st.builds(
        lambda rid: STATUS.format(request_id=rid), st.text(st.characters(codec="latin-1"), max_size=12)
    ),
)


@pytest.fixture(scope="module")
def replay() -> Iterator[str]:
    with gateway_popen(str(CASSETTE), subcommand=["replay"]) as (url, _):
        yield url


@FUZZ
@given(data=st.data())
def test_any_request_is_answered_without_a_500_or_a_closed_connection(
    upstream: tuple[str, Scripted], proxy: str, replay: str, data: st.DataObject
) -> None:
    upstream[1].answer = (200, json.dumps(status_body(request_id(), "COMPLETED")).encode())
    server = data.draw(st.sampled_from([proxy, replay]))
    request = data.draw(raw_requests(server.removeprefix("http://"), paths))
    assert answer_status(server, request) < 500, request[:300]
