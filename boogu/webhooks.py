"""Webhooks: submit with `webhook_url=...` and the gateway POSTs the final status object there.

`parse_webhook` validates a body into the generated `RequestStatus`. The body is not signed, so
anyone who learns the URL can post one: confirm with `client.status(request_id)` before acting on it.
`WebhookReceiver` is a small working receiver (asyncio and h11, which httpx brings) to start from:

    with WebhookReceiver(port=8000) as receiver:           # python -m boogu.webhooks --port 8000
        submission = client.submit(request, webhook_url=receiver.url)
        final = receiver.wait_for(submission.request_id, timeout=120)

It receives on one path, `/boogu-webhook` unless `path=` (`--path`) says otherwise, and on any
path below it: `PATH/<line>` names what the job was for (a batch sends each line's submit with its
own `line_webhook_url`), and `line_of` gives that name back. A POST anywhere else answers 404.
`python -m boogu.webhooks --log FILE` appends each delivery (its status object and its `line`) to
FILE, which `read_webhook_log` reads back: `boogu batch --recover-from FILE` uses it to recover
uncertain lines without submitting them again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import h11
from boogu_image_client.models import RequestStatus

from boogu_contract._json import loads, shallow

from ._errors import UnknownStatusError, WebhookError
from ._models import JobStatus

logger = logging.getLogger("boogu.webhooks")
MAX_BODY_BYTES = 1024 * 1024
"""A status object is small; a receiver should not buffer whatever a stranger sends."""
DEFAULT_PATH = "/boogu-webhook"
_PATH = re.compile(r"/[!-~]{0,1023}")  # printable ASCII, no space: what a URL path can hold as is


def webhook_path(value: str) -> str:
    """`value` if it can be the receiver's URL path, else ValueError saying why.

    It must start with `/` and be printable ASCII without spaces, `?` or `#` (a query or fragment
    would never match the request line), at most 1024 characters.
    """
    if not _PATH.fullmatch(value) or "?" in value or "#" in value:
        raise ValueError(
            f"path must start with / and be at most 1024 printable ASCII characters without spaces, "
            f"? or #; got {value[:80]!r}"
        )
    return value


def line_webhook_url(base: str, line: str) -> str:
    """`base` with `line` (any text, percent-encoded as one path segment) appended to its path: a
    receiver on `base`'s path records `line` with the delivery (see `WebhookReceiver.line_of`)."""
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{quote(line, safe='')}"))


def _line_in(path: str, base: str) -> str | None:
    """The line named by a request `path` below the receiver's `base` path; "" for `base` itself,
    None for a path outside it (or an empty or nested suffix, which no `line_webhook_url` makes)."""
    if path == base:
        return ""
    suffix = path.removeprefix(base.rstrip("/") + "/")
    if suffix == path or not suffix or "/" in suffix or "?" in suffix or "#" in suffix:
        return None
    return unquote(suffix, errors="strict")


def parse_webhook(body: bytes | str | Mapping[str, Any]) -> RequestStatus:
    """Validate a webhook body (raw bytes, text, or parsed JSON) into the generated `RequestStatus`.

    Raises WebhookError for anything that is not a status object, and UnknownStatusError (whose
    `status` is the lenient `JobStatus`) for a valid one whose status value this client predates:
    acknowledge it anyway, or the gateway will keep retrying the delivery.
    """
    try:
        data: Any = shallow(body) if isinstance(body, Mapping) else loads(body)
    except ValueError as exc:  # a status object is a few levels deep
        raise WebhookError(f"webhook body is not JSON: {exc}") from None
    try:
        status = JobStatus.parse(data)
    except ValueError as exc:
        raise WebhookError(f"webhook body is not a status object: {exc}") from None
    if status.status == "UNKNOWN":
        raise UnknownStatusError(
            status, f"webhook for {status.request_id} has unknown status {status.raw_status!r}"
        )
    if status.status == "COMPLETED" and (status.output is None or not status.output.media_url):
        raise WebhookError(f"webhook for {status.request_id} is COMPLETED without media_url")
    return status.to_model()


StatusHandler = Callable[[RequestStatus], object]

MAX_HEADER_BYTES = 16 * 1024
"""The request line and headers of a delivery: more is answered 431."""
READ_TIMEOUT = 10.0
"""Seconds a request's line, headers and body may take to arrive (408 after; an idle connection is closed)."""
MAX_CONNECTIONS = 1000
"""Connections served at once; one more is answered 503 (the kernel queues up to BACKLOG before that)."""
BACKLOG = 2048
MAX_BUFFERED_BYTES = 16 * MAX_BODY_BYTES
"""Bodies being received or handled at once, all connections together: one that would pass it is
answered 503 (a status object is about 1 KiB, so only outsized deliveries ever meet it)."""
KEEP = 10_000
KEEP_BYTES = 8 * MAX_BODY_BYTES
"""In RAM the receiver keeps only its most recent KEEP deliveries, and fewer when their bodies pass
KEEP_BYTES: `received`, `wait_for` and `line_of` know those; `--log FILE` keeps them all."""
_LINGER = 1.0
"""Seconds to drain an unread body after answering early, so the sender reads the answer, not a reset."""
_CHUNK = 64 * 1024
_MESSAGE_CHARS = 300
"""An answer's message is cut to this: it may quote what the sender sent."""


class _Refused(Exception):
    """A request answered with `status` before it was read whole; the connection is then closed."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class _Kept:
    """A recent delivery, with its body's size: what KEEP_BYTES counts."""

    status: RequestStatus
    line: str
    size: int


class WebhookReceiver:
    """Receives webhooks on `host:port` (0: any free port) on an asyncio loop in a background thread.

    Each valid status is passed to `on_status` (in a worker thread, before the delivery is answered
    204, so a failing handler makes the gateway retry) and the recent ones are kept by request id
    (see KEEP and `wait_for`); an invalid body is answered 400, a status of unknown value 202
    (accepted, so the gateway stops retrying). Limits: MAX_BODY_BYTES (413), MAX_HEADER_BYTES (431),
    READ_TIMEOUT (408), MAX_CONNECTIONS and MAX_BUFFERED_BYTES (503).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        path: str = DEFAULT_PATH,
        on_status: StatusHandler | None = None,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self.path = webhook_path(path)
        self._on_status = on_status
        self._read_timeout = read_timeout
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self._kept_bytes = 0
        self._arrived = threading.Condition()
        self._connections = 0
        self._buffered = 0
        self._socket = socket.create_server((host, port), backlog=BACKLOG)
        self._runner = asyncio.Runner()
        self._stopping = asyncio.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"http://{host!s}:{port}{self.path}"

    def start(self) -> Self:
        self._runner.get_loop()  # made here, so that `stop` can reach it at once
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._runner.get_loop().call_soon_threadsafe(self._stopping.set)
            self._thread.join()
        self._socket.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def received(self) -> dict[str, RequestStatus]:
        """The recent deliveries (see KEEP), by request id."""
        with self._arrived:
            return {request_id: kept.status for request_id, kept in self._kept.items()}

    def wait_for(self, request_id: str, timeout: float | None = None) -> RequestStatus:
        """The status delivered for `request_id`, waiting up to `timeout` s for it (TimeoutError after)."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: request_id in self._kept, timeout):
                raise TimeoutError(f"no webhook for {request_id} within {timeout} s")
            return self._kept[request_id].status

    def line_of(self, request_id: str) -> str | None:
        """The line named by the path that `request_id`'s webhook was delivered to (None: the base path)."""
        with self._arrived:
            kept = self._kept.get(request_id)
            return (kept.line or None) if kept else None

    def _keep(self, status: RequestStatus, line: str, size: int) -> None:
        with self._arrived:
            if (old := self._kept.pop(status.request_id, None)) is not None:
                self._kept_bytes -= old.size
            self._kept[status.request_id] = _Kept(status, line, size)
            self._kept_bytes += size
            while len(self._kept) > KEEP or self._kept_bytes > KEEP_BYTES:
                self._kept_bytes -= self._kept.popitem(last=False)[1].size
            self._arrived.notify_all()

    def _run(self) -> None:
        with self._runner:
            self._runner.run(self._serve())

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._connection, sock=self._socket, backlog=BACKLOG)
        async with server:
            await self._stopping.wait()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        self._connections += 1
        try:
            if self._connections > MAX_CONNECTIONS:
                await _answer(conn, writer, HTTPStatus.SERVICE_UNAVAILABLE, "too many connections")
                return
            while True:
                body = bytearray()  # counted in MAX_BUFFERED_BYTES until answered
                try:
                    if not await self._exchange(conn, reader, writer, body):
                        return
                finally:
                    self._buffered -= len(body)
                conn.start_next_cycle()
        except (OSError, h11.LocalProtocolError):
            pass  # the peer went away, or cannot be answered in this state: close
        except asyncio.CancelledError:
            pass  # the receiver stops: Python 3.11's streams would log a handler cancelled mid-read
        finally:
            self._connections -= 1
            writer.close()

    async def _exchange(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        body: bytearray,
    ) -> bool:
        """Read one request (its body into `body`) and answer it; whether the connection can carry another."""
        request: list[h11.Request] = []  # the request's head, once read: a HEAD's answer has no body
        try:
            try:
                async with asyncio.timeout(self._read_timeout):
                    line = await self._read(conn, reader, writer, body, request)
            except TimeoutError:
                if conn.their_state is h11.IDLE and not conn.trailing_data[0]:
                    return False  # an idle connection: close it without a word
                raise _Refused(HTTPStatus.REQUEST_TIMEOUT, "the request took too long to arrive") from None
            except h11.RemoteProtocolError as exc:
                raise _Refused(HTTPStatus(exc.error_status_hint), str(exc)) from None
        except _Refused as refused:
            head = bool(request) and request[0].method == b"HEAD"
            await _answer(conn, writer, refused.status, str(refused), head=head)
            if conn.their_state is h11.SEND_BODY:
                writer.write_eof()
                with contextlib.suppress(TimeoutError, OSError):
                    async with asyncio.timeout(_LINGER):
                        while await reader.read(_CHUNK):
                            pass
            return False
        if line is None:
            return False
        code, message = await self._handle(line, bytes(body))
        await _answer(conn, writer, code, message)
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    async def _read(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        body: bytearray,
        request: list[h11.Request],
    ) -> str | None:
        """The line a delivery names, its head into `request` and its body into `body`; None if the
        peer closed."""
        event = await _next_event(conn, reader)
        if isinstance(event, h11.ConnectionClosed):
            return None
        assert isinstance(event, h11.Request)
        request.append(event)
        head = len(event.target) + sum(len(name) + len(value) for name, value in event.headers)
        if head > MAX_HEADER_BYTES:
            raise _Refused(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "headers of at most 16 KiB")
        if event.method != b"POST":
            raise _Refused(HTTPStatus.METHOD_NOT_ALLOWED, "a webhook is a POST")
        try:
            line = _line_in(event.target.decode("ascii"), self.path)
        except UnicodeDecodeError:
            line = None
        if line is None:
            raise _Refused(HTTPStatus.NOT_FOUND, "not the webhook path")
        length = dict(event.headers).get(b"content-length")
        if length is not None and int(length) > MAX_BODY_BYTES:
            raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "a webhook body is at most 1 MiB")
        if conn.they_are_waiting_for_100_continue:
            writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
            await writer.drain()
        while isinstance(event := await _next_event(conn, reader), h11.Data):
            if len(body) + len(event.data) > MAX_BODY_BYTES:
                raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "a webhook body is at most 1 MiB")
            if self._buffered + len(event.data) > MAX_BUFFERED_BYTES:
                raise _Refused(HTTPStatus.SERVICE_UNAVAILABLE, "too many deliveries at once")
            body += event.data
            self._buffered += len(event.data)
        if isinstance(event, h11.ConnectionClosed):
            return None
        if not body:
            raise _Refused(HTTPStatus.BAD_REQUEST, "a JSON body is required")
        return line

    async def _handle(self, line: str, body: bytes) -> tuple[HTTPStatus, str]:
        try:
            status = parse_webhook(body)
        except UnknownStatusError as exc:
            logger.warning("%s", exc)
            return HTTPStatus.ACCEPTED, str(exc)
        except WebhookError as exc:
            return HTTPStatus.BAD_REQUEST, str(exc)
        self._keep(status, line, len(body))
        if self._on_status is not None:
            try:
                await asyncio.to_thread(self._on_status, status)
            except Exception:
                logger.exception("on_status failed for %s", status.request_id)
                return HTTPStatus.INTERNAL_SERVER_ERROR, "the receiver could not record this delivery"
        return HTTPStatus.NO_CONTENT, ""


async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
    while (event := conn.next_event()) is h11.NEED_DATA:
        conn.receive_data(await reader.read(_CHUNK))
    return event


async def _answer(
    conn: h11.Connection, writer: asyncio.StreamWriter, code: HTTPStatus, message: str, *, head: bool = False
) -> None:
    """Answer `code` with `{"message": ...}`, and `error` (the status's phrase) when it refuses, as every
    server of the toolkit words its 4xx and 5xx (none for a 2xx without one; its headers only to a HEAD,
    whose answer h11 frames with no body); any but a 2xx closes."""
    fields = {"error": code.phrase} if code >= 400 else {}
    body = json.dumps({**fields, "message": message[:_MESSAGE_CHARS]}).encode() if message else b""
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))] if body else []
    if code >= 300:
        headers.append(("Connection", "close"))
    if code == HTTPStatus.SERVICE_UNAVAILABLE:
        headers.append(("Retry-After", "1"))
    if code == HTTPStatus.METHOD_NOT_ALLOWED:
        headers.append(("Allow", "POST"))
    data = conn.send(h11.Response(status_code=code, headers=headers, reason=code.phrase))
    data += conn.send(h11.Data(data=body)) if body and not head else b""
    writer.write(data + conn.send(h11.EndOfMessage()))
    await writer.drain()


MAX_LOG_LINE = 2 * MAX_BODY_BYTES
"""A logged delivery is a body of at most MAX_BODY_BYTES and its line: a longer log line is skipped."""


def log_record(status: RequestStatus, line: str | None) -> str:
    """One line of a webhook log: the status object, with the `line` its URL named (if any)."""
    record = status.to_dict()
    if line:
        record["line"] = line
    return json.dumps(record)


@dataclass
class WebhookLog:
    """What a webhook log proves: for each line, the jobs (by request id) whose webhook named it."""

    deliveries: dict[str, dict[str, RequestStatus]] = field(default_factory=dict)
    skipped: int = 0
    """Log lines that are not a valid delivery naming a line (cut short, not JSON, not UTF-8, forged ...)."""


def read_webhook_log(path: str | os.PathLike[str]) -> WebhookLog:
    """Read a log written by `python -m boogu.webhooks --log`, skipping (and counting) every line
    that is not a valid status object with a `line`, and reading no line beyond MAX_LOG_LINE bytes."""
    log = WebhookLog()
    with Path(path).open("rb") as file:
        while raw := file.readline(MAX_LOG_LINE + 1):
            if len(raw) > MAX_LOG_LINE and not raw.endswith(b"\n"):
                while (rest := file.readline(MAX_LOG_LINE)) and not rest.endswith(b"\n"):
                    pass  # the rest of an overlong line
                log.skipped += 1
                continue
            if not raw.strip():
                continue
            delivery = _delivery(raw)
            if delivery is None:
                log.skipped += 1
                continue
            line, status = delivery
            log.deliveries.setdefault(line, {})[status.request_id] = status
    return log


def _delivery(raw: bytes) -> tuple[str, RequestStatus] | None:
    try:
        record = loads(raw)
    except ValueError:  # UnicodeDecodeError is one too
        return None
    if not isinstance(record, dict):
        return None
    line = record.pop("line", None)
    if not isinstance(line, str) or not line:
        return None
    try:
        return line, parse_webhook(record)
    except (WebhookError, UnknownStatusError):  # not a status object, or one this client cannot act on
        return None


def _path_argument(value: str) -> str:
    try:
        return webhook_path(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m boogu.webhooks`: print each delivered status object as a line of JSON."""
    parser = argparse.ArgumentParser(prog="python -m boogu.webhooks", description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--path",
        type=_path_argument,
        default=DEFAULT_PATH,
        help="the URL path to receive on; a POST to any other answers 404 (default: %(default)s)",
    )
    parser.add_argument(
        "--log",
        type=Path,
        metavar="FILE",
        help="also append each delivery to FILE, for `boogu batch --recover-from FILE`",
    )
    args = parser.parse_args(argv)
    writing = threading.Lock()
    log = args.log.open("a", encoding="utf-8") if args.log else None

    def show(status: RequestStatus) -> None:
        record = log_record(status, receiver.line_of(status.request_id))
        with writing:
            print(record, flush=True)
            if log is not None:
                log.write(record + "\n")
                log.flush()

    try:
        with WebhookReceiver(args.host, args.port, path=args.path, on_status=show) as receiver:
            print(f"receiving webhooks on {receiver.url}", file=sys.stderr, flush=True)
            threading.Event().wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if log is not None:
            log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
