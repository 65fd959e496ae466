"""The servers under test, each a process of its own on a free loopback port, started and stopped by
`mock_gateway.testing.gateway_popen` like any mock gateway process.

- mock: the mock gateway (`python -m mock_gateway`), the server being measured;
- bare: a bare Starlette app answering the same JSON under uvicorn, logging as the mock does: the
  ceiling for a Python server on this machine;
- prism: Stoplight Prism mocking the same openapi.yaml: the usual alternative to this mock (not in
  the default run).

`python -m tools.bench_servers bare --host H --port P` serves the bare app. Its answers are
openapi.yaml's own examples, so they cost what the mock's do to send.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from boogu_contract import load_spec, spec_path, wire
from mock_gateway.model import DEFAULT_API_KEY
from mock_gateway.testing import gateway_popen
from tools.bench_load import SERVER_CPUS, on_cpus

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
_EXAMPLES: dict[str, Any] = load_spec()["components"]["examples"]
STATUS_BODY: dict[str, Any] = _EXAMPLES["StatusCompleted"]["value"]
PLACEHOLDER_ID: str = STATUS_BODY["request_id"]
"""The spec's example request id: what the status load asks for when a server's submit gave none."""
PRISM = ROOT / "tools" / "prism" / "node_modules" / ".bin" / "prism"
"""Installed by `make prism` (its own npm project), not by `make setup`."""


@dataclass(frozen=True)
class Server:
    """How to start one server under test."""

    name: str
    program: list[str] | None = None
    """The command before `--host H --port P`; None for `python -m mock_gateway`."""
    args: list[str] = field(default_factory=list)
    submit_headers: dict[str, str] = field(default_factory=dict)
    """Extra headers for the submit load (Prism: which documented answer to give)."""
    startup_seconds: float = 30.0

    @property
    def missing(self) -> Path | None:
        """The program, when it is not installed."""
        program = Path(self.program[0]) if self.program else None
        return program if program is not None and not program.exists() else None


def servers(prism_log_level: str) -> dict[str, Server]:
    """The servers under test, in the order they are measured."""
    own = [sys.executable, "-m", "tools.bench_servers"]
    return {
        # A balance no load exhausts: every submit is charged.
        "mock": Server("mock", args=["--speed", "1000", "--balance", "1000000000"]),
        "bare": Server("bare", [*own, "bare"]),
        # `--errors false` is Prism's default, spelt out. Its log level defaults to `warn`, the level the
        # Python servers log at; at Prism's own default (`info`) it logs every request and is slower.
        "prism": Server(
            "prism",
            [str(PRISM), "mock", str(spec_path())],
            ["--errors", "false", "-v", prism_log_level],
            # The submit answers 202 as the mock does, not the 200 of sync mode that Prism picks first.
            submit_headers={"Prefer": "code=202"},
            startup_seconds=60.0,
        ),
    }


class DidNotStart(Exception):
    """The server did not answer in time; the message ends with what it printed."""


def _answers(base_url: str) -> bool:
    """Any HTTP answer to a status call: Prism and the bench's own servers have no health route."""
    url = f"{base_url}{wire.status_path(PLACEHOLDER_ID)}"
    httpx.get(url, headers={wire.KEY_HEADER: DEFAULT_API_KEY}, timeout=1, trust_env=False)
    return True


@contextlib.contextmanager
def started(server: Server, log: IO[bytes]) -> Iterator[tuple[str, int]]:
    """Serve until the block ends, on `SERVER_CPUS`: yields (base URL, pid); its output goes to `log`."""
    with contextlib.ExitStack() as stack:
        try:
            base_url, process = stack.enter_context(
                gateway_popen(
                    *server.args,
                    program=server.program,
                    ready=None if server.program is None else _answers,
                    timeout=server.startup_seconds,
                    cwd=ROOT,
                    preexec_fn=on_cpus(SERVER_CPUS),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        except RuntimeError as exc:
            log.seek(0)
            raise DidNotStart(f"{exc}\n{log.read().decode(errors='replace')[-2000:]}") from exc
        yield base_url, process.pid


# The bench's own servers ------------------------------------------------------------------------


def bare_app() -> Starlette:
    """The same answers as the mock from a bare Starlette app: routing, JSON in and out, nothing else."""

    async def submit(request: Request) -> JSONResponse:
        await request.json()
        request_id = f"{request.path_params['model']}_{uuid.uuid4()}"
        base_url = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "request_id": request_id,
                "status": "QUEUED",
                "polling_url": base_url + wire.status_path(request_id),
            },
            status_code=202,
        )

    async def status(request: Request) -> JSONResponse:
        return JSONResponse({**STATUS_BODY, "request_id": request.path_params["request_id"]})

    return Starlette(
        routes=[
            Route(wire.STATUS_PATH, status, methods=["GET"]),
            Route("/{model}/v1/{name}", submit, methods=["POST"]),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Serve one of the benchmark's own servers.")
    p.add_argument("kind", choices=["bare"])
    p.add_argument("--host", default=HOST)
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    # As the mock is served: warnings only, no access log, no X-Forwarded-* middleware.
    uvicorn.run(
        bare_app(),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
