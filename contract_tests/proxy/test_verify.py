"""`boogu verify` against the mock (no drift) and against a drifting gateway (drift, exit 1)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from boogu.cli import main
from mock_gateway.contract_tools._cassette import load
from mock_gateway.testing import LiveServer, MockGateway, free_port_socket

from .drift import drifting_app


@pytest.fixture
def served_mock(monkeypatch: pytest.MonkeyPatch) -> Iterator[MockGateway]:
    with MockGateway(served=True) as gateway:
        gateway.configure(speed=100)
        monkeypatch.setenv("BOOGU_API_KEY", gateway.api_key)
        yield gateway


def test_without_yes_it_prints_the_price_and_sends_nothing(served_mock, capsys):
    assert main(["verify", "--base-url", served_mock.base_url, "--price-per-image", "0.05"]) == 2
    captured = capsys.readouterr()
    assert "estimated price 0.05" in captured.out and "add --yes" in captured.err
    assert served_mock.backend.journal.entries() == []


def test_without_a_key_it_refuses(monkeypatch, capsys):
    monkeypatch.delenv("BOOGU_API_KEY", raising=False)
    assert main(["verify", "--base-url", "http://127.0.0.1:9", "--yes"]) == 2
    assert "BOOGU_API_KEY" in capsys.readouterr().err


def test_the_mock_does_not_drift_and_the_evidence_is_kept(served_mock, capsys, tmp_path):
    cassette = tmp_path / "verify.yaml"
    args = ["verify", "--base-url", served_mock.base_url, "--yes", "--poll-interval", "0.05"]
    assert main([*args, "--record", str(cassette)]) == 0
    out = capsys.readouterr().out
    assert out.count("PASS") == 6 and "FAIL" not in out and "no drift from openapi.yaml" in out
    recordings = load(cassette)
    assert [r.status for r in recordings][-3:] == [400, 404, 401]
    assert served_mock.api_key not in cassette.read_text()


def test_a_drifting_gateway_fails_with_pointers(monkeypatch, capsys):
    monkeypatch.setenv("BOOGU_API_KEY", "k")
    server = LiveServer(drifting_app())
    server.start()
    try:
        code = main(
            ["verify", "--base-url", server.base_url, "--yes", "--poll-interval", "0.01", "--timeout", "5"]
        )
    finally:
        server.stop()
    out = capsys.readouterr().out
    assert code == 1
    assert "PASS  text-to-image submit" in out
    assert "FAIL  poll until finished" in out and "/status  spec: 200  gateway: 404" in out
    assert "FAIL  invalid body → 400" in out and "FAIL  no key → 401" in out
    assert "checks drift from openapi.yaml" in out


def test_a_gateway_that_does_not_answer_gets_no_verdict(monkeypatch, capsys):
    monkeypatch.setenv("BOOGU_API_KEY", "k")
    with free_port_socket() as sock:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # closed when the block ends
    assert main(["verify", "--base-url", url, "--yes"]) == 11
    assert "no verdict" in capsys.readouterr().err


def test_the_base_url_must_be_http(monkeypatch, capsys):
    monkeypatch.setenv("BOOGU_API_KEY", "k")
    with pytest.raises(SystemExit) as exited:
        main(["verify", "--base-url", "gateway.pixazo.ai", "--yes"])
    assert exited.value.code == 2 and "expected an http:// or https:// URL" in capsys.readouterr().err
