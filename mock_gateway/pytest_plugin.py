"""pytest plugin (entry point `boogu_mock_gateway`): a mock gateway and a generated client per test.

Fixtures:
- `mock_gateway`: an in-process gateway (no port), fresh for each test.
- `mock_gateway_server`: the same, served by uvicorn on a free loopback port.
- `boogu_client`: the generated `AuthenticatedClient` pointed at `mock_gateway`, with the dev key.
- `boogu_client_server`: the same, pointed at `mock_gateway_server` over a real socket.

Configure with the marker `@pytest.mark.mock_gateway(speed=100, rate_limit={"rate": 1, "burst": 2})`
(any `MockConfig` field).

pytest loads this plugin in every run of a venv that has the toolkit, so loading it costs nothing:
the gateway (Starlette, Pillow, jsonschema, httpx...) is imported when a fixture is first used.
`pytest -p no:boogu_mock_gateway` leaves it out altogether.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from boogu_image_client import AuthenticatedClient

    from .testing import MockGateway


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "mock_gateway(**settings): MockConfig settings for the mock gateway fixtures"
    )


def _gateway(request: pytest.FixtureRequest, *, served: bool) -> MockGateway:
    """A gateway configured by the test's `mock_gateway` marker; the first call imports the gateway."""
    from .extra import MockExtraMissing, require_mock_extra

    try:
        require_mock_extra()
    except MockExtraMissing as error:
        pytest.fail(str(error), pytrace=False)
    from .config import MockConfig
    from .testing import MockGateway

    marker = request.node.get_closest_marker("mock_gateway")
    settings = dict(marker.kwargs) if marker else {}
    return MockGateway(MockConfig().updated(settings), served=served)


@pytest.fixture
def mock_gateway(request: pytest.FixtureRequest) -> Iterator[MockGateway]:
    with _gateway(request, served=False) as gateway:
        yield gateway


@pytest.fixture
def mock_gateway_server(request: pytest.FixtureRequest) -> Iterator[MockGateway]:
    with _gateway(request, served=True) as gateway:
        yield gateway


@pytest.fixture
def boogu_client(mock_gateway: MockGateway) -> AuthenticatedClient:
    return mock_gateway.client()


@pytest.fixture
def boogu_client_server(mock_gateway_server: MockGateway) -> AuthenticatedClient:
    return mock_gateway_server.client()
