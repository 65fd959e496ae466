"""The Boogu Image API contract: openapi.yaml, compiled, and the wire facts every other package uses.

The bottom layer of the toolkit: the `boogu` client and the mock gateway both stand on it, and it
imports neither. `wire` holds the facts code spells as constants; the rest checks exchanges. Names
load on first use (PEP 562), so `from boogu_contract import wire` costs no jsonschema or YAML import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import wire
from .wire import iso_time

if TYPE_CHECKING:
    from ._conformance import Conformance, ContractViolation
    from ._contract import Contract, HeaderRule, Operation, ResponseRule, Violation, fast_valid, pointer_of
    from ._files import docs_path, load_spec, spec_path
    from ._redact import (
        MAX_BODY_CHARS,
        REDACTED,
        is_secret,
        redact_headers,
        redact_query,
        redact_url,
        summarize_body,
        without_userinfo,
    )
    from ._tls import shared_tls_args, shared_tls_context

_EXPORTS = {
    "Conformance": "_conformance",
    "ContractViolation": "_conformance",
    "Contract": "_contract",
    "HeaderRule": "_contract",
    "Operation": "_contract",
    "ResponseRule": "_contract",
    "Violation": "_contract",
    "fast_valid": "_contract",
    "pointer_of": "_contract",
    "docs_path": "_files",
    "load_spec": "_files",
    "spec_path": "_files",
    "MAX_BODY_CHARS": "_redact",
    "REDACTED": "_redact",
    "is_secret": "_redact",
    "redact_headers": "_redact",
    "redact_query": "_redact",
    "redact_url": "_redact",
    "summarize_body": "_redact",
    "without_userinfo": "_redact",
    "shared_tls_args": "_tls",
    "shared_tls_context": "_tls",
}
__all__ = [
    "MAX_BODY_CHARS",
    "REDACTED",
    "Conformance",
    "Contract",
    "ContractViolation",
    "HeaderRule",
    "Operation",
    "ResponseRule",
    "Violation",
    "docs_path",
    "fast_valid",
    "is_secret",
    "iso_time",
    "load_spec",
    "pointer_of",
    "redact_headers",
    "redact_query",
    "redact_url",
    "shared_tls_args",
    "shared_tls_context",
    "spec_path",
    "summarize_body",
    "wire",
    "without_userinfo",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'boogu_contract' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # looked up once
    return value
