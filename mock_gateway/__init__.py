"""An offline stand-in for the Boogu Image API gateway, driven by openapi.yaml.

Four layers, each a package: `model` (the gateway's behaviour, no HTTP server), `server` (its HTTP
edge and CLI), `contract_tools` (the validating proxy, cassettes, replay) and `testing` (the harness
and, in `pytest_plugin`, its fixtures). They stand on `boogu_contract`.

The names below load on first use (PEP 562): importing `mock_gateway` itself, as pytest does for the
plugin `mock_gateway.pytest_plugin` in every run, must not pull in Starlette, Pillow or jsonschema.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import _compat

if TYPE_CHECKING:
    from .model import (
        DEFAULT_API_KEY,
        Clock,
        GatewayBackend,
        GatewayError,
        ManualClock,
        MockConfig,
        OffsetClock,
        SystemClock,
    )
    from .server import create_app

_EXPORTS = {
    "DEFAULT_API_KEY": "model",
    "Clock": "model",
    "GatewayBackend": "model",
    "GatewayError": "model",
    "ManualClock": "model",
    "MockConfig": "model",
    "OffsetClock": "model",
    "SystemClock": "model",
    "create_app": "server",
}
__all__ = [
    "DEFAULT_API_KEY",
    "Clock",
    "GatewayBackend",
    "GatewayError",
    "ManualClock",
    "MockConfig",
    "OffsetClock",
    "SystemClock",
    "create_app",
]

_compat.install()


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mock_gateway' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
