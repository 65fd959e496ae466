"""The admin API's lock: with a token, every `/__mock/*` route but health needs `Authorization: Bearer`.

The admin API resets every key and balance and reads the journal, so a mock shared on a network (or
reachable from a webhook, a browser, a container next door) must not leave it open. Without a token
the middleware is not installed at all: in-process tests and the pytest plugin need none.
"""

from __future__ import annotations

import argparse
import hmac
import os

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from boogu_contract.wire import ADMIN_PREFIX, ADMIN_TOKEN_ENV

from ..model import is_loopback

OPEN_PATHS = frozenset({f"{ADMIN_PREFIX}/health"})
UNAUTHORIZED_BODY = orjson.dumps(
    {
        "error": "Unauthorized",
        "message": "The admin API needs the header Authorization: Bearer <admin token>.",
    }
)
UNAUTHORIZED_HEADERS = [
    ("content-type", "application/json"),
    ("www-authenticate", 'Bearer realm="mock-gateway admin"'),
]


def check_token(token: str) -> str:
    """A token must travel in a header unchanged: printable ASCII, no spaces, 8 to 256 characters."""
    if not 8 <= len(token) <= 256 or not token.isascii() or not token.isprintable() or " " in token:
        raise ValueError("the admin token must be 8 to 256 printable ASCII characters without spaces")
    return token


def add_admin_options(parser: argparse.ArgumentParser, exposure: str) -> None:
    """`--admin-token` and `--insecure-admin`, the same for every server we ship."""
    parser.add_argument(
        "--admin-token",
        default=os.environ.get(ADMIN_TOKEN_ENV),
        help=f"require 'Authorization: Bearer TOKEN' on {ADMIN_PREFIX}/* but health (or {ADMIN_TOKEN_ENV})",
    )
    parser.add_argument(
        "--insecure-admin",
        action="store_true",
        help=f"allow a non-loopback --host without --admin-token: anyone who reaches it {exposure}",
    )


def admin_refusal(host: str, token: str | None, insecure: bool) -> str | None:
    """Why the admin routes may not be served as asked, or None: beyond loopback they need a token
    (or an explicit `--insecure-admin`). A malformed token raises ValueError."""
    if token is not None:
        check_token(token)
    if is_loopback(host) or token is not None or insecure:
        return None
    return (
        f"refusing to serve the admin routes on {host}, beyond this machine, without a token: "
        f"give --admin-token TOKEN (or {ADMIN_TOKEN_ENV}), or --insecure-admin"
    )


class AdminLock:
    """Which admin calls the token refuses (they get `UNAUTHORIZED_*`); compares in constant time.
    Shared by `AdminAuth` and the validating proxy's own server."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def refuses(self, path: str, authorization: bytes) -> bool:
        return (
            path.startswith(ADMIN_PREFIX)
            and path not in OPEN_PATHS
            and not hmac.compare_digest(authorization, self._expected)
        )


class AdminAuth:
    """Answers 401 to an admin call without `Authorization: Bearer <token>` (`AdminLock`)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._lock = AdminLock(token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
            if self._lock.refuses(scope.get("path", ""), given):
                body = UNAUTHORIZED_BODY
                headers = [(name.encode(), value.encode()) for name, value in UNAUTHORIZED_HEADERS]
                headers.append((b"content-length", b"%d" % len(body)))
                await send({"type": "http.response.start", "status": 401, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
