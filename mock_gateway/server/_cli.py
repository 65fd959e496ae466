"""`mock-gateway` (serve): the mock gateway over HTTP, configured by flags named after `MockConfig` fields."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import uvicorn
from rich.console import Console

from boogu_contract import wire

from ..model import DEFAULT_API_KEY, MockConfig, check_key
from ._admin_auth import add_admin_options, admin_refusal
from ._app import create_app
from ._gc import CollectionPacer
from ._hugepages import HugePages
from ._limits import server_config


def rate_limit(value: str) -> dict[str, float]:
    """`RATE:BURST`, e.g. `5:10` for 5 requests a second with bursts of 10."""
    try:
        rate, burst = value.split(":")
        return {"rate": float(rate), "burst": int(burst)}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected RATE:BURST such as 5:10, got {value!r}") from None


def amount(value: str) -> str:
    """A sum of money such as `0.02`, passed on as text: `MockConfig` keeps money exact."""
    try:
        Decimal(value)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"expected a number such as 0.02, got {value!r}") from None
    return value


@dataclass(frozen=True)
class Setting:
    """A `MockConfig` setting given as a flag: `--speed` sets `speed`."""

    field: str
    type: Any
    help: str
    flag: str = ""
    metavar: str | None = None

    @property
    def option(self) -> str:
        return self.flag or "--" + self.field.replace("_", "-")


SETTINGS = (
    Setting("speed", float, "divide simulated job durations by this (default: 1)"),
    Setting("seed", int, "make outcomes, durations, faults and unseeded images reproducible"),
    Setting("capacity", int, "jobs processed at once per model (default: unlimited)"),
    Setting("duration_jitter", float, "relative spread of job times, 0 to 1 (default: 0)"),
    Setting("queue_seconds", float, "base time a job spends QUEUED (default: 1)"),
    Setting(
        "public_url",
        str,
        "base of polling and media URLs, e.g. behind a proxy (default: the address it listens on)",
        metavar="URL",
    ),
    Setting("price_per_image", amount, "price of one image", flag="--price"),
    Setting("default_balance", amount, "balance of new keys", flag="--balance"),
    Setting("rate_limit", rate_limit, "token bucket per key", metavar="RATE:BURST"),
    Setting("failed_rate", float, "share of jobs that end FAILED"),
    Setting("error_rate", float, "share of jobs that end ERROR"),
    Setting("fault_rate", float, "share of API calls answered 500"),
    Setting("drop_rate", float, "share of API calls whose connection is dropped"),
    Setting(
        "lost_answer_rate",
        float,
        "share of accepted submits (job created and charged) whose answer is lost (default: 0)",
    ),
    Setting(
        "lost_answer_mode",
        str,
        "how --lost-answer-rate loses it: drop the connection or answer 500 (default: drop)",
        metavar="{drop,500}",
    ),
    Setting("latency_rate", float, "share of API calls delayed by --latency-seconds"),
    Setting("latency_seconds", float, "the delay of --latency-rate"),
    Setting("job_ttl", float, "seconds a finished job stays queryable"),
    Setting("body_timeout", float, "seconds to send headers and body before a 408"),
    Setting("webhook_concurrency", int, "webhook attempts (and sockets) at once (default: 32)"),
    Setting(
        "max_unfinished_per_key",
        int,
        "unfinished jobs of one key before a submit is answered 429 (default: 10000)",
    ),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--api-key", default=DEFAULT_API_KEY, help="the development key (default: %(default)s)")
    p.add_argument("--show-api-key", action="store_true", help="print a --api-key other than the default")
    add_admin_options(p, "may reset it")
    p.add_argument("--max-connections", type=int, help="open connections at once (default: from ulimit -n)")
    for setting in SETTINGS:
        p.add_argument(
            setting.option, dest=setting.field, type=setting.type, help=setting.help, metavar=setting.metavar
        )
    p.add_argument(
        "--realistic",
        action="store_true",
        help="a busy fleet: capacity 4, duration jitter 0.3, 2 s queue (explicit flags win)",
    )
    p.add_argument(
        "--webhook-allow",
        action="append",
        default=[],
        metavar="HOST",
        help="also deliver webhooks to HOST (repeatable); only loopback hosts otherwise",
    )
    p.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"]
    )


def config_from(args: argparse.Namespace) -> MockConfig:
    changes: dict[str, Any] = {
        s.field: getattr(args, s.field) for s in SETTINGS if getattr(args, s.field) is not None
    }
    if args.webhook_allow:
        changes["webhook_allowlist"] = args.webhook_allow
    if args.realistic:
        changes["realistic"] = True
    return MockConfig().updated(changes)


def serve(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    try:
        config = config_from(args)
        check_key(args.api_key)
        refusal = admin_refusal(args.host, args.admin_token, args.insecure_admin)
        if args.max_connections is not None and args.max_connections < 1:
            raise ValueError("--max-connections: must be at least 1")
    except ValueError as exc:  # ConfigError too
        console.print(f"[red]mock-gateway: {exc}[/red]")
        return 2
    if refusal is not None:
        console.print(f"mock-gateway: {refusal}", style="red", markup=False)
        return 2
    app = create_app(config, api_key=args.api_key, served=True, admin_token=args.admin_token)
    base_url = f"http://{args.host}:{args.port}"
    shown = (
        args.api_key if args.show_api_key or args.api_key == DEFAULT_API_KEY else "(hidden: --show-api-key)"
    )
    admin = f"{base_url}{wire.ADMIN_PREFIX}"
    console.print(f"[bold]Boogu mock gateway[/bold] on [cyan]{base_url}[/cyan]  (speed ×{config.speed:g})")
    console.print(f"  API key:  [green]{shown}[/green]  (header {wire.KEY_HEADER})")
    locked = "Bearer token required" if args.admin_token else "[yellow]open[/yellow]"
    console.print(f"  Admin:    {admin}/health, {admin}/config, {admin}/requests, ...  ({locked})")
    console.print(f"  Spec:     {base_url}/openapi.yaml")
    options = {"host": args.host, "port": args.port, "log_level": args.log_level}
    pacer = CollectionPacer()
    pacer.install()  # this process is the mock's alone: jobs held for an hour cost no full collections
    huge_pages = HugePages()
    huge_pages.start()  # and its heap: on 2 MiB pages where Linux offers them
    try:
        uvicorn.Server(server_config(app, max_connections=args.max_connections, **options)).run()
    finally:
        huge_pages.stop()
        pacer.uninstall()
    return 0
