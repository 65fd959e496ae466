"""JSON as RFC 8259 defines it, and no deeper than the spec needs: what the mock accepts as a body, and
how its journal reads the bodies it kept as text."""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

import orjson

from boogu_contract._json import MAX_JSON_DEPTH, shallow, within_depth


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
            return within_depth(value, data)
    try:
        value = json.loads(data, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    return shallow(value, check_text=True)
