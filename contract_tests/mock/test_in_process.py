"""The in-process transport's sync paths: the calling thread when it can, a loop thread when it must."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

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
