"""pytest plugin (entry point `boogu_mock_gateway`): a mock gateway and a generated client per test.

Fixtures:
- `mock_gateway`: an in-process gateway (no port), fresh for each test.
- `mock_gateway_server`: the same, served by uvicorn on a free loopback port.
- `boogu_client`: the generated `AuthenticatedClient` pointed at `mock_gateway`, with the dev key.
- `boogu_client_server`: the same, pointed at `mock_gateway_server` over a real socket.

Configure with the marker `@pytest.mark.mock_gateway(speed=100, rate_limit={"rate": 1, "burst": 2})`
(any `MockConfig` field).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from boogu_image_client import AuthenticatedClient

from .config import MockConfig
from .testing import MockGateway


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "mock_gateway(**settings): MockConfig settings for the mock gateway fixtures"
    )


def _config(request: pytest.FixtureRequest) -> MockConfig:
    marker = request.node.get_closest_marker("mock_gateway")
    settings = dict(marker.kwargs) if marker else {}
    return MockConfig().updated(settings)


@pytest.fixture
def mock_gateway(request: pytest.FixtureRequest) -> Iterator[MockGateway]:
    with MockGateway(_config(request)) as gateway:
        yield gateway


@pytest.fixture
def mock_gateway_server(request: pytest.FixtureRequest) -> Iterator[MockGateway]:
    with MockGateway(_config(request), served=True) as gateway:
        yield gateway


@pytest.fixture
def boogu_client(mock_gateway: MockGateway) -> AuthenticatedClient:
    return mock_gateway.client()


@pytest.fixture
def boogu_client_server(mock_gateway_server: MockGateway) -> AuthenticatedClient:
    return mock_gateway_server.client()
