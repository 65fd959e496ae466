"""The replay and its cassette loader hold up against hostile cassettes and callers (issue 19)."""

from __future__ import annotations

import http.client
import os
import statistics
import subprocess
import threading
import time
import tracemalloc
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from boogu_contract.wire import ADMIN_PREFIX
from contract_tests.process_memory import memory_kib
from mock_gateway.contract_tools._cassette import (
    MAX_CASSETTE_BYTES,
    CassetteError,
    load,
)
from mock_gateway.contract_tools._replay import MAX_UNMATCHED, ReplayApp
from mock_gateway.testing import LiveServer, gateway_popen

ONE = "- request: {{method: GET, uri: 'http://g{path}'}}\n  response: {{status: {{code: 200}}, {rest}}}\n"


def cassette(folder: Path, body: str, name: str = "c.yaml") -> Path:
    path = folder / name
    path.write_text("version: 1\ninteractions:\n" + body)
    return path


def polls(count: int) -> str:
    """`count` status calls, each on its own request id, the shape of a long recorded session."""
    body = 'body: {{string: \'{{"request_id":"boogu-image_{n}","status":"COMPLETED"}}\'}}'
    return "".join(
        ONE.format(path=f"/v2/requests/status/boogu-image_{n}", rest=body.format(n=n)) for n in range(count)
    )


def test_unmatched_requests_are_kept_bounded(tmp_path):
    """2,000 unmatched requests with 60 KB paths once grew the replay by 461 MB."""
    path = cassette(tmp_path, polls(1))
    replay = gateway_popen(subcommand=["replay", str(path)], stderr=subprocess.DEVNULL)  # a line a miss
    with replay as (base_url, process):
        before = memory_kib(process.pid)["VmRSS"]
        # http.client rather than httpx, which takes 5 ms to build a request with a 60 KB path
        connection = http.client.HTTPConnection(urlsplit(base_url).netloc, timeout=10)
        for n in range(2000):
            connection.request("GET", f"/{n}" + "x" * 60_000)
            answer = connection.getresponse()
            assert answer.status == 404
            assert len(answer.read()) < 2000
        connection.close()
        grown_mib = (memory_kib(process.pid)["VmRSS"] - before) / 1024
        listed = httpx.get(f"{base_url}{ADMIN_PREFIX}/unmatched")
    assert len(listed.json()) == MAX_UNMATCHED
    assert listed.json()[-1]["path"].startswith("/1999xxx")
    assert len(listed.content) < MAX_UNMATCHED * 1200
    assert grown_mib < 40


def test_a_large_cassette_loads_fast_and_answers_by_index(tmp_path):
    """20k recordings: a miss once blocked the server 274 ms (a scan); load and match are bounded."""
    count = 20_000
    path = cassette(tmp_path, polls(count))
    started = time.perf_counter()
    app = ReplayApp.from_file(path)
    loaded = time.perf_counter() - started
    assert loaded < 6  # about 2 s on a loaded 2-core machine; PyYAML's events are most of it

    def lookup(path: str) -> float:
        started = time.perf_counter()
        app.matcher.match("GET", path, b"", False)
        return time.perf_counter() - started

    hits = [lookup(f"/v2/requests/status/boogu-image_{n}") for n in range(0, count, 20)]
    misses = [lookup(f"/v2/requests/status/unknown_{n}") for n in range(200)]
    assert statistics.median(hits) < 0.001 and statistics.median(misses) < 0.001
    server = LiveServer(app)
    server.start()
    try:
        with httpx.Client(base_url=server.base_url) as http:
            assert http.get("/v2/requests/status/boogu-image_7").json()["request_id"] == "boogu-image_7"
            timed = []
            for n in range(50):
                started = time.perf_counter()
                answer = http.get(f"/v2/requests/status/unknown_{n}")
                timed.append(time.perf_counter() - started)
                assert "closest recording is #1 GET /v2/requests/status/boogu-image_0" in answer.text
    finally:
        server.stop()
    assert statistics.median(timed) < 0.02


LAUGHS = [f"&l0 [{', '.join(['lol'] * 9)}]"] + [
    f"&l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 9)
]
BILLION_LAUGHS = [
    # aliases in x-boogu.path: its text was built from them
    ONE.format(path="/x", rest="body: {string: ''}")
    + "  x-boogu: {"
    + "".join(f"l{n}: {level}, " for n, level in enumerate(LAUGHS))
    + "path: *l8}\n",
    # a malformed `request`: its error message showed all of it
    f"- request: [{', '.join(LAUGHS)}]\n",
]


@pytest.mark.parametrize("entry", BILLION_LAUGHS, ids=["in x-boogu.path", "in a malformed request"])
def test_yaml_aliases_are_refused_at_once(tmp_path, entry):
    path = cassette(tmp_path, entry)
    assert path.stat().st_size < 1000
    tracemalloc.start()
    try:
        with pytest.raises(CassetteError, match=r"interaction #1: .*YAML aliases \(\*l0\) are not allowed"):
            load(path)
        assert tracemalloc.get_traced_memory()[1] < 1024 * 1024
    finally:
        tracemalloc.stop()


def test_a_media_file_is_read_once_however_many_entries_name_it(tmp_path):
    """One 8 MB file named by 250 entries once cost 2 GB."""
    (tmp_path / "c.media").mkdir()
    (tmp_path / "c.media" / "image.jpg").write_bytes(os.urandom(8 * 1024 * 1024))
    entry = ONE.format(path="/image", rest="body: {string: ''}")
    entry += "  x-boogu: {response_body_file: c.media/image.jpg}\n"
    path = cassette(tmp_path, entry * 250)
    tracemalloc.start()
    try:
        recordings = load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len({id(recording.response_body) for recording in recordings}) == 1
    assert peak < 12 * 1024 * 1024


def load_within(path: Path, seconds: float = 10) -> str:
    """The CassetteError that loading gives, failing (rather than hanging) if it takes too long."""
    errors: list[str] = []

    def run() -> None:
        try:
            load(path)
        except CassetteError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the load hangs"
    assert errors, "the cassette was accepted"
    return errors[0]


def media_entry(name: str) -> str:
    return ONE.format(path="/x", rest="body: {string: ''}") + f"  x-boogu: {{response_body_file: {name}}}\n"


def test_only_regular_files_within_budget_are_read(tmp_path):
    """A FIFO once hung the load forever; a 20 GB sparse file raised a bare MemoryError."""
    os.mkfifo(tmp_path / "fifo")
    assert "c.yaml: interaction #1: x-boogu.response_body_file: 'fifo': not a regular file" in load_within(
        cassette(tmp_path, media_entry("fifo"))
    )
    with (tmp_path / "huge.bin").open("wb") as handle:
        handle.truncate(20 * 1024**3)
    assert "'huge.bin': 21474836480 bytes, over the budget" in load_within(
        cassette(tmp_path, media_entry("huge.bin"))
    )
    assert "not a regular file" in load_within(tmp_path / "fifo")
    with (tmp_path / "big.yaml").open("wb") as handle:
        handle.truncate(MAX_CASSETTE_BYTES + 1)
    assert "over the budget" in load_within(tmp_path / "big.yaml")


GET = "- request: {method: GET, uri: /x}\n"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            GET + "  response: {status: {code: " + "2" * 5000 + "}}\n",
            "interaction #1: response.status.code: 5000 characters, over 64 for the type int",
        ),
        (
            GET + "  response: {status: {code: 200}}\n  x-boogu: {at: 2026-13-45 10:00:00}\n",
            "interaction #1: x-boogu.at: not a valid timestamp: '2026-13-45 10:00:00'",
        ),
        (
            GET + '  response: {status: {code: 200}, headers: {x-a: ["one\\r\\nSet-Cookie: x"]}}\n',
            "interaction #1: response.headers: x-a: not a valid HTTP header",
        ),
        (
            GET + '  response: {status: {code: 200}, headers: {"bad name": [x]}}\n',
            "interaction #1: response.headers: bad name: not a valid HTTP header",
        ),
        (
            GET + "  response: {status: {code: 204}, body: {string: 'surprise'}}\n",
            "interaction #1: response.body: a 204 answer has no body",
        ),
        (GET + "  response: {status: {code: 100}}\n", "response.status.code: an interim 100"),
        ("- request: [GET, /x]\n  response: {status: {code: 200}}\n", "#1: request: expected a mapping"),
        (
            GET + "  response: {status: {code: 200}}\n  x-boogu: {path: [/x]}\n",
            "interaction #1: x-boogu.path: expected text, got ['/x']",
        ),
        (
            GET + "  response: {status: {code: 200}, body: !!python/object:os.system {}}\n",
            "interaction #1: response.body: the tag tag:yaml.org,2002:python/object:os.system",
        ),
        (GET + "  response: {status: {code: 200}}\n---\nversion: 1\n", "a cassette is one YAML document"),
    ],
    ids=[
        "5000-digit status",
        "bad timestamp",
        "CR/LF",
        "header name",
        "204 body",
        "100",
        "request",
        "path",
        "tag",
        "two documents",
    ],
)
def test_every_malformed_field_is_a_cassette_error_naming_it(tmp_path, entry, message):
    with pytest.raises(CassetteError) as refused:
        load(cassette(tmp_path, entry))
    assert message in str(refused.value)
