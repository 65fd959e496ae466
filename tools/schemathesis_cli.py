"""The schemathesis CLI against the mock gateway served on loopback, with schemathesis.toml.

Complements contract_tests/test_schemathesis.py (in-process): this one goes through a real socket
and uvicorn, as a downstream team's CI would run it against any implementation of the spec.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mock_gateway.testing import gateway_process

ROOT = Path(__file__).resolve().parent.parent
REPORT_DIR = ROOT / "build" / "schemathesis"


def main() -> int:
    # Valid data must never run out of money; jobs finish at once so stateful runs reach COMPLETED.
    with gateway_process("--balance", "1000000000", "--speed", "1000", "--seed", "1") as base_url:
        command = [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file", str(ROOT / "schemathesis.toml"),
            "run", f"{base_url}/openapi.json",
            "--workers", "2",
            "--report", "junit",
            "--report-dir", str(REPORT_DIR),
            *sys.argv[1:],
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
