"""The small parsers and rewrites of tools/ that `make test` relies on: each on its edge cases."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tools import (
    bench_load,
    bench_mock,
    bench_report,
    bench_servers,
    client_smoke,
    offline_docs,
    openapi_generator,
    processes,
)

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


FAKE_GENERATOR = """#!/bin/sh
# Stands in for openapi-generator-cli: notes the JVM options, and acts like the JVM on the archive.
printf '%s\\n' "$JAVA_TOOL_OPTIONS" >> "$(dirname "$0")/options.log"
archive=$(printf '%s' "$JAVA_TOOL_OPTIONS" | sed -n 's/.*SharedArchiveFile=\\([^ ]*\\).*/\\1/p')
if [ -n "$archive" ] && [ "$(cat "$archive")" = cut-short ]; then
  echo "# A fatal error has been detected by the Java Runtime Environment:"; exit 134
fi
written=$(printf '%s' "$JAVA_TOOL_OPTIONS" | sed -n 's/.*ArchiveClassesAtExit=\\([^ ]*\\).*/\\1/p')
if [ -n "$written" ] && ! echo classes > "$written"; then
  echo "Error occurred during initialization of VM"; exit 1  # as the JVM fails when it cannot
fi
[ -n "$written" ] && sleep 0.3  # a JVM writing the archive takes its time: others come meanwhile
[ "$1" = fail ] && exit 1
echo generated
"""


@pytest.fixture
def fake_generator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The generator's class archive in `tmp_path`, and a stand-in CLI whose options land in options.log."""
    cli = tmp_path / "openapi-generator-cli"
    cli.write_text(FAKE_GENERATOR)
    cli.chmod(0o755)
    monkeypatch.setattr(openapi_generator, "cli", lambda: str(cli))
    monkeypatch.setattr(openapi_generator, "ARCHIVES", tmp_path / "jvm")
    monkeypatch.delenv("JAVA_TOOL_OPTIONS", raising=False)
    return tmp_path


def test_the_first_generator_run_writes_the_class_archive_and_the_next_reads_it(fake_generator: Path) -> None:
    archive = openapi_generator.class_archive()
    assert openapi_generator.run("generate") == "generated\n"
    assert archive.read_text() == "classes\n"
    openapi_generator.run("generate")
    first, second = (fake_generator / "options.log").read_text().splitlines()
    assert first.startswith(openapi_generator.QUICK_JVM) and "-XX:ArchiveClassesAtExit=" in first
    assert second.startswith(openapi_generator.QUICK_JVM) and f"-XX:SharedArchiveFile={archive}" in second
    assert "-XX:+IgnoreUnrecognizedVMOptions" in second  # Java 11 has no such archive: not an error
    left = [path.name for path in archive.parent.iterdir() if path.name != ".lock"]
    assert left == [archive.name]  # no part left behind
    assert openapi_generator.jvm_options() == second  # for the docs' generator commands, as tested


def test_runs_at_once_wait_for_the_one_writing_the_archive_and_read_it(fake_generator: Path) -> None:
    assert openapi_generator.jvm_options() == openapi_generator.QUICK_JVM  # no archive yet
    with ThreadPoolExecutor(max_workers=3) as pool:
        assert list(pool.map(lambda _: openapi_generator.run("generate"), range(3))) == ["generated\n"] * 3
    options = (fake_generator / "options.log").read_text().splitlines()
    assert sum("-XX:ArchiveClassesAtExit=" in line for line in options) == 1, options
    assert sum("-XX:SharedArchiveFile=" in line for line in options) == 2, options


def test_an_archive_cut_short_is_dropped_and_the_run_made_without_it(fake_generator: Path) -> None:
    archive = openapi_generator.class_archive()
    archive.parent.mkdir()
    archive.write_text("cut-short")  # as a full disk leaves it: the JVM that maps it crashes
    assert openapi_generator.run("generate") == "generated\n"
    assert archive.read_text() == "classes\n"  # written anew by the run made without it


def test_a_failed_generation_leaves_no_archive_and_the_callers_options_win(
    fake_generator: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(subprocess.CalledProcessError):
        openapi_generator.run("fail")
    assert [path.name for path in openapi_generator.ARCHIVES.iterdir()] == [".lock"]
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", "-Xmx1g")
    openapi_generator.run("generate")
    assert (fake_generator / "options.log").read_text().splitlines()[-1] == "-Xmx1g"
    assert openapi_generator.jvm_options() == "-Xmx1g"  # the docs' commands under test: the same rule


def test_an_archive_that_cannot_be_written_costs_a_run_not_the_generation(
    fake_generator: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (fake_generator / "build").write_text("a file where build/ would be")  # no folder can go there
    monkeypatch.setattr(openapi_generator, "ARCHIVES", fake_generator / "build" / "jvm")
    assert openapi_generator.run("generate") == "generated\n"
    assert (fake_generator / "options.log").read_text().splitlines()[-1] == openapi_generator.QUICK_JVM
    # A folder the JVM cannot write its archive into: it fails at its start, and the run is made again.
    monkeypatch.setattr(openapi_generator, "ARCHIVES", fake_generator / "jvm")
    monkeypatch.setattr(openapi_generator, "class_archive", lambda: fake_generator / "gone" / "x.jsa")
    assert openapi_generator.run("generate") == "generated\n"
    dump, plain = (fake_generator / "options.log").read_text().splitlines()[-2:]
    assert "-XX:ArchiveClassesAtExit=" in dump and plain == openapi_generator.QUICK_JVM


def test_cpu_time_is_read_while_threads_come_and_go() -> None:
    """A thread that ends between the listing of /proc/<pid>/task and the read of its clock is left out."""
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            short = threading.Thread(target=sum, args=(range(1000),))
            short.start()
            short.join()

    churner = threading.Thread(target=churn)
    churner.start()
    try:
        readings = [processes.cpu_seconds_run(os.getpid()) for _ in range(300)]
    finally:
        stop.set()
        churner.join()
    assert all(reading > 0 for reading in readings)


def _window(rps: float, us: float) -> bench_load.Window:
    """A 1 s window of `rps` answers costing the server `us` µs each."""
    cpu = rps * us / 1e6
    return bench_load.Window(requests=int(rps), seconds=1.0, cpu_seconds=cpu, user_seconds=cpu * 0.6)


def test_bench_ratios_are_taken_round_by_round_and_their_median_checked() -> None:
    runs: bench_report.Runs = {
        "mock": {
            op: [_window(900, 100), _window(500, 200), _window(950, 100)] for op in bench_report.OPERATIONS
        },
        "bare": {
            op: [_window(1000, 95), _window(1000, 95), _window(1000, 95)] for op in bench_report.OPERATIONS
        },
    }
    rows = {
        row.figure: row
        for row in bench_report.comparison_rows("s", runs, "mock", "bare", {"status": 0.9, "submit": 0.75})
    }
    by_rps, by_cpu = rows["status: mock / bare, by req/s"], rows["status: mock / bare, by CPU"]
    assert by_rps.rounds == pytest.approx([0.9, 0.5, 0.95])
    assert by_rps.value == pytest.approx(0.9)
    assert by_rps.met
    assert by_cpu.value == pytest.approx(0.95)
    assert by_cpu.met
    assert rows["status: mock"].value == pytest.approx(900)
    assert rows["submit: mock / bare, by CPU"].met  # 0.95 against the submit goal of 0.75
    by_user = rows["status: mock / bare, by user CPU"]  # the server's own work, shown with no goal
    assert by_user.value == pytest.approx(0.95)
    assert by_user.goal is None and by_user.met is None
    # Checked as printed: 0.899 reads 0.90, which meets the goal of 0.9; 0.894 reads 0.89, which does not.
    assert bench_report.Goal("≥", 0.9, "ratio").met(0.899)
    assert not bench_report.Goal("≥", 0.9, "ratio").met(0.894)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make bench installs it)")
def test_bench_load_measures_a_window_and_loads_until_told_to_stop() -> None:
    """wrk and its Lua script against a real mock: figures parsed, server CPU read, a fill stopped."""
    server = bench_servers.servers("warn")["mock"]
    with tempfile.TemporaryFile() as log, bench_servers.started(server, log) as (base_url, pid):
        assert os.sched_getaffinity(pid) == bench_load.SERVER_CPUS  # the load runs on LOAD_CPUS
        submit = bench_mock.submit_load(server)
        (window,) = bench_load.measure_together(
            [(base_url, submit, pid)], connections=4, threads=1, warmup=0, duration=1
        )
        assert window.failure is None
        assert window.rps and window.status_errors == 0
        assert window.us_per_request and window.us_per_request > 0
        assert window.user_us_per_request and window.user_us_per_request <= window.us_per_request
        status = bench_mock.status_load(base_url, server.name, submit)
        both = bench_load.measure_together(
            [(base_url, submit, pid), (base_url, status, pid)], connections=2, threads=1, warmup=1, duration=1
        )
        assert [w.failure for w in both] == [None, None] and all(w.rps and w.us_per_request for w in both)
        held = bench_mock.jobs_held(base_url)
        bench_load.load_until(
            base_url,
            submit,
            connections=4,
            threads=1,
            enough=lambda: bench_mock.jobs_held(base_url) > held + 100,
        )
        assert bench_mock.jobs_held(base_url) > held + 100


def test_the_bench_gives_the_server_a_cpu_of_its_own_where_there_are_two() -> None:
    allowed = os.sched_getaffinity(0)
    assert allowed == bench_load.SERVER_CPUS | bench_load.LOAD_CPUS
    assert len(bench_load.SERVER_CPUS) == 1
    assert len(allowed) == 1 or not bench_load.SERVER_CPUS & bench_load.LOAD_CPUS
