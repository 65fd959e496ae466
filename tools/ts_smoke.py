"""Run the TypeScript client's smoke test against the mock gateway as a live server.

    python tools/ts_smoke.py              # build the client if it is stale, then test
    python tools/ts_smoke.py --no-build   # test what `make clients` built

Starts `python -m mock_gateway --speed 50` on a free loopback port and prepares it through the admin
API: a per-key rate limit (10 requests a second, bursts of 10: room for polling, not for hammering),
a key with no balance (for the 402) and a key of its own for the 429. Then Node runs the compiled
clients/typescript/src/smoke.test.mts with its built-in test runner: both submit operations polled
to COMPLETED and their images downloaded, one 402 and one 429 handled. Last, the mock's journal must
show those answers really happened. Prints node's report and a closing `N passed, N failed` line;
exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: mock_gateway is a sibling package

from mock_gateway.testing import gateway_process  # noqa: E402

CLIENT_DIR = ROOT / "clients" / "typescript"
BUILD_DIR = ROOT / "build" / "clients" / "typescript"
COMPILED_TEST = BUILD_DIR / "dist" / "smoke.test.mjs"
RATE_LIMIT = {"rate": 10, "burst": 10}
BROKE_KEY = "ts-smoke-broke"
THROTTLED_KEY = "ts-smoke-throttled"
NODE_TIMEOUT = 120.0
EXPECTED_ANSWERS = {
    ("submit_text_to_image", 202): "a text-to-image request queued",
    ("submit_image_edit", 202): "an image edit queued",
    ("get_request_status", 200): "a status polled",
    ("submit_text_to_image", 402): "the 402 Insufficient Balance",
    ("get_request_status", 429): "the 429 Too Many Requests",
}


def executable(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemExit(f"ts_smoke: `{name}` is not on PATH (Node.js 20 and npm are needed)")
    return path


def stale() -> bool:
    """Whether the compiled smoke test is missing or older than the spec or the client's sources."""
    if not COMPILED_TEST.is_file():
        return True
    built = COMPILED_TEST.stat().st_mtime
    inputs = [ROOT / "openapi.yaml", ROOT / "package-lock.json", *CLIENT_DIR.rglob("*")]
    return any(path.is_file() and path.stat().st_mtime > built for path in inputs)


def build() -> None:
    print("ts_smoke: generating and compiling the TypeScript client (npm run clients)", flush=True)
    started = time.monotonic()
    subprocess.run([executable("npm"), "run", "--silent", "clients"], cwd=ROOT, check=True)
    print(f"ts_smoke: built in {time.monotonic() - started:.1f} s", flush=True)


def prepare(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as admin:
        admin.patch("/__mock/config", json={"rate_limit": RATE_LIMIT}).raise_for_status()
        admin.post("/__mock/keys", json={"key": BROKE_KEY, "balance": 0}).raise_for_status()
        admin.post("/__mock/keys", json={"key": THROTTLED_KEY}).raise_for_status()


def run_node(base_url: str) -> tuple[int, str]:
    env = dict(
        os.environ,
        BOOGU_BASE_URL=base_url,
        BOOGU_API_KEY="test-key",
        BOOGU_BROKE_KEY=BROKE_KEY,
        BOOGU_THROTTLED_KEY=THROTTLED_KEY,
        NO_COLOR="1",
    )
    command = [executable("node"), "--test-reporter=spec", str(COMPILED_TEST)]
    try:
        result = subprocess.run(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=NODE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.output.decode() if isinstance(exc.output, bytes) else exc.output or ""
        print(output)
        print(f"ts_smoke: node did not finish within {NODE_TIMEOUT:.0f} s")
        return 1, output
    print(result.stdout, end="", flush=True)
    return result.returncode, result.stdout


def counts(report: str) -> tuple[int, int]:
    """Passed and failed tests from the spec reporter's closing lines (`ℹ pass 6`, `ℹ fail 0`)."""
    found = {name: int(n) for name, n in re.findall(r"^\S*\s*(pass|fail|cancelled) (\d+)\s*$", report, re.M)}
    return found.get("pass", 0), found.get("fail", 0) + found.get("cancelled", 0)


def journal_problems(base_url: str) -> list[str]:
    """The answers the smoke test must have caused, read back from the mock's journal."""
    entries = httpx.get(f"{base_url}/__mock/requests", timeout=10).json()
    seen = Counter((entry["operation_id"], entry["status"]) for entry in entries)
    media = sum(1 for entry in entries if entry["path"].startswith("/media/") and entry["status"] == 200)
    problems = [
        f"missing from the journal: {what}" for answer, what in EXPECTED_ANSWERS.items() if not seen[answer]
    ]
    if media < 2:
        problems.append(f"{media} image download(s) in the journal, expected at least 2")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--no-build", action="store_true", help="do not rebuild a stale client")
    parser.add_argument("--speed", default="50", help="the mock's --speed (default: %(default)s)")
    args = parser.parse_args(argv)

    if not args.no_build and stale():
        build()
    if not COMPILED_TEST.is_file():
        print(f"ts_smoke: {COMPILED_TEST.relative_to(ROOT)} is missing: run `make clients`", file=sys.stderr)
        return 2

    started = time.monotonic()
    with gateway_process("--speed", args.speed) as base_url:
        prepare(base_url)
        code, report = run_node(base_url)
        problems = journal_problems(base_url)
    passed, failed = counts(report)
    if code != 0 and failed == 0:
        failed = 1  # node failed outside any test (a crash, a missing module): still a failure
    for problem in problems:
        print(f"ts_smoke: journal check failed: {problem}")
    passed, failed = (passed + 1, failed) if not problems else (passed, failed + 1)
    print(f"ts_smoke: TypeScript client against the mock gateway in {time.monotonic() - started:.1f} s")
    print(f"ts-smoke: {passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
