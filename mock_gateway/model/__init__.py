"""The gateway model: everything the mock gateway decides, as plain classes driven by an injected clock.

No HTTP server here (import-linter holds it so): `mock_gateway.server` translates requests into calls on
`GatewayBackend`, and tests drive the backend, or any part of it, directly.
"""

from __future__ import annotations

from ._backend import (
    OUTCOME_HEADER,
    Admission,
    ApiKey,
    DroppedConnection,
    GatewayBackend,
    GatewayError,
    Submission,
    SyncWait,
    check_key,
    internal_error,
    validation_error,
)
from ._clock import LATEST, MAX_ADVANCE, Clock, ManualClock, OffsetClock, SystemClock, sleep_until
from ._config import DEFAULT_API_KEY, REALISTIC, ConfigError, MockConfig, money, parse_amount
from ._jobs import Job
from ._ratelimit import RateLimit
from ._webhooks import Sender, is_loopback

__all__ = [
    "DEFAULT_API_KEY",
    "LATEST",
    "MAX_ADVANCE",
    "OUTCOME_HEADER",
    "REALISTIC",
    "Admission",
    "ApiKey",
    "Clock",
    "ConfigError",
    "DroppedConnection",
    "GatewayBackend",
    "GatewayError",
    "Job",
    "ManualClock",
    "MockConfig",
    "OffsetClock",
    "RateLimit",
    "Sender",
    "Submission",
    "SyncWait",
    "SystemClock",
    "check_key",
    "internal_error",
    "is_loopback",
    "money",
    "parse_amount",
    "sleep_until",
    "validation_error",
]
