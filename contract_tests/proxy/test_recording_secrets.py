"""Nothing secret in a recording: `proxy --record` run as users run it, then every file it wrote
(cassette, media files, its log) searched for the key and the upstream's password."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mock_gateway.testing import ReplayGateway, gateway_popen

from .drift import SUBMIT, request_id, served, status_body

KEY = "sk-live-0123456789abcdef"
PASSWORD = "hunter2-Upstream-Password"
PLAIN_TEXT = "every letter here stays, the e too"


def credentials(request: Request) -> dict[str, str]:
    """What the upstream got: the key header, the query's key and the Basic credentials, decoded."""
    basic = request.headers.get("authorization", "").removeprefix("Basic ")
    return {
        "key": request.headers.get("ocp-apim-subscription-key", ""),
        "query": request.query_params.get("subscription-key", ""),
        "basic": base64.b64decode(basic).decode() if basic else "",
    }


async def submit(request: Request) -> Response:
    """A ticket that echoes every credential, in the body and in a header."""
    echoed = credentials(request)
    rid = request_id()
    body = {
        "request_id": rid,
        "status": "QUEUED",
        "polling_url": f"{request.base_url}v2/requests/status/{rid}?subscription-key={echoed['query']}",
        "echo": echoed,
        "note": PLAIN_TEXT,
    }
    return JSONResponse(body, status_code=202, headers={"x-echo": echoed["key"]})


async def status(request: Request) -> Response:
    return JSONResponse(status_body(request.path_params["request_id"], "PROCESSING"))


async def blob(request: Request) -> Response:
    """Binary bytes (stored as a media file) that hold every credential."""
    echoed = credentials(request)
    return Response(b"\x89PNG\r\n\x1a\n\xff" + "|".join(echoed.values()).encode(), media_type="image/png")


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


ECHO = Starlette(
    routes=[
        Route(SUBMIT, submit, methods=["POST"]),
        Route("/v2/requests/status/{request_id}", status),
        Route("/files/echo.png", blob),
        Route("/__mock/health", health),
    ]
)


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    yield from served(ECHO)


@pytest.fixture(scope="module")
def recording(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any]]:
    """`proxy --record` through `--upstream http://user:password@…` (at debug level, its log kept in
    the folder): a submit, a poll and a binary download with the key in the header and the query,
    first with `KEY`, then with the 1-character key `e`. The folder and the interactions."""
    folder = tmp_path_factory.mktemp("recording")
    cassette = folder / "session.yaml"
    with_password = upstream.replace("http://", f"http://upstream-user:{PASSWORD}@")
    with (
        (folder / "proxy.log").open("wb") as log,
        gateway_popen(
            "--upstream", with_password, "--record", str(cassette), "--log-level", "debug",
            subcommand=["proxy"], stderr=log,
        ) as (url, _),
        httpx.Client(base_url=url) as http,
    ):  # fmt: skip
        for key in (KEY, "e"):
            http.headers["Ocp-Apim-Subscription-Key"] = key
            ticket = http.post(f"{SUBMIT}?subscription-key={key}", json={"prompt": f"my key is {key}"})
            assert ticket.status_code == 202 and ticket.json()["echo"]["key"] == key
            http.get(f"/v2/requests/status/{ticket.json()['request_id']}?subscription-key={key}")
            assert http.get(f"/files/echo.png?subscription-key={key}").status_code == 200
    return folder, yaml.safe_load(cassette.read_text())["interactions"]


def test_no_file_of_a_recording_holds_the_key_or_the_password(recording):
    folder, interactions = recording
    written = [path for path in folder.rglob("*") if path.is_file()]
    assert {path.suffix for path in written} == {".yaml", ".png", ".log"}
    for path in written:
        content = path.read_bytes()
        assert KEY.encode() not in content and PASSWORD.encode() not in content, path
    assert len(interactions) == 6
    for interaction in interactions:
        assert "upstream-user" not in interaction["request"]["uri"]
        assert "subscription-key=[redacted]" in interaction["x-boogu"]["path"]
    banner = (folder / "proxy.log").read_text()
    assert "Validating proxy" in banner and "[redacted]@127.0.0.1" in banner


def test_a_one_character_key_is_redacted_as_a_whole_value_only(recording):
    _, interactions = recording
    submitted = interactions[3]
    assert submitted["request"]["headers"]["ocp-apim-subscription-key"] == ["[redacted]"]
    assert submitted["x-boogu"]["path"] == f"{SUBMIT}?subscription-key=[redacted]"
    assert PLAIN_TEXT in submitted["response"]["body"]["string"]
    assert submitted["request"]["body"] == '{"prompt":"my key is e"}'


def test_a_recording_with_the_key_in_the_query_replays(recording):
    """Replay redacts the asked path as the proxy did, so any key in the query matches `[redacted]`."""
    folder, interactions = recording
    poll = interactions[1]["x-boogu"]["path"].replace("[redacted]", "any-other-key")
    keyed = {"Ocp-Apim-Subscription-Key": "k"}  # recorded with the key in the header too
    with ReplayGateway(folder / "session.yaml") as replay, replay.http(headers=keyed) as http:
        polled = http.get(poll)
        downloaded = http.get("/files/echo.png?subscription-key=another-key")
        unmatched = http.get("/v2/requests/status/x?subscription-key=not-recorded-key")
    assert polled.status_code == 200 and polled.json()["status"] == "PROCESSING"
    assert downloaded.status_code == 200 and downloaded.content.startswith(b"\x89PNG")
    assert unmatched.status_code == 404 and "not-recorded-key" not in unmatched.text
    assert "subscription-key=[redacted]" in unmatched.json()["message"]
