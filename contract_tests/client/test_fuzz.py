"""Property-based fuzzing of the client (hypothesis): against a misbehaving gateway (respx), whatever a
submit or a status call is answered (any status, hostile values in every field, any bytes, JSON
nested a thousand deep), the client returns its result or raises one of its own errors (`BooguError`),
never a RecursionError, KeyError or the like; and whatever anyone sends its webhook receiver, it
answers, never with a 500 or a closed connection.

Each of these once failed: JSON nested 1,000 deep in an error answer escaped as a RecursionError (the
generated parser reads the body whole, and so did the client's own reading of an error body), and a
HEAD got no answer from the receiver (h11 frames none, and refused the body sent with it). `make fuzz`
runs more examples.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from boogu_image_client.models import TextToImageRequest
from hypothesis import given
from hypothesis import strategies as st

from boogu import BooguError
from boogu.webhooks import WebhookReceiver
from contract_tests.client.helpers import RID, STATUS_PATH, SUBMIT_PATH, FakeClock, make_client, status_body
from contract_tests.fuzzing import FUZZ, answer_status, bodies, raw_requests, texts, values

urls = st.one_of(texts, st.sampled_from(["http://[gw/x", "http://", "", "data:", "data:image/jpeg;base64,@"]))
deep = st.integers(min_value=500, max_value=1100).map(lambda depth: b"[" * depth + b"]" * depth)


@st.composite
def answers(draw: st.DrawFn) -> tuple[int, bytes]:
    body: dict[str, Any] = status_body(
        draw(st.sampled_from(["QUEUED", "COMPLETED", "FAILED", "ERROR", "NEW"]))
    )
    for name in draw(st.lists(st.one_of(st.sampled_from([*body, "polling_url"]), texts), max_size=3)):
        body[name] = draw(st.one_of(values, urls))
    if isinstance(body.get("output"), dict):
        body["output"]["media_url"] = draw(st.lists(st.one_of(urls, values), max_size=3))
    raw = draw(st.one_of(st.just(json.dumps(body).encode()), bodies, deep))
    return draw(st.sampled_from([200, 202, 400, 401, 402, 403, 404, 418, 429, 500, 503])), raw


@FUZZ
@given(answer=answers(), submit=st.booleans())
def test_any_answer_is_a_result_or_a_client_error(
    router: respx.MockRouter, answer: tuple[int, bytes], submit: bool
):
    status, raw = answer
    response = httpx.Response(status, content=raw, headers={"Content-Type": "application/json"})
    router.post(SUBMIT_PATH).mock(return_value=response)
    router.get(STATUS_PATH).mock(return_value=response)
    with make_client(FakeClock(), max_retries=0) as client:
        try:
            if submit:
                client.submit(TextToImageRequest(prompt="a lighthouse"))
            else:
                client.status(RID)
        except BooguError:
            pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@FUZZ
@given(data=st.data())
def test_the_webhook_receiver_answers_any_request(receiver: WebhookReceiver, data: st.DataObject) -> None:
    host = receiver.url.removeprefix("http://").split("/")[0]
    path = receiver.url.removeprefix(f"http://{host}")
    request = data.draw(raw_requests(host, st.sampled_from([path, f"{path}/line-7", "/", "/other"])))
    status = answer_status(receiver.url, request)
    assert status < 500 or status == 501, request[:300]  # 501: a transfer coding it does not know
