"""Test harness: a ready gateway, in-process (no port) or served on a free loopback port.

with MockGateway() as gateway:
    client = gateway.client()            # the generated AuthenticatedClient, sync and async
    ...
    gateway.advance(15)                  # jump the gateway's clock instead of sleeping

The top layer of the mock: it stands on the model, the server and the contract tools. The pytest
plugin (`mock_gateway.pytest_plugin`) serves these as fixtures.
"""

from __future__ import annotations

from boogu_contract.wire import KEY_HEADER

from ._gateway import IN_PROCESS_URL, MockGateway, ReplayGateway, mock_gateway
from ._process import gateway_popen, gateway_process
from ._servers import LiveServer, free_port_socket
from ._transport import InProcessTransport, call_app

__all__ = [
    "IN_PROCESS_URL",
    "KEY_HEADER",
    "InProcessTransport",
    "LiveServer",
    "MockGateway",
    "ReplayGateway",
    "call_app",
    "free_port_socket",
    "gateway_popen",
    "gateway_process",
    "mock_gateway",
]
