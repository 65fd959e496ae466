"""The schemathesis CLI against the mock gateway served on loopback, two ways at once.

- The project's run: `schemathesis.toml` (seeded, deterministic, stricter about which answers valid
  data may get), as a downstream team's CI would run it against any implementation of the spec.
- An independent run: started from an empty folder, so neither the project's config nor any hook
  applies; all checks and all phases with schemathesis' defaults but one, `INDEPENDENT_EXAMPLES`. It
  proves that every request the contract allows gets the gateway's answer from the mock as it is.

Complements contract_tests/mock/test_schemathesis.py (in-process): these go through a real socket and uvicorn.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from boogu_contract import wire
from mock_gateway.model import DEFAULT_API_KEY
from mock_gateway.testing import gateway_process

ROOT = Path(__file__).resolve().parent.parent
REPORT_DIR = ROOT / "build" / "schemathesis"
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
INDEPENDENT_SEED = "20261130"
INDEPENDENT_EXAMPLES = "40"
"""Not the default 100: the project run fuzzes each operation 80 times and the in-process suite again;
this run's own point is the absence of config, and 100 cost `make test` 20 s of CPU more."""


def main() -> int:
    # Valid data must never run out of money; jobs finish at once so stateful runs reach COMPLETED.
    with (
        gateway_process("--balance", "1000000000", "--speed", "1000", "--seed", "1") as base_url,
        tempfile.TemporaryDirectory() as empty,
    ):
        project = [
            SCHEMATHESIS,
            "--config-file", str(ROOT / "schemathesis.toml"),
            "run", f"{base_url}/openapi.json",
            "--workers", "1",
            "--report", "junit",
            "--report-dir", str(REPORT_DIR),
            *sys.argv[1:],
        ]  # fmt: skip
        independent = [
            SCHEMATHESIS,
            "run", f"{base_url}/openapi.json",
            "--checks", "all",
            "--header", f"{wire.KEY_HEADER}: {DEFAULT_API_KEY}",
            "--seed", INDEPENDENT_SEED,
            "--max-examples", INDEPENDENT_EXAMPLES,
            "--workers", "1",
        ]  # fmt: skip
        runs = {
            "project config": subprocess.Popen(project, cwd=ROOT, stdout=subprocess.PIPE, text=True),
            "independent, no config or hooks": subprocess.Popen(
                independent, cwd=empty, stdout=subprocess.PIPE, text=True, env=_without_project(os.environ)
            ),
        }
        codes = {}
        for name, process in runs.items():
            output, _ = process.communicate()
            print(f"===== schemathesis: {name} =====\n{output}", flush=True)
            codes[name] = process.returncode
    failed = [name for name, code in codes.items() if code != 0]
    if failed:
        print(f"schemathesis_cli: failed runs: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _without_project(environ: os._Environ[str]) -> dict[str, str]:
    """The environment minus any pointer back to this repository's configuration."""
    return {name: value for name, value in environ.items() if not name.startswith("SCHEMATHESIS_")}


if __name__ == "__main__":
    sys.exit(main())
