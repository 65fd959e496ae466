"""Schemathesis against the in-process mock: every operation, positive and negative data, all checks,
and stateful runs that follow the spec's links from submit to status. Settings: schemathesis.toml.

The coverage phase (each constraint's boundary and violating values) runs in the schemathesis CLI's
project run (`tools/schemathesis_cli.py`, beside pytest in `make test`) against a served mock, not
here: its cases are built at collection, which every xdist worker does for every file, and cost
each worker 3 s of CPU for cases that one run already sends.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import hypothesis
import pytest
import schemathesis

from mock_gateway.model._config import MockConfig
from mock_gateway.testing import MockGateway

# A balance that valid data cannot exhaust, jobs that finish at once, and a journal that keeps every call.
GATEWAY = MockGateway(
    MockConfig().updated({"default_balance": 10**9, "speed": 1000, "journal_size": 100_000})
)
schema = schemathesis.openapi.from_asgi("/openapi.json", GATEWAY.app)
schema.config.phases.coverage.enabled = False
MIN_CALLS_PER_OPERATION = 100
STATEFUL_SCENARIOS = 40
"""Scenarios of the in-process stateful run (hypothesis' default: 100), derandomized. Their cost is per
scenario, not per step: 100 random ones took 18 s of CPU beside the CLI's project and independent runs,
which run stateful too. These 40 still bring each operation past `MIN_CALLS_PER_OPERATION`: the links
followed depend on the answers, which depend on timing (171 to 420 calls per operation were seen)."""


@schema.parametrize()
def test_api(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate()


def test_stateful() -> None:
    machine = schema.as_state_machine()
    # Derandomized, as schemathesis.toml makes the other phases: the same scenarios on every run.
    settings = hypothesis.settings(
        machine.TestCase.settings, max_examples=STATEFUL_SCENARIOS, derandomize=True, database=None
    )
    machine.run(settings=settings)


def test_every_operation_was_exercised_a_hundred_times_or_more() -> None:
    """Runs after the two above (pytest keeps file order): the runs meant something."""
    calls = Counter(entry["operation_id"] for entry in GATEWAY.backend.journal.entries())
    if not calls:
        pytest.skip("counts the calls of the schemathesis tests in this file; run it with them")
    for operation_id in GATEWAY.backend.contract.operations:
        assert calls[operation_id] >= MIN_CALLS_PER_OPERATION, (operation_id, dict(calls))
    GATEWAY.stop()
