"""`python -m mock_gateway` / `mock-gateway`: serve the mock gateway over HTTP."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import uvicorn
from rich.console import Console

from .app import create_app
from .config import DEFAULT_API_KEY, ConfigError, MockConfig


def rate_limit(value: str) -> dict[str, float]:
    """`RATE:BURST`, e.g. `5:10` for 5 requests a second with bursts of 10."""
    try:
        rate, burst = value.split(":")
        return {"rate": float(rate), "burst": int(burst)}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected RATE:BURST such as 5:10, got {value!r}") from None


def amount(value: str) -> Decimal:
    """A sum of money such as `0.02`; argparse reports only ValueError and TypeError by itself."""
    try:
        return Decimal(value)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"expected a number such as 0.02, got {value!r}") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mock-gateway", description="An offline Boogu Image API gateway.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--api-key", default=DEFAULT_API_KEY, help="the development key (default: %(default)s)")
    p.add_argument("--speed", type=float, default=1.0, help="divide simulated job durations by this")
    p.add_argument(
        "--seed", type=int, help="make outcomes, durations, faults and unseeded images reproducible"
    )
    p.add_argument("--capacity", type=int, help="jobs processed at once per model (default: unlimited)")
    p.add_argument("--duration-jitter", type=float, help="relative spread of job times, 0 to 1 (default: 0)")
    p.add_argument("--queue-seconds", type=float, help="base time a job spends QUEUED (default: 1)")
    p.add_argument(
        "--realistic",
        action="store_true",
        help="a busy fleet: capacity 4, duration jitter 0.3, 2 s queue (explicit flags win)",
    )
    p.add_argument(
        "--public-url",
        metavar="URL",
        help="base of polling and media URLs, e.g. behind a proxy (default: the address it listens on)",
    )
    p.add_argument("--price", type=amount, dest="price_per_image", help="price of one image")
    p.add_argument("--balance", type=amount, dest="default_balance", help="balance of new keys")
    p.add_argument("--rate-limit", type=rate_limit, metavar="RATE:BURST", help="token bucket per key")
    p.add_argument("--failed-rate", type=float, help="share of jobs that end FAILED")
    p.add_argument("--error-rate", type=float, help="share of jobs that end ERROR")
    p.add_argument("--fault-rate", type=float, help="share of API calls answered 500")
    p.add_argument("--drop-rate", type=float, help="share of API calls whose connection is dropped")
    p.add_argument("--latency-rate", type=float, help="share of API calls delayed by --latency-seconds")
    p.add_argument("--latency-seconds", type=float)
    p.add_argument("--job-ttl", type=float, help="seconds a finished job stays queryable")
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
    return p


def config_from(args: argparse.Namespace) -> MockConfig:
    names = (
        "speed",
        "seed",
        "capacity",
        "duration_jitter",
        "queue_seconds",
        "public_url",
        "price_per_image",
        "default_balance",
        "rate_limit",
        "failed_rate",
        "error_rate",
        "fault_rate",
        "drop_rate",
        "latency_rate",
        "latency_seconds",
        "job_ttl",
    )
    changes: dict[str, Any] = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    for name in ("price_per_image", "default_balance"):
        if name in changes:
            changes[name] = str(changes[name])
    if args.webhook_allow:
        changes["webhook_allowlist"] = args.webhook_allow
    if args.realistic:
        changes["realistic"] = True
    return MockConfig().updated(changes)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    console = Console(stderr=True)
    try:
        config = config_from(args)
    except ConfigError as exc:
        console.print(f"[red]mock-gateway: {exc}[/red]")
        return 2
    app = create_app(config, api_key=args.api_key, served=True)
    base_url = f"http://{args.host}:{args.port}"
    console.print(f"[bold]Boogu mock gateway[/bold] on [cyan]{base_url}[/cyan]  (speed ×{config.speed:g})")
    console.print(f"  API key:  [green]{args.api_key}[/green]  (header Ocp-Apim-Subscription-Key)")
    console.print(f"  Admin:    {base_url}/__mock/health, /__mock/config, /__mock/requests, ...")
    console.print(f"  Spec:     {base_url}/openapi.yaml")
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
