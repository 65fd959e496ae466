"""Run pytest, treating "no tests collected" (exit 5) as a failure with a clear message.

CI must never pass by running nothing, so an empty selection is an error, not a green run.
"""

from __future__ import annotations

import sys

import pytest

NO_TESTS_COLLECTED = 5


def main() -> int:
    code = int(pytest.main(sys.argv[1:]))
    if code == NO_TESTS_COLLECTED:
        print("run_pytest: no tests were collected; that is a failure, not a pass", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
