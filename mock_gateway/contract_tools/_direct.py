"""The served proxy's plain requests answered without the ASGI cycle.

Through uvicorn's ASGI cycle (its scope, `receive`, `send` and their checks) and back, a call cost
the proxy as much CPU as its contract checks; and a call's latency through the proxy follows its CPU
(`make bench-proxy`). `DirectProtocol` is the guarded protocol of every server we ship, with one
change: a request that its head shows to be plain (no upgrade offer, no `Expect`, no chunked body, a
body of at most `DIRECT_BODY_BYTES`, not an admin route) goes straight to the proxy's `answer` once
its body is in, and the answer is written as one piece. Every other request takes uvicorn's ASGI path
as before, with the limits of `GuardedHttpToolsProtocol` on both.

The response is written by uvicorn's rules (its status lines, its header checks, `connection: close`
when the connection ends, no body for HEAD), so that a caller cannot tell the two paths apart.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any, Protocol, cast

import httptools
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    RequestResponseCycle,
)
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from boogu_contract.wire import ADMIN_PREFIX

from ..server._coalesce import CoalescingTransport
from ..server._limits import GuardedHttpToolsProtocol
from ._asgi import Answer, Request

DIRECT_BODY_BYTES = HIGH_WATER_LIMIT
"""Larger bodies take the ASGI path: uvicorn pauses reading past this until the app reads the body."""


class DirectApp(Protocol):
    """What the direct path calls: `ContractProxy.answer`, the same answer as its ASGI call's."""

    async def answer(self, request: Request) -> Answer: ...


class DirectProtocol(GuardedHttpToolsProtocol):
    """Set `direct` (the app that answers plain requests) on a subclass, as `guarded_protocol` does."""

    direct: DirectApp

    def on_headers_complete(self) -> None:
        plain = self._plain_target()
        if plain is None:
            super().on_headers_complete()
            return
        path, raw_path, query = plain
        method = self.parser.get_method().decode("ascii")
        version = self.parser.get_http_version()
        scope: Any = self.scope
        scope.update(method=method, path=path, raw_path=raw_path, query_string=query)
        if version != "1.1":
            scope["http_version"] = version
        cycle = DirectCycle(
            scope=self.scope,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=False,
            keep_alive=version != "1.0" and self.parser.should_keep_alive(),
            on_response=self.on_response_complete,
        )
        cycle.direct = self.direct
        existing, self.cycle = self.cycle, cycle
        if existing is None or existing.response_complete:
            cycle.unstarted = True  # started with its body in (`on_message_complete`), not before
        else:  # pipelined: after the one before it, as uvicorn queues its own
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, self.app))

    def on_message_complete(self) -> None:
        """A request's task starts once its body is in: a body sent apart from its head (as httpx
        sends one) then costs the task no wait and the loop no turn."""
        super().on_message_complete()
        cycle = self.cycle
        if isinstance(cycle, DirectCycle) and cycle.unstarted:
            cycle.unstarted = False
            self._start_asgi_task(cycle, self.app)

    def _plain_target(self) -> tuple[str, bytes, bytes] | None:
        """The decoded path, the raw path and the query of a plain request (see the module's
        docstring), else None."""
        if self.expect_100_continue or self.parser.should_upgrade() or self.limit_concurrency is not None:
            return None
        for name, value in self.headers:
            if name == b"transfer-encoding" or (
                name == b"content-length" and not (value.isdigit() and int(value) <= DIRECT_BODY_BYTES)
            ):
                return None
        try:
            url = httptools.parse_url(self.url)
            path = url.path.decode("ascii")
        except (httptools.HttpParserInvalidURLError, UnicodeDecodeError):
            return None  # uvicorn's path says why, as before
        if "%" in path:
            path = urllib.parse.unquote(path)
        if path.startswith(ADMIN_PREFIX) or self.root_path:
            return None
        return path, url.path, url.query or b""


class DirectCycle(RequestResponseCycle):
    """uvicorn's request cycle (the protocol and its limits read its state), run without ASGI."""

    direct: DirectApp
    unstarted = False
    """Neither started nor queued behind another request: its protocol starts it once its body is in."""

    async def run_asgi(self, app: Any) -> None:
        try:
            while self.more_body and not self.disconnected:  # pipelined: queued before its body was in
                await self.message_event.wait()
                self.message_event.clear()
            if self.disconnected:
                return
            scope: Any = self.scope  # uvicorn's TypedDict, which mypy takes for no Mapping
            answer = await self.direct.answer(Request.of(scope, bytes(self.body)))
            if self.flow.write_paused and not self.disconnected:
                await self.flow.drain()
            if not self.disconnected:
                self._write(answer)
        except BaseException as exc:  # as uvicorn's cycle: logged, and a 500 if nothing was sent yet
            self.logger.error("Exception in ASGI application\n", exc_info=exc)
            if not self.response_started:
                await self.send_500_response()
            else:
                self.transport.close()
        finally:
            self.on_response = lambda: None

    def _write(self, answer: Answer) -> None:
        """The answer in one socket write (a large body in its own), by the rules of uvicorn's `send`
        for a body of known length."""
        self.response_started = True
        self.waiting_for_100_continue = False
        scope: Any = self.scope
        if self.access_log:
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d',
                get_client_addr(scope),
                scope["method"],
                get_path_with_query_string(scope),
                scope["http_version"],
                answer.status,
            )
        head = [STATUS_LINE[answer.status]]
        fields = [*self.default_headers]
        fields += [
            (name.encode("latin-1").lower(), value.encode("latin-1")) for name, value in answer.headers
        ]
        fields.append((b"content-length", b"%d" % len(answer.body)))
        # uvicorn's checks of each name and value, in one search each: the separators are characters
        # that its patterns allow
        if HEADER_RE.search(b"-".join([name for name, _ in fields])) or HEADER_VALUE_RE.search(
            b"\t".join([value for _, value in fields])
        ):
            raise RuntimeError("Invalid HTTP header name or value.")
        for name, value in fields:
            head += [name, b": ", value, b"\r\n"]
        if not self.keep_alive:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        transport = cast(CoalescingTransport, self.transport)  # as `GuardedHttpToolsProtocol` wraps it
        transport.write_whole(b"".join(head), b"" if scope["method"] == "HEAD" else answer.body)
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            self.transport.close()
        self.on_response()
