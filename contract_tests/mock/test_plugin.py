"""The pytest plugin's fixtures, as a downstream project would use them."""

from __future__ import annotations

import pytest
from boogu_image_client import AuthenticatedClient
from boogu_image_client.api.status import get_request_status
from boogu_image_client.api.text_to_image import submit_text_to_image
from boogu_image_client.models import QueuedRequest, RequestStatus, TextToImageRequest

from mock_gateway.testing import MockGateway


@pytest.mark.mock_gateway(speed=100)
def test_served_gateway_and_its_client(
    mock_gateway_server: MockGateway, boogu_client_server: AuthenticatedClient
):
    assert mock_gateway_server.base_url.startswith("http://127.0.0.1:")
    queued = submit_text_to_image.sync(client=boogu_client_server, body=TextToImageRequest(prompt="x"))
    assert isinstance(queued, QueuedRequest)
    assert queued.polling_url.startswith(mock_gateway_server.base_url)
    mock_gateway_server.advance(1)
    status = get_request_status.sync(queued.request_id, client=boogu_client_server)
    assert isinstance(status, RequestStatus)
    assert status.status == "COMPLETED"  # 15 s of work at speed 100, and a second passed
