"""The small parsers and rewrites of tools/ that `make test` relies on: each on its edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tools import client_smoke, offline_docs, openapi_generator

ROOT = Path(__file__).resolve().parents[2]


PAGE = (
    f"<!DOCTYPE html>\n<html>\n<head>\n<title>x</title></head><body><script>{offline_docs.CDN_LOGOS}</script>"
)


@pytest.mark.parametrize(
    ("report", "counts"),
    [
        ("Ran 5 tests in 2.7s\n\nOK\n", (5, 0)),
        ("Ran 5 tests in 2.7s\n\nFAILED (failures=1, errors=2)\n", (2, 3)),
        ("Ran 1 test in 0.1s\n\nFAILED (errors=1)\n", (0, 1)),
        ("Traceback (most recent call last):\nImportError: no module\n", (0, 0)),
    ],
    ids=["ok", "failures-and-errors", "one-error", "crash"],
)
def test_unittest_counts(report: str, counts: tuple[int, int]) -> None:
    assert client_smoke.unittest_counts(report) == counts


@pytest.mark.parametrize(
    ("report", "counts"),
    [
        ("ℹ tests 6\nℹ pass 6\nℹ fail 0\nℹ cancelled 0\n", (6, 0)),
        ("ℹ pass 4\nℹ fail 1\nℹ cancelled 1\n", (4, 2)),
        ("SyntaxError: Unexpected token\n", (0, 0)),
    ],
    ids=["ok", "failed-and-cancelled", "crash"],
)
def test_node_counts(report: str, counts: tuple[int, int]) -> None:
    assert client_smoke.node_counts(report) == counts


def test_unknown_clients_are_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        client_smoke.main(["--no-build", "cobol"])
    assert exit_info.value.code == 2
    assert "unknown client(s) cobol" in capsys.readouterr().err


def test_offline_docs_replaces_every_cdn_logo_and_adds_the_csp_first_in_head() -> None:
    page = offline_docs.make_offline(PAGE)
    assert "cdn.redoc.ly" not in page
    assert page.count(offline_docs.LOGO_URI) == len(offline_docs.CDN_LOGOS)
    assert page.index(offline_docs.CSP_META) == page.index("<head>") + len("<head>")


def test_offline_docs_leaves_a_head_inside_the_bundle_alone() -> None:
    late_head = "<!DOCTYPE html>" + " " * 2000 + "<head>" + PAGE
    with pytest.raises(ValueError, match="does not start with a <head>"):
        offline_docs.make_offline(late_head)


def test_offline_docs_is_idempotent_and_says_when_the_page_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "index.html"
    assert offline_docs.main([str(page)]) == 1
    assert "is missing" in capsys.readouterr().err
    page.write_text(PAGE)
    assert offline_docs.main([str(page)]) == 0
    once = page.read_text()
    assert offline_docs.main([str(page)]) == 0
    assert page.read_text() == once


def test_every_generator_config_names_its_generator_spec_and_build_folder() -> None:
    for language in openapi_generator.languages():
        config = yaml.safe_load(openapi_generator.config(language).read_text())
        assert config["inputSpec"] == "openapi.yaml", language
        assert config["outputDir"] == f"build/clients/openapi-generator/{language}", language
        assert config["generatorName"] == language, language


def test_an_unknown_language_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(SystemExit, match="known: csharp, go"):
        openapi_generator.config("cobol")
