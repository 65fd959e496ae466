"""An offline stand-in for the Boogu Image API gateway, driven by openapi.yaml."""

from .app import create_app
from .backend import GatewayBackend, GatewayError
from .clock import Clock, ManualClock, OffsetClock, SystemClock
from .config import DEFAULT_API_KEY, MockConfig

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
