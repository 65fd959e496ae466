"""Fields a gateway adds that the spec does not list: notices (rule `unlisted-field`), never violations.

Response schemas say `additionalProperties: true`, so an added field breaks no rule; the proxy still
tells its user, with severity `notice`, and nothing counts it as a failure: not `X-Contract-Violations`,
not the log's violations, not `boogu verify`'s exit code.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from boogu.cli import main
from boogu_contract import Conformance, Contract, load_spec
from mock_gateway.contract_tools._proxy import ContractProxy

from .drift import (
    EXTRA,
    OUTPUT_EXTRA,
    PROGRESS,
    STATUS,
    SUBMIT,
    TRACE,
    additive_app,
    drifting_app,
    request_id,
    served,
    status_body,
)

KEY = {"Ocp-Apim-Subscription-Key": "k"}
NOTICE = "unlisted-field"


@pytest.fixture(scope="module")
def additive() -> Iterator[str]:
    yield from served(additive_app(key="k"))


@pytest.fixture(scope="module")
def drifting() -> Iterator[str]:
    yield from served(drifting_app())


async def through(upstream: str) -> AsyncIterator[tuple[ContractProxy, httpx.AsyncClient]]:
    proxy = ContractProxy(upstream)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(proxy), base_url="http://proxy.test", headers=KEY
    ) as client:
        yield proxy, client
    await proxy.aclose()


@pytest.fixture
async def http(additive: str) -> AsyncIterator[httpx.AsyncClient]:
    async for _, client in through(additive):
        yield client


@pytest.fixture
async def drift_http(drifting: str) -> AsyncIterator[httpx.AsyncClient]:
    async for _, client in through(drifting):
        yield client


async def entries(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await http.get("/__mock/violations")).json()
    return found


def pointers(found: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(entry["pointer"], entry["rule"], entry["severity"]) for entry in found]


# Through the proxy ------------------------------------------------------------------------------------


async def test_a_status_with_fields_at_the_top_and_in_output(http, additive):
    queued = await http.post(SUBMIT, json={"prompt": "a lighthouse"})
    await http.delete("/__mock/violations")
    path = STATUS.format(request_id=queued.json()["request_id"])
    response = await http.get(path)
    async with httpx.AsyncClient(base_url=additive, headers=KEY) as direct:
        assert response.content == (await direct.get(path)).content  # the answer, unchanged
    body = response.json()
    assert body["progress"] == PROGRESS["progress"] and body["output"]["extra"] == OUTPUT_EXTRA["extra"]
    found = await entries(http)
    assert pointers(found) == [
        ("/body/progress", NOTICE, "notice"),
        ("/body/output/extra", NOTICE, "notice"),
    ]
    progress, extra = found
    assert progress["side"] == "response" and progress["operation"] == "get_request_status"
    assert progress["value"] == 100 and progress["request_id"] == body["request_id"]
    assert "RequestStatus" in progress["message"] and "'model_id'" in progress["expected"]
    assert extra["value"] == "cdn-edge-7" and "RequestOutput" in extra["message"]
    assert "'media_type'" in extra["expected"]
    assert response.headers["x-contract-violations"] == "0"  # no failure
    assert response.headers["x-contract-notices"] == (
        "2; response /body/progress unlisted-field; response /body/output/extra unlisted-field"
    )


async def test_a_ticket_with_a_field_more(http):
    response = await http.post(SUBMIT, json={"prompt": "a lighthouse"})
    assert response.status_code == 202 and response.json()["eta"] == EXTRA["eta"]
    found = await entries(http)
    assert pointers(found) == [("/body/eta", NOTICE, "notice")]
    assert "QueuedRequest" in found[0]["message"] and found[0]["operation"] == "submit_text_to_image"
    assert response.headers["x-contract-violations"] == "0"
    assert response.headers["x-contract-notices"] == "1; response /body/eta unlisted-field"


async def test_an_error_body_with_a_field_more(http):
    response = await http.get(STATUS.format(request_id="boogu-image_unknown"))
    assert response.status_code == 404 and response.json()["trace_id"] == TRACE["trace_id"]
    found = await entries(http)
    assert pointers(found) == [("/body/trace_id", NOTICE, "notice")]
    assert "ErrorResponse" in found[0]["message"] and found[0]["value"] == "t-1"
    assert response.headers["x-contract-violations"] == "0"


async def test_a_request_with_a_field_more_is_a_violation_not_a_notice(http):
    response = await http.post(SUBMIT, json={"prompt": "a lighthouse", "progres": 1})
    assert response.status_code == 400  # the upstream's answer (closed request schema)
    assert pointers(await entries(http)) == [
        ("/body", "additionalProperties", "error"),  # the caller's: the request's rule
        ("/body/trace_id", NOTICE, "notice"),  # the gateway's error body
    ]
    assert response.headers["x-contract-violations"] == "1; request /body additionalProperties"


async def test_a_normal_exchange_has_no_entry(drift_http):
    queued = await drift_http.post(SUBMIT, json={"prompt": "fine"})
    missing = await drift_http.get(STATUS.format(request_id="nothing_1"))
    assert (queued.status_code, missing.status_code) == (202, 404)
    for response in (queued, missing):
        assert response.headers["x-contract-violations"] == "0"
        assert "x-contract-notices" not in response.headers
    assert await entries(drift_http) == []


async def test_a_violation_has_severity_error(drift_http):
    response = await drift_http.get(STATUS.format(request_id="drop-model_1"))
    (entry,) = await entries(drift_http)
    assert (entry["pointer"], entry["rule"], entry["severity"]) == ("/body/model_id", "required", "error")
    assert response.headers["x-contract-violations"] == "1; response /body/model_id required"
    assert "x-contract-notices" not in response.headers


async def test_notices_are_logged_as_notices_once_loud(http, caplog):
    with caplog.at_level(logging.INFO, logger="mock_gateway.proxy"):
        for _ in range(2):
            await http.get(STATUS.format(request_id="boogu-image_unknown"))
    records = [(record.levelno, record.getMessage()) for record in caplog.records]
    assert [level for level, _ in records] == [logging.WARNING, logging.INFO]  # first sighting, then quieter
    for _, line in records:
        assert line.startswith("contract notice: get_request_status")
        assert "/body/trace_id unlisted-field" in line and "violation" not in line


# boogu verify -------------------------------------------------------------------------------------------


def test_verify_passes_with_notices_only_and_shows_them(monkeypatch, capsys, additive):
    monkeypatch.setenv("BOOGU_API_KEY", "k")
    args = ["verify", "--base-url", additive, "--yes", "--poll-interval", "0.01", "--timeout", "5"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("PASS") == 6 and "FAIL" not in out and "no drift from openapi.yaml" in out
    said = " ".join(out.split())  # the console wraps long lines
    assert "PASS text-to-image submit (square, 20 steps, 1 image) notice /body/eta " in said
    assert "PASS poll until finished (COMPLETED after 1 poll(s)) notice /body/progress " in said
    assert " notice /body/output/extra " in said
    assert "PASS unknown request id → 404 notice /body/trace_id " in said
    assert "no drift from openapi.yaml (6 notices: fields the spec does not list)" in said


# The check itself, without a server -------------------------------------------------------------------


def test_the_check_finds_each_unlisted_field_at_any_depth():
    conformance = Conformance()
    rid = request_id()
    body = {**status_body(rid, "COMPLETED"), "progress": 100}
    body["output"] = {**body["output"], "extra": {"nested": "x" * 500}, "key~/": "k-123"}
    found = conformance.check_response(
        "get_request_status", 200, {}, body, path_params={"request_id": rid}, secrets=["k-123"]
    )
    assert [(v.pointer, v.rule, v.severity, v.is_notice) for v in found] == [
        ("/body/progress", NOTICE, "notice", True),
        ("/body/output/extra", NOTICE, "notice", True),
        ("/body/output/key~0~1", NOTICE, "notice", True),  # escaped as every pointer is
    ]
    assert found[1].value == {"nested": "x" * 200 + "…"}  # shortened, as `redact` does
    assert found[2].value == "[redacted]"
    assert found[0].to_dict()["severity"] == "notice"


def test_the_branch_of_a_sync_answer_that_applies():
    """SubmitResult: `if` QUEUED `then` QueuedRequest `else` RequestStatus; its own list holds both."""
    conformance = Conformance()
    rid = request_id()
    submit = "/boogu-image/v1/boogu-image-request"
    sync = {**status_body(rid, "COMPLETED"), "seed": 7}
    sync["output"] = {**sync["output"], "width": 1024}
    found = conformance.check_response("submit_text_to_image", 200, {}, sync, submit_path=submit)
    assert [(v.pointer, v.severity) for v in found] == [
        ("/body/seed", "notice"),
        ("/body/output/width", "notice"),
    ]
    assert "RequestStatus" in found[0].message
    failed = status_body(rid, "FAILED")
    assert Conformance().check_response("submit_text_to_image", 200, {}, failed, submit_path=submit) == []
    queued = {"request_id": rid, "status": "QUEUED", "polling_url": f"https://g/v2/requests/status/{rid}"}
    found = Conformance().check_response(
        "submit_text_to_image", 200, {}, {**queued, "model_id": "boogu-image", "seed": 7}, submit_path=submit
    )
    assert [(v.pointer, v.severity) for v in found] == [("/body/seed", "notice")]  # model_id: SubmitResult's
    assert "QueuedRequest" in found[0].message


def test_violations_stay_errors_and_requests_get_no_notice():
    conformance = Conformance()
    broken = status_body(request_id(), "PROCESSING", model=False)
    (violation,) = conformance.check_response("get_request_status", 200, {}, broken)
    assert (violation.rule, violation.severity, violation.is_notice) == ("required", "error", False)
    asked = conformance.check_request("submit_text_to_image", KEY, {"prompt": "x", "progres": 1})
    assert [(v.pointer, v.rule, v.severity) for v in asked] == [("/body", "additionalProperties", "error")]


def small_spec(things: dict[str, Any]) -> dict[str, Any]:
    """One operation answering `Thing`, with the schemas given."""
    spec = copy.deepcopy(load_spec())
    spec["paths"] = {
        "/things": {
            "get": {
                "operationId": "get_thing",
                "security": [],
                "responses": {
                    "200": {
                        "description": "a thing",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}},
                    }
                },
            }
        }
    }
    spec["components"]["schemas"] = things
    spec.pop("webhooks", None)
    return spec


def test_refs_all_of_one_of_if_then_else_and_closed_or_mapped_objects():
    cat = {"type": "object", "required": ["meow"], "properties": {"meow": {"type": "string"}}}
    dog = {"type": "object", "required": ["woof"], "properties": {"woof": {"type": "string"}}}
    conformance = Conformance(
        Contract(
            small_spec(
                {
                    "Base": {"type": "object", "properties": {"kind": {"type": "string"}}},
                    "Cat": cat,
                    "Dog": dog,
                    "A": {"properties": {"a": {"type": "object", "properties": {"x": {}}}}},
                    "B": {"properties": {"b": {}}},
                    "Thing": {
                        "allOf": [{"$ref": "#/components/schemas/Base"}],
                        "properties": {
                            "pets": {
                                "type": "array",
                                "items": {
                                    "anyOf": [
                                        {"$ref": "#/components/schemas/Cat"},
                                        {"$ref": "#/components/schemas/Dog"},
                                    ]
                                },
                            },
                            "closed": {
                                "type": "object",
                                "properties": {"y": {}},
                                "additionalProperties": False,
                            },
                            "map": {
                                "type": "object",
                                "additionalProperties": {"$ref": "#/components/schemas/Cat"},
                            },
                            "free": {"type": "object"},
                        },
                        "if": {"properties": {"kind": {"const": "a"}}},
                        "then": {"$ref": "#/components/schemas/A"},
                        "else": {"$ref": "#/components/schemas/B"},
                    },
                }
            )
        )
    )

    def notices(body: dict[str, Any]) -> list[str]:
        found = conformance.check_response("get_thing", 200, {}, body)
        return [v.pointer for v in found if v.is_notice]

    assert notices({"kind": "a", "a": {"x": 1}, "pets": [{"meow": "m"}, {"woof": "w"}]}) == []
    # `then` applies: `b` is listed by `else` only; inside `a`, `z` is not listed.
    assert notices({"kind": "a", "a": {"x": 1, "z": 2}, "b": 1}) == ["/body/b", "/body/a/z"]
    assert notices({"kind": "other", "a": {}, "b": 1}) == ["/body/a"]  # `else` applies
    # Each item against the branch it is valid against; an item valid against none, against all.
    assert notices({"pets": [{"meow": "m", "woof": 1}, {"woof": "w", "tail": 1}, {"fur": 1}]}) == [
        "/body/pets/0/woof",
        "/body/pets/1/tail",
        "/body/pets/2/fur",
    ]
    # Closed: a violation already, no notice. A map: its names are its own, its values are Cats.
    found = conformance.check_response("get_thing", 200, {}, {"closed": {"y": 1, "q": 2}})
    assert [(v.pointer, v.rule, v.severity) for v in found] == [
        ("/body/closed", "additionalProperties", "error")
    ]
    assert notices({"map": {"tom": {"meow": "m", "purr": 1}}, "free": {"anything": 1}}) == [
        "/body/map/tom/purr"
    ]


def test_compiled_once_per_operation_and_status():
    conformance = Conformance()
    first = conformance.shape("get_request_status", "200")
    assert first is not None and conformance.shape("get_request_status", "200") is first
    assert conformance.shape("submit_text_to_image", "400") is conformance.shape("get_request_status", "404")
