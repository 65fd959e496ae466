"""Every status that openapi.yaml declares for an operation is produced by the mock in some test.

(The other direction, that the mock answers nothing undeclared, is checked on every response by the
audit in conftest.py.) Runs last; meaningful only when the whole suite ran.
"""

from __future__ import annotations

import pytest

from contract_tests.conftest import PRODUCED, missing_responses, whole_suite


def test_every_declared_response_is_produced(request: pytest.FixtureRequest) -> None:
    if hasattr(request.config, "workerinput"):
        pytest.skip("under pytest-xdist the controller checks it, over all workers, when the session ends")
    if not whole_suite(request.session):
        pytest.skip("needs the whole suite: it checks what all the other tests produced")
    missing = missing_responses()
    assert not missing, (
        f"declared in openapi.yaml but never produced by the mock: {missing}; produced: {sorted(PRODUCED)}"
    )
