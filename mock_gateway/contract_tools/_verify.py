"""The engine of `boogu verify`: the smallest paid flow on a live gateway, each answer held to openapi.yaml.

One text-to-image (square, 20 steps, one image) polled to the end and its image downloaded, then
three free calls that must fail as documented: an invalid body (400), an unknown request id (404)
and a call without a key (401). Every call goes through the validating proxy (in-process), so each
check reports the proxy's violations with their JSON pointers next to the status it expected. The
proxy's notices (a field the spec does not list) are kept apart: they fail no check, and are named in
the check's note.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from boogu_contract import wire

from ._asgi import OWN_ANSWER_HEADER
from ._cassette import CassetteWriter
from ._proxy import ContractProxy

SUBMIT = wire.submit_path("boogu-image")
PAID_BODY = {
    "prompt": "A red apple on a white table",
    "image_size": "square",
    "num_inference_steps": 20,
    "num_images": 1,
}
INVALID_BODY = {"prompt": "boogu verify", "num_inference_steps": 10}
UNKNOWN_ID = "boogu-image_00000000-0000-7000-8000-000000000000"


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
    notices: list[Problem] = field(default_factory=list)
    """What the gateway sent that the spec allows but does not list (rule `unlisted-field`): no failure."""

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
        self.proxy = ContractProxy(base_url, recorder=recorder, timeout=min(timeout, 60.0))

    async def run(self) -> list[Check]:
        transport = httpx.ASGITransport(self.proxy)
        async with httpx.AsyncClient(transport=transport, base_url="http://boogu-verify") as http:
            try:
                checks = await self._paid_flow(http)
                unknown = wire.status_path(UNKNOWN_ID)
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
            answer = await self._call(http, poll, "GET", wire.status_path(request_id), {200})
            body = _json(answer)
            if answer.status_code != 200 or body.get("status") in wire.TERMINAL_STATUSES:
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
        headers = {wire.KEY_HEADER: self.api_key} if key else {}
        response = await http.request(method, path, json=body, headers=headers)
        if OWN_ANSWER_HEADER in response.headers:
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
                problem = Problem(entry["pointer"], f"{entry['rule']}: {entry['expected']}", shown)
                if entry.get("severity") != "notice":
                    check.problems.append(problem)
                elif all(seen.pointer != problem.pointer for seen in check.notices):  # once per poll loop
                    check.notices.append(problem)
        return response


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
