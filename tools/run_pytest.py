"""Run pytest, treating "no tests collected" (exit 5) as a failure with a clear message.

CI must never pass by running nothing, so an empty selection is an error, not a green run.

    python -m tools.run_pytest [--beside "tools.schemathesis_cli"]... [pytest arguments]

Each `--beside` names a module (with its arguments) run with `python -m` at the same time as pytest:
`make test` runs the schemathesis CLI and the client smoke tests beside the suite, since all three
spend much of their time waiting on processes and sockets and 2 cores are not kept busy by one.
Their output is kept and printed whole once pytest has ended; any failure fails the run.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

import pytest

NO_TESTS_COLLECTED = 5


@dataclass
class Beside:
    """A command running beside pytest, its output going to a temporary file."""

    command: str
    process: subprocess.Popen[bytes]
    output: IO[bytes]
    started: float
    ended: float | None = None

    @classmethod
    def start(cls, command: str) -> Beside:
        output = tempfile.TemporaryFile()  # noqa: SIM115 - kept open until `finish` prints it
        argv = [sys.executable, "-m", *shlex.split(command)]
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        beside = cls(command, process, output, time.monotonic())
        threading.Thread(target=beside._note_the_end, daemon=True).start()
        return beside

    def _note_the_end(self) -> None:
        """When it ended, for the report (pytest may end long before or after it)."""
        self.process.wait()
        self.ended = time.monotonic()

    def finish(self) -> int:
        """Wait for it, print its output whole, and return its exit status."""
        code = self.process.wait()
        self.output.seek(0)
        sys.stdout.flush()
        sys.stdout.buffer.write(self.output.read())
        self.output.close()
        took = (self.ended or time.monotonic()) - self.started
        print(f"run_pytest: `{self.command}` exited {code} after {took:.0f} s", flush=True)
        return code


def parse(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """The `--beside` commands, and the arguments that are pytest's."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--beside", action="append", default=[])
    known, rest = parser.parse_known_args(list(argv))
    return known.beside, rest


def main(argv: Sequence[str] | None = None) -> int:
    commands, pytest_args = parse(sys.argv[1:] if argv is None else argv)
    besides = [Beside.start(command) for command in commands]
    try:
        code = int(pytest.main(pytest_args))
    finally:
        codes = [beside.finish() for beside in besides]
    if code == NO_TESTS_COLLECTED:
        print("run_pytest: no tests were collected; that is a failure, not a pass", file=sys.stderr)
        code = 1
    failed = [beside.command for beside, beside_code in zip(besides, codes, strict=True) if beside_code]
    if failed:
        print(f"run_pytest: failed beside the tests: {', '.join(failed)}", file=sys.stderr)
    return code or (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
