"""`python -m mock_gateway proxy|replay`: the validating proxy in front of a gateway, and the replay."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from rich.console import Console

from .cassette import CassetteError, CassetteWriter
from .limits import server_config
from .proxy import ContractProxy
from .replay import ReplayApp


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="mock-gateway", description="Check a gateway against openapi.yaml.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"]
    )
    proxy = commands.add_parser(
        "proxy", parents=[server], help="forward to a gateway, validating every call against openapi.yaml"
    )
    proxy.add_argument(
        "--upstream", required=True, help="the gateway's URL, such as https://gateway.pixazo.ai"
    )
    proxy.add_argument("--port", type=int, default=8081)
    proxy.add_argument("--record", metavar="FILE", help="write every exchange to this cassette (YAML)")
    proxy.add_argument(
        "--rewrite-media",
        action="store_true",
        help="point media URLs at the proxy, so that image downloads are validated and recorded too",
    )
    proxy.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the upstream")
    proxy.add_argument("--max-body-bytes", type=int, default=32 * 1024 * 1024, help="largest body read")
    replay = commands.add_parser("replay", parents=[server], help="serve a recorded cassette offline")
    replay.add_argument("cassette", help="a cassette written by `proxy --record`")
    replay.add_argument("--port", type=int, default=8082)
    return top


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    console = Console(stderr=True)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    base_url = f"http://{args.host}:{args.port}"
    if args.command == "proxy":
        recorder = CassetteWriter(args.record) if args.record else None
        app: ContractProxy | ReplayApp = ContractProxy(
            args.upstream,
            recorder=recorder,
            rewrite_media=args.rewrite_media,
            timeout=args.timeout,
            max_body_bytes=args.max_body_bytes,
        )
        console.print(f"[bold]Validating proxy[/bold] on [cyan]{base_url}[/cyan] → {args.upstream}")
        console.print(f"  Violations: X-Contract-Violations header, {base_url}/__mock/violations, this log")
        if args.record:
            console.print(f"  Recording:  {Path(args.record).resolve()}")
    else:
        try:
            app = ReplayApp.from_file(args.cassette)
        except CassetteError as exc:
            console.print(f"mock-gateway: {exc}", style="red", markup=False, soft_wrap=True)
            return 2
        console.print(f"[bold]Replaying[/bold] {args.cassette} on [cyan]{base_url}[/cyan]")
    options = {"log_level": args.log_level, "server_header": False, "date_header": False}
    uvicorn.Server(server_config(app, host=args.host, port=args.port, **options)).run()
    return 0
