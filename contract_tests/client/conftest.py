"""Fixtures of the client tests (helpers are in `helpers.py`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import respx

from contract_tests.client.helpers import BASE, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock
