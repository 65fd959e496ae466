"""Holding a real gateway to openapi.yaml: the validating proxy, cassettes, replay, `boogu verify`'s engine.

Above the server layer (they serve with its socket limits) and the model (its clocks); below the harness.
"""

from __future__ import annotations

from ._asgi import OWN_ANSWER_HEADER
from ._cassette import CassetteError, CassetteWriter, Exchange, Matcher, Miss, Recording, load
from ._proxy import VIOLATIONS_HEADER, ContractProxy, ViolationLog
from ._replay import ReplayApp
from ._verify import Check, Problem, Unreachable, Verifier

__all__ = [
    "OWN_ANSWER_HEADER",
    "VIOLATIONS_HEADER",
    "CassetteError",
    "CassetteWriter",
    "Check",
    "ContractProxy",
    "Exchange",
    "Matcher",
    "Miss",
    "Problem",
    "Recording",
    "ReplayApp",
    "Unreachable",
    "Verifier",
    "ViolationLog",
    "load",
]
