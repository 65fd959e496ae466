"""The proxy in front of the mock gateway: every flow passes with no violation of the gateway's side.

Requests that are wrong on purpose (the error flows) are reported on the request side, and only they.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from boogu_contract import Conformance
from contract_tests.spec_helpers import operation
from mock_gateway.contract_tools._proxy import ContractProxy
from mock_gateway.model._backend import OUTCOME_HEADER
from mock_gateway.testing import MockGateway

SUBMIT = "/boogu-image/v1/boogu-image-request"
EDIT = "/boogu-image-edit/v1/boogu-image-edit-request"
STATUS = "/v2/requests/status/{}"
PNG = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGM4UaEBAAN0AWnL+tDXAAAAAElFTkSuQmCC"
)
EXAMPLES = operation(SUBMIT, "post")["requestBody"]["content"]["application/json"]["examples"]
REFERENCE = EXAMPLES["reference"]["value"]
"""The reference's example request, from openapi.yaml."""
WEBHOOKS: list[dict[str, Any]] = []


async def capture(url: str, body: dict[str, Any]) -> int:
    WEBHOOKS.append(body)
    return 200


@pytest.fixture
def gateway() -> Iterator[MockGateway]:
    WEBHOOKS.clear()
    with MockGateway(webhook_sender=capture, served=True) as gateway:
        yield gateway


@pytest.fixture
async def proxy(gateway: MockGateway) -> AsyncIterator[ContractProxy]:
    proxy = ContractProxy(gateway.base_url, rewrite_media=True)
    yield proxy
    await proxy.aclose()


@pytest.fixture
async def http(proxy: ContractProxy, gateway: MockGateway) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Ocp-Apim-Subscription-Key": gateway.api_key}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(proxy), base_url="http://proxy.test", headers=headers
    ) as client:
        yield client


def gateway_side(proxy: ContractProxy) -> list[dict[str, Any]]:
    return [entry for entry in proxy.violations.entries() if entry["side"] == "response"]


async def finish(http: httpx.AsyncClient, gateway: MockGateway, queued: httpx.Response) -> dict[str, Any]:
    """Poll once while running, move the clock past the job, poll again."""
    request_id = queued.json()["request_id"]
    first = await http.get(STATUS.format(request_id))
    assert first.json()["status"] in ("QUEUED", "PROCESSING")
    gateway.advance(60)
    done = await http.get(STATUS.format(request_id))
    assert done.headers["x-contract-violations"] == "0"
    result: dict[str, Any] = done.json()
    return result


async def test_async_flows_of_both_submits_and_every_outcome(http, proxy, gateway):
    done = await finish(http, gateway, await http.post(SUBMIT, json=REFERENCE))
    assert done["status"] == "COMPLETED"
    image = await http.get(urlsplit(done["output"]["media_url"][0]).path)  # rewritten through the proxy
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    edit = await http.post(EDIT, json={"prompt": "a pencil sketch", "image_url": PNG})
    assert edit.status_code == 202
    assert (await finish(http, gateway, edit))["status"] == "COMPLETED"
    for outcome, status in (("failed", "FAILED"), ("error", "ERROR")):
        queued = await http.post(SUBMIT, json={"prompt": "x"}, headers={OUTCOME_HEADER: outcome})
        assert (await finish(http, gateway, queued))["status"] == status
    assert proxy.violations.entries() == []


async def test_sync_mode_and_webhooks(http, proxy, gateway):
    sync = await http.post(SUBMIT, json={"prompt": "x", "sync_mode": True})
    assert sync.status_code == 200 and sync.json()["output"]["media_url"][0].startswith("data:image/")
    hooked = await http.post(
        EDIT, json={"prompt": "x", "image_url": PNG}, headers={"X-Webhook-URL": "http://127.0.0.1:9/hook"}
    )
    assert hooked.status_code == 202
    gateway.advance(60)
    assert [hook["status"] for hook in WEBHOOKS] == ["COMPLETED"]
    conformance = Conformance()  # the webhook body is the status object: hold it to the same rules
    assert conformance.check_response("get_request_status", 200, {}, WEBHOOKS[0]) == []
    assert proxy.violations.entries() == []


async def test_every_error_answer_conforms(http, proxy, gateway):
    gateway.backend.put_key("broke", balance=Decimal(0))
    gateway.backend.put_key("disabled", enabled=False)
    expected = []
    response = await http.post(SUBMIT, json={"prompt": "x", "num_inference_steps": 60})
    assert response.status_code == 400
    expected.append(("/body/num_inference_steps", "maximum"))
    response = await http.get(STATUS.format("boogu-image_unknown"))
    assert response.status_code == 404
    response = await http.get(STATUS.format("x"), headers={"Ocp-Apim-Subscription-Key": ""})
    assert response.status_code == 401
    expected.append(("/headers/ocp-apim-subscription-key", "security"))
    for key, status in (("unknown", 401), ("disabled", 403), ("broke", 402)):
        response = await http.post(SUBMIT, json={"prompt": "x"}, headers={"Ocp-Apim-Subscription-Key": key})
        assert response.status_code == status
    response = await http.post(SUBMIT, content=b"prompt=x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    expected.append(("/body", "json"))
    response = await http.post(
        SUBMIT, content=b"\xff\xfe not utf-8", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    expected.append(("/body", "json"))
    gateway.configure(max_body_bytes=1024)
    assert (await http.post(SUBMIT, json={"prompt": "x" * 2000})).status_code == 413
    gateway.configure(max_body_bytes=10 * 1024 * 1024, rate_limit={"rate": 0.001, "burst": 1})
    statuses = [(await http.get(STATUS.format("boogu-image_x"))).status_code for _ in range(2)]
    assert statuses == [404, 429]
    gateway.configure(rate_limit=None, fault_rate=1.0)
    assert (await http.get(STATUS.format("boogu-image_x"))).status_code == 500
    assert gateway_side(proxy) == []
    assert [(e["pointer"], e["rule"]) for e in proxy.violations.entries()] == expected
    assert "secret" not in str(proxy.violations.entries())
