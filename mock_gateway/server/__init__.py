"""The mock gateway's HTTP edge: the ASGI app, its admin API, JSON parsing, socket limits, auth and CLI.

Above `mock_gateway.model`, which it translates HTTP into; nothing below imports it.
"""

from __future__ import annotations

from boogu_contract._json import MAX_JSON_DEPTH

from ..model._json import strict_json
from ._admin_auth import AdminAuth, add_admin_options, admin_refusal, check_token
from ._app import create_app
from ._limits import server_config

__all__ = [
    "MAX_JSON_DEPTH",
    "AdminAuth",
    "add_admin_options",
    "admin_refusal",
    "check_token",
    "create_app",
    "server_config",
    "strict_json",
]
