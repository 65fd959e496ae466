"""`python -m boogu.webhooks` / `WebhookReceiver`: the path it receives on is documented and configurable."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from boogu import webhooks
from boogu.webhooks import DEFAULT_PATH, WebhookReceiver, line_webhook_url, read_webhook_log, webhook_path
from boogu_contract import shared_tls_context
from tools.processes import memory_kib

STATUS = {
    "request_id": "boogu-image_1",
    "status": "FAILED",
    "model_id": "boogu-image",
    "error": "flagged",
    "output": None,
}


def post(url: str, body: object = STATUS) -> int:
    return httpx.post(url, json=body, timeout=10, verify=shared_tls_context()).status_code


def test_the_default_path_is_the_documented_one() -> None:
    with WebhookReceiver() as receiver:
        assert receiver.url.endswith("/boogu-webhook")
        assert post(receiver.url) == 204


def test_a_receiver_on_its_own_path_answers_404_everywhere_else() -> None:
    with WebhookReceiver(path="/hooks/boogu") as receiver:
        base = receiver.url.removesuffix("/hooks/boogu")
        assert receiver.url.endswith("/hooks/boogu")
        assert post(base + DEFAULT_PATH) == 404
        assert post(base + "/hooks/boogu/") == 404
        assert post(base + "/hooks/boogu?x=1") == 404
        assert receiver.received() == {}
        assert post(receiver.url) == 204
        assert receiver.wait_for("boogu-image_1", timeout=5).status == "FAILED"


def test_concurrent_deliveries_to_a_custom_path_all_arrive() -> None:
    bodies = [{**STATUS, "request_id": f"boogu-image_{n}"} for n in range(20)]
    with WebhookReceiver(path="/in") as receiver, ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda body: post(receiver.url, body), bodies))
        assert codes == [204] * 20
        assert len(receiver.received()) == 20


def test_a_request_line_that_is_not_ascii_is_a_400() -> None:
    with WebhookReceiver(path="/in") as receiver:
        host, port = receiver.url.split("//", 1)[1].split("/", 1)[0].split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            body = json.dumps(STATUS).encode()
            sock.sendall(
                b"POST /in\xff HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            assert sock.recv(64).startswith(b"HTTP/1.1 400 Bad Request")
        assert receiver.received() == {}


@pytest.mark.parametrize("path", ["/", "/boogu-webhook", "/hooks/boogu-1_a.b~c", "/" + "a" * 1023])
def test_webhook_path_accepts_url_paths(path: str) -> None:
    assert webhook_path(path) == path


@pytest.mark.parametrize(
    "path",
    ["", "hook", "/a b", "/a?x=1", "/a#top", "/café", "/a\nb", "/" + "a" * 1024, "//" + "/" * 5000],
    ids=["empty", "relative", "space", "query", "fragment", "non-ascii", "newline", "long", "huge"],
)
def test_webhook_path_refuses_what_no_request_line_would_match(path: str) -> None:
    with pytest.raises(ValueError, match="path must start with /"):
        webhook_path(path)
    with pytest.raises(ValueError, match="path must start with /"):
        WebhookReceiver(path=path)


def test_the_command_line_refuses_a_bad_path_naming_the_rule(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        webhooks.main(["--path", "hook"])
    assert exit_info.value.code == 2
    assert "argument --path: path must start with /" in capsys.readouterr().err


def test_the_command_line_documents_the_path(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        webhooks.main(["--help"])
    assert "(default: /boogu-webhook)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("suffix", "line"),
    [("/line-1%40ab", "line-1@ab"), ("/a%2Fb%20c%3F", "a/b c?"), ("/caf%C3%A9", "café")],
)
def test_a_path_below_the_receiver_names_the_line(suffix: str, line: str) -> None:
    with WebhookReceiver(path="/in") as receiver:
        assert post(receiver.url + suffix) == 204
        assert receiver.line_of("boogu-image_1") == line
        assert line_webhook_url(receiver.url, line) == receiver.url + suffix


@pytest.mark.parametrize("suffix", ["/", "/a/b", "/%ff", "/a?x=1", "x"])
def test_a_path_that_names_no_line_is_a_404(suffix: str) -> None:
    with WebhookReceiver(path="/in") as receiver:
        assert post(receiver.url + suffix) == 404
        assert receiver.received() == {}


def test_line_webhook_url_keeps_the_query() -> None:
    assert line_webhook_url("https://h/hook/?token=t", "k") == "https://h/hook/k?token=t"


def test_the_command_line_appends_each_delivery_with_its_line(tmp_path: Path) -> None:
    log = tmp_path / "hooks.jsonl"
    log.write_text('{"old": "line"}\n')
    receiver = subprocess.Popen(
        [sys.executable, "-m", "boogu.webhooks", "--port", "0", "--log", str(log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert receiver.stderr is not None
        url = receiver.stderr.readline().split()[-1]
        bodies = [{**STATUS, "request_id": f"boogu-image_{n}"} for n in range(8)]
        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(lambda n: post(line_webhook_url(url, f"k{n}"), bodies[n]), range(8)))
        assert codes == [204] * 8
    finally:
        receiver.terminate()
        receiver.wait(10)
    read = read_webhook_log(log)
    assert read.skipped == 1
    assert {line: list(jobs) for line, jobs in read.deliveries.items()} == {
        f"k{n}": [f"boogu-image_{n}"] for n in range(8)
    }


def address(url: str) -> tuple[str, int]:
    host, port = urlsplit(url).netloc.split(":")
    return host, int(port)


def status_line(url: str, request: bytes, timeout: float = 5) -> bytes:
    """The status line a raw `request` to the receiver at `url` is answered with (b"" if none)."""
    with socket.create_connection(address(url), timeout=timeout) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(request)
        return sock.makefile("rb").readline().strip()


@contextlib.contextmanager
def receiver_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`python -m boogu.webhooks --port 0 ARGS` and its URL; on exit, its stderr is checked for tracebacks."""
    process = subprocess.Popen(
        [sys.executable, "-m", "boogu.webhooks", "--port", "0", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    try:
        yield process, process.stderr.readline().split()[-1]
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert "Traceback" not in err


async def test_300_simultaneous_deliveries_are_all_answered_at_once() -> None:
    """Raw sockets, not httpx: in this process, 300 httpx connections cost more CPU than the receiver
    answering them (and it runs in a thread of this process), which made the figure the client's."""

    async def deliver(url: httpx.URL, n: int) -> bytes:
        body = json.dumps({**STATUS, "request_id": f"boogu-image_{n}"}).encode()
        reader, writer = await asyncio.open_connection(url.host, url.port)
        head = f"POST {url.raw_path.decode()} HTTP/1.1\r\nHost: {url.netloc.decode()}\r\n"
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        writer.write(head.encode() + body)
        answer = await reader.read()
        writer.close()
        return answer.split(b"\r\n", 1)[0]

    with WebhookReceiver() as receiver:
        url = httpx.URL(receiver.url)
        started = time.perf_counter()
        lines = await asyncio.gather(*(deliver(url, n) for n in range(300)))
        took = time.perf_counter() - started
        assert lines == [b"HTTP/1.1 204 No Content"] * 300
        assert len(receiver.received()) == 300
    print(f"300 simultaneous deliveries answered in {took:.2f} s")
    assert took < 2  # 0.3 s on a quiet 2-core machine; margin for a busy one


async def test_forged_megabyte_deliveries_leave_the_receiver_small(tmp_path: Path) -> None:
    """Kept in RAM: the recent deliveries up to KEEP_BYTES; the log file has them all."""
    log = tmp_path / "hooks.jsonl"
    big = {**STATUS, "error": "x" * (webhooks.MAX_BODY_BYTES - 200)}  # valid, just under the cap
    forged = [
        *({**big, "request_id": f"big_{n}"} for n in range(50)),
        *(b"{" + b"x" * 1_000_000 for _ in range(50)),  # not JSON
        *(b"x" * (webhooks.MAX_BODY_BYTES + 1) for _ in range(50)),  # over the cap
    ]
    with receiver_process("--log", str(log)) as (process, url):
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await client.post(url, json=STATUS)).status_code == 204
            before = memory_kib(process.pid)["VmRSS"] / 1024
            gate = asyncio.Semaphore(10)

            async def send(body: object) -> int:
                content = body if isinstance(body, bytes) else json.dumps(body).encode()
                async with gate:
                    return (await client.post(url, content=content)).status_code

            codes = await asyncio.gather(*(send(body) for body in forged))
        grown = memory_kib(process.pid)["VmRSS"] / 1024 - before
    assert codes == [204] * 50 + [400] * 50 + [413] * 50
    assert len(read_webhook_log(log).deliveries) == 0  # none named a line ...
    assert log.read_text().count('"request_id": "big_') == 50  # ... but every valid one is logged
    print(f"150 forged ~1 MB deliveries: RSS +{grown:.0f} MB")
    assert grown < 60


def test_stalled_connections_block_no_one_and_are_closed() -> None:
    threads = threading.active_count()
    body = json.dumps(STATUS).encode()
    with WebhookReceiver(read_timeout=0.5) as receiver:
        host, port = address(receiver.url)
        stalled = [socket.create_connection((host, port), timeout=5) for _ in range(50)]
        try:
            for n, sock in enumerate(stalled):  # half stop in the headers, half in the body
                head = b"POST /boogu-webhook HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % len(body)
                sock.sendall(head if n % 2 else head + b"\r\n" + body[:10])
            started = time.perf_counter()
            assert post(receiver.url) == 204
            assert time.perf_counter() - started < 1
            assert threading.active_count() <= threads + 1  # the receiver's one thread
            answers = [sock.makefile("rb").readline() for sock in stalled]
        finally:
            for sock in stalled:
                sock.close()
    assert answers == [b"HTTP/1.1 408 Request Timeout\r\n"] * 50


def test_malformed_deliveries_are_answered_without_a_traceback() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    deep_field = json.dumps(STATUS)[:-1] + ', "x": ' + "[" * 900 + "]" * 900 + "}"  # JSON parses it

    def post_raw(url: str, body: bytes, headers: bytes = b"") -> bytes:
        path = urlsplit(url).path.encode()
        head = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n" % (path, len(body), headers)
        return status_line(url, head + body)

    with receiver_process() as (_, url):
        path = urlsplit(url).path.encode()
        assert status_line(url, b"POST %s HTTP/1.1\r\nContent-Length: abc\r\n\r\n{}" % path).startswith(
            b"HTTP/1.1 400"
        )
        assert post_raw(url, deep) == b"HTTP/1.1 400 Bad Request"
        assert post_raw(url, deep_field.encode()) == b"HTTP/1.1 400 Bad Request"
        assert post_raw(url, b"{}", b"X-Big: " + b"a" * 20_000 + b"\r\n").startswith(b"HTTP/1.1 431")
        assert post_raw(url, b"x" * 2_000_000).startswith(b"HTTP/1.1 413")
        assert status_line(url, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).startswith(b"HTTP/1.1 405")
        # a HEAD's answer has no body: sending one left h11 in error, and the caller with no answer
        assert status_line(url, b"HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).startswith(b"HTTP/1.1 405")
        assert status_line(url, b"HEAD /%s HTTP/1.1\r\nHost: x\r\n\r\n" % (b"x" * 20_000)).startswith(
            b"HTTP/1.1 431"
        )
        assert post(url) == 204


def test_every_refusal_says_error_and_message_as_the_other_servers_do() -> None:
    with WebhookReceiver() as receiver, httpx.Client(timeout=10) as http:
        answers = [
            http.post(receiver.url, content=b"not json", headers={"content-type": "application/json"}),
            http.post(receiver.url, content=b""),
            http.post(receiver.url + "/../elsewhere/x", json=STATUS),
            http.get(receiver.url),
            http.post(receiver.url, content=b"x" * (webhooks.MAX_BODY_BYTES + 1)),
        ]
        unknown = http.post(receiver.url, json={**STATUS, "status": "PAUSED"})
    assert [answer.status_code for answer in answers] == [400, 400, 404, 405, 413]
    for answer in answers:
        body = answer.json()
        assert set(body) == {"error", "message"}, body
        assert body["error"] == answer.reason_phrase and body["message"]
    assert unknown.status_code == 202 and set(unknown.json()) == {"message"}  # taken: no error


def test_the_receiver_keeps_only_recent_deliveries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhooks, "KEEP", 5)
    with WebhookReceiver() as receiver:
        for n in range(8):
            assert post(line_webhook_url(receiver.url, f"k{n}"), {**STATUS, "request_id": f"r{n}"}) == 204
        assert list(receiver.received()) == [f"r{n}" for n in range(3, 8)]
        assert receiver.line_of("r7") == "k7"
        assert receiver.line_of("r0") is None
        with pytest.raises(TimeoutError):
            receiver.wait_for("r0", timeout=0.01)


def test_connections_past_the_cap_are_answered_503(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhooks, "MAX_CONNECTIONS", 2)
    with WebhookReceiver() as receiver:
        held = [socket.create_connection(address(receiver.url), timeout=5) for _ in range(2)]
        try:
            time.sleep(0.1)  # both accepted
            assert status_line(receiver.url, b"") == b"HTTP/1.1 503 Service Unavailable"
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.1)
        assert post(receiver.url) == 204


def test_bodies_past_the_buffer_cap_are_answered_503(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhooks, "MAX_BUFFERED_BYTES", 50)
    with WebhookReceiver() as receiver:
        answer = httpx.post(receiver.url, json=STATUS, timeout=10)
        assert (answer.status_code, answer.headers["Retry-After"]) == (503, "1")
        monkeypatch.setattr(webhooks, "MAX_BUFFERED_BYTES", 1000)
        assert post(receiver.url) == 204  # nothing stayed counted
        assert post(receiver.url) == 204


def test_stopping_with_deliveries_half_sent_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """Each connection's handler is cancelled mid-read when the receiver stops; Python 3.11's streams
    logged each as an exception in a callback, with its traceback."""
    with WebhookReceiver() as receiver:
        head = (
            b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
            % urlsplit(receiver.url).path.encode()
        )
        sockets = [socket.create_connection(address(receiver.url)) for _ in range(5)]
        for sock in sockets:
            sock.sendall(head)
        assert post(receiver.url) == 204  # the half-sent deliveries are being read meanwhile
    for sock in sockets:
        sock.close()
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR], caplog.text
