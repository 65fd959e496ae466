"""`boogu verify`: the smallest paid flow against a live gateway, each answer held to openapi.yaml.

One text-to-image (square, 20 steps, one image) polled to the end and its image downloaded, then
three free calls that must fail as documented: an invalid body (400), an unknown request id (404)
and a call without a key (401). Every call goes through the validating proxy (in-process), so each
check reports the proxy's violations with their JSON pointers next to the status it expected; with
`--record` the proxy also keeps the exchanges as a cassette. The key comes from BOOGU_API_KEY only.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from boogu_contract import wire

from ._args import ExitCode, amount, http_url

if TYPE_CHECKING:  # the engine needs the [mock] extra: imported when a check runs, not by `boogu`
    from mock_gateway.contract_tools import Check


def report(checks: Sequence[Check], console: Console) -> None:
    for check in checks:
        mark = "[green]PASS[/green]" if check.passed else "[red]FAIL[/red]"
        note = f"  ({escape(check.note)})" if check.note else ""
        console.print(f"{mark}  {escape(check.name)}{note}")
        for problem in check.problems:
            line = f"      {problem.pointer}  spec: {problem.spec}  gateway: {problem.gateway}"
            console.print(line, markup=False, soft_wrap=True)
        for notice in check.notices:  # fields the spec does not list: drift to know of, not a failure
            console.print(f"      notice  {notice.pointer}  {notice.spec}", markup=False, soft_wrap=True)
    failed = sum(not check.passed for check in checks)
    summary = (
        "no drift from openapi.yaml"
        if not failed
        else f"{failed} of {len(checks)} checks drift from openapi.yaml"
    )
    notices = sum(len(check.notices) for check in checks)
    plural = "s" if notices != 1 else ""
    shown = f" ({notices} notice{plural}: fields the spec does not list)" if notices else ""
    console.print(f"[bold]{summary}{shown}[/bold]")


def register(commands: Any) -> None:
    """Add `verify` to the `boogu` command's subparsers."""
    verify = commands.add_parser(
        "verify",
        help="check a live gateway against openapi.yaml (one paid image; needs --yes)",
        description=__doc__,
    )
    verify.add_argument(
        "--base-url",
        type=http_url,
        help=f"gateway URL (default: ${wire.BASE_URL_ENV} or {wire.DEFAULT_BASE_URL})",
    )
    verify.add_argument("--yes", action="store_true", help="agree to pay for the one image")
    verify.add_argument(
        "--price-per-image",
        type=amount,
        default=Decimal("0.02"),
        metavar="AMOUNT",
        help="your plan's price of one image, for the estimate (default %(default)s)",
    )
    verify.add_argument("--record", metavar="FILE", help="keep the exchanges as a cassette (keys redacted)")
    verify.add_argument("--poll-interval", type=float, default=2.0, metavar="S", help="seconds between polls")
    verify.add_argument("--timeout", type=float, default=300.0, metavar="S", help="give up waiting after S s")
    # `boogu` builds its output settings from these before calling any handler; verify prints its own report.
    verify.set_defaults(handler=command, json=False, quiet=False, verbose=False)


def command(args: argparse.Namespace, out: object = None) -> int:
    console = Console(highlight=False)
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    base_url = args.base_url or os.environ.get(wire.BASE_URL_ENV) or wire.DEFAULT_BASE_URL
    api_key = os.environ.get(wire.API_KEY_ENV, "")
    if not api_key:
        errors.print(f"boogu verify: set {wire.API_KEY_ENV} to the key to check with", markup=False)
        return ExitCode.USAGE
    console.print(
        f"boogu verify against {escape(base_url)}: 1 paid image (square, 20 steps), "
        f"estimated price {args.price_per_image} (1 image × --price-per-image); "
        "the 400, 404 and 401 checks are free.",
        soft_wrap=True,
    )
    if not args.yes:
        errors.print(
            "boogu verify: nothing sent; add --yes to pay for the image and run the checks", markup=False
        )
        return ExitCode.USAGE
    from mock_gateway._extra import MockExtraMissing, require_mock_extra

    try:
        require_mock_extra()
    except MockExtraMissing as exc:
        errors.print(f"boogu verify: {exc}", markup=False)
        return ExitCode.USAGE
    from mock_gateway.contract_tools import CassetteWriter, Unreachable, Verifier

    recorder = CassetteWriter(args.record) if args.record else None
    verifier = Verifier(
        base_url, api_key, poll_interval=args.poll_interval, timeout=args.timeout, recorder=recorder
    )
    # The report shows the gateway's violations; the 400 and 401 calls break request rules on purpose.
    proxy_log = logging.getLogger("mock_gateway.proxy")
    level = proxy_log.level
    proxy_log.setLevel(logging.ERROR)
    try:
        checks = asyncio.run(verifier.run())
    except Unreachable as exc:
        errors.print(
            f"boogu verify: no verdict, the gateway at {base_url} did not answer: {exc}", markup=False
        )
        return ExitCode.CONNECTION_ERROR
    finally:
        proxy_log.setLevel(level)
    report(checks, console)
    if args.record:
        console.print(f"cassette: {escape(args.record)}")
    return ExitCode.OK if all(check.passed for check in checks) else ExitCode.ERROR
