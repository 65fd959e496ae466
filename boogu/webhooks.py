"""Webhooks: submit with `webhook_url=...` and the gateway POSTs the final status object there.

`parse_webhook` validates a body into the generated `RequestStatus`. The body is not signed, so
anyone who learns the URL can post one: confirm with `client.status(request_id)` before acting on it.
`WebhookReceiver` is a small working receiver (standard library only) to start from:

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
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from boogu_image_client.models import RequestStatus

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
    if isinstance(body, bytes | str):
        try:
            data: Any = json.loads(body)
        except ValueError as exc:
            raise WebhookError(f"webhook body is not JSON: {exc}") from None
    else:
        data = body
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


class WebhookReceiver:
    """Receives webhooks on `host:port` (0: any free port) in a background thread.

    Every valid status is kept by request id (see `wait_for`) and passed to `on_status`; an invalid
    body is answered 400, a status of unknown value 202 (accepted, so the gateway stops retrying).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        path: str = DEFAULT_PATH,
        on_status: StatusHandler | None = None,
    ) -> None:
        self.path = webhook_path(path)
        self._on_status = on_status
        self._received: dict[str, RequestStatus] = {}
        self._lines: dict[str, str] = {}
        self._arrived = threading.Condition()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.path}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def received(self) -> dict[str, RequestStatus]:
        with self._arrived:
            return dict(self._received)

    def wait_for(self, request_id: str, timeout: float | None = None) -> RequestStatus:
        """The status delivered for `request_id`, waiting up to `timeout` s for it (TimeoutError after)."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: request_id in self._received, timeout):
                raise TimeoutError(f"no webhook for {request_id} within {timeout} s")
            return self._received[request_id]

    def line_of(self, request_id: str) -> str | None:
        """The line named by the path that `request_id`'s webhook was delivered to (None: the base path)."""
        with self._arrived:
            return self._lines.get(request_id)

    def _deliver(self, status: RequestStatus, line: str) -> None:
        with self._arrived:
            self._received[status.request_id] = status
            if line:
                self._lines[status.request_id] = line
            self._arrived.notify_all()
        if self._on_status is not None:
            self._on_status(status)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                try:
                    line = _line_in(self.path, receiver.path)
                except UnicodeDecodeError:
                    line = None
                if line is None:
                    self._answer(HTTPStatus.NOT_FOUND, "not the webhook path")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 < length <= MAX_BODY_BYTES:
                    self._answer(HTTPStatus.BAD_REQUEST, "a JSON body of at most 1 MiB is required")
                    return
                try:
                    status = parse_webhook(self.rfile.read(length))
                except UnknownStatusError as exc:
                    logger.warning("%s", exc)
                    self._answer(HTTPStatus.ACCEPTED, str(exc))
                    return
                except WebhookError as exc:
                    self._answer(HTTPStatus.BAD_REQUEST, str(exc))
                    return
                receiver._deliver(status, line)
                self._answer(HTTPStatus.NO_CONTENT, "")

            def _answer(self, code: HTTPStatus, message: str) -> None:
                body = json.dumps({"message": message}).encode() if message else b""
                self.send_response(code)
                if body:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("webhook %s", format % args)

        return Handler


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
        record = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
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
