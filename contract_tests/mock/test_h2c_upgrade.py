"""Requests that offer an upgrade to h2c, as Java's HttpClient does by default over plain http, are
served as HTTP/1.1 with their whole body, by the mock, the validating proxy and the replay alike.

uvicorn's httptools protocol dropped the body of such a request (uvicorn#2722): a JDK client's submit
was answered `400 Invalid JSON`. The tests speak raw HTTP/1.1 over a socket with timeouts, so that a
regression fails rather than hangs; each server runs as its own process, from the command line.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from contract_tests.spec_helpers import in_ci
from mock_gateway.contract_tools._cassette import CassetteWriter
from mock_gateway.contract_tools._proxy import ContractProxy
from mock_gateway.testing import LiveServer, gateway_process

SUBMIT = "/boogu-image/v1/boogu-image-request"
STATUS = "/v2/requests/status/{}"
HEALTH = "/__mock/health"
KEY = "test-key"
BODY = b'{"prompt":"a red fox"}'
MALFORMED = b'{"prompt": "a red fox",'
TIMEOUT = 10.0
"""Seconds a socket waits for the server: past it, the test fails (a hang is the regression)."""
OFFER = (
    "Connection: Upgrade, HTTP2-Settings",
    "HTTP2-Settings: AAEAAEAAAAIAAAAAAAMAAAAAAAQBAAAAAAUAAEAAAAYABgAA",
    "Upgrade: h2c",
)
"""The offer exactly as the JDK's HttpClient (17) makes it, with its default settings."""
SERVERS = ["mock", "proxy", "replay"]
FRAMINGS = ["content-length", "chunked"]


def head(method: str, path: str, host: str, framing: str | None = None, length: int = 0) -> bytes:
    """A request's head as the JDK writes it: its headers in its order, the offer among them."""
    connection, settings, upgrade = OFFER
    lines = [f"{method} {path} HTTP/1.1", connection]
    if framing == "content-length":
        lines.append(f"Content-Length: {length}")
    lines += [f"Host: {host}", settings, upgrade, "User-Agent: Java-http-client/17.0.15"]
    if framing is not None:
        lines.append("Content-Type: application/json")
    if framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
    lines.append(f"Ocp-Apim-Subscription-Key: {KEY}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def request(
    method: str, path: str, host: str, body: bytes | None = None, framing: str = "content-length"
) -> bytes:
    """A whole request; a chunked body in two chunks, so that a chunk boundary falls inside the JSON."""
    if body is None:
        return head(method, path, host)
    if framing == "content-length":
        return head(method, path, host, framing, len(body)) + body
    half = len(body) // 2
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:half], body[half:]))
    return head(method, path, host, framing) + chunks + b"0\r\n\r\n"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One raw HTTP/1.1 connection: requests written as bytes, answers read back one at a time."""

    def __init__(self, base_url: str) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.host = f"{host}:{port}"
        self.sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each piece its own packet
        self._buffer = b""

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, *pieces: bytes, pause: float = 0.0) -> None:
        for index, piece in enumerate(pieces):
            if index and pause:
                time.sleep(pause)
            self.sock.sendall(piece)

    def answer(self) -> Answer:
        """The next answer; EOFError when the server closes the connection first."""
        status_line, *lines = self._until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = self._exactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while size := int(self._until(b"\r\n").split(b";")[0], 16):
                body += self._exactly(size)
                self._exactly(2)
            self._until(b"\r\n")
        else:
            body = self.rest()
        return Answer(int(status_line.split()[1]), headers, body)

    def rest(self) -> bytes:
        """Everything until the server closes the connection (a timeout fails the test)."""
        while chunk := self.sock.recv(65536):
            self._buffer += chunk
        rest, self._buffer = self._buffer, b""
        return rest

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(f"the server closed the connection; unread: {self._buffer!r}")
        self._buffer += chunk

    def _until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            self._fill()
        taken, self._buffer = self._buffer.split(marker, 1)
        return taken

    def _exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        taken, self._buffer = self._buffer[:size], self._buffer[size:]
        return taken


def served_plainly(answer: Answer) -> None:
    """Answered as HTTP/1.1, the offer ignored: no 101, no upgrade announced, the connection kept."""
    assert answer.status != 101
    assert "upgrade" not in answer.headers
    assert "upgrade" not in answer.headers.get("connection", "").lower()
    assert "close" not in answer.headers.get("connection", "").lower()


# The three servers, each a process of its own -----------------------------------------------------


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    with gateway_process() as base_url:
        yield base_url


@pytest.fixture(scope="module")
def proxy_url(mock_url: str) -> Iterator[str]:
    with gateway_process("--upstream", mock_url, subcommand=["proxy"]) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def cassette(mock_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the tests ask, recorded through the proxy from the mock: a submit, its status, bad JSON."""
    path = tmp_path_factory.mktemp("h2c") / "h2c.yaml"
    server = LiveServer(ContractProxy(mock_url, recorder=CassetteWriter(path)))
    server.start()
    try:
        with httpx.Client(base_url=server.base_url, headers={"Ocp-Apim-Subscription-Key": KEY}) as http:
            json_type = {"Content-Type": "application/json"}
            submitted = http.post(SUBMIT, content=BODY, headers=json_type)
            assert submitted.status_code == 202
            assert http.get(STATUS.format(submitted.json()["request_id"])).status_code == 200
            assert http.post(SUBMIT, content=MALFORMED, headers=json_type).status_code == 400
    finally:
        server.stop()
    return path


@pytest.fixture(scope="module")
def replay_url(cassette: Path) -> Iterator[str]:
    with gateway_process(str(cassette), subcommand=["replay"]) as base_url:
        yield base_url


@pytest.fixture(params=SERVERS)
def base_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


# The body arrives whole ---------------------------------------------------------------------------


@pytest.mark.parametrize("framing", FRAMINGS)
def test_a_submit_with_an_h2c_offer_is_served_with_its_body(base_url: str, framing: str) -> None:
    with Connection(base_url) as connection:
        connection.send(request("POST", SUBMIT, connection.host, BODY, framing))
        answer = connection.answer()
    assert answer.status == 202, answer
    assert answer.json()["request_id"]
    served_plainly(answer)


@pytest.mark.parametrize("framing", FRAMINGS)
def test_a_body_split_across_packets_arrives_whole(base_url: str, framing: str) -> None:
    """The JDK sends the head and the body apart; here the head, inside the offer, and the body are cut."""
    with Connection(base_url) as connection:
        whole = request("POST", SUBMIT, connection.host, BODY, framing)
        head_end = whole.index(b"\r\n\r\n") + 4
        cut = whole.index(b"Upgrade: h2c") + 5
        body = whole[head_end:]
        pieces = [whole[:cut], whole[cut:head_end], body[:3], body[3:12], body[12:]]
        connection.send(*pieces, pause=0.05)
        answer = connection.answer()
    assert answer.status == 202, answer
    served_plainly(answer)


def test_the_next_request_on_the_connection_is_served(base_url: str) -> None:
    with Connection(base_url) as connection:
        connection.send(request("POST", SUBMIT, connection.host, BODY))
        submitted = connection.answer()
        assert submitted.status == 202, submitted
        served_plainly(submitted)
        connection.send(request("GET", STATUS.format(submitted.json()["request_id"]), connection.host))
        status = connection.answer()
    assert status.status == 200, status
    assert status.json()["request_id"] == submitted.json()["request_id"]
    served_plainly(status)


def test_pipelined_offers_are_served_in_order(base_url: str) -> None:
    """Two requests in one packet: the bytes after the first offer's body are the second request."""
    with Connection(base_url) as connection:
        connection.send(
            request("POST", SUBMIT, connection.host, BODY, "chunked")
            + request("GET", HEALTH, connection.host)
        )
        first, second = connection.answer(), connection.answer()
    assert (first.status, second.status) == (202, 200), (first, second)
    assert second.json()["status"] == "ok"


# A malformed body after the offer -------------------------------------------------------------------


@pytest.mark.parametrize("framing", FRAMINGS)
def test_malformed_json_after_the_offer_is_answered_400(base_url: str, framing: str) -> None:
    with Connection(base_url) as connection:
        connection.send(request("POST", SUBMIT, connection.host, MALFORMED, framing))
        answer = connection.answer()
        connection.send(request("GET", HEALTH, connection.host))  # its body was not taken for a request
        health = connection.answer()
    assert answer.status == 400, answer
    assert set(answer.json()) == {"error", "message"}
    assert answer.json()["error"] == "Invalid JSON"
    assert health.status == 200, health


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param(b"zz\r\n" + BODY + b"\r\n0\r\n\r\n", id="size-not-hex"),
        pytest.param(b"3\r\n" + BODY + b"\r\n0\r\n\r\n", id="chunk-longer-than-its-size"),
    ],
)
def test_a_broken_chunk_after_the_offer_is_refused_without_hanging(base_url: str, chunks: bytes) -> None:
    with Connection(base_url) as connection:
        connection.send(head("POST", SUBMIT, connection.host, "chunked"), chunks, pause=0.05)
        try:
            answer: Answer | None = connection.answer()
        except EOFError:
            answer = None  # closed without a word: allowed
        leftover = connection.rest()  # and then closed: a timeout here fails the test
    assert answer is None or answer.status == 400, answer
    assert leftover == b""


# What is not an h2c offer ---------------------------------------------------------------------------


def test_a_websocket_upgrade_is_still_uvicorns(mock_url: str) -> None:
    """uvicorn hands a websocket handshake to its websocket protocol, and the mock refuses it (403),
    rather than serving it as an HTTP request (which would answer the health check 200)."""
    with Connection(mock_url) as connection:
        connection.send(
            f"GET {HEALTH} HTTP/1.1\r\nHost: {connection.host}\r\nConnection: Upgrade\r\n"
            "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        answer = connection.answer()
    assert answer.status == 403, answer


# The real client ------------------------------------------------------------------------------------

JAVA_CLIENT = """
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

public class H2cSubmit {
    public static void main(String[] args) throws Exception {
        HttpRequest request = HttpRequest.newBuilder(URI.create(args[0]))
            .timeout(Duration.ofSeconds(20))
            .header("Ocp-Apim-Subscription-Key", "test-key")
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString("{\\"prompt\\":\\"a red fox\\"}"))
            .build();
        HttpResponse<String> response =
            HttpClient.newHttpClient().send(request, HttpResponse.BodyHandlers.ofString());
        System.out.println(response.statusCode());
        System.out.println(response.version());
        System.out.println(response.body());
    }
}
"""


def java_major(java: str) -> int:
    """The major version of a `java` launcher: 8 for `1.8.0_412`, 17 for `17.0.15`."""
    shown = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60).stderr
    found = re.search(r'version "(\d+)(?:\.(\d+))?', shown)
    if found is None:
        return 0
    major, minor = int(found[1]), int(found[2] or 0)
    return minor if major == 1 else major


def require_java() -> str:
    """`java` 11+ (it runs a source file without a build); skip without it, fail under CI."""
    java = shutil.which("java")
    if java is not None and java_major(java) >= 11:
        return java
    reason = "Java 11+ not found on PATH: the JDK's HttpClient test needs `java`"
    if in_ci():
        pytest.fail(f"{reason} (CI is set: missing is a failure there)")
    pytest.skip(reason)


def test_the_jdk_http_client_submits(mock_url: str, tmp_path: Path) -> None:
    java = require_java()
    source = tmp_path / "H2cSubmit.java"
    source.write_text(JAVA_CLIENT, encoding="utf-8")
    run = subprocess.run(
        [java, str(source), f"{mock_url}{SUBMIT}"], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    status, version, body = run.stdout.splitlines()[:3]
    assert (status, version) == ("202", "HTTP_1_1"), run.stdout
    assert json.loads(body)["request_id"]
    journal = httpx.get(f"{mock_url}/__mock/requests", timeout=TIMEOUT).json()
    (entry,) = [entry for entry in journal if entry["request_id"] == json.loads(body)["request_id"]]
    assert "http2-settings" in entry["headers"]  # the JDK did offer h2c
    assert entry["body"] == {"prompt": "a red fox"}
