"""Schemathesis hooks (loaded by schemathesis.toml): keep generated *valid* data valid for the mock.

The mock checks two things that a JSON schema cannot express: that a webhook target is a loopback
host (no SSRF through the mock), and that a `data:` image URI holds a real image. A schema-valid
value that fails them is a correct 400, so here such values are mapped to equivalent ones that pass;
schema-invalid (negative) values are left alone, so negative testing is untouched.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import schemathesis

from mock_gateway.spec import Contract

CONTRACT = Contract()
LOOPBACK = "127.0.0.1:9"  # the discard port: deliveries fail fast and stay on this machine
TINY_PNG = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGM4UaEBAAN0AWnL+tDXAAAAAElFTkSuQmCC"
)


def operation_id(context: schemathesis.HookContext) -> str | None:
    operation = context.operation
    return None if operation is None else operation.definition.raw.get("operationId")


@schemathesis.hook
def before_call(
    context: schemathesis.HookContext, case: schemathesis.Case[Any], kwargs: dict[str, Any]
) -> None:
    """Runs for every phase, the spec's own examples included (they carry a public webhook URL)."""
    op = operation_id(context)
    if op is None or op not in CONTRACT.operations:
        return
    for name, value in (case.headers or {}).items():
        webhook = name.lower() == "x-webhook-url" and isinstance(value, str)
        if webhook and CONTRACT.check_header(op, name, value) is None:
            parts = urlsplit(value)
            case.headers[name] = urlunsplit((parts.scheme, LOOPBACK, parts.path, parts.query, ""))
    body = case.body
    if op == "submit_image_edit" and isinstance(body, dict):
        image_url = body.get("image_url")
        if (
            isinstance(image_url, str)
            and image_url.startswith("data:")
            and CONTRACT.check_body(op, body) is None
        ):
            body["image_url"] = TINY_PNG
