"""`python -m mock_gateway`: starts, says where it listens and with which key, and refuses bad arguments."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from mock_gateway.cli import main

COMMAND = [sys.executable, "-m", "mock_gateway"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(process: subprocess.Popen[str], url: str, timeout: float = 20.0) -> httpx.Response:
    """Poll until the server answers (it needs a moment to import and bind)."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(
                f"the mock gateway exited with {process.returncode}: {process.communicate()}"
            )
        try:
            return httpx.get(url, timeout=1.0)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@pytest.fixture
def server() -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    process = subprocess.Popen(
        [*COMMAND, "--port", str(port), "--speed", "50", "--seed", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


def test_cli_starts_prints_url_and_key_and_serves(server: tuple[subprocess.Popen[str], str]) -> None:
    process, base_url = server
    health = wait_until_up(process, f"{base_url}/__mock/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"

    config = httpx.get(f"{base_url}/__mock/config").json()
    assert (config["speed"], config["seed"]) == (50.0, 1)
    submitted = httpx.post(
        f"{base_url}/boogu-image/v1/boogu-image-request",
        json={"prompt": "a red fox"},
        headers={"Ocp-Apim-Subscription-Key": "test-key"},
    )
    assert submitted.status_code == 202
    assert submitted.json()["polling_url"].startswith(f"{base_url}/v2/requests/status/")

    process.terminate()
    stdout, stderr = process.communicate(timeout=10)
    output = stdout + stderr
    assert base_url in output
    assert "test-key" in output
    assert "Ocp-Apim-Subscription-Key" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--rate-limit", "abc"], "expected RATE:BURST such as 5:10, got 'abc'", id="rate-limit-abc"
        ),
        pytest.param(["--failed-rate", "2"], "failed_rate: 2.0 is not between 0 and 1", id="failed-rate-2"),
    ],
)
def test_cli_refuses_invalid_arguments_with_a_clear_message(args: list[str], message: str) -> None:
    result = subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--rate-limit", "5"], "expected RATE:BURST", id="rate-limit-no-burst"),
        pytest.param(["--rate-limit", "5:1.5"], "expected RATE:BURST", id="rate-limit-fractional-burst"),
        pytest.param(
            ["--rate-limit", "0:10"],
            "rate_limit.rate: must be a number from 0.001",
            id="rate-limit-zero-rate",
        ),
        pytest.param(
            ["--rate-limit", "5:0"], "rate_limit.burst: must be an integer from 1", id="rate-limit-zero-burst"
        ),
        pytest.param(
            ["--error-rate", "-0.1"], "error_rate: -0.1 is not between 0 and 1", id="error-rate-negative"
        ),
        pytest.param(["--failed-rate", "0.6", "--error-rate", "0.6"], "must not exceed 1", id="rates-sum"),
        pytest.param(["--speed", "0"], "speed: must be a number from 0.001 to 1e+06", id="speed-zero"),
        pytest.param(["--speed", "nan"], "speed: must be a number from 0.001 to 1e+06", id="speed-nan"),
        pytest.param(["--speed", "inf"], "speed: must be a number from 0.001 to 1e+06", id="speed-inf"),
        pytest.param(["--job-ttl", "inf"], "job_ttl: must be a number from 1 to", id="ttl-inf"),
        pytest.param(
            ["--latency-seconds", "-1"],
            "latency_seconds: must be a number from 0 to 60",
            id="latency-negative",
        ),
        pytest.param(
            ["--balance", "1e400"],
            "default_balance: must be a number from 0 to 1,000,000,000,000",
            id="balance-huge",
        ),
        pytest.param(["--speed", "fast"], "invalid float value: 'fast'", id="speed-not-a-number"),
        pytest.param(
            ["--price", "abc"], "expected a number such as 0.02, got 'abc'", id="price-not-a-number"
        ),
        pytest.param(["--price", "NaN"], "price_per_image: must be a number from 0 to", id="price-nan"),
        pytest.param(
            ["--balance", "-5"], "default_balance: must be a number from 0 to", id="balance-negative"
        ),
        pytest.param(["--port", "http"], "invalid int value: 'http'", id="port-not-a-number"),
        pytest.param(["--log-level", "loud"], "invalid choice: 'loud'", id="log-level"),
    ],
)
def test_cli_argument_errors(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    """The same checks, in-process (quicker): argparse errors exit 2, configuration errors return 2."""
    code: int | str | None
    try:
        code = main(args)
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    error = capsys.readouterr().err
    assert message in " ".join(error.split())  # rich wraps long lines
