"""An offline stand-in for the Boogu Image API gateway, driven by openapi.yaml.

The names below load on first use (PEP 562): importing `mock_gateway` itself, as pytest does for the
plugin `mock_gateway.pytest_plugin` in every run, must not pull in Starlette, Pillow or jsonschema.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .backend import GatewayBackend, GatewayError
    from .clock import Clock, ManualClock, OffsetClock, SystemClock
    from .config import DEFAULT_API_KEY, MockConfig

_EXPORTS = {
    "DEFAULT_API_KEY": "config",
    "Clock": "clock",
    "GatewayBackend": "backend",
    "GatewayError": "backend",
    "ManualClock": "clock",
    "MockConfig": "config",
    "OffsetClock": "clock",
    "SystemClock": "clock",
    "create_app": "app",
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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mock_gateway' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
