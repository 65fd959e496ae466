"""The in-process transport's sync paths: the calling thread when it can, a loop thread when it must."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from boogu_contract import shared_tls_args, shared_tls_context
from mock_gateway.testing import KEY_HEADER, MockGateway

SUBMIT = "/boogu-image/v1/boogu-image-request"


def status_codes(http: httpx.Client, count: int) -> list[int]:
    return [http.get("/__mock/health").status_code for _ in range(count)]


def test_sync_calls_run_in_the_calling_thread_and_start_no_thread() -> None:
    before = threading.active_count()
    with MockGateway() as gateway, gateway.http(headers={KEY_HEADER: gateway.api_key}) as http:
        queued = http.post(SUBMIT, json={"prompt": "a fox"})
        assert queued.status_code == 202
        assert http.get(f"/v2/requests/status/{queued.json()['request_id']}").status_code == 200
        assert status_codes(http, 5) == [200] * 5
        assert threading.active_count() == before
    assert threading.active_count() == before


async def test_a_sync_client_inside_a_running_loop_goes_through_a_loop_thread() -> None:
    before = threading.active_count()
    with MockGateway() as gateway, gateway.http() as http:
        assert status_codes(http, 3) == [200] * 3  # the calling thread's loop is busy running this test
        assert threading.active_count() == before + 1
    assert threading.active_count() == before  # closing the gateway stops that thread


def test_concurrent_sync_calls_from_many_threads_all_answer() -> None:
    with MockGateway() as gateway, gateway.http() as http, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: status_codes(http, 10), range(8)))
    assert answers == [[200] * 10] * 8


async def test_sync_and_async_clients_share_one_gateway() -> None:
    with MockGateway() as gateway:
        async with httpx.AsyncClient(base_url=gateway.base_url, **gateway.httpx_args()) as client:
            headers = {KEY_HEADER: gateway.api_key}
            queued = await client.post(SUBMIT, json={"prompt": "a fox"}, headers=headers)
        with gateway.http(headers=headers) as http:
            status = http.get(f"/v2/requests/status/{queued.json()['request_id']}")
    assert status.status_code == 200 and status.json()["status"] in {"QUEUED", "PROCESSING"}


@pytest.mark.parametrize(
    ("args", "shared"),
    [
        ({}, True),
        ({"timeout": 5, "transport": httpx.MockTransport(lambda request: httpx.Response(204))}, True),
        ({"verify": False}, False),
        ({"cert": "client.pem"}, False),  # would load the certificate into every client's context
        ({"trust_env": False}, False),
        ({"httpx_args": {"cert": "client.pem"}}, False),  # the generated client's httpx arguments
    ],
)
def test_only_clients_that_keep_the_default_tls_get_the_shared_context(
    args: dict[str, object], shared: bool
) -> None:
    merged = shared_tls_args(args)
    assert (merged.get("verify") is shared_tls_context()) is shared
    assert {key: value for key, value in merged.items() if key != "verify" or not shared} == args


def test_the_gateways_clients_share_the_tls_context_unless_given_their_own() -> None:
    with MockGateway(served=True) as gateway:
        with gateway.http() as plain, gateway.http(verify=False) as own:
            pools: list[Any] = [client._transport._pool for client in (plain, own)]  # type: ignore[attr-defined]
            assert pools[0]._ssl_context is shared_tls_context()
            assert pools[1]._ssl_context is not shared_tls_context()
        generated: Any = gateway.client().get_httpx_client()
        assert generated._transport._pool._ssl_context is shared_tls_context()
        unverified: Any = gateway.client(verify_ssl=False).get_httpx_client()
        assert unverified._transport._pool._ssl_context is not shared_tls_context()


def test_the_generated_client_takes_httpx_arguments_of_its_own() -> None:
    """They are added to the in-process transport, which was once passed twice (a TypeError)."""
    seen: list[httpx.Request] = []
    with MockGateway() as gateway:
        client = gateway.client(httpx_args={"event_hooks": {"request": [seen.append]}})
        response = client.get_httpx_client().get("/v2/requests/status/nope")
        assert response.status_code == 404  # answered in-process, by the gateway
        assert [request.url.path for request in seen] == ["/v2/requests/status/nope"]
        assert gateway.backend.journal.entries()[-1]["path"] == "/v2/requests/status/nope"
