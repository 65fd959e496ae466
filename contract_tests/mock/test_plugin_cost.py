"""The pytest plugin costs nothing unless used: pytest loads it in every run of a venv with the toolkit.

Measured on a one-test run, with the plugin and without it (`-p no:boogu_mock_gateway`): the sets of
modules imported are compared (robust on a busy machine), and so is peak RSS (which does not depend on
the machine's load); wall times are printed. The plugin's own import time comes from `-X importtime`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

HEAVY = ("starlette", "uvicorn", "PIL", "jsonschema", "jsonschema_rs", "rich", "httpx", "yaml", "orjson")
PLUGIN = "mock_gateway.pytest_plugin"
OWN = {"mock_gateway", "mock_gateway._compat", PLUGIN}  # _compat: the old module paths (stdlib only)
IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \| *(\S+)$", re.MULTILINE)
RSS_BUDGET_KIB = 5 * 1024
TIME_BUDGET_US = 30_000
# The child runs pytest, then reports the modules it ended with and its own peak RSS as JSON.
CHILD = (
    "import json, resource, sys, pytest\n"
    "code = pytest.main(sys.argv[1:])\n"
    "report = {'modules': sorted(sys.modules), 'rss': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\n"
    "print('REPORT', json.dumps(report))\n"
    "sys.exit(code)\n"
)


def run_one_test(folder: Path, *flags: str) -> tuple[set[str], float, int]:
    """One pytest run of one test: the modules it imported, its wall time (s) and peak RSS (KiB)."""
    command = [sys.executable, "-c", CHILD, "-q", "-p", "no:cacheprovider", *flags, "test_one.py"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    started = time.perf_counter()
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("REPORT "))
    report = json.loads(line.removeprefix("REPORT "))
    return set(report["modules"]), elapsed, int(report["rss"])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project of one test that uses no fixture of the plugin, outside this repository's config."""
    path = tmp_path_factory.mktemp("plugin_cost")
    (path / "test_one.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    return path


def test_loading_the_plugin_imports_no_heavy_module_and_takes_no_time() -> None:
    # pytest first, as in a real run: what is left is the plugin's own cost.
    code = f"import pytest, _pytest.fixtures\nimport {PLUGIN}"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    cumulative = {name: int(us) for us, name in IMPORT_LINE.findall(result.stderr)}
    heavy = sorted(name for name in cumulative if name.split(".")[0] in HEAVY)
    assert heavy == [], f"loading the plugin imported {heavy}"
    print(f"\nimporting {PLUGIN} (pytest already loaded): {cumulative[PLUGIN] / 1000:.1f} ms")
    assert cumulative[PLUGIN] < TIME_BUDGET_US


def test_a_run_with_the_plugin_costs_what_one_without_it_does(folder: Path) -> None:
    modules, seconds_with, rss_with = run_one_test(folder)
    modules_without, seconds_without, rss_without = run_one_test(folder, "-p", "no:boogu_mock_gateway")

    assert PLUGIN in modules and PLUGIN not in modules_without
    extra = modules - modules_without
    assert extra <= OWN, f"the plugin made pytest import {sorted(extra - OWN)}"

    seconds, rss = (seconds_with, seconds_without), (rss_with, rss_without)
    print(
        "\none-test run: "
        f"with the plugin {seconds[0] * 1000:.0f} ms, {rss[0] / 1024:.1f} MiB; "
        f"without it {seconds[1] * 1000:.0f} ms, {rss[1] / 1024:.1f} MiB; "
        f"difference {(seconds[0] - seconds[1]) * 1000:+.0f} ms, {(rss[0] - rss[1]) / 1024:+.2f} MiB"
    )
    assert rss[0] - rss[1] < RSS_BUDGET_KIB
