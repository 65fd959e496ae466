"""The validating proxy as an attacker and a careless user meet it, served as a process of its own:
bounded memory and no stalls whatever callers and upstreams send, no path that escapes the checks,
no connection header passed on, and the mock's admin-token rule for the proxy and the replay."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boogu_contract.wire import ADMIN_TOKEN_ENV
from contract_tests.fuzzing import answer_status
from mock_gateway.cli import main
from mock_gateway.contract_tools import OWN_ANSWER_HEADER
from mock_gateway.testing import gateway_popen
from tools.processes import memory_kib

from .drift import SUBMIT, request_id, served, status_body

MEDIA_URLS = 200_000
SEEN: list[tuple[str, dict[str, str]]] = []
"""The path and headers of each call the upstream got."""
TOKEN = "admin-token-for-tests"
KEY = {"Ocp-Apim-Subscription-Key": "k"}


async def submit(request: Request) -> Response:
    """Rejects every submit, as a gateway does a body that breaks the schema."""
    await request.body()
    return JSONResponse({"error": "Validation Error", "message": "prompt: not text"}, status_code=400)


async def status(request: Request) -> Response:
    """A finished job; `huge_…` ids list 200,000 media URLs that are not text, `nested_…` ids a
    million in 1,000 lists, `deep_<n>_…` ids media URLs nested n deep, `bracket_…` ids URLs that are
    none, `controls_…` ids an output field named with control characters."""
    rid = request.path_params["request_id"]
    SEEN.append((request.url.path, dict(request.headers)))
    body = status_body(rid, "COMPLETED")
    if rid.startswith("huge"):
        body["output"]["media_url"] = list(range(MEDIA_URLS))
    elif rid.startswith("nested"):
        body["output"]["media_url"] = [list(range(1000))] * 1000
    elif rid.startswith("deep"):  # nested as deep as its id says: deeper than json.dumps writes
        depth = int(rid.split("_")[1])
        body["output"]["media_url"] = "here"
        nested = json.dumps(body).replace('"here"', "[" * depth + "]" * depth)
        return Response(nested, media_type="application/json")
    elif rid.startswith("bracket"):  # URLs that urlsplit refuses (ValueError), as gateways write some
        body["output"]["media_url"] = ["http://[cdn.example/x.jpeg"]
        body["polling_url"] = f"http://[gw.example/v2/requests/status/{rid}"
    elif rid.startswith("controls"):
        body["output"]["line\nbreak\r\x00\x7f\tand é"] = 1  # a notice whose pointer no header may carry raw
    headers = {"connection": "x-upstream-hop", "x-upstream-hop": "1", "http2-settings": "AAMAAABkAAQAoAAA"}
    return JSONResponse(body, headers=headers)


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def admin(request: Request) -> Response:
    """An admin route of an upstream mock, seeing the headers the proxy passes on."""
    SEEN.append((request.url.path, dict(request.headers)))
    return JSONResponse({"status": "ok"})


UPSTREAM = Starlette(
    routes=[
        Route(SUBMIT, submit, methods=["POST"]),
        Route("/v2/requests/status/{request_id}", status),
        Route("/__mock/health", health),
        Route("/__mock/{name}", admin, methods=["POST"]),
    ]
)


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    yield from served(UPSTREAM)


@pytest.fixture(scope="module")
def proxy(upstream: str) -> Iterator[tuple[str, int]]:
    """The proxy process (`--rewrite-media`): its URL and process id."""
    with gateway_popen("--upstream", upstream, "--rewrite-media", subcommand=["proxy"]) as (url, process):
        yield url, process.pid


def test_rejected_megabyte_bodies_leave_a_bounded_violation_log(proxy):
    url, pid = proxy
    httpx.delete(f"{url}/__mock/violations")
    body = {"prompt": ["aaaaaaaa"] * 100_000}  # ~1.1 MB: a list where the spec wants text
    with httpx.Client(base_url=url, headers=KEY, timeout=30) as http:
        http.post(SUBMIT, json=body)  # the first one settles the proxy's buffers
        before = memory_kib(pid)["VmRSS"] // 1024
        answers = [http.post(SUBMIT, json=body) for _ in range(60)]
        entries = http.get("/__mock/violations").json()
    grown = memory_kib(pid)["VmRSS"] // 1024 - before
    assert {answer.status_code for answer in answers} == {400}
    assert grown < 40, f"RSS grew by {grown} MB"
    assert len(entries) == 61 and {entry["pointer"] for entry in entries} == {"/body/prompt"}
    assert max(len(httpx.Response(200, json=entry).content) for entry in entries) < 1500
    assert "[truncated:" in entries[0]["value"]


@pytest.mark.parametrize(
    ("kind", "header", "found"),
    [
        ("huge", "x-contract-violations", "1; response /body/output oneOf"),  # checked in its first 1,000
        ("nested", "x-contract-notices", "1; response /body not-checked"),  # over the budget of values
    ],
    ids=["200000-items", "1000-lists-of-1000"],
)
def test_an_answer_with_200000_bad_media_urls_stalls_no_one(proxy, kind, header, found):
    url, pid = proxy
    before = memory_kib(pid)["VmRSS"] // 1024
    waits: list[float] = []
    done = threading.Event()

    def other_caller() -> None:
        with httpx.Client(base_url=url, headers=KEY, timeout=30) as http:
            while not waits or not done.is_set():
                started = time.perf_counter()
                http.get(f"/v2/requests/status/{request_id()}")
                waits.append(time.perf_counter() - started)

    neighbour = threading.Thread(target=other_caller)
    neighbour.start()
    try:
        huge = httpx.get(f"{url}/v2/requests/status/{kind}_{request_id()}", headers=KEY, timeout=60)
    finally:
        done.set()
        neighbour.join()
    peak = memory_kib(pid)["VmHWM"] // 1024 - before
    assert huge.status_code == 200 and len(huge.json()["output"]["media_url"]) in (1000, MEDIA_URLS)
    assert huge.headers[header] == found
    assert max(waits) < 1.0, f"the other caller waited up to {max(waits):.2f} s"
    assert peak < 150, f"peak RSS {peak} MB over the start"


@pytest.mark.parametrize("path", ["/__mock/../v2/requests/status/x", "/__mock/%2e%2e/v2/requests/status/x"])
def test_dot_segments_are_refused_not_forwarded_unchecked(proxy, path):
    url, _ = proxy
    SEEN.clear()
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    connection.request("GET", path)  # sent as written: httpx would resolve the dots itself
    answer = connection.getresponse()
    body = answer.read()
    connection.close()
    assert answer.status == 400 and answer.getheader(OWN_ANSWER_HEADER) == "1", body
    assert SEEN == []


def test_connection_headers_are_not_passed_on_either_way(proxy):
    url, _ = proxy
    SEEN.clear()
    asked = {"Connection": "keep-alive, x-caller-hop", "X-Caller-Hop": "1", "HTTP2-Settings": "AAMAAABk"}
    answer = httpx.get(f"{url}/v2/requests/status/{request_id()}", headers=asked)
    assert answer.status_code == 200
    assert not {"x-upstream-hop", "http2-settings"} & set(answer.headers)
    assert not {"x-caller-hop", "http2-settings"} & set(SEEN[0][1])


def test_a_field_named_with_control_characters_is_escaped_in_the_notices_header(proxy):
    """The notice's pointer names the field: its control characters would make the header one that no
    HTTP answer may carry, and the caller would get a closed connection instead of the answer."""
    url, _ = proxy
    answer = httpx.get(f"{url}/v2/requests/status/controls_{request_id()}", headers=KEY)
    assert answer.status_code == 200 and answer.json()["status"] == "COMPLETED"
    notices = answer.headers["x-contract-notices"]
    assert notices.startswith("1; response /body/output/line") and "unlisted-field" in notices, notices
    assert r"line\nbreak\r\x00\x7f\tand \xe9" in notices, notices


@pytest.mark.parametrize("depth", [60, 600, 1000])
def test_bodies_nested_hundreds_deep_get_an_answer_both_ways(proxy, depth):
    """A walk of a body nested 500 deep or more once went past Python's recursion limit: the proxy
    answered 500 instead of passing the answer on. Deeper than 64 levels, a body is not checked (a
    notice says so); orjson reads up to 1,024."""
    url, _ = proxy
    nested = b"[" * depth + b"]" * depth
    answer = httpx.get(f"{url}/v2/requests/status/deep_{depth}_{request_id()}", headers=KEY)
    headers = {**KEY, "content-type": "application/json"}
    submitted = httpx.post(f"{url}{SUBMIT}", content=nested, headers=headers)
    assert answer.status_code == 200 and submitted.status_code == 400  # as the upstream answered
    if depth <= 60:
        assert answer.headers["x-contract-violations"] == "1; response /body/output oneOf"
        assert submitted.headers["x-contract-violations"].startswith("1; request /body type")
    else:
        assert answer.headers["x-contract-notices"] == "1; response /body not-checked"
        assert submitted.headers["x-contract-notices"] == "1; request /body not-checked"


def test_urls_that_do_not_parse_are_violations_not_a_crash(proxy):
    """`http://[host/...`: no URL (an IPv6 bracket never closed). The polling URL is a violation, the
    media URL is passed on as sent (there is no http(s) URL to point at the proxy instead)."""
    url, _ = proxy
    rid = f"bracket_{request_id()}"
    answer = httpx.get(f"{url}/v2/requests/status/{rid}", headers=KEY)
    assert answer.status_code == 200, answer.text
    assert "response /body/polling_url polling-url" in answer.headers["x-contract-violations"]
    assert answer.json()["output"]["media_url"] == ["http://[cdn.example/x.jpeg"]


def test_rewritten_media_urls_name_the_proxy_whatever_host_the_caller_sends(proxy):
    url, _ = proxy
    answer = httpx.get(f"{url}/v2/requests/status/{request_id()}", headers={"Host": "evil.example"})
    (media,) = answer.json()["output"]["media_url"]
    assert media.startswith(f"{url}/__proxy/media/"), media


def test_a_non_loopback_bind_needs_an_admin_token(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv(ADMIN_TOKEN_ENV, raising=False)
    cassette = tmp_path / "empty.yaml"
    cassette.write_text("version: 1\ninteractions: []\n")
    for command in (["proxy", "--upstream", "http://127.0.0.1:9"], ["replay", str(cassette)]):
        assert main([*command, "--host", "0.0.0.0"]) == 2  # noqa: S104 - what is refused
        assert "refusing to serve the admin routes on 0.0.0.0" in capsys.readouterr().err
        assert main([*command, "--host", "0.0.0.0", "--admin-token", "short"]) == 2  # noqa: S104
        assert "8 to 256 printable ASCII characters" in capsys.readouterr().err


@pytest.mark.parametrize("tool", ["proxy", "replay"])
def test_the_admin_routes_need_the_token_beyond_loopback(upstream, tmp_path, tool):
    cassette = tmp_path / "empty.yaml"
    cassette.write_text("version: 1\ninteractions: []\n")
    args = ("--upstream", upstream) if tool == "proxy" else (str(cassette),)
    route = "/__mock/violations" if tool == "proxy" else "/__mock/unmatched"
    environment: dict[str, Any] = {**os.environ, ADMIN_TOKEN_ENV: TOKEN}
    served = gateway_popen(*args, subcommand=[tool], host="0.0.0.0", env=environment)  # noqa: S104
    with served as (url, _), httpx.Client(timeout=30) as http:  # busy machines: 5 s failed once
        refused = [http.request(method, f"{url}{route}") for method in ("GET", "DELETE")]
        wrong = http.get(f"{url}{route}", headers={"Authorization": "Bearer not-the-token"})
        allowed = http.get(f"{url}{route}", headers={"Authorization": f"Bearer {TOKEN}"})
        health = http.get(f"{url}/__mock/health")
    assert [answer.status_code for answer in [*refused, wrong]] == [401, 401, 401]
    assert (allowed.status_code, allowed.json(), health.status_code) == (200, [], 200)


@pytest.mark.parametrize("upstream_token", [None, "upstream-admin-token"])
def test_the_proxy_passes_its_own_admin_token_to_no_one(upstream, upstream_token):
    """Its admin token once went upstream with every admin call it passed on (and every other call)."""
    environment: dict[str, Any] = {**os.environ, ADMIN_TOKEN_ENV: TOKEN}
    options = ["--upstream-admin-token", upstream_token] if upstream_token else []
    own = {"Authorization": f"Bearer {TOKEN}"}
    with gateway_popen("--upstream", upstream, *options, subcommand=["proxy"], env=environment) as (url, _):
        SEEN.clear()
        assert httpx.post(f"{url}/__mock/advance", headers=own).status_code == 200
        assert httpx.post(f"{url}/__mock/advance").status_code == 401
        httpx.get(f"{url}/v2/requests/status/{request_id()}", headers={**KEY, **own})
        httpx.get(f"{url}/v2/requests/status/{request_id()}", headers={**KEY, "Authorization": "Basic eDp5"})
    (admin_call, headers), (_, status_call), (_, other_call) = SEEN
    assert admin_call == "/__mock/advance"
    assert headers.get("authorization") == (f"Bearer {upstream_token}" if upstream_token else None)
    assert "authorization" not in status_call and other_call["authorization"] == "Basic eDp5"


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
        (
            b"GET http://elsewhere.test/__mock/violations HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            200,
        ),
        (b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", 405),
        (b"TRACE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
        (b"GET /v1/x HTTP/1.0\r\n\r\n", 404),
        (
            b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
    ],
    ids=[
        "options-star",
        "absolute-form",
        "connect",
        "trace",
        "http-1.0",
        "length-and-chunked",
        "http-2.0",
        "h2-preface",
        "nul-in-header",
    ],
)
def test_odd_request_forms_get_a_clear_answer(proxy, request_bytes, status):
    """An absolute-form target names its path (RFC 9112 3.2.2): this proxy's own violations."""
    assert answer_status(proxy[0], request_bytes) == status
