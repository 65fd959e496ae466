"""JSON as RFC 8259 defines it, and no deeper than the spec needs: what the mock accepts as a body."""

from __future__ import annotations

import contextlib
import json
import math
import re
from typing import Any

import orjson


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text} is out of range")
    return value


_DIGITS_ONLY = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
"""Every digit to `0`, every other byte to a space: a run of 19 digits becomes a run of 19 zeros,
which `in` finds in one pass (a regex `\\d{19}` is tried at every byte: 10 µs for a 300-byte body)."""
_LONG_RUN = b"0" * 19
_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_JSON_DEPTH = 32
"""The spec's bodies nest 3 levels; deeper JSON is refused before anything walks it recursively."""


def strict_json(data: bytes | bytearray) -> Any:
    """Parse JSON as RFC 8259 defines it: Python's NaN, Infinity and -Infinity extensions, numbers
    too large for a float (1e400), lone surrogates and nesting deeper than `MAX_JSON_DEPTH` are refused.
    They would pass range checks (NaN) or settings (inf) and then break every JSON answer that echoes
    them: the journal, the config.

    orjson is the fast path (it refuses all but deep nesting too); the standard library decides
    whatever orjson will not parse, and any integer of 19 digits or more, which orjson would turn
    into a float.
    """
    if _LONG_RUN not in data.translate(_DIGITS_ONLY):
        with contextlib.suppress(orjson.JSONDecodeError):
            value = orjson.loads(data)
            return value if few_brackets(data) else shallow(value)
    try:
        value = json.loads(data, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    return shallow(value, check_text=True)


def few_brackets(data: bytes | bytearray) -> bool:
    """Too few brackets to nest deeper than `MAX_JSON_DEPTH`: every API body, with no walk."""
    return data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH


def shallow(value: Any, *, check_text: bool = False) -> Any:
    """`value` if it nests at most `MAX_JSON_DEPTH` levels and, with `check_text`, has no lone
    surrogate (orjson refuses them itself)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list) and depth > MAX_JSON_DEPTH:
            raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(node, dict):
            stack += [(key, depth) for key in node]
            stack += [(item, depth + 1) for item in node.values()]
        elif isinstance(node, list):
            stack += [(item, depth + 1) for item in node]
        elif check_text and isinstance(node, str) and _SURROGATE.search(node):
            raise ValueError("a string contains a lone UTF-16 surrogate")
    return value
