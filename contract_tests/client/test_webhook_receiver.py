"""`python -m boogu.webhooks` / `WebhookReceiver`: the path it receives on is documented and configurable."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from boogu import webhooks
from boogu.webhooks import DEFAULT_PATH, WebhookReceiver, line_webhook_url, read_webhook_log, webhook_path

STATUS = {
    "request_id": "boogu-image_1",
    "status": "FAILED",
    "model_id": "boogu-image",
    "error": "flagged",
    "output": None,
}


def post(url: str, body: object = STATUS) -> int:
    return httpx.post(url, json=body, timeout=10).status_code


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


def test_a_request_line_that_is_not_utf8_is_a_404() -> None:
    with WebhookReceiver(path="/in") as receiver:
        host, port = receiver.url.split("//", 1)[1].split("/", 1)[0].split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            body = json.dumps(STATUS).encode()
            sock.sendall(
                b"POST /in\xff HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            assert sock.recv(64).startswith(b"HTTP/1.0 404")
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
