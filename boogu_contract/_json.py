"""JSON no deeper than the spec's bodies need, for every reader of bodies that others send: the mock's
requests, the replay's, and the client's answers and webhook deliveries.

The standard library's parser and every recursive walk of its result stop at Python's recursion limit
(a body nested a thousand deep raised RecursionError, where readers expect ValueError); orjson reads
1,024 levels, which a recursive walk cannot follow either.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_JSON_DEPTH = 32
"""The spec's bodies nest 3 levels; deeper JSON is refused before anything walks it recursively."""


def few_brackets(data: bytes | bytearray | str, levels: int = MAX_JSON_DEPTH) -> bool:
    """Too few brackets to nest deeper than `levels`: every API body, with no walk."""
    if isinstance(data, str):
        return data.count("[") + data.count("{") <= levels
    return data.count(b"[") + data.count(b"{") <= levels


def within_depth(value: Any, data: bytes | bytearray | str) -> Any:
    """`value`, parsed from `data`, if it nests at most `MAX_JSON_DEPTH` levels (else ValueError),
    walked only when `data` has the brackets to nest that deep."""
    return value if few_brackets(data) else shallow(value)


def shallow(value: Any, *, check_text: bool = False) -> Any:
    """`value` if it nests at most `MAX_JSON_DEPTH` levels (else ValueError) and, with `check_text`,
    has no lone surrogate (which orjson refuses itself). A loop, not recursion."""
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


def loads(data: bytes | bytearray | str) -> Any:
    """`json.loads`, but JSON nested deeper than `MAX_JSON_DEPTH` is a ValueError like any other text
    that is not JSON (UnicodeDecodeError is one too)."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    return within_depth(value, data)
