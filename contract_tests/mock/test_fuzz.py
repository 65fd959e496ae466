"""Property-based fuzzing of the admin API and the API's edges (hypothesis): whatever a client sends,
the mock answers 2xx or 4xx with an `{error, message}` body, never 500; a refused change changes
nothing; and the journal, the config and health always serialise afterwards.

`make fuzz` runs these with many more examples (`FUZZ_EXAMPLES`, 100 by default).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract_tests.fuzzing import FUZZ, bodies, encode, header_values, texts, values
from mock_gateway.model._clock import ManualClock
from mock_gateway.model._config import MockConfig
from mock_gateway.testing import MockGateway

KEY = {"Ocp-Apim-Subscription-Key": "test-key"}
TEXT_PATH = "/boogu-image/v1/boogu-image-request"
JSON_HEADERS = {"Content-Type": "application/json"}
SETTINGS = [f.name for f in fields(MockConfig)]
FAULTS = ("fault_rate", "drop_rate", "lost_answer_rate", "latency_rate")


@pytest.fixture(scope="module")
def gateway() -> Iterator[MockGateway]:
    with MockGateway(clock=ManualClock()) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def http(gateway: MockGateway) -> Iterator[httpx.Client]:
    with gateway.http() as client:
        yield client


def answered(response: httpx.Response, *allowed: int) -> None:
    assert response.status_code in allowed, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error", "message"} and body["message"]


def still_healthy(http: httpx.Client) -> None:
    for path in ("/__mock/health", "/__mock/config", "/__mock/requests", "/__mock/webhooks"):
        answered(http.get(path), 200)


@FUZZ
@given(changes=st.dictionaries(st.one_of(st.sampled_from(SETTINGS), texts), values, max_size=4))
def test_config_patches_are_applied_whole_or_not_at_all(
    gateway: MockGateway, http: httpx.Client, changes: dict[str, Any]
) -> None:
    original = gateway.backend.config
    response = http.patch("/__mock/config", content=encode(changes), headers=JSON_HEADERS)
    answered(response, 200, 400)
    try:
        if response.status_code == 400:
            assert gateway.backend.config == original
        else:
            assert response.json() == http.get("/__mock/config").json()
            if not any(getattr(gateway.backend.config, name) for name in FAULTS):
                submitted = http.post(TEXT_PATH, json={"prompt": "x"}, headers=KEY)
                answered(submitted, 202, 400, 402, 429)
                answered(http.post("/__mock/clock/advance", json={"seconds": 3600}), 200, 400)
        still_healthy(http)
    finally:
        gateway.backend.config = original
        gateway.backend.reset()


@FUZZ
@given(body=values)
def test_every_key_created_can_be_read_back_and_authenticates(http: httpx.Client, body: Any) -> None:
    if isinstance(body, dict) and "key" not in body:
        body = {**body, "key": ""}
    response = http.post("/__mock/keys", content=encode(body), headers=JSON_HEADERS)
    answered(response, 200, 400)
    if response.status_code == 200:
        key = body["key"]
        read = http.get(f"/__mock/keys/{quote(key, safe='')}")
        answered(read, 200)
        assert read.json()["key"] == key
        unknown = http.get("/v2/requests/status/none", headers={"Ocp-Apim-Subscription-Key": key})
        answered(unknown, 403, 404)  # authenticated; disabled keys are 403
    still_healthy(http)


@FUZZ
@given(seconds=values)
def test_clock_advances_never_break_the_clock(http: httpx.Client, seconds: Any) -> None:
    response = http.post("/__mock/clock/advance", content=encode({"seconds": seconds}), headers=JSON_HEADERS)
    answered(response, 200, 400)
    still_healthy(http)


@FUZZ
@given(
    path=st.sampled_from(["/__mock/config", "/__mock/keys", "/__mock/clock/advance", TEXT_PATH]),
    body=bodies,
)
def test_any_body_on_any_route_is_answered_without_a_500(http: httpx.Client, path: str, body: bytes) -> None:
    method = "PATCH" if path == "/__mock/config" else "POST"
    response = http.request(method, path, content=body, headers={**KEY, **JSON_HEADERS})
    answered(response, 200, 202, 400, 402, 403, 429)
    still_healthy(http)


@FUZZ
@given(
    body=st.fixed_dictionaries({"prompt": texts}, optional={"num_images": values, "image_size": values}),
    webhook=st.one_of(st.none(), header_values, st.sampled_from(["http://u:p@127.0.0.1:9/x", "http://[::1"])),
    outcome=st.one_of(st.none(), header_values),
)
def test_submits_with_hostile_parameters_and_headers_never_break_the_journal(
    gateway: MockGateway, http: httpx.Client, body: dict[str, Any], webhook: str | None, outcome: str | None
) -> None:
    headers = {**KEY, **JSON_HEADERS}
    if webhook is not None:
        headers["X-Webhook-URL"] = webhook
    if outcome is not None:
        headers["X-Mock-Outcome"] = outcome
    encoded = [(name.encode(), value.encode("latin-1")) for name, value in headers.items()]
    answered(http.post(TEXT_PATH, content=encode(body), headers=encoded), 200, 202, 400)
    answered(http.post("/__mock/clock/advance", json={"seconds": 60}), 200)
    still_healthy(http)
    gateway.backend.reset()
