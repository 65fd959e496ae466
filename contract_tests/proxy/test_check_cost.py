"""What checking an exchange costs stays bounded in its size: jsonschema's `oneOf` and `anyOf` once
listed every error of every branch (a million for a 1,000-item list matching none) before deciding."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boogu_contract import Conformance, ContractViolation
from boogu_contract import _conformance as conformance

from .drift import request_id, status_body

CHECK = Conformance()
SECRET = "sk-live-0123456789"


def status_with(output: Any) -> dict[str, Any]:
    body = status_body(request_id(), "COMPLETED")
    body["output"] = output
    return body


def checked(body: dict[str, Any]) -> list[ContractViolation]:
    return CHECK.check_response(
        "get_request_status", 200, {"content-type": "application/json"}, body, secrets=[SECRET]
    )


def cpu_seconds(body: dict[str, Any]) -> float:
    started = time.thread_time()
    checked(body)
    return time.thread_time() - started


BAD_ANSWERS = [
    status_with({"media_url": list(range(1000)), "media_type": "image/jpeg"}),
    status_with({"media_url": ["https://x.test/a.jpg"], "media_type": 7}),
    status_with("not an object"),
    status_with({"media_url": f"{SECRET} in a very long text " * 20, "media_type": "image/jpeg"}),
    {**status_with(None), "status": "SOMETHING", "error": {"code": 1}},
]
BAD_REQUESTS = [
    {"prompt": "x", "image_size": {"width": 0, "height": "tall"}},
    {"prompt": "x", "image_size": "huge"},
    {"prompt": ["x"] * 1000, "image_size": [1] * 1000},
]


@pytest.mark.parametrize("index", range(len(BAD_ANSWERS) + len(BAD_REQUESTS)))
def test_the_lean_check_finds_what_jsonschema_finds(monkeypatch, index):
    """Same violations, messages and values as jsonschema's own `oneOf`/`anyOf`."""

    def found() -> list[ContractViolation]:
        if index < len(BAD_ANSWERS):
            return checked(BAD_ANSWERS[index])
        body = BAD_REQUESTS[index - len(BAD_ANSWERS)]
        return CHECK.check_request("submit_text_to_image", {"ocp-apim-subscription-key": "k"}, body)

    lean = found()
    monkeypatch.setattr(conformance, "_lean", lambda validator: validator)
    assert lean == found() and lean


def test_a_bad_1000_item_list_costs_a_fraction_of_what_it_did(monkeypatch):
    body = BAD_ANSWERS[0]
    lean = min(cpu_seconds(body) for _ in range(3))
    monkeypatch.setattr(conformance, "_lean", lambda validator: validator)
    full = min(cpu_seconds(body) for _ in range(3))
    assert lean * 5 < full, f"{lean * 1000:.1f} ms of CPU, {full * 1000:.1f} ms with jsonschema's oneOf"


def test_no_violation_shows_the_key():
    """jsonschema's messages show the offending value, the key in it when an answer echoes it."""
    for violation in checked(BAD_ANSWERS[3]):
        assert SECRET not in repr(violation), violation


_URL_PARTS = st.sampled_from(
    [
        "http://",
        "https://",
        "HTTP://",
        "ftp://",
        "http:",
        "//",
        "gw.example",
        ":8080",
        "[::1]",
        "@",
        "user",
        "/",
        "//",
        "?",
        "#",
        "%2F",
        "%",
        " ",
        "\t",
        "\n",
        "\\",
        "é",
        "v2",
        "/v2/requests/status/",
        "x_1",
    ]
)


@settings(max_examples=2000, derandomize=True, deadline=None)
@given(
    st.lists(_URL_PARTS, max_size=8).map("".join),
    st.lists(_URL_PARTS, max_size=4).map("".join),
)
def test_the_plain_url_check_agrees_with_urlsplit(start: str, request_id_text: str) -> None:
    """`_plainly_url_of` skips `urlsplit` for the URLs gateways write: never True where `urlsplit` says
    False, and True for those."""
    path = f"/v2/requests/status/{request_id_text}"
    for url in (start + path, start, f"http://{start}{path}", f"https://gw.example{path}"):
        assert not conformance._plainly_url_of(url, path) or conformance._parsed_url_of(url, path), url
    assert conformance._plainly_url_of(
        "https://gw.example:8443/v2/requests/status/boogu-image_1", "/v2/requests/status/boogu-image_1"
    )
