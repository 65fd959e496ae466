"""What the toolkit shows of what it received (journal, webhooks, violations, cassettes):
no credential, and no value so long that it floods a log.

Clients put keys in many places (`Ocp-Apim-Subscription-Key`, `X-Api-Key`, `Proxy-Authorization`,
`?subscription-key=`, `https://user:pass@host/`), so names are matched by the words credentials use
rather than by a list of the names we happen to know.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any, AnyStr
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from .wire import WEBHOOK_HEADER

REDACTED = "[redacted]"
MAX_BODY_CHARS = 4096
"""Characters of one string shown; longer ones (data URIs) are cut and their length given."""
_SECRET_NAME = re.compile(
    r"key|token|secret|passw|pwd|auth|cookie|session|signature|credential|^sig$|^code$", re.IGNORECASE
)
URL_HEADERS = frozenset({WEBHOOK_HEADER.lower(), "referer"})
"""Headers whose value is a URL: their userinfo and credential-like query parameters are redacted."""
MIN_SECRET_CHARS = 8
"""Shorter secrets are redacted only as whole values: cut out of text, a 1-character key takes every
`e` with it (and says which character it is)."""


@functools.lru_cache(maxsize=4096)
def is_secret(name: str) -> bool:
    """Cached: the proxy asks of every header of every call, and the case-blind search of a dozen
    words costs microseconds each time; callers send the same few names (the cache is bounded)."""
    return _SECRET_NAME.search(name) is not None


def redact_header(name: str, value: str) -> str:
    """A header's value safe to show: credential-like ones replaced whole, URLs without credentials."""
    if is_secret(name):
        return REDACTED
    return redact_url(value) if name.lower() in URL_HEADERS else value


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-case header names to values, with credential-like ones replaced."""
    return {name: redact_header(name, value) for name, value in headers.items()}


def secret_values(headers: Iterable[tuple[str, str]], *urls: str) -> list[str]:
    """The credentials a request carries, to blank wherever an answer echoes them: the values of
    credential-like headers and query parameters, and the userinfo of `urls` (as sent and decoded)."""
    found = [value for name, value in headers if is_secret(name) and value]
    for url in urls:
        if "?" not in url and "@" not in url:  # no query, no userinfo: nothing to parse (the hot path)
            continue
        try:
            parts = urlsplit(url)
        except ValueError:  # `//[` is no URL: nothing in it is read as a credential, and it is redacted whole
            continue
        found += [value for name, value in parse_qsl(parts.query) if is_secret(name) and value]
        userinfo = parts.netloc.rpartition("@")[0]
        found += [part for text in userinfo.split(":", 1) if text for part in {text, unquote(text)}]
    return found


def blank_secrets(data: AnyStr, secrets: Collection[str]) -> AnyStr:
    """`data` with each secret of `MIN_SECRET_CHARS` or more replaced whole by `REDACTED`."""
    for secret in secrets:
        if len(secret) >= MIN_SECRET_CHARS:
            if isinstance(data, bytes):
                data = data.replace(secret.encode("utf-8", "replace"), REDACTED.encode())
            else:
                data = data.replace(secret, REDACTED)
    return data


def redact_query(query: str) -> str:
    """A query string with the values of credential-like parameters replaced; others kept as sent."""
    if not query or not any(is_secret(name) for name, _ in parse_qsl(query, keep_blank_values=True)):
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(name, REDACTED if is_secret(name) else value) for name, value in pairs], safe="[]")


def redact_url(url: str) -> str:
    """`url` with its userinfo and credential-like query parameters replaced; unparsable URLs whole."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = f"{REDACTED}@{parts.netloc.rpartition('@')[2]}" if "@" in parts.netloc else parts.netloc
    query = redact_query(parts.query)
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def without_userinfo(url: str) -> str:
    """The URL to call: credentials in it would be sent as a Basic Authorization header by httpx."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def summarize_body(body: Any) -> Any:
    """Keep JSON bodies as sent, but cut long strings (data URIs) so the journal stays readable."""
    if isinstance(body, str) and len(body) > MAX_BODY_CHARS:
        return f"{body[:MAX_BODY_CHARS]}…({len(body)} characters)"
    if isinstance(body, dict):
        return {key: summarize_body(value) for key, value in body.items()}
    if isinstance(body, list):
        return [summarize_body(value) for value in body]
    return body
