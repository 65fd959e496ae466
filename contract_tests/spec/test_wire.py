"""The wire facts of `boogu_contract.wire` say what openapi.yaml says: each constant against the spec."""

from __future__ import annotations

import re
from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st

from boogu_contract import Contract, load_spec, wire


def test_the_key_header_is_the_security_scheme() -> None:
    schemes = load_spec()["components"]["securitySchemes"]
    assert [scheme["name"] for scheme in schemes.values() if scheme["type"] == "apiKey"] == [wire.KEY_HEADER]


def test_the_default_base_url_is_the_first_server() -> None:
    assert load_spec()["servers"][0]["url"] == wire.DEFAULT_BASE_URL


def test_the_statuses_are_the_spec_enum_in_flow_order() -> None:
    status = load_spec()["components"]["schemas"]["Status"]
    assert tuple(status["enum"]) == wire.STATUSES
    assert set(wire.STATUSES) - {"QUEUED", "PROCESSING"} == wire.TERMINAL_STATUSES
    assert wire.TERMINAL_STATUSES - {"ERROR"} == wire.CHARGED_STATUSES


def test_the_paths_are_the_spec_paths() -> None:
    contract = Contract()
    paths = {op.path for op in contract.operations.values()}
    submits = {path for path in paths if wire.submit_model(path) is not None}
    assert paths == submits | {wire.STATUS_PATH}
    assert {wire.submit_path(wire.submit_model(path) or "") for path in submits} == submits
    assert wire.status_path("x_1") == "/v2/requests/status/x_1"
    assert wire.submit_model("/boogu-image/v1/other-request") is None


def test_the_webhook_header_is_a_submit_parameter() -> None:
    contract = Contract()
    for operation in contract.operations.values():
        if wire.submit_model(operation.path) is not None:
            assert wire.WEBHOOK_HEADER.lower() in operation.headers


def test_timestamps_are_written_as_the_reference_writes_them() -> None:
    assert wire.iso_time(1_774_951_215.5) == "2026-03-31T10:00:15.500Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", wire.iso_time(0.0))


@given(st.floats(min_value=-2e9, max_value=1e10), st.floats(min_value=0, max_value=5))
def test_a_timestamp_reads_back_as_its_millisecond(at: float, later: float) -> None:
    """Each second's text is formatted once and kept: the next moments, in that second or the next,
    still read back as themselves."""
    for moment in (at, at + later):
        back = datetime.fromisoformat(wire.iso_time(moment).replace("Z", "+00:00")).timestamp()
        assert round(back * 1000) == int(moment * 1000)
