"""The proxy in front of a drifting gateway: each drift reported with its JSON pointer and rule."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from boogu_contract import Conformance, ContractViolation
from boogu_contract._conformance import _is_request_id
from mock_gateway.contract_tools._proxy import ContractProxy

from .drift import STATUS, SUBMIT, drifting_app, request_id, served, status_body

KEY = {"Ocp-Apim-Subscription-Key": "secret-key-123"}


@pytest.fixture(scope="module")
def drifting() -> Iterator[str]:
    yield from served(drifting_app())


@pytest.fixture
async def proxy(drifting: str) -> AsyncIterator[ContractProxy]:
    proxy = ContractProxy(drifting)
    yield proxy
    await proxy.aclose()


@pytest.fixture
async def http(proxy: ContractProxy) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(proxy), base_url="http://proxy.test", headers=KEY
    ) as client:
        yield client


async def violations(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = (await http.get("/__mock/violations")).json()
    return entries


def found(entries: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(entry["pointer"], entry["rule"]) for entry in entries}


@pytest.mark.parametrize(
    ("prompt", "status", "pointer", "rule"),
    [
        ("no-polling-url", 202, "/body/polling_url", "required"),
        ("teapot", 418, "/status", "declared-status"),
        ("slow-down", 429, "/headers/retry-after", "required-header"),
    ],
)
async def test_submit_drift(http, prompt, status, pointer, rule):
    response = await http.post(SUBMIT, json={"prompt": prompt})
    assert response.status_code == status  # the upstream's answer, unchanged
    entries = await violations(http)
    assert found(entries) == {(pointer, rule)}
    assert response.headers["x-contract-violations"] == f"1; response {pointer} {rule}"
    assert entries[0]["operation"] == "submit_text_to_image"
    assert entries[0]["side"] == "response"


async def test_dropped_model_id(http):
    await http.get(STATUS.format(request_id="drop-model_1"))
    (entry,) = await violations(http)
    assert (entry["pointer"], entry["rule"], entry["request_id"]) == (
        "/body/model_id",
        "required",
        "drop-model_1",
    )
    assert "model_id" in entry["expected"]


async def test_going_back_from_completed(http):
    first = await http.get(STATUS.format(request_id="flip_1"))
    assert first.headers["x-contract-violations"] == "0"
    second = await http.get(STATUS.format(request_id="flip_1"))
    assert second.json()["status"] == "PROCESSING"
    (entry,) = await violations(http)
    assert (entry["pointer"], entry["rule"], entry["value"]) == ("/body/status", "status-flow", "PROCESSING")
    assert "COMPLETED" in entry["message"]


async def test_a_new_status_value(http):
    await http.get(STATUS.format(request_id="new-status_1"))
    (entry,) = await violations(http)
    assert (entry["pointer"], entry["rule"], entry["value"]) == ("/body/status", "enum", "CANCELLED")


async def test_an_answer_that_is_not_json(http):
    response = await http.get(STATUS.format(request_id="not-json_1"))
    assert response.text == "<html>oops</html>"
    assert found(await violations(http)) == {("/body", "json")}


async def test_violations_are_logged_one_line_each_without_the_key(http, caplog):
    with caplog.at_level(logging.WARNING, logger="mock_gateway.proxy"):
        await http.get(STATUS.format(request_id="drop-model_2"))
        await http.post(SUBMIT, json={"prompt": "teapot"})
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert "/body/model_id required" in lines[0] and "/status declared-status" in lines[1]
    assert not any("secret-key-123" in line for line in lines)


async def test_the_list_can_be_emptied(http):
    await http.post(SUBMIT, json={"prompt": "teapot"})
    assert len(await violations(http)) == 1
    assert (await http.delete("/__mock/violations")).json() == []
    assert await violations(http) == []


async def test_a_correct_answer_has_no_violation(http):
    response = await http.post(SUBMIT, json={"prompt": "fine"})
    assert response.status_code == 202
    assert response.headers["x-contract-violations"] == "0"
    assert await violations(http) == []


@pytest.mark.parametrize(
    ("rest", "shaped"),
    [
        ("0193a5f0-1c2d-7e3f-8a4b-5c6d7e8f9a0b", True),
        ("0193A5F0-1C2D-7E3F-8A4B-5C6D7E8F9A0B", True),
        ("{0193a5f0-1c2d-7e3f-8a4b-5c6d7e8f9a0b}", True),
        ("urn:uuid:0193a5f0-1c2d-7e3f-8a4b-5c6d7e8f9a0b", True),
        ("0193a5f01c2d7e3f8a4b5c6d7e8f9a0b", True),
        ("0193a5f0-1c2d-4e3f-8a4b-5c6d7e8f9a0b", False),  # version 4
        ("0193a5f0-1c2d-7e3f-ca4b-5c6d7e8f9a0b", False),  # not the RFC variant
        ("0193a5f0-1c2d-7e3f-8a4b-5c6d7e8f9a0", False),
        ("", False),
    ],
)
def test_request_ids_are_model_and_uuidv7_in_any_spelling_uuid_reads(rest, shaped):
    assert _is_request_id(f"boogu-image_{rest}", "boogu-image") is shaped
    assert not _is_request_id(f"other_{rest}", "boogu-image")


def test_the_rules_a_schema_cannot_hold():
    """Checked on status objects directly: the id shapes, polling_url, completed_at and output."""
    conformance = Conformance()
    rid = request_id()
    queued = {"request_id": "boogu-image_42", "status": "QUEUED", "polling_url": "https://g/elsewhere"}
    problems = conformance.check_response("submit_text_to_image", 202, {}, queued, submit_path=SUBMIT)
    assert found_in(problems) == {
        ("/body/request_id", "request-id-shape"),
        ("/body/polling_url", "polling-url"),
    }
    odd = {**status_body(rid, "FAILED"), "completed_at": None, "output": {"media_url": [], "media_type": "x"}}
    problems = conformance.check_response(
        "get_request_status", 200, {}, odd, path_params={"request_id": "other"}
    )
    assert found_in(problems) == {
        ("/body/request_id", "request-id-echo"),
        ("/body/completed_at", "completed-at"),
        ("/body/output", "output"),
    }


def found_in(problems: list[ContractViolation]) -> set[tuple[str, str]]:
    return {(problem.pointer, problem.rule) for problem in problems}
