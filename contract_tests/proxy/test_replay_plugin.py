"""The pytest plugin's replay marker, as a user's test would use it, on a cassette kept in the repository.

cassettes/lighthouse.yaml was recorded by the validating proxy in front of the mock gateway: a submit,
a poll while queued, a poll once completed, and a poll of an unknown request id.
"""

from __future__ import annotations

import pytest
from boogu_image_client import AuthenticatedClient
from boogu_image_client.api.status import get_request_status
from boogu_image_client.api.text_to_image import submit_text_to_image
from boogu_image_client.models import ErrorResponse, QueuedRequest, RequestStatus, TextToImageRequest

from mock_gateway.testing import ReplayGateway

UNKNOWN = "boogu-image_00000000-0000-7000-8000-000000000000"


@pytest.mark.mock_gateway(replay="cassettes/lighthouse.yaml")
def test_a_client_runs_against_recorded_answers(boogu_client_replay: AuthenticatedClient):
    body = TextToImageRequest(prompt="A lighthouse on a cliff in a storm, oil painting")
    queued = submit_text_to_image.sync(client=boogu_client_replay, body=body)
    assert isinstance(queued, QueuedRequest)
    statuses = []
    for _ in range(3):
        status = get_request_status.sync(queued.request_id, client=boogu_client_replay)
        assert isinstance(status, RequestStatus)
        statuses.append(status.status)
    assert statuses == ["QUEUED", "COMPLETED", "COMPLETED"]
    missing = get_request_status.sync(UNKNOWN, client=boogu_client_replay)
    assert isinstance(missing, ErrorResponse) and missing.error == "Not Found"


@pytest.mark.mock_gateway(replay="cassettes/lighthouse.yaml")
def test_an_unrecorded_call_says_so(mock_gateway_replay: ReplayGateway):
    with mock_gateway_replay.http(headers={"Ocp-Apim-Subscription-Key": "k"}) as http:
        response = http.post("/boogu-image/v1/boogu-image-request", json={"prompt": "something else"})
    assert response.status_code == 404 and response.json()["error"] == "Not Recorded"
    assert (
        "closest recording is #1 POST /boogu-image/v1/boogu-image-request → 202" in response.json()["message"]
    )
