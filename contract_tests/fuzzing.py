"""Hypothesis strategies of hostile input, shared by the fuzz suites (`mock/test_fuzz.py`,
`proxy/test_fuzz.py`), and their settings: reproducible in `make test`, exploring in `make fuzz`."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="FUZZ_EXAMPLES" not in os.environ,  # the suite is reproducible; `make fuzz` explores
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

texts = st.text(st.one_of(st.characters(), st.sampled_from(["\ud800", "\udfff", "\x00", "/", " ", "%"])))
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([5e-324, 1e300, -0.0, 10**19, 0.000001, 2**63]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80)
"""Whatever HTTP/1.1 carries in a header value (latin-1, no control character)."""


def encode(value: Any) -> bytes:
    """JSON as a hostile client writes it: NaN and Infinity literals, lone surrogates escaped."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


def deeply_nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


bodies = st.one_of(
    values.map(encode),
    st.binary(max_size=64),
    st.integers(min_value=30, max_value=5000).map(deeply_nested),
)


METHODS = ["GET", "POST", "PUT", "HEAD", "OPTIONS", "DELETE", "PATCH"]
HEADER_NAMES = [
    "X-Webhook-URL",
    "Cache-Control",
    "Content-Type",
    "Authorization",
    "Connection",
    "TE",
    "X-Odd",
]


@st.composite
def raw_requests(draw: st.DrawFn, host: str, paths: st.SearchStrategy[str]) -> bytes:
    """A request as a hostile caller writes it, to one of `paths`: any method, odd paths (encoded, dot
    segments, latin-1), queries, latin-1 headers and any body."""
    path = draw(paths).replace(" ", "%20").replace("\r", "%0D").replace("\n", "%0A")
    path += draw(st.sampled_from(["", "/", "/..", "/%2e%2e/x", "%", "%zz", "?key=secret", "?%ff=%00"]))
    body = draw(bodies)
    lines = [
        f"{draw(st.sampled_from(METHODS))} {path} HTTP/1.1",
        f"Host: {host}",
        f"Content-Length: {len(body)}",
    ]
    for name in draw(st.lists(st.sampled_from(HEADER_NAMES), max_size=3)):
        lines.append(f"{name}: {draw(header_values)}")
    lines += [f"Ocp-Apim-Subscription-Key: {draw(header_values)}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


def whole_answer(base_url: str, request: bytes, *, wait: float = 10.0, lossy: bool = False) -> bytes:
    """What the server at `base_url` sends back for the raw `request` on a fresh connection, read to
    its end (`wait`: the socket's timeout). A reset raises (ConnectionResetError), as it loses the
    answer; `lossy` keeps what arrived before one, or before the timeout, for callers that only load
    the server (it may answer and close before the request is all sent)."""
    host, port = base_url.removeprefix("http://").split("/")[0].rsplit(":", 1)
    ignored = (OSError,) if lossy else ()
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        with contextlib.suppress(*ignored):
            sock.sendall(request)
        received = b""
        with contextlib.suppress(*ignored):
            while chunk := sock.recv(65536):
                received += chunk
    return received


def answer_status(base_url: str, request: bytes) -> int:
    """The status that the server at `base_url` answers the raw `request` with, read to the end of
    the connection (AssertionError: no HTTP/1.1 answer, such as a closed connection)."""
    received = whole_answer(base_url, request)
    status_line = received.partition(b"\r\n")[0]
    assert status_line.startswith(b"HTTP/1.1 "), (request[:300], received[:300])
    return int(status_line.split()[1])
