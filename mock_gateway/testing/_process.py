"""The mock gateway (or a contract tool) as a process of its own on a free loopback port."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

from boogu_contract import shared_tls_context
from boogu_contract.wire import ADMIN_PREFIX

from ._servers import free_port_socket


@contextlib.contextmanager
def gateway_process(*args: str, **options: Any) -> Iterator[str]:
    """Run `python -m mock_gateway ARGS` on a free loopback port until the block ends; yields its URL.

    For tools that need the gateway as a separate process (the demo, the schemathesis CLI, benchmarks),
    and for the wheel test, which runs it from another venv (`python`) and folder (`cwd`).
    `subcommand=["proxy"]` runs the validating proxy instead (ready once its upstream's health answers).
    `options` are those of `gateway_popen`.
    """
    with gateway_popen(*args, **options) as (base_url, _):
        yield base_url


@contextlib.contextmanager
def gateway_popen(
    *args: str,
    host: str = "127.0.0.1",
    timeout: float = 20.0,
    python: str | Path = sys.executable,
    cwd: Path | None = None,
    subcommand: Sequence[str] = (),
    program: Sequence[str] | None = None,
    ready: Callable[[str], bool] | None = None,
    **popen: Any,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`gateway_process` that also yields the process (for signals, memory), `popen` passed to Popen
    (`stdout` and `stderr` too, else no output, and stderr kept in a temporary file for the error when
    it does not start: a pipe that nobody reads would stall a server that logs 64 KiB).

    For benchmarks, which start other servers the same way: `program` runs in place of
    `python -m mock_gateway` (given the same `--host` and `--port`), and `ready(base_url)` says when
    it answers (default: the mock's health answers 200; httpx transport errors count as not yet).
    """
    with free_port_socket(host) as sock:
        port = sock.getsockname()[1]
    start = [str(python), "-m", "mock_gateway"] if program is None else list(program)
    command = [*start, *subcommand, "--host", host, "--port", str(port), *args]
    with tempfile.TemporaryFile() as log:
        streams: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": log}
        process = subprocess.Popen(command, cwd=cwd, **{**streams, **popen})
        base_url = f"http://{host}:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if (ready or _healthy)(base_url):
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the mock gateway did not start: {_last_words(process, log)}")
                time.sleep(0.05)
            yield base_url, process
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _last_words(process: subprocess.Popen[bytes], log: IO[bytes]) -> str:
    """The end of what a server that did not start wrote to stderr (our file, or a pipe given to us)."""
    if process.poll() is None:
        return ""
    if process.stderr is not None:
        return process.stderr.read().decode(errors="replace").strip()
    log.seek(0)
    return log.read()[-8192:].decode(errors="replace").strip()


def _healthy(base_url: str) -> bool:
    answer = httpx.get(f"{base_url}{ADMIN_PREFIX}/health", timeout=1, verify=shared_tls_context())
    return answer.status_code == 200
