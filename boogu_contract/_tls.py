"""One TLS context per process for the httpx clients the toolkit makes."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping
from typing import Any

import httpx

OWN_TLS = frozenset({"verify", "cert", "trust_env"})
"""httpx client arguments that choose the client's own TLS: given any of them, it gets no shared context."""


@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    """httpx's default context (its CA bundle; SSL_CERT_FILE and SSL_CERT_DIR honoured), built once.

    httpx builds one for every client and loads the CA bundle each time, about 40 ms of CPU: a script
    that makes a client per call paid it on every call, and the test suite a sixth of its CPU. Never
    hand it to a client that loads a certificate into its context (`cert=`): every client shares it;
    `shared_tls_args` sees to that."""
    return httpx.create_ssl_context()


def shared_tls_args(args: Mapping[str, Any] | None = None, *, verify: str = "verify") -> dict[str, Any]:
    """A copy of a client's arguments with the shared context as `verify`, unless they choose their own
    TLS (`OWN_TLS`, at the top level or in `httpx_args`): `cert` would load a certificate into the
    context every other client uses, `trust_env=False` asks for no environment settings. For the
    generated client, `verify` is `verify_ssl`."""
    merged = dict(args or {})
    chosen = merged.keys() | dict(merged.get("httpx_args") or {}).keys()
    if not chosen & (OWN_TLS | {verify}):
        merged[verify] = shared_tls_context()
    return merged
