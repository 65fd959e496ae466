"""`python -m mock_gateway proxy` and `python -m mock_gateway replay`, run as processes."""

from __future__ import annotations

import httpx
import pytest

from mock_gateway.cli import main
from mock_gateway.contract_tools._cassette import load
from mock_gateway.testing import MockGateway, gateway_process

SUBMIT = "/boogu-image/v1/boogu-image-request"


def test_proxy_records_and_replay_serves(tmp_path):
    cassette = tmp_path / "session.yaml"
    headers = {"Ocp-Apim-Subscription-Key": "test-key"}
    with MockGateway(served=True) as upstream:
        proxy_args = ("--upstream", upstream.base_url, "--record", str(cassette))
        with gateway_process(*proxy_args, subcommand=["proxy"]) as proxy:
            recorded = httpx.post(f"{proxy}{SUBMIT}", json={"prompt": "x"}, headers=headers)
            violations = httpx.get(f"{proxy}/__mock/violations").json()
    assert recorded.status_code == 202 and recorded.headers["x-contract-violations"] == "0"
    assert violations == []
    assert [r.operation for r in load(cassette)] == ["submit_text_to_image"]
    with gateway_process(str(cassette), subcommand=["replay"]) as replay:
        replayed = httpx.post(f"{replay}{SUBMIT}", json={"prompt": "x"}, headers=headers)
    assert (replayed.status_code, replayed.content) == (202, recorded.content)


def test_subcommands_have_their_own_help(capsys):
    for command in ("proxy", "replay"):
        with pytest.raises(SystemExit) as exited:
            main([command, "--help"])
        assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "--upstream" in out and "--record" in out and "--rewrite-media" in out and "cassette" in out
