"""The `boogu` command: each command against the mock, an exit code per kind of failure, --json that
parses as a RequestStatus, and a batch killed mid-run and resumed without a double charge."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from boogu_image_client.models import RequestStatus
from PIL import Image

from boogu.cli import ExitCode, main
from boogu.webhooks import WebhookReceiver, log_record
from contract_tests.client.helpers import image_bytes, journal
from contract_tests.conftest import audit
from mock_gateway.model._config import MockConfig
from mock_gateway.testing import MockGateway, gateway_process

BOOGU = Path(sys.executable).with_name("boogu")
PRICE = Decimal("0.02")
SETTINGS = {"speed": 100, "rate_limit": None, "fault_rate": 0.0, "error_rate": 0.0}


@pytest.fixture(scope="module")
def served() -> Iterator[MockGateway]:
    with MockGateway(MockConfig().updated(SETTINGS), served=True) as gateway:
        yield gateway


@pytest.fixture
def gateway(served: MockGateway, monkeypatch: pytest.MonkeyPatch) -> Iterator[MockGateway]:
    """A served mock that `boogu` finds through the environment, as a user would configure it.

    One server for the module, reset for each test (quicker than a server each); what each test
    made it answer is still checked against openapi.yaml.
    """
    served.backend.configure(SETTINGS)
    served.backend.reset()
    monkeypatch.setenv("BOOGU_API_KEY", served.api_key)
    monkeypatch.setenv("BOOGU_BASE_URL", served.base_url)
    yield served
    audit(served)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`boogu ARGV` in-process, told the mock's pace so that it polls on time rather than a second late."""
    code = main([*argv, "--seconds-per-step", "0.005"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def admin(gateway: MockGateway, method: str, path: str, **kwargs: Any) -> Any:
    with gateway.http() as http:
        response = http.request(method, f"/__mock/{path}", **kwargs)
        response.raise_for_status()
        return response.json()


def test_generate_downloads_and_prints_the_files(
    gateway: MockGateway, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(
        capsys, "generate", "a red fox", "-n", "2", "--format", "png", "--out", str(tmp_path)
    )
    assert code == ExitCode.OK
    files = [Path(line) for line in out.splitlines()]
    assert len(files) == 2 and all(path.parent == tmp_path and path.suffix == ".png" for path in files)
    for path in files:
        with Image.open(path) as image:
            assert image.format == "PNG"
    assert "COMPLETED" in err and "2 images saved" in err


def test_json_output_is_the_finished_status_object(
    gateway: MockGateway, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "generate", "a red fox", "--json", "--out", str(tmp_path), "--size", "640x480")
    assert code == ExitCode.OK
    status = RequestStatus.from_dict(json.loads(out))
    assert status.status == "COMPLETED" and status.output is not None
    request_id = status.request_id

    code, out, _ = run(capsys, "status", request_id, "--json")
    assert RequestStatus.from_dict(json.loads(out)).to_dict() == status.to_dict()
    code, out, _ = run(capsys, "wait", request_id, "--json")
    assert code == ExitCode.OK and json.loads(out) == status.to_dict()
    code, out, _ = run(capsys, "status", request_id)
    assert out.split() == [request_id, "COMPLETED"]
    code, out, _ = run(capsys, "download", request_id, "--out", str(tmp_path / "again"))
    with Image.open(out.strip()) as image:
        assert image.size == (640, 480)


def test_edit_a_local_file(gateway: MockGateway, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "in.png").write_bytes(image_bytes("PNG", (40, 30)))
    code, out, _ = run(
        capsys, "edit", "make it snowy", str(tmp_path / "in.png"), "--out", str(tmp_path / "out")
    )
    assert code == ExitCode.OK and Path(out.strip()).name.startswith("boogu-image-edit_")


def test_no_download_prints_the_urls(gateway: MockGateway, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "generate", "a fox", "--no-download")
    assert code == ExitCode.OK and out.strip().startswith(gateway.base_url + "/media/")


def prepare(gateway: MockGateway, case: str) -> list[str]:
    """Set the mock up for one failure; the arguments that meet it."""
    if case == "insufficient_balance":
        admin(gateway, "POST", "keys", json={"key": "poor", "balance": 0})
        return ["generate", "x", "--api-key", "poor"]
    if case == "forbidden":
        admin(gateway, "POST", "keys", json={"key": "off", "enabled": False})
        return ["generate", "x", "--api-key", "off"]
    if case == "rate_limited":
        admin(gateway, "PATCH", "config", json={"rate_limit": {"rate": 0.01, "burst": 1}})
        admin(gateway, "PATCH", "config", json={"rate_limit": {"rate": 0.01, "burst": 1}})
        with gateway.http(headers={"Ocp-Apim-Subscription-Key": gateway.api_key}) as http:
            http.get("/v2/requests/status/boogu-image_x")  # spends the only token
        return ["status", "boogu-image_x", "--max-retries", "0"]
    if case == "server_error":
        admin(gateway, "PATCH", "config", json={"fault_rate": 1.0})
        return ["status", "boogu-image_x", "--max-retries", "0"]
    if case == "job_error":
        admin(gateway, "PATCH", "config", json={"error_rate": 1.0})
        return ["generate", "x", "--no-download"]
    if case == "wait_timeout":
        admin(gateway, "PATCH", "config", json={"speed": 1})
        return ["generate", "x", "--timeout", "0.3"]
    if case == "not_finished":
        admin(gateway, "PATCH", "config", json={"speed": 1})
        with gateway.http(headers={"Ocp-Apim-Subscription-Key": gateway.api_key}) as http:
            request_id = http.post("/boogu-image/v1/boogu-image-request", json={"prompt": "x"}).json()[
                "request_id"
            ]
        return ["download", request_id]
    return {
        "bad_request": ["generate", "x", "--steps", "99"],
        "unauthorized": ["generate", "x", "--api-key", "nobody"],
        "not_found": ["status", "boogu-image_nope"],
        "job_failed": ["generate", "nsfw", "--no-download"],
        "connection_error": [
            "status",
            "x",
            "--base-url",
            f"http://127.0.0.1:{closed_port()}",
            "--max-retries",
            "0",
        ],
    }[case]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("bad_request", "num_inference_steps: 99 is greater than the maximum of 50"),
        ("unauthorized", "401 Unauthorized"),
        ("forbidden", "403 Forbidden"),
        ("insufficient_balance", "402 Insufficient Balance"),
        ("not_found", "404 Not Found"),
        ("rate_limited", "429 Too Many Requests"),
        ("server_error", "500 Internal Server Error"),
        ("connection_error", "ConnectError"),
        ("job_failed", "ended FAILED"),
        ("job_error", "ended ERROR"),
        ("wait_timeout", "did not finish within 0.3 s"),
        ("not_finished", "not finished yet"),
    ],
)
def test_each_failure_has_its_exit_code_and_one_line(
    gateway: MockGateway, capsys: pytest.CaptureFixture[str], case: str, message: str
) -> None:
    code, out, err = run(capsys, *prepare(gateway, case))
    assert code == ExitCode[case.upper()]
    lines = err.strip().splitlines()
    assert lines[-1].startswith(f"boogu: {case.replace('_', ' ')}: ") and message in lines[-1]
    assert out == ""


def test_codes_are_distinct() -> None:
    codes = [code.value for code in ExitCode]
    assert len(codes) == len(set(codes))


def test_a_failed_job_with_json_still_prints_its_status(
    gateway: MockGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "generate", "nsfw", "--json")
    assert code == ExitCode.JOB_FAILED
    assert RequestStatus.from_dict(json.loads(out)).status == "FAILED"


def test_no_key_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("BOOGU_API_KEY", raising=False)
    code, _, err = run(capsys, "status", "x")
    assert code == ExitCode.USAGE and "BOOGU_API_KEY" in err


def test_retries_are_shown(gateway: MockGateway, capsys: pytest.CaptureFixture[str]) -> None:
    admin(gateway, "PATCH", "config", json={"fault_rate": 1.0})
    code, _, err = run(capsys, "status", "boogu-image_x", "--max-retries", "1")
    assert code == ExitCode.SERVER_ERROR
    assert "retrying get_request_status" in err and "HTTP 500" in err


# The console script, as other tools call it -------------------------------------------------


@pytest.fixture(scope="module")
def gateway_process_url() -> Iterator[str]:
    with gateway_process("--speed", "50") as url:
        yield url


@pytest.fixture
def gateway_url(gateway_process_url: str) -> str:
    """The mock as a process of its own (so a batch can be killed), fresh for each test."""
    httpx.post(f"{gateway_process_url}/__mock/reset").raise_for_status()
    return gateway_process_url


def env_for(url: str) -> dict[str, str]:
    return {**os.environ, "BOOGU_API_KEY": "test-key", "BOOGU_BASE_URL": url, "NO_PROXY": "127.0.0.1"}


def test_console_script_generate(gateway_url: str, tmp_path: Path) -> None:
    env = {key: value for key, value in env_for(gateway_url).items() if key != "BOOGU_BASE_URL"}
    done = subprocess.run(
        [str(BOOGU), "generate", "a prompt", "--base-url", gateway_url, "--out", str(tmp_path / "images")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    files = [Path(line) for line in done.stdout.splitlines()]
    assert files and all(path.parent == tmp_path / "images" and path.is_file() for path in files)


# Batches ------------------------------------------------------------------------------------


def write_batch(path: Path, count: int) -> list[str]:
    prompts = [f"batch fox {i}" for i in range(count)]
    lines = [
        json.dumps({"prompt": prompt, "seed": i, "num_images": 1 + i % 2}) for i, prompt in enumerate(prompts)
    ]
    path.write_text("\n".join(lines) + "\n")
    return prompts


def journal_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip().endswith("}")]


def ledger(url: str) -> tuple[Decimal, list[dict[str, Any]]]:
    charged = Decimal(httpx.get(f"{url}/__mock/keys/test-key").json()["charged"])
    submits = [e for e in httpx.get(f"{url}/__mock/requests").json() if e["method"] == "POST"]
    return charged, submits


def start_batch(url: str, source: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    command = [str(BOOGU), "batch", str(source), "--out", str(out), "--concurrency", "2", "--json"]
    command += ["--seconds-per-step", "0.01", *extra]
    return subprocess.Popen(
        command, env=env_for(url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def kill_when_accepted(process: subprocess.Popen[str], journal_path: Path, count: int, signum: int) -> None:
    deadline = time.monotonic() + 30
    while sum(e["event"] == "accepted" for e in journal_events(journal_path)) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the batch never got going"
        time.sleep(0.02)
    process.send_signal(signum)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_batch_killed_and_resumed_resubmits_nothing_and_loses_nothing(
    gateway_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    signum: int,
) -> None:
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    prompts = write_batch(source, 6)
    process = start_batch(gateway_url, source, out)
    kill_when_accepted(process, out / "batch-journal.jsonl", 2, signum)
    first_stdout, _ = process.communicate(timeout=30)
    if signum == signal.SIGTERM:  # a graceful stop: the journal is complete, and a summary is printed
        assert process.returncode == ExitCode.INTERRUPTED
        assert json.loads(first_stdout)["interrupted"] is True
    else:
        assert process.returncode == -signal.SIGKILL
    events = journal_events(out / "batch-journal.jsonl")
    assert 2 <= sum(e["event"] == "accepted" for e in events) < 6  # killed mid-run

    monkeypatch.setenv("BOOGU_API_KEY", "test-key")
    monkeypatch.setenv("BOOGU_BASE_URL", gateway_url)
    code, stdout, _ = run(capsys, "batch", str(source), "--out", str(out), "--json", "-q")
    summary = json.loads(stdout)
    charged, submits = ledger(gateway_url)

    accepted_prompts = [e["body"]["prompt"] for e in submits if e["status"] == 202]
    assert len(accepted_prompts) == len(set(accepted_prompts))  # no line was accepted twice
    images = {prompt: 1 + i % 2 for i, prompt in enumerate(prompts)}
    assert charged == PRICE * sum(images[p] for p in accepted_prompts)  # no double charge
    completed_lines = {int(Path(name).name.split("_")[0].removeprefix("line-")) for name in summary["files"]}
    completed_prompts = {prompts[line - 1] for line in completed_lines}
    assert summary["completed"] == len(completed_prompts)
    assert len(summary["files"]) == sum(images[p] for p in completed_prompts)
    for name in summary["files"]:
        with Image.open(name) as image:
            image.verify()
    if signum == signal.SIGTERM:  # nothing was on the wire unanswered: every line completes, once
        assert code == ExitCode.OK
        assert sorted(accepted_prompts) == sorted(prompts) and len(submits) == 6
        assert completed_prompts == set(prompts)
    else:
        # A submit on the wire at the SIGKILL leaves its line uncertain (it may exist, charged, with an
        # id nobody recorded); it is reported, not submitted again. Everything else completes.
        assert summary["uncertain"] <= 2
        assert summary["completed"] + summary["uncertain"] == 6
        assert code == (ExitCode.OK if summary["uncertain"] == 0 else ExitCode.BATCH_INCOMPLETE)


def test_a_finished_batch_run_again_does_nothing(
    gateway: MockGateway, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "jobs.jsonl"
    source.write_text('{"prompt": "one", "id": "first"}\n{"prompt": "nsfw", "id": "flagged"}\n')
    code, out, _ = run(capsys, "batch", str(source), "--out", str(tmp_path / "out"), "--json")
    summary = json.loads(out)
    assert code == ExitCode.BATCH_INCOMPLETE
    assert (summary["completed"], summary["failed"], summary["charged_images"]) == (1, 1, 2)
    assert summary["files"] == [str(tmp_path / "out" / "first_0.jpg")]
    calls = len(admin(gateway, "GET", "requests"))
    code, out, _ = run(capsys, "batch", str(source), "--out", str(tmp_path / "out"), "--json")
    assert json.loads(out) == summary
    assert len(admin(gateway, "GET", "requests")) == calls  # nothing submitted, nothing polled


def test_a_bad_batch_file_submits_nothing(
    gateway: MockGateway, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "jobs.jsonl"
    source.write_text('{"prompt": "fine"}\n{"prompt": "typo", "num_image": 2}\n')
    code, _, err = run(capsys, "batch", str(source), "--out", str(tmp_path / "out"))
    assert code == ExitCode.USAGE and "line 2: unknown property ('num_image' was unexpected)" in err
    assert admin(gateway, "GET", "requests") == []


# Rate limits, Ctrl-C and kills --------------------------------------------------------------


THROTTLE = {"rate": 2, "burst": 1}


@pytest.fixture(scope="module")
def throttled_process_url() -> Iterator[str]:
    with gateway_process("--speed", "100", "--rate-limit", "2:1") as url:
        yield url


@pytest.fixture
def throttled_url(throttled_process_url: str) -> str:
    """A mock that lets 2 calls a second through (burst 1): a batch spends most of its time waiting.

    One process for the module (a start costs seconds on a busy machine), fresh for each test: its
    rate limit set again (a test lifts it) and reset, which refills the buckets and forgets every key."""
    url = throttled_process_url
    httpx.patch(f"{url}/__mock/config", json={"rate_limit": THROTTLE}).raise_for_status()
    httpx.post(f"{url}/__mock/reset").raise_for_status()
    return url


def wait_for_event(journal_path: Path, process: subprocess.Popen[str], event: str) -> None:
    deadline = time.monotonic() + 30
    while not any(e["event"] == event for e in journal_events(journal_path)):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"no {event} record"
        time.sleep(0.02)


def test_ctrl_c_during_a_rate_limit_wait_stops_submitting_at_once(throttled_url: str, tmp_path: Path) -> None:
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    write_batch(source, 8)
    process = start_batch(throttled_url, source, out, "--concurrency", "6")
    journal_path = out / "batch-journal.jsonl"
    wait_for_event(journal_path, process, "rejected")  # a 429: lines are waiting out the rate limit
    interrupted_at = time.time()
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=10)
    took = time.time() - interrupted_at
    assert process.returncode == ExitCode.INTERRUPTED, stderr
    assert took < 2.5  # 2 s, and a little for the interpreter on a busy machine
    summary = json.loads(stdout)
    assert summary["interrupted"] and summary["uncertain"] == 0
    sent_after = [
        e
        for e in journal_events(journal_path)
        if e["event"] == "submitting" and datetime.fromisoformat(e["at"]).timestamp() > interrupted_at + 0.05
    ]
    assert sent_after == []  # nothing was submitted after the first Ctrl-C
    assert "stopping (SIGINT)" in stderr and "run the same command again to resume" in stderr


def test_a_second_ctrl_c_exits_at_once(throttled_url: str, tmp_path: Path) -> None:
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    write_batch(source, 4)
    process = start_batch(throttled_url, source, out, "--concurrency", "4")
    wait_for_event(out / "batch-journal.jsonl", process, "accepted")
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=5)
    assert process.returncode == ExitCode.INTERRUPTED
    assert "exiting at once" in stderr or "stopping" in stderr


def test_kill_9_during_a_429_wait_leaves_no_false_uncertain_line(
    throttled_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    prompts = write_batch(source, 6)
    process = start_batch(throttled_url, source, out, "--concurrency", "6")
    journal_path = out / "batch-journal.jsonl"
    wait_for_event(journal_path, process, "rejected")
    process.kill()
    process.communicate(timeout=10)
    httpx.patch(f"{throttled_url}/__mock/config", json={"rate_limit": None}).raise_for_status()
    submits = ledger(throttled_url)[1]
    received = {e["body"]["prompt"] for e in submits if e.get("body")}
    refused_unread = sum(not e.get("body") for e in submits)  # a 429 comes before the body is read
    last: dict[str, str] = {}
    for record in journal_events(journal_path):
        last[record["key"]] = record["event"]
    for key, phase in last.items():
        if phase == "submitting":  # only a request the gateway really received may be uncertain
            assert prompts[int(key.removeprefix("line-")) - 1] in received or refused_unread
    monkeypatch.setenv("BOOGU_API_KEY", "test-key")
    monkeypatch.setenv("BOOGU_BASE_URL", throttled_url)
    _, stdout, _ = run(capsys, "batch", str(source), "--out", str(out), "--json", "-q")
    summary = json.loads(stdout)
    assert summary["uncertain"] == sum(event == "submitting" for event in last.values())
    assert summary["completed"] + summary["uncertain"] == 6


class WebPage(http.server.BaseHTTPRequestHandler):
    """A web server that is not the gateway: every request gets an HTML page and 200."""

    def answer(self) -> None:
        body = b"<!doctype html><html><body>Welcome</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = answer

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


def test_an_html_answer_is_not_the_gateway(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), WebPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("BOOGU_API_KEY", "test-key")
    try:
        code, _, err = run(capsys, "generate", "a fox", "--base-url", url, "--out", str(tmp_path))
    finally:
        server.shutdown()
    assert code == ExitCode.CONNECTION_ERROR
    assert f"the server at {url} is not the gateway (HTML 200)" in err


def test_ctrl_c_during_a_sync_mode_submit_says_the_job_may_exist(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOOGU_API_KEY", "test-key")
    with respx.mock(base_url="https://gateway.test", assert_all_called=False) as router:

        def interrupted(request: httpx.Request) -> httpx.Response:
            raise KeyboardInterrupt  # Ctrl-C while the answer (with the images) is awaited

        router.post("/boogu-image/v1/boogu-image-request").mock(side_effect=interrupted)
        code, _, err = run(capsys, "generate", "a fox", "--sync-mode", "--base-url", "https://gateway.test")
    assert code == ExitCode.INTERRUPTED
    assert "interrupted after the submit was sent" in err and "may have accepted (and charged)" in err


def test_batch_refuses_a_webhook_url_that_is_not_http_and_a_missing_log(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "jobs.jsonl"
    source.write_text('{"prompt": "x"}\n')
    with pytest.raises(SystemExit) as exit_info:
        main(["batch", str(source), "--webhook-url", "ftp://host/hook"])
    assert exit_info.value.code == 2
    assert "expected an http:// or https:// URL" in capsys.readouterr().err
    code, _, err = run(capsys, "batch", str(source), "--recover-from", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "--recover-from" in err and "No such file" in err


def test_a_batch_recovers_a_line_killed_in_the_gap_from_its_webhook_log(
    gateway: MockGateway, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`--webhook-url` gives the line its own URL; after a kill between the gateway's acceptance and
    the journal's `accepted`, `--recover-from` waits for that job instead of paying for another."""
    source, out, log = tmp_path / "jobs.jsonl", tmp_path / "out", tmp_path / "hooks.jsonl"
    source.write_text('{"prompt": "a fox", "id": "fox"}\n')

    def append(status: RequestStatus) -> None:
        with log.open("a") as file:
            file.write(log_record(status, receiver.line_of(status.request_id)) + "\n")

    with WebhookReceiver(on_status=append) as receiver:
        code, _, _ = run(capsys, "batch", str(source), "--out", str(out), "--webhook-url", receiver.url)
        assert code == ExitCode.OK
        request_id = json.loads((out / "batch-journal.jsonl").read_text().splitlines()[1])["request_id"]
        receiver.wait_for(request_id, timeout=10)
    journal_file = out / "batch-journal.jsonl"
    records = journal_file.read_text().splitlines()
    journal_file.write_text(records[0] + "\n")  # killed right after `submitting`
    for image in out.glob("fox_*"):
        image.unlink()
    code, _, err = run(capsys, "batch", str(source), "--out", str(out))
    assert code == ExitCode.BATCH_INCOMPLETE and "uncertain" in err
    code, stdout, _ = run(
        capsys, "batch", str(source), "--out", str(out), "--recover-from", str(log), "--json"
    )
    assert code == ExitCode.OK, stdout
    assert json.loads(stdout)["completed"] == 1 and list(out.glob("fox_*"))
    assert [e["status"] for e in journal(gateway) if e["method"] == "POST"] == [202]
