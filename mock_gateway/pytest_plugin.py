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

Recorded answers instead of the mock: `@pytest.mark.mock_gateway(replay="cassettes/x.yaml")` (a
cassette written by `python -m mock_gateway proxy --record`, relative to the test file) and
- `mock_gateway_replay`: the cassette served on a free loopback port (`.base_url`, `.client()`);
- `boogu_client_replay`: the generated client pointed at it.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from boogu_image_client import AuthenticatedClient

    from .testing import MockGateway, ReplayGateway


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mock_gateway(**settings): MockConfig settings for the mock gateway fixtures; "
        "replay=CASSETTE for mock_gateway_replay",
    )


def _testing() -> ModuleType:
    """`mock_gateway.testing`, imported on a fixture's first use; a clear failure without the extra."""
    from ._extra import MockExtraMissing, require_mock_extra

    try:
        require_mock_extra()
    except MockExtraMissing as error:
        pytest.fail(str(error), pytrace=False)
    from . import testing

    return testing


def _gateway(request: pytest.FixtureRequest, *, served: bool) -> MockGateway:
    """A gateway configured by the test's `mock_gateway` marker (its `replay` is for the replay fixtures)."""
    testing = _testing()
    from .model import MockConfig

    marker = request.node.get_closest_marker("mock_gateway")
    settings = dict(marker.kwargs) if marker else {}
    settings.pop("replay", None)
    gateway: MockGateway = testing.MockGateway(MockConfig().updated(settings), served=served)
    return gateway


@pytest.fixture
def mock_gateway_replay(request: pytest.FixtureRequest) -> Iterator[ReplayGateway]:
    marker = request.node.get_closest_marker("mock_gateway")
    cassette = marker.kwargs.get("replay") if marker else None
    if not cassette:
        raise pytest.UsageError('mock_gateway_replay needs @pytest.mark.mock_gateway(replay="cassette.yaml")')
    with _testing().ReplayGateway(request.path.parent / cassette) as gateway:
        yield gateway


@pytest.fixture
def boogu_client_replay(mock_gateway_replay: ReplayGateway) -> AuthenticatedClient:
    return mock_gateway_replay.client()


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
