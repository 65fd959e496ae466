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
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from rich.console import Console
from rich.markup import escape

from ._http import KEY_HEADER
from ._models import TERMINAL_STATUSES

if TYPE_CHECKING:  # the proxy needs the [mock] extra: imported when a check runs, not by `boogu`
    from mock_gateway.cassette import CassetteWriter

DEFAULT_BASE_URL = "https://gateway.pixazo.ai"
SUBMIT = "/boogu-image/v1/boogu-image-request"
STATUS = "/v2/requests/status/{}"
PAID_BODY = {
    "prompt": "A red apple on a white table",
    "image_size": "square",
    "num_inference_steps": 20,
    "num_images": 1,
}
INVALID_BODY = {"prompt": "boogu verify", "num_inference_steps": 10}
UNKNOWN_ID = "boogu-image_00000000-0000-7000-8000-000000000000"
EXIT_DRIFT = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 11
"""As `boogu`'s connection error: no verdict, the gateway did not answer."""


class Unreachable(Exception):
    """The proxy answered for the gateway (unreachable, timed out): there is nothing to judge."""


@dataclass(frozen=True)
class Problem:
    pointer: str
    spec: str
    gateway: str


@dataclass
class Check:
    name: str
    problems: list[Problem] = field(default_factory=list)
    note: str = ""

    @property
    def passed(self) -> bool:
        return not self.problems


class Verifier:
    """Runs the checks through an in-process validating proxy in front of `base_url`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        poll_interval: float = 2.0,
        timeout: float = 300.0,
        recorder: CassetteWriter | None = None,
    ) -> None:
        self.api_key = api_key
        self.poll_interval = poll_interval
        self.timeout = timeout
        from mock_gateway.proxy import OWN_ANSWER_HEADER, ContractProxy

        self.proxy = ContractProxy(base_url, recorder=recorder, timeout=min(timeout, 60.0))
        self.own_answer_header = OWN_ANSWER_HEADER

    async def run(self) -> list[Check]:
        transport = httpx.ASGITransport(self.proxy)
        async with httpx.AsyncClient(transport=transport, base_url="http://boogu-verify") as http:
            try:
                checks = await self._paid_flow(http)
                unknown = STATUS.format(UNKNOWN_ID)
                for name, method, path, status, body, key in (
                    ("invalid body → 400", "POST", SUBMIT, 400, INVALID_BODY, True),
                    ("unknown request id → 404", "GET", unknown, 404, None, True),
                    ("no key → 401", "GET", unknown, 401, None, False),
                ):
                    checks.append(Check(name))
                    await self._call(http, checks[-1], method, path, {status}, body, key=key)
            finally:
                await self.proxy.aclose()
        return checks

    async def _paid_flow(self, http: httpx.AsyncClient) -> list[Check]:
        submit = Check("text-to-image submit (square, 20 steps, 1 image)")
        response = await self._call(http, submit, "POST", SUBMIT, {200, 202}, PAID_BODY)
        body = _json(response)
        if response.status_code == 200 or not submit.passed:
            return [submit]
        poll = Check("poll until finished")
        request_id = str(body.get("request_id", ""))
        deadline = time.monotonic() + self.timeout
        polls = 0
        while True:
            polls += 1
            answer = await self._call(http, poll, "GET", STATUS.format(request_id), {200})
            body = _json(answer)
            if answer.status_code != 200 or body.get("status") in TERMINAL_STATUSES:
                break
            if time.monotonic() > deadline:
                wanted = f"finished within {self.timeout:g} s"
                poll.problems.append(Problem("/body/status", wanted, repr(body.get("status"))))
                return [submit, poll]
            await asyncio.sleep(self.poll_interval)
        poll.note = f"{body.get('status')} after {polls} poll(s)"
        if body.get("status") != "COMPLETED":
            poll.problems.append(Problem("/body/status", "COMPLETED", repr(body.get("status"))))
            return [submit, poll]
        return [submit, poll, await self._download(body)]

    async def _download(self, status: dict[str, Any]) -> Check:
        """The image at output.media_url, with the output.media_type the status announced."""
        check = Check("download the image")
        output = status.get("output") or {}
        url = (output.get("media_url") or [""])[0]
        try:
            async with httpx.AsyncClient(timeout=60, follow_redirects=True) as plain:
                response = await plain.get(url)
        except httpx.HTTPError as exc:
            check.problems.append(
                Problem("/body/output/media_url/0", "a downloadable URL", type(exc).__name__)
            )
            return check
        media_type = response.headers.get("content-type", "").split(";")[0]
        if response.status_code != 200:
            check.problems.append(Problem("/status", "200", str(response.status_code)))
        elif media_type != output.get("media_type"):
            check.problems.append(Problem("/headers/content-type", str(output.get("media_type")), media_type))
        check.note = f"{len(response.content)} bytes of {media_type}"
        return check

    async def _call(
        self,
        http: httpx.AsyncClient,
        check: Check,
        method: str,
        path: str,
        statuses: set[int],
        body: Any = None,
        *,
        key: bool = True,
    ) -> httpx.Response:
        """One call; the check gets a wrong status and the gateway-side violations of the answer."""
        seen = self.proxy.violations.total
        headers = {KEY_HEADER: self.api_key} if key else {}
        response = await http.request(method, path, json=body, headers=headers)
        if self.own_answer_header in response.headers:
            raise Unreachable(_json(response).get("message", response.text))
        if response.status_code not in statuses:
            expected = " or ".join(str(status) for status in sorted(statuses))
            check.problems.append(
                Problem("/status", expected, f"{response.status_code} {response.text[:120]}")
            )
        new = self.proxy.violations.total - seen
        for entry in self.proxy.violations.entries()[-new:] if new else []:
            if entry["side"] == "response":
                shown = "(missing)" if entry["value"] is None else repr(entry["value"])[:120]
                check.problems.append(
                    Problem(entry["pointer"], f"{entry['rule']}: {entry['expected']}", shown)
                )
        return response


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def report(checks: Sequence[Check], console: Console) -> None:
    for check in checks:
        mark = "[green]PASS[/green]" if check.passed else "[red]FAIL[/red]"
        note = f"  ({escape(check.note)})" if check.note else ""
        console.print(f"{mark}  {escape(check.name)}{note}")
        for problem in check.problems:
            line = f"      {problem.pointer}  spec: {problem.spec}  gateway: {problem.gateway}"
            console.print(line, markup=False, soft_wrap=True)
    failed = sum(not check.passed for check in checks)
    summary = (
        "no drift from openapi.yaml"
        if not failed
        else f"{failed} of {len(checks)} checks drift from openapi.yaml"
    )
    console.print(f"[bold]{summary}[/bold]")


def price(value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"expected a number such as 0.02, got {value!r}") from None


def http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"expected an http(s) URL such as {DEFAULT_BASE_URL}, got {value!r}")
    return value


def register(commands: Any) -> None:
    """Add `verify` to the `boogu` command's subparsers."""
    verify = commands.add_parser(
        "verify",
        help="check a live gateway against openapi.yaml (one paid image; needs --yes)",
        description=__doc__,
    )
    verify.add_argument(
        "--base-url", type=http_url, help=f"gateway URL (default: $BOOGU_BASE_URL or {DEFAULT_BASE_URL})"
    )
    verify.add_argument("--yes", action="store_true", help="agree to pay for the one image")
    verify.add_argument(
        "--price-per-image",
        type=price,
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
    base_url = args.base_url or os.environ.get("BOOGU_BASE_URL") or DEFAULT_BASE_URL
    api_key = os.environ.get("BOOGU_API_KEY", "")
    if not api_key:
        errors.print("boogu verify: set BOOGU_API_KEY to the key to check with", markup=False)
        return EXIT_USAGE
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
        return EXIT_USAGE
    from mock_gateway.extra import MockExtraMissing, require_mock_extra

    try:
        require_mock_extra()
    except MockExtraMissing as exc:
        errors.print(f"boogu verify: {exc}", markup=False)
        return EXIT_USAGE
    from mock_gateway.cassette import CassetteWriter

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
        return EXIT_UNREACHABLE
    finally:
        proxy_log.setLevel(level)
    report(checks, console)
    if args.record:
        console.print(f"cassette: {escape(args.record)}")
    return 0 if all(check.passed for check in checks) else EXIT_DRIFT
