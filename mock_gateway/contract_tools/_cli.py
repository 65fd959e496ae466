"""`mock-gateway proxy` and `mock-gateway replay`: the validating proxy before a gateway, and the replay."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

import uvicorn
from rich.console import Console
from rich.markup import escape
from starlette.types import ASGIApp

from boogu_contract import redact_url, wire

from ..server import AdminAuth, add_admin_options, admin_refusal, check_token, server_config
from ._cassette import CassetteError, CassetteWriter
from ._proxy import ContractProxy
from ._replay import ReplayApp
from ._served import serve

UPSTREAM_ADMIN_TOKEN_ENV = "MOCK_GATEWAY_UPSTREAM_ADMIN_TOKEN"  # noqa: S105 - a variable name


def add_commands(commands: Any) -> None:
    """Add `proxy` and `replay` to the subparsers of `mock-gateway`."""
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"]
    )
    add_admin_options(server, "reads its logs")
    proxy = commands.add_parser(
        "proxy",
        parents=[server],
        help="forward to a gateway, validating every call against openapi.yaml",
        description="Forward to a gateway, validating every call against openapi.yaml.",
    )
    proxy.add_argument(
        "--upstream", required=True, help=f"the gateway's URL, such as {wire.DEFAULT_BASE_URL}"
    )
    proxy.add_argument("--port", type=int, default=8081)
    proxy.add_argument("--record", metavar="FILE", help="write every exchange to this cassette (YAML)")
    proxy.add_argument(
        "--rewrite-media",
        action="store_true",
        help="point media URLs at the proxy, so that image downloads are validated and recorded too",
    )
    proxy.add_argument(
        "--public-url",
        metavar="URL",
        help="base of rewritten media URLs (default: the address each caller's connection reached)",
    )
    proxy.add_argument(
        "--upstream-admin-token",
        default=os.environ.get(UPSTREAM_ADMIN_TOKEN_ENV),
        help="the upstream mock's admin token, sent on the /__mock/* calls passed on "
        f"(or {UPSTREAM_ADMIN_TOKEN_ENV}); the proxy's own --admin-token is never passed on",
    )
    proxy.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the upstream")
    proxy.add_argument("--max-body-bytes", type=int, default=32 * 1024 * 1024, help="largest body read")
    proxy.set_defaults(handler=run_proxy)
    replay = commands.add_parser(
        "replay",
        parents=[server],
        help="serve a recorded cassette offline",
        description="Serve a cassette recorded by `mock-gateway proxy --record` offline.",
    )
    replay.add_argument("cassette", help="a cassette written by `proxy --record`")
    replay.add_argument("--port", type=int, default=8082)
    replay.set_defaults(handler=run_replay)


def run_proxy(args: argparse.Namespace) -> int:
    console = _start(args)
    if not _admin_allowed(args, console):
        return 2
    recorder = CassetteWriter(args.record) if args.record else None
    app = ContractProxy(
        args.upstream,
        recorder=recorder,
        rewrite_media=args.rewrite_media,
        public_url=args.public_url,
        timeout=args.timeout,
        max_body_bytes=args.max_body_bytes,
        admin_token=args.admin_token,
        upstream_admin_token=args.upstream_admin_token,
    )
    base_url = f"http://{args.host}:{args.port}"
    upstream = escape(redact_url(args.upstream))
    console.print(f"[bold]Validating proxy[/bold] on [cyan]{base_url}[/cyan] → {upstream}")
    console.print(
        f"  Violations: X-Contract-Violations header, {base_url}{wire.ADMIN_PREFIX}/violations, this log"
    )
    if args.record:
        console.print(f"  Recording:  {Path(args.record).resolve()}")
    return serve(app, args.host, args.port, args.admin_token)


def run_replay(args: argparse.Namespace) -> int:
    console = _start(args)
    if not _admin_allowed(args, console):
        return 2
    try:
        app = ReplayApp.from_file(args.cassette)
    except CassetteError as exc:
        console.print(f"mock-gateway: {exc}", style="red", markup=False, soft_wrap=True)
        return 2
    console.print(f"[bold]Replaying[/bold] {args.cassette} on [cyan]http://{args.host}:{args.port}[/cyan]")
    return _serve(app, args)


def _start(args: argparse.Namespace) -> Console:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    return Console(stderr=True)


def _admin_allowed(args: argparse.Namespace, console: Console) -> bool:
    """The mock's rule for its admin routes (`/__mock/violations`, `/__mock/unmatched`)."""
    try:
        refusal = admin_refusal(args.host, args.admin_token, args.insecure_admin)
        if getattr(args, "upstream_admin_token", None) is not None:
            check_token(args.upstream_admin_token)
    except ValueError as exc:
        refusal = str(exc)
    if refusal is not None:
        console.print(f"mock-gateway: {refusal}", style="red", markup=False)
    return refusal is None


def _serve(app: ReplayApp, args: argparse.Namespace) -> int:
    served: ASGIApp = AdminAuth(app, args.admin_token) if args.admin_token else app
    options = {"log_level": args.log_level, "server_header": False, "date_header": False}
    uvicorn.Server(server_config(served, host=args.host, port=args.port, **options)).run()
    return 0
