"""Record through the proxy, then replay with the upstream stopped: the same answers, byte for byte."""

from __future__ import annotations

import asyncio
import hashlib
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
import vcr.serialize
from vcr.serializers import yamlserializer

from mock_gateway.contract_tools._cassette import CassetteError, CassetteWriter, Exchange, load
from mock_gateway.contract_tools._proxy import ContractProxy
from mock_gateway.contract_tools._replay import ReplayApp
from mock_gateway.testing import LiveServer, MockGateway, ReplayGateway

from .test_mock_upstream import EDIT, REFERENCE, STATUS, SUBMIT

Answers = list[tuple[int, bytes]]
ONE_GET = b"version: 1\ninteractions:\n- request: {method: GET, uri: /x}\n"


def reference_flow(base_url: str, key: str, advance: Callable[[float], object]) -> Answers:
    """Both submits to the end, the image download, sync mode and the error answers."""
    answers: Answers = []
    with httpx.Client(base_url=base_url, headers={"Ocp-Apim-Subscription-Key": key}) as http:

        def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
            response = http.request(method, path, **kwargs)
            answers.append((response.status_code, response.content))
            return response

        for path, body in (
            (SUBMIT, REFERENCE),
            (EDIT, {"prompt": "x", "image_url": "https://example.com/a.png"}),
        ):
            request_id = call("POST", path, json=body).json()["request_id"]
            call("GET", STATUS.format(request_id))
            advance(60)
            done = call("GET", STATUS.format(request_id)).json()
            for url in done["output"]["media_url"]:
                call("GET", urlsplit(url).path)
        call("POST", SUBMIT, json={"prompt": "x", "sync_mode": True, "seed": 7})
        call("POST", SUBMIT, json={"prompt": "x", "num_inference_steps": 60})
        call("GET", STATUS.format("boogu-image_unknown"))
        call("GET", STATUS.format("boogu-image_unknown"), headers={"Ocp-Apim-Subscription-Key": ""})
    return answers


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Answers]:
    cassette = tmp_path_factory.mktemp("cassettes") / "reference.yaml"
    with MockGateway(served=True) as gateway:
        proxy = ContractProxy(gateway.base_url, recorder=CassetteWriter(cassette), rewrite_media=True)
        server = LiveServer(proxy)
        server.start()
        try:
            answers = reference_flow(server.base_url, gateway.api_key, gateway.advance)
        finally:
            server.stop()
        assert [entry for entry in proxy.violations.entries() if entry["side"] == "response"] == []
    return cassette, answers


def test_replay_gives_the_same_bytes_with_the_upstream_stopped(recorded):
    cassette, answers = recorded
    with ReplayGateway(cassette) as replay:
        assert reference_flow(replay.base_url, "any-key", lambda seconds: None) == answers
        assert replay.app.unmatched == []
    assert {status for status, _ in answers} == {200, 202, 400, 401, 404}


def test_the_cassette_keeps_no_key_and_images_by_hash(recorded):
    cassette, _ = recorded
    text = cassette.read_text(encoding="utf-8")
    assert "test-key" not in text and "[redacted]" in text
    images = sorted((cassette.parent / "reference.media").iterdir())
    assert len(images) == 2
    for image in images:
        assert image.stem == hashlib.sha256(image.read_bytes()).hexdigest()
        assert f"reference.media/{image.name}" in text


def test_each_exchange_is_one_json_line(recorded):
    """The lines the loader reads with orjson rather than YAML's parser (a 100k cassette in 2 s)."""
    cassette, answers = recorded
    header, *lines = cassette.read_bytes().splitlines()[1:]
    assert header == b"interactions:" and len(lines) == len(answers)
    assert all(line.startswith(b"- {") and orjson.loads(line[2:])["request"] for line in lines)


def test_vcrpy_reads_the_cassette(recorded):
    cassette, answers = recorded
    requests, responses = vcr.serialize.deserialize(cassette.read_text(encoding="utf-8"), yamlserializer)
    assert len(requests) == len(answers)
    assert requests[0].method == "POST" and requests[0].path == SUBMIT
    assert responses[0]["status"]["code"] == 202 and responses[0]["body"]["string"] == answers[0][1]


def test_polls_past_the_last_recording_repeat_it(recorded):
    cassette, _ = recorded
    with ReplayGateway(cassette) as replay, replay.http(headers={"Ocp-Apim-Subscription-Key": "k"}) as http:
        request_id = http.post(SUBMIT, json=REFERENCE).json()["request_id"]
        polls = [http.get(STATUS.format(request_id)).json()["status"] for _ in range(4)]
    assert polls[0] in ("QUEUED", "PROCESSING") and polls[1:] == ["COMPLETED"] * 3


def test_an_unmatched_request_names_the_closest_recording(recorded):
    cassette, _ = recorded
    with ReplayGateway(cassette) as replay, replay.http(headers={"Ocp-Apim-Subscription-Key": "k"}) as http:
        response = http.post(SUBMIT, json={**REFERENCE, "num_images": 2})
        unmatched = http.get("/__mock/unmatched").json()
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "Not Recorded"
    assert f"closest recording is #1 POST {SUBMIT} → 202" in body["message"]
    assert "body /num_images (recorded 1, asked 2)" in body["message"]
    assert unmatched[0]["path"] == SUBMIT


def test_a_submit_without_the_key_is_not_the_recorded_one(recorded):
    cassette, _ = recorded
    with ReplayGateway(cassette) as replay, replay.http() as http:
        response = http.post(SUBMIT, json=REFERENCE)
    assert response.status_code == 404 and "the key header (recorded with)" in response.json()["message"]


async def test_concurrent_recording_keeps_every_exchange(tmp_path):
    cassette = tmp_path / "many.yaml"
    with MockGateway(served=True) as gateway:
        proxy = ContractProxy(gateway.base_url, recorder=CassetteWriter(cassette))
        headers = {"Ocp-Apim-Subscription-Key": gateway.api_key}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(proxy), base_url="http://proxy.test", headers=headers
        ) as http:
            answers = await asyncio.gather(*(http.post(SUBMIT, json={"prompt": f"p{i}"}) for i in range(25)))
        await proxy.aclose()
    assert {answer.status_code for answer in answers} == {202}
    recordings = load(cassette)
    assert len(recordings) == 25
    assert {r.request_id for r in recordings} == {a.json()["request_id"] for a in answers}


def test_a_body_that_echoes_the_key_is_blanked(tmp_path):
    writer = CassetteWriter(tmp_path / "c.yaml")
    secret = "sk-live-123"
    body = b'{"error":"Unauthorized","message":"key sk-live-123 is unknown"}'
    headers = [("content-type", "application/json")]
    writer.record(
        Exchange(
            "GET",
            "http://g/x",
            "/x",
            [("Ocp-Apim-Subscription-Key", secret)],
            b"",
            401,
            headers,
            body,
            secrets=[secret],
        )
    )
    text = (tmp_path / "c.yaml").read_text()
    assert secret not in text and "key [redacted] is unknown" in text


async def test_non_utf8_bodies_are_kept_beside_the_cassette(tmp_path):
    writer = CassetteWriter(tmp_path / "c.yaml")
    weird = b"\xff\xfe{not text"
    writer.record(
        Exchange("POST", "http://g/x", "/x", [("content-type", "application/json")], weird, 400, [], b"")
    )
    (recording,) = load(tmp_path / "c.yaml")
    assert recording.request_body == weird
    assert (await _answer(ReplayApp([recording]), "POST", "/x", weird)) == (400, b"")


@pytest.mark.parametrize("depth", [30, 600, 1000])
async def test_bodies_nested_hundreds_deep_are_matched_by_their_bytes(tmp_path, depth):
    """Reading a body as the document it means once walked it recursively: one nested 500 deep or more
    (orjson reads 1,024 levels) made the replay answer 500. Deeper than the mock reads JSON, a body
    is matched as sent, byte for byte."""
    writer = CassetteWriter(tmp_path / "c.yaml")
    nested = b"[" * depth + b"]" * depth
    headers = [("content-type", "application/json")]
    writer.record(Exchange("POST", "http://g/x", "/x", headers, nested, 201, [], b"recorded"))
    app = ReplayApp(load(tmp_path / "c.yaml"))
    assert (await _answer(app, "POST", "/x", nested)) == (201, b"recorded")
    status, body = await _answer(app, "POST", "/x", b"[" + nested + b"]")
    assert status == 404 and b"Not Recorded" in body


@pytest.mark.parametrize("number", [b"-9223372036854776833", b"1e20", b"18446744073709551616", b"4.0"])
async def test_numbers_beyond_64_bits_are_matched_not_a_500(tmp_path, number):
    """orjson reads an integer beyond 64 bits as a float; the float, made an integer again to match 4.0
    with 4, was one that orjson cannot write, and the replay answered 500."""
    writer = CassetteWriter(tmp_path / "c.yaml")
    headers = [("content-type", "application/json")]
    writer.record(
        Exchange("POST", "http://g/x", "/x", headers, b'{"seed": %s}' % number, 201, [], b"recorded")
    )
    app = ReplayApp(load(tmp_path / "c.yaml"))
    assert (await _answer(app, "POST", "/x", b'{"seed": %s}' % number)) == (201, b"recorded")
    status, _ = await _answer(app, "POST", "/x", number)
    assert status == 404


async def _answer(app: ReplayApp, method: str, path: str, body: bytes) -> tuple[int, bytes]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://replay.test") as http:
        response = await http.request(method, path, content=body)
    return response.status_code, response.content


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"interactions: [", "not a YAML cassette"),
        (b"version: 1\ninteractions: []\n# \xff\xfe not UTF-8\n", "not a YAML cassette"),
        (b"- just\n- a list\n", "expected a mapping"),
        (b"version: 2\ninteractions: []\n", "version: expected 1, got 2"),
        (
            b"version: 1\ninteractions:\n- request: {method: GET}\n  response: {}\n",
            "#1: request.uri: expected text",
        ),
        (
            ONE_GET + b"  response: {status: {code: 99}}\n",
            "response.status.code: expected 100 to 599",
        ),
        (
            ONE_GET + b"  response: {status: {code: 200}}\n"
            b"  x-boogu: {response_body_file: ../../etc/passwd}\n",
            "outside the cassette's folder",
        ),
        (b"version: 1\ninteractions: " + b"[" * 5000 + b"]" * 5000, "not a YAML cassette"),
        (b"version: 1\ninteractions:\n- 42\n", "#1: request: expected a mapping"),
    ],
)
def test_malformed_cassettes_are_refused_clearly(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(CassetteError, match=re.escape(message)):
        load(path)


def test_the_replay_command_refuses_a_malformed_cassette(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\ninteractions:\n- request: {}\n")
    done = subprocess.run(
        [sys.executable, "-m", "mock_gateway", "replay", str(path), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "bad.yaml: interaction #1: response: expected a mapping, got None" in done.stderr


async def test_concurrent_polls_get_each_recording_once_then_the_last(recorded):
    cassette, _ = recorded
    app = ReplayApp.from_file(cassette)
    headers = {"Ocp-Apim-Subscription-Key": "k"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://replay.test", headers=headers
    ) as http:
        request_id = (await http.post(SUBMIT, json=REFERENCE)).json()["request_id"]
        polls = await asyncio.gather(*(http.get(STATUS.format(request_id)) for _ in range(20)))
    statuses = sorted(poll.json()["status"] for poll in polls)
    assert statuses.count("COMPLETED") == 19 and len(set(statuses) - {"COMPLETED"}) == 1
