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
from mock_gateway.contract_tools._cassette import (
    MAX_CASSETTE_BYTES,
    CassetteError,
    CassetteWriter,
    Exchange,
    Matcher,
    Recording,
    load,
)
from mock_gateway.contract_tools._replay import MAX_UNMATCHED, ReplayApp
from mock_gateway.testing import LiveServer, gateway_popen
from tools.processes import memory_kib

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


def recorded_polls(folder: Path, count: int) -> Path:
    """`count` status calls as the proxy records them: its writer's line for one, numbered."""
    writer = CassetteWriter(folder / "one.yaml")
    body = b'{"request_id":"boogu-image_REQUEST","status":"COMPLETED","model_id":"boogu-image"}'
    writer.record(
        Exchange(
            "GET",
            "http://127.0.0.1:8080/v2/requests/status/boogu-image_REQUEST",
            "/v2/requests/status/boogu-image_REQUEST",
            [("ocp-apim-subscription-key", "key")],
            b"",
            200,
            [("content-type", "application/json")],
            body,
            operation="get_request_status",
            request_id="boogu-image_REQUEST",
        )
    )
    header, line = writer.path.read_text().split("- ")
    path = folder / "c.yaml"
    path.write_text(header + "".join(f"- {line}".replace("REQUEST", f"{n:06d}") for n in range(count)))
    return path


def test_a_recorded_100k_cassette_loads_in_seconds(tmp_path):
    """100k interactions once took 54 s and 1.8 GB, then 9.6 s of CPU through libyaml's events; the
    writer's JSON lines are read with orjson: about 2 s of CPU (thread time, so that other processes
    on a busy machine do not count)."""
    path = recorded_polls(tmp_path, 100_000)
    assert path.stat().st_size > 50 * 1024 * 1024
    started = time.thread_time()
    recordings = load(path)
    assert time.thread_time() - started < 6
    assert len(recordings) == 100_000
    assert recordings[-1].path == "/v2/requests/status/boogu-image_099999" and recordings[-1].has_key
    assert b'"request_id":"boogu-image_099999"' in recordings[-1].response_body


def test_a_large_cassette_loads_fast_and_answers_by_index(tmp_path):
    """20k recordings in YAML (not the writer's JSON lines): a miss once blocked the server 274 ms (a
    scan); load and match are bounded."""
    count = 20_000
    path = cassette(tmp_path, polls(count))
    started = time.thread_time()
    app = ReplayApp.from_file(path)
    assert time.thread_time() - started < 6  # about 1 s of CPU; libyaml's events are most of it

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


def test_the_index_costs_what_its_bodies_hold():
    """The index keeps each recorded body's canonical text: in a copy of its size, not in orjson's
    4 KiB buffer."""
    recordings = [
        Recording(n, "POST", "/x", b'{"prompt": "p%d"}' % n, True, 202, [], b"{}", None, None)
        for n in range(2000)
    ]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        matcher = Matcher(recordings)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    found = matcher.match("POST", "/x", b'{"prompt":"p7"}', True)
    assert isinstance(found, Recording) and found.index == 7
    assert grown / len(recordings) < 1024


JSON_GET = '- {"request":{"method":"GET","uri":"/x"},"response":{"status":{"code":200}%s}%s}\n'


@pytest.mark.parametrize(
    "entry",
    [
        JSON_GET % (',"headers":{"x-a":[1e+20]}', ""),  # text to YAML 1.1
        JSON_GET % (',"body":{"string":"a\u2028b\u0085c"}', ""),  # line breaks to YAML
        JSON_GET % (',"body":{"string":"a\\/b"}', ""),  # not as orjson writes it
        JSON_GET % ("", ',"x-boogu":{"path":"/a","path":"/b"}'),
        JSON_GET % ("", ',\t"x-boogu":{}'),
        JSON_GET % ("", ',"x-boogu":{"deep":' + "[" * 31 + "]" * 31 + "}"),
        JSON_GET % ("", ',"x-boogu":{"deep":' + "[" * 29 + "]" * 29 + "}"),
        JSON_GET % ("", "") + "- &a {}\n",
    ],
    ids=["exponent", "line breaks", "escaped slash", "same key twice", "tab", "too deep", "deep", "anchor"],
)
def test_json_lines_mean_what_yaml_reads(tmp_path, entry):
    """The writer's lines are read with orjson; what YAML reads otherwise goes to the YAML parser."""

    def outcome(text: str) -> object:
        try:
            return load(cassette(tmp_path, text))
        except CassetteError as exc:
            return str(exc)

    assert outcome(entry) == outcome("# read by YAML only\n" + entry)


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
        (
            "- request: {method: GET, uri: 'http://[gw.example/x'}\n  response: {status: {code: 200}}\n",
            "interaction #1: request.uri: 'http://[gw.example/x' is no URL (Invalid IPv6 URL)",
        ),
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
        "uri",
    ],
)
def test_every_malformed_field_is_a_cassette_error_naming_it(tmp_path, entry, message):
    with pytest.raises(CassetteError) as refused:
        load(cassette(tmp_path, entry))
    assert message in str(refused.value)


def test_an_exchange_that_yaml_reads_otherwise_is_written_in_block_yaml(tmp_path):
    """A body with U+2028 (a line break to YAML, not to JSON) keeps its bytes through the YAML path."""
    writer = CassetteWriter(tmp_path / "c.yaml")
    for body in ('{"a":"line\u2028separator"}', '{"a":"plain"}'):
        headers = [("content-type", "application/json")]
        writer.record(Exchange("GET", "http://g/x", "/x", [], b"", 200, headers, body.encode()))
    lines = writer.path.read_text(encoding="utf-8").splitlines()
    assert lines[2] == "- request:" and lines[-1].startswith("- {")
    assert [r.response_body.decode() for r in load(writer.path)] == [
        '{"a":"line\u2028separator"}',
        '{"a":"plain"}',
    ]
