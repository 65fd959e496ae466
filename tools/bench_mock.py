"""Requests per second of the mock gateway, next to the ceiling for a Python server here (a bare
Starlette app answering the same JSON) and Stoplight Prism mocking the same openapi.yaml; then what
the in-process mock costs a test against a respx stub (`tools.bench_inprocess`).

Each server runs on its own, as a process on a free loopback port (`tools.bench_servers`), loaded by
a generator process of its own (`tools.bench_load`): a fixed number of keep-alive connections, one
request in flight on each, for a warm-up and then a measured window, for the submit and then the
status operation. The figures and goals are printed by `tools.bench_report`; the exit status is 0
whether or not the goals are met.

    python -m tools.bench_mock                        # make bench: all servers, 32 connections, 1 s + 5 s
    python -m tools.bench_mock --only mock,bare --duration 10 --json
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
from dataclasses import replace
from typing import Any

import httpx
from rich.console import Console

from boogu_contract import load_spec, wire
from mock_gateway.model import DEFAULT_API_KEY
from tools import bench_inprocess, bench_report
from tools.bench_load import HOST, LoadResult, Request, measure
from tools.bench_report import LABELS, OPERATIONS, Settings
from tools.bench_servers import PLACEHOLDER_ID, DidNotStart, Server, servers, started

SUBMIT_PATH = wire.submit_path("boogu-image")
_SUBMIT = load_spec()["paths"][SUBMIT_PATH]["post"]["requestBody"]["content"]["application/json"]
SUBMIT_BODY: dict[str, Any] = _SUBMIT["examples"]["reference"]["value"]
"""The reference's example request, every parameter spelt out."""
CACHE_CONTROL: str = load_spec()["components"]["parameters"]["CacheControl"]["schema"]["default"]
"""The `Cache-Control` the reference sends with every submit."""
STATUS_HEADERS = {wire.KEY_HEADER: DEFAULT_API_KEY}
SUBMIT_HEADERS = {"Content-Type": "application/json", "Cache-Control": CACHE_CONTROL, **STATUS_HEADERS}

err = Console(stderr=True, highlight=False)


def requests(server: Server, request_id: str) -> dict[str, Request]:
    """The two loads: the submit of the reference's example, the status of one accepted request."""
    body = json.dumps(SUBMIT_BODY).encode()
    return {
        "submit": Request("POST", SUBMIT_PATH, {**SUBMIT_HEADERS, **server.submit_headers}, body),
        "status": Request("GET", wire.status_path(request_id), STATUS_HEADERS),
    }


def prepare(server: Server, port: int) -> str:
    """Submit once for a request id to load the status with; say so when either answers other than 2xx."""
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=5, trust_env=False) as http:
        answer = http.post(SUBMIT_PATH, json=SUBMIT_BODY, headers={**SUBMIT_HEADERS, **server.submit_headers})
        request_id = answer.json().get("request_id") if answer.is_success else None
        if not isinstance(request_id, str):
            err.print(f"  [yellow]{server.name}: submit answered {answer.status_code} {answer.text}[/yellow]")
            request_id = PLACEHOLDER_ID
        answer = http.get(wire.status_path(request_id), headers=STATUS_HEADERS)
        if not answer.is_success:
            err.print(f"  [yellow]{server.name}: status answered {answer.status_code} {answer.text}[/yellow]")
    return request_id


def best_round(
    server: Server, request: Request, op: str, port: int, pid: int, settings: Settings
) -> LoadResult:
    """The fastest of `settings.rounds`: other work on the machine only ever slows a round down."""
    rounds = []
    for _ in range(settings.rounds):
        result = measure(
            port,
            request,
            server_pid=pid,
            connections=settings.connections,
            warmup=settings.warmup,
            duration=settings.duration,
        )
        result = replace(result, target=server.name, operation=op)
        shown = f"{result.rps:,.0f} req/s" if result.failure is None else result.failure
        errors = f", {result.error_count} errors" if result.error_count else ""
        err.print(f"  {op}: {shown}{errors}")
        rounds.append(result)
    return max(rounds, key=lambda r: (r.failure is None, r.rps))


def bench_server(server: Server, settings: Settings) -> list[LoadResult]:
    """Start the server, load each operation in turn, stop it; a failure for each when it cannot start."""
    if server.missing is not None:
        return [LoadResult(server.name, op, failure=f"{server.missing} not found") for op in OPERATIONS]
    with tempfile.TemporaryFile() as log:
        try:
            with started(server, log) as (port, pid):
                err.print(f"[bold]{LABELS[server.name]}[/bold] on http://{HOST}:{port}")
                loads = requests(server, prepare(server, port))
                return [best_round(server, loads[op], op, port, pid, settings) for op in OPERATIONS]
        except DidNotStart as exc:
            err.print(f"[red]{LABELS[server.name]} did not start[/red]: {exc}")
            return [LoadResult(server.name, op, failure="server did not start") for op in OPERATIONS]


def parser() -> argparse.ArgumentParser:
    names = ",".join(LABELS)
    p = argparse.ArgumentParser(description="Requests per second: mock gateway vs bare Starlette vs Prism.")
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per operation (%(default)s)")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds before measuring (%(default)s)")
    p.add_argument("--connections", type=int, default=32, help="concurrent connections (%(default)s)")
    p.add_argument(
        "--only", default=names, help=f"comma-separated servers to measure, of {names} (default: all)"
    )
    p.add_argument(
        "--rounds", type=int, default=1, help="measure each operation this many times, keep the fastest"
    )
    p.add_argument(
        "--prism-log-level",
        default="warn",
        choices=["trace", "debug", "info", "warn", "error", "fatal", "silent"],
        help="Prism's -v (default: %(default)s, as the Python servers log; Prism's own default is info)",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    p.add_argument(
        "--in-process",
        choices=["on", "off", "only"],
        default="on",
        help="also (on), never (off) or only (only) compare the in-process mock with a respx stub, "
        "per submit + status pair through the generated client (tools/bench_inprocess.py)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(LABELS))
    if unknown:
        parser().error(f"--only: unknown {', '.join(unknown)}; choose from {', '.join(LABELS)}")
    if args.connections < 1 or args.duration <= 0 or args.warmup < 0 or args.rounds < 1:
        parser().error("--connections and --rounds must be ≥ 1, --duration > 0 and --warmup ≥ 0")
    settings = Settings(args.connections, args.warmup, args.duration, args.rounds, args.prism_log_level)

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds the `with`s that stop the servers

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    results: list[LoadResult] = []
    in_process: list[bench_inprocess.Figure] = []
    try:
        if args.in_process != "only":
            for server in servers(args.prism_log_level).values():
                if server.name in chosen:
                    results += bench_server(server, settings)
        if args.in_process != "off":
            err.print("[bold]in-process mock vs respx stub[/bold]")
            in_process = bench_inprocess.compare()
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]")
        return 130
    if args.json:
        print(bench_report.as_json(results, in_process, settings))
    else:
        if results:
            bench_report.print_tables(results, settings)
        if in_process:
            print("\n".join(bench_inprocess.report(in_process)))
    return 0  # a benchmark: the figures and goals are printed, never a failing status


if __name__ == "__main__":
    sys.exit(main())
