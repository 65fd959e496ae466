"""One TLS context per process for the httpx clients the toolkit makes."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    """httpx's default context (its CA bundle; SSL_CERT_FILE and SSL_CERT_DIR honoured), built once.

    httpx builds one for every client and loads the CA bundle each time, about 40 ms of CPU: a script
    that makes a client per call paid it on every call, and the test suite a sixth of its CPU. Never
    hand it to a client that loads a certificate into its context (`cert=`): every client shares it."""
    return httpx.create_ssl_context()
