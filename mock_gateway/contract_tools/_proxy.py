"""The validating proxy: forwards every call to a real gateway and checks both ways against openapi.yaml.

The upstream's answer reaches the caller unchanged but for one added header, `X-Contract-Violations`
(the count, then a short summary), and, only with `rewrite_media`, media URLs that point back at the
proxy so that downloads are seen (and recorded) too. Each violation is also logged (one line) and
kept for `GET /__mock/violations` (`DELETE` empties it). Bodies are read whole, up to
`max_body_bytes` each way, because a body must be complete to be validated; the key is forwarded
and never logged, kept or written.

Whatever callers and upstreams send, the proxy's memory and the other callers' wait stay bounded:
arrays are checked in their first `MAX_CHECKED_ITEMS` items and bodies up to `MAX_CHECKED_VALUES`
values and `MAX_CHECKED_DEPTH` levels (a larger one gets a `not-checked` notice), large exchanges
are checked on a worker thread (one at a time), at most `MAX_KEPT_PER_EXCHANGE` findings of an
exchange are kept and logged, each cut to a short excerpt, and the log keeps the newest
`ViolationLog.size` of them.

Notices (severity `notice`: an answer's field that its schema does not list, or a body too large to
check) are no violation: they
are kept in the same list with their severity, but counted apart, in an `X-Contract-Notices` header
sent only when there are some, and logged as `contract notice` (WARNING the first time a pointer of
an operation's status shows one, INFO after that, so that a gateway adding a field to every answer
does not flood the log).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import hmac
import json
import logging
import mimetypes
import re
import threading
from collections import deque
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.types import Receive, Scope, Send

from boogu_contract import Conformance, ContractViolation, is_secret, iso_time, redact_url
from boogu_contract._conformance import Side
from boogu_contract._json import few_brackets
from boogu_contract._redact import secret_values
from boogu_contract.wire import ADMIN_PREFIX

from ..model import Clock, SystemClock
from ..model._journal import clip_body
from ._asgi import (
    Answer,
    Request,
    TooLarge,
    end_to_end,
    error_answer,
    has_dot_segments,
    lifespan,
    read_body,
    send_answer,
)
from ._cassette import EXCERPT_CHARS, CassetteWriter, Exchange, excerpt
from ._upstream import Origin, Upstream, wire_target

logger = logging.getLogger("mock_gateway.proxy")
VIOLATIONS_HEADER = "x-contract-violations"
NOTICES_HEADER = "x-contract-notices"
MEDIA_PREFIX = "/__proxy/media/"
MAX_HEADER_CHARS = 400
MAX_MEDIA = 100_000
"""Rewritten media URLs remembered (the oldest forgotten first)."""
MAX_NOTICED = 10_000
"""Notices whose first sighting is remembered, for the log level (forgotten all at once when full)."""
MAX_CHECKED_ITEMS = 1_000
"""Items of an array that are checked: jsonschema's errors for a 200,000-item array take seconds and
hundreds of MB. The answer is still forwarded (and recorded) whole."""
MAX_CHECKED_VALUES = 20_000
"""Values (after cutting arrays) of a body that is checked; a larger one gets a `not-checked` notice,
as the errors of a wide or nested one cost seconds and hundreds of MB all the same."""
MAX_CHECKED_DEPTH = 64
"""Levels of a body that is checked (the spec's nest 3): jsonschema's message shows the value it
refuses, and the text of one nested 1,000 deep went past Python's recursion limit (a 500)."""
SMALL_BODY_BYTES = 2 * MAX_CHECKED_ITEMS
"""Bodies up to this size with few brackets need no walk: an array of more than `MAX_CHECKED_ITEMS`
items takes more bytes (an item and a comma each), no body holds more values than bytes, and none
nests deeper than it has brackets."""
_UNCHECKED = object()
MAX_KEPT_PER_EXCHANGE = 20
"""Findings of one exchange kept and logged; the headers still count them all."""
INLINE_CHECK_BYTES = 64 * 1024
"""Exchanges with more body bytes than this are checked on the worker thread, off the event loop."""
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
"""A JSON string token, escapes included (unrolled, so that long strings cost one scan)."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
"""Characters that no header value may hold raw (the proxy's server answers 500 rather than send one)."""


class ViolationLog:
    """The violations and notices seen so far, newest last, bounded; for `/__mock/violations` and
    `boogu verify`. Each entry has a `severity`: `error` (a violation) or `notice`.

    At most `size` entries, each cut to a short excerpt by `add` (as the mock's journal cuts its
    entries), so the whole log stays within a few MB whatever callers and upstreams send."""

    def __init__(self, size: int = 10_000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()
        self.total = 0

    def add(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Keep `entry`, cut; returns it as kept."""
        entry = {key: _excerpt(key, value) for key, value in entry.items()}
        with self._lock:
            self._entries.append(entry)
            self.total += 1
        return entry

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class ContractProxy:
    """An ASGI app that forwards to `upstream` over keep-alive connections (`Upstream`).

    The extra round trip is most of what the proxy adds (`make bench-proxy`): its own lean client
    rather than httpx or aiohttp, whose request machinery cost more CPU than the exchange itself.
    """

    def __init__(
        self,
        upstream: str,
        *,
        conformance: Conformance | None = None,
        recorder: CassetteWriter | None = None,
        rewrite_media: bool = False,
        public_url: str | None = None,
        timeout: float = 60.0,
        max_body_bytes: int = 32 * 1024 * 1024,
        clock: Clock | None = None,
        admin_token: str | None = None,
        upstream_admin_token: str | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.conformance = conformance or Conformance()
        self.recorder = recorder
        self.rewrite_media = rewrite_media
        self.public_url = public_url.rstrip("/") if public_url else None
        """Base of rewritten media URLs; without it, the address the caller's connection reached."""
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self.clock = clock or SystemClock()
        self.violations = ViolationLog()
        self._upstream_secrets = secret_values((), self.upstream)
        self._own_bearer = f"Bearer {admin_token}".encode() if admin_token else None
        """`Authorization` that unlocks this proxy's admin routes: the proxy's, never passed on."""
        self._upstream_bearer = f"Bearer {upstream_admin_token}" if upstream_admin_token else None
        """`Authorization` of the `/__mock/*` calls passed on, for an upstream mock with a token."""
        self._client = Upstream(timeout=timeout, max_body_bytes=max_body_bytes)
        self._origin: Origin | None = None
        self._checker: ThreadPoolExecutor | None = None
        self._media: dict[str, str] = {}
        """Rewritten media: token → the upstream's URL. Only these URLs can be fetched through the proxy."""
        self._noticed: set[tuple[str, int, str]] = set()
        """(operation, status, pointer) of the notices logged so far at WARNING."""

    @property
    def checker(self) -> ThreadPoolExecutor:
        """The one worker thread for large exchanges: they queue there, so their memory does not add up."""
        if self._checker is None:
            self._checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="contract-check")
        return self._checker

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._checker is not None:
            self._checker.shutdown(wait=False, cancel_futures=True)
            self._checker = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send, self.aclose)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        answer = self._own_answer(method, path)  # before the body, whatever it holds
        if answer is None:
            try:
                body = await read_body(receive, self.max_body_bytes)
            except TooLarge:
                answer = self.too_large()
            else:
                answer = await self._passed_on_answer(Request.of(scope, body))
        await send_answer(send, answer)

    async def answer(self, request: Request) -> Answer:
        """What an ASGI call gets, for a request already read whole: the served proxy (`WholeServer`)
        answers every request with it, without ASGI."""
        answer = self._own_answer(request.method, request.path)
        if answer is not None:
            return answer
        if len(request.body) > self.max_body_bytes:
            return self.too_large()
        return await self._passed_on_answer(request)

    def _own_answer(self, method: str, path: str) -> Answer | None:
        """The proxy's answer to a path it forwards nowhere: one with dot segments, or its violations."""
        if has_dot_segments(path):
            message = "The proxy forwards no path with `.` or `..` segments: ask for the path they name."
            return error_answer(400, "Bad Request", message)
        if path == f"{ADMIN_PREFIX}/violations" and method in ("GET", "DELETE"):
            if method == "DELETE":
                self.violations.clear()
            return Answer(
                200, [("content-type", "application/json")], orjson.dumps(self.violations.entries())
            )
        return None

    def too_large(self) -> Answer:
        message = f"The proxy reads request bodies up to {self.max_body_bytes} bytes."
        return error_answer(413, "Payload Too Large", message)

    async def _passed_on_answer(self, request: Request) -> Answer:
        """The upstream's answer, checked (or a media download's)."""
        method, path, query, headers, body, server, scheme = request
        target = path + (f"?{query}" if query else "")
        if path.startswith(MEDIA_PREFIX) and method == "GET":
            return await self._media_download(path, target, headers)
        base = self._base_url(server, scheme) if self.rewrite_media else ""
        return await self._forward(method, target, path, query, headers, body, base)

    async def _forward(
        self,
        method: str,
        target: str,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        base: str,
    ) -> Answer:
        secrets = [*self._upstream_secrets, *secret_values(headers, target)]
        url = self.upstream + target
        forwarded = self._passed_on(headers, path)
        where = functools.partial(self._upstream_at, path, query)
        answer = await self._exchange(method, where, forwarded, body)
        if answer.own or path.startswith(f"{ADMIN_PREFIX}/"):
            return answer
        routed = self.conformance.route(method, path)
        found: list[ContractViolation] = []
        request_id = None
        response_body = answer.body
        if routed is not None:
            check = functools.partial(self._check, *routed, path, headers, body, answer, secrets, base)
            if len(body) + len(answer.body) > INLINE_CHECK_BYTES:
                found, request_id, response_body = await asyncio.get_running_loop().run_in_executor(
                    self.checker, check
                )
            else:
                found, request_id, response_body = check()
            self._report(method, path, answer.status, found)
        errors = [violation for violation in found if not violation.is_notice]
        added = [(VIOLATIONS_HEADER, _summary(errors))]
        if len(errors) < len(found):
            added.append((NOTICES_HEADER, _summary([v for v in found if v.is_notice])))
        final = Answer(answer.status, [*answer.headers, *added], response_body)
        if self.recorder is not None:
            self.recorder.record(
                Exchange(
                    method=method,
                    uri=redact_url(url),
                    path=redact_url(target),
                    request_headers=forwarded,
                    request_body=body,
                    status=final.status,
                    response_headers=final.headers,
                    response_body=final.body,
                    operation=routed[0] if routed else None,
                    request_id=request_id,
                    violations=[excerpt(v.summary()) for v in errors[:MAX_KEPT_PER_EXCHANGE]],
                    secrets=secrets,
                )
            )
        return final

    def _passed_on(self, headers: list[tuple[str, str]], path: str) -> list[tuple[str, str]]:
        """The caller's end-to-end headers, but for this proxy's admin token, which is no one else's
        to see; a `/__mock/*` call gets the upstream's admin token instead, when there is one."""
        passed = end_to_end(headers)
        if self._own_bearer is not None:
            own = self._own_bearer
            passed = [
                (name, value)
                for name, value in passed
                if name.lower() != "authorization" or not hmac.compare_digest(value.encode("latin-1"), own)
            ]
        if self._upstream_bearer is not None and path.startswith(f"{ADMIN_PREFIX}/"):
            passed = [(name, value) for name, value in passed if name.lower() != "authorization"]
            passed.append(("authorization", self._upstream_bearer))
        return passed

    def _check(
        self,
        operation_id: str,
        params: dict[str, str],
        path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        answer: Answer,
        secrets: list[str],
        base: str,
    ) -> tuple[list[ContractViolation], str | None, bytes]:
        """Both sides' findings, the request id and the body to send on (its media URLs rewritten).

        A body over the budget (`_json`) is not checked: one `not-checked` notice says so instead."""
        request_json, request_ok = _json(body)
        if request_json is _UNCHECKED:
            found = [_unchecked(operation_id, "request")]
        else:
            found = self.conformance.check_request(
                operation_id, dict(headers), request_json, parsed=request_ok
            )
        response_json, response_ok = _json(answer.body)
        if response_json is _UNCHECKED:
            found.append(_unchecked(operation_id, "response"))
        else:
            found += self.conformance.check_response(
                operation_id,
                answer.status,
                dict(answer.headers),
                response_json,
                path_params=params,
                submit_path=path,
                secrets=secrets,
                parsed=response_ok,
            )
        request_id = params.get("request_id") or _request_id(response_json)
        response_body = answer.body
        if self.rewrite_media and answer.status == 200 and isinstance(response_json, dict):
            response_body = self._rewrite(answer.body, response_json, base)
        return [_with_id(v, request_id) for v in found], request_id, response_body

    def _upstream_at(self, path: str, query: str) -> tuple[Origin, str]:
        """Where a call to the proxy's `path` goes (a bad `upstream` URL: ValueError, a 502)."""
        if self._origin is None:
            self._origin = Origin.of(self.upstream)
        return self._origin, wire_target(path, query)

    async def _exchange(
        self,
        method: str,
        where: Callable[[], tuple[Origin, str]],
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> Answer:
        """One call upstream, to the origin and target `where` says; its failures (and a URL that
        names no http(s) origin) become the proxy's own 502/504 answers."""
        try:
            origin, target = where()
            reply = await self._client.request(method, origin, target, headers, body)
        except TimeoutError:
            return error_answer(
                504, "Gateway Timeout", f"The upstream did not answer within {self.timeout:g} s."
            )
        except TooLarge:
            message = f"The upstream's answer is larger than the proxy reads ({self.max_body_bytes} bytes)."
            return error_answer(502, "Bad Gateway", message)
        except (OSError, ValueError) as exc:
            return error_answer(
                502, "Bad Gateway", f"The upstream could not be reached: {type(exc).__name__}."
            )
        return Answer(reply.status, end_to_end(reply.headers), reply.body)

    def _report(self, method: str, path: str, status: int, found: list[ContractViolation]) -> None:
        if not found:  # the common case: no time to format
            return
        at = iso_time(self.clock.now())
        if len(found) > MAX_KEPT_PER_EXCHANGE:
            logger.warning(
                "contract findings: %s %s → %s: %d, the first %d kept",
                method,
                excerpt(path),
                status,
                len(found),
                MAX_KEPT_PER_EXCHANGE,
            )
        for violation in found[:MAX_KEPT_PER_EXCHANGE]:
            entry = {"at": at, "method": method, "path": path, "status": status, **violation.to_dict()}
            kept = self.violations.add(entry)
            level = logging.WARNING
            if violation.is_notice:
                seen = (violation.operation, status, kept["pointer"])
                if len(self._noticed) >= MAX_NOTICED:
                    self._noticed.clear()
                level = logging.INFO if seen in self._noticed else logging.WARNING
                self._noticed.add(seen)
            logger.log(
                level,
                "contract %s: %s %s %s → %s %s %s: %s (spec: %s; got %s)",
                "notice" if violation.is_notice else "violation",
                *(kept[key] or "-" for key in ("operation", "request_id", "side", "status")),
                kept["pointer"] or "/",
                kept["rule"],
                kept["message"],
                kept["expected"],
                json.dumps(kept["value"], ensure_ascii=False, default=str),
            )

    def _rewrite(self, raw: bytes, body: dict[str, Any], base: str) -> bytes:
        """Point the answer's http(s) media URLs at the proxy, changing only those strings' bytes
        (in one pass over the body, however many there are)."""
        output = body.get("output")
        urls = output.get("media_url") if isinstance(output, dict) else None
        replaced: dict[bytes, bytes] = {}
        for url in urls if isinstance(urls, list) else []:
            try:
                parts = urlsplit(url) if isinstance(url, str) else None
            except ValueError:  # no URL (`http://[host/x`): passed on as sent
                continue
            if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
                continue  # nothing that a download through the proxy could fetch
            extension = mimetypes.guess_extension(mimetypes.guess_type(parts.path)[0] or "") or ""
            token = hashlib.sha256(url.encode()).hexdigest()[:32] + extension
            self._media[token] = url
            if len(self._media) > MAX_MEDIA:
                del self._media[next(iter(self._media))]
            replaced[orjson.dumps(url)] = orjson.dumps(f"{base}{MEDIA_PREFIX}{token}")
        if not replaced:
            return raw
        return _JSON_STRING.sub(lambda found: replaced.get(found[0], found[0]), raw)

    def _base_url(self, server: tuple[str, int | None] | None, scheme: str) -> str:
        """The proxy's own URL for rewritten media URLs: `public_url`, else the address that the
        connection reached (never the caller's `Host`, which anyone can set)."""
        if self.public_url:
            return self.public_url
        host, port = server or ("127.0.0.1", 80)
        return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"

    async def _media_download(self, path: str, target: str, headers: list[tuple[str, str]]) -> Answer:
        url = self._media.get(path.removeprefix(MEDIA_PREFIX))
        if url is None:
            return error_answer(404, "Not Found", f"No media URL of an answer seen by this proxy is {path}.")
        asked = end_to_end(headers)
        passed = [(n, v) for n, v in asked if not is_secret(n)]
        answer = await self._exchange("GET", functools.partial(Origin.split, url), passed, b"")
        if self.recorder is not None and not answer.own:
            secrets = secret_values(headers, target)
            self.recorder.record(
                Exchange(
                    "GET",
                    redact_url(url),
                    redact_url(target),
                    asked,
                    b"",
                    answer.status,
                    answer.headers,
                    answer.body,
                    secrets=secrets,
                )
            )
        return answer


def _json(body: bytes) -> tuple[Any, bool]:
    """The body as checked: parsed, each array cut to `MAX_CHECKED_ITEMS`, or `_UNCHECKED` when it
    still holds more than `MAX_CHECKED_VALUES` values or nests deeper than `MAX_CHECKED_DEPTH`; else
    the start of its text and False."""
    if not body:
        return None, False
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[: 4 * EXCERPT_CHARS].decode("utf-8", "replace"), False
    if len(body) <= SMALL_BODY_BYTES and few_brackets(body, MAX_CHECKED_DEPTH):
        return document, True  # every API body: nothing to cut, nothing over budget
    return (document if _within_budget(document) else _UNCHECKED), True


def _within_budget(document: Any) -> bool:
    """Cut each array of `document` (freshly parsed, so in place) to `MAX_CHECKED_ITEMS`, and say
    whether it then holds at most `MAX_CHECKED_VALUES` values in at most `MAX_CHECKED_DEPTH` levels.
    A loop, not recursion: orjson parses deeper than Python recurses."""
    waiting: list[tuple[Any, int]] = [(document, 0)]
    left = MAX_CHECKED_VALUES
    while waiting:
        value, depth = waiting.pop()
        if isinstance(value, (list, dict)):
            if depth == MAX_CHECKED_DEPTH:
                return False
            if isinstance(value, list):
                del value[MAX_CHECKED_ITEMS:]
            children = value if isinstance(value, list) else value.values()
            waiting += [(child, depth + 1) for child in children]
        left -= 1
        if left < 0:
            return False
    return True


def _unchecked(operation_id: str, side: Side) -> ContractViolation:
    message = (
        f"more than {MAX_CHECKED_VALUES:,} JSON values, after cutting arrays to {MAX_CHECKED_ITEMS:,},"
        f" or more than {MAX_CHECKED_DEPTH} levels"
    )
    return ContractViolation(
        operation_id,
        None,
        side,
        "/body",
        "not-checked",
        message,
        "a body the proxy can check",
        None,
        "notice",
    )


def _request_id(body: Any) -> str | None:
    value = body.get("request_id") if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


def _with_id(violation: ContractViolation, request_id: str | None) -> ContractViolation:
    if violation.request_id is not None or request_id is None:
        return violation
    return dataclasses.replace(violation, request_id=request_id)


def _summary(found: Collection[ContractViolation]) -> str:
    """`0`, or `2; response /body/model_id required; response /status declared-status`, kept short.

    The same for notices: `1; response /body/progress unlisted-field`."""
    if not found:
        return "0"
    text = "; ".join([str(len(found)), *(v.summary() for v in found)])
    # A pointer names the upstream's JSON keys: escaped to what a header value may hold (printable ASCII)
    text = text.encode("ascii", "backslashreplace").decode("ascii")
    text = _CONTROL.sub(lambda char: char[0].encode("unicode_escape").decode("ascii"), text)
    if len(text) > MAX_HEADER_CHARS:
        text = text[: MAX_HEADER_CHARS - 3] + "..."
    return text


def _excerpt(key: str, value: Any) -> Any:
    """An entry's field as kept: text cut (`EXCERPT_CHARS`), the offending value cut as the mock's
    journal cuts bodies."""
    if key == "value":
        return clip_body(value, EXCERPT_CHARS)
    return excerpt(value) if isinstance(value, str) else value
