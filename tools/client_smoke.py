"""Build the clients in other languages and run each one's smoke test against the mock gateway.

    python tools/client_smoke.py                      # build what is stale, then test every client
    python tools/client_smoke.py --no-build           # test what `make clients` built
    python tools/client_smoke.py --build-only         # `make clients`: (re)build every client
    python tools/client_smoke.py typescript-fetch     # one client (names: see --help)

The clients:
- `typescript`: openapi-typescript types + openapi-fetch (clients/typescript/), compiled by tsc;
- `typescript-fetch`: OpenAPI Generator's typescript-fetch client, compiled by the same pinned tsc
  with its smoke test (clients/openapi-generator/smoke/);
- `python`: OpenAPI Generator's python client (pydantic v2), installed with its dependencies from
  the package index into its own venv (build/clients/openapi-generator/python-venv), run there.

For each client, `python -m mock_gateway --speed 50` starts on a free loopback port and is prepared
through the admin API: a per-key rate limit (10 requests a second, bursts of 10: room for polling,
not for hammering), a key with no balance (for the 402) and a key of its own for the 429. The
client's smoke test then polls both submit operations to COMPLETED and downloads and decodes their
images, and handles one 402 and one 429. Last, the mock's journal must show those answers really
happened. Prints each test report and a closing `N passed, N failed` line per client; exits
non-zero on any failure.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import venv
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from mock_gateway.testing import gateway_process
from tools import openapi_generator
from tools.processes import run_captured

ROOT = Path(__file__).resolve().parent.parent


BUILD = ROOT / "build" / "clients"
SMOKE_DIR = ROOT / "clients" / "openapi-generator" / "smoke"
PYTHON_VENV = BUILD / "openapi-generator" / "python-venv"
# What the python client's venv gets besides the generated package (Pillow decodes the downloads).
PYTHON_EXTRAS = ["pillow>=11,<14"]
RATE_LIMIT = {"rate": 10, "burst": 10}
BROKE_KEY = "smoke-broke"
THROTTLED_KEY = "smoke-throttled"
TEST_TIMEOUT = 120.0
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
        raise SystemExit(f"client_smoke: `{name}` is not on PATH (Node.js 20 and npm are needed)")
    return path


def npm_run(script: str) -> None:
    subprocess.run([executable("npm"), "run", "--silent", script], cwd=ROOT, check=True)


def node_counts(report: str) -> tuple[int, int]:
    """Passed and failed tests from node's spec reporter (`ℹ pass 6`, `ℹ fail 0`)."""
    found = {name: int(n) for name, n in re.findall(r"^\S*\s*(pass|fail|cancelled) (\d+)\s*$", report, re.M)}
    return found.get("pass", 0), found.get("fail", 0) + found.get("cancelled", 0)


def unittest_counts(report: str) -> tuple[int, int]:
    """Passed and failed tests from unittest's summary (`Ran 4 tests`, `FAILED (failures=1, errors=1)`)."""
    ran = re.search(r"^Ran (\d+) tests?", report, re.M)
    failed = sum(int(n) for n in re.findall(r"(?:failures|errors)=(\d+)", report))
    return (int(ran[1]) - failed if ran else 0), failed


def build_typescript_fetch() -> None:
    openapi_generator.generate("typescript-fetch")
    npm_run("clients:typescript-fetch:compile")


def build_python() -> None:
    generated = openapi_generator.generate("python")
    if not (PYTHON_VENV / "bin" / "python").is_file():
        venv.create(PYTHON_VENV, with_pip=True)
    pip = [
        str(PYTHON_VENV / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]
    subprocess.run([*pip, "--force-reinstall", "--no-deps", str(generated.output)], check=True)
    subprocess.run([*pip, str(generated.output), *PYTHON_EXTRAS], check=True)
    (PYTHON_VENV / ".installed").touch()


@dataclass(frozen=True)
class Client:
    name: str
    title: str
    built: Path
    """The build's last product: missing or older than any input means stale."""
    inputs: tuple[Path, ...]
    build: Callable[[], None]
    command: Callable[[], list[str]]
    counts: Callable[[str], tuple[int, int]]

    def stale(self) -> bool:
        if not self.built.is_file():
            return True
        built = self.built.stat().st_mtime
        files = [file for path in self.inputs for file in ([path] if path.is_file() else path.rglob("*"))]
        return any(file.is_file() and file.stat().st_mtime > built for file in files)


def clients() -> dict[str, Client]:
    spec, lock = ROOT / "openapi.yaml", ROOT / "package-lock.json"

    def node(test: Path) -> Callable[[], list[str]]:
        return lambda: [executable("node"), "--test-reporter=spec", str(test)]

    ts_test = BUILD / "typescript" / "dist" / "smoke.test.mjs"
    fetch_out = BUILD / "openapi-generator" / "typescript-fetch-smoke"
    fetch_test = fetch_out / "clients" / "openapi-generator" / "smoke" / "typescript_fetch.smoke.test.mjs"
    config = openapi_generator.config
    return {
        client.name: client
        for client in (
            Client(
                "typescript",
                "TypeScript client (openapi-typescript + openapi-fetch)",
                ts_test,
                (spec, lock, ROOT / "clients" / "typescript"),
                lambda: npm_run("clients"),
                node(ts_test),
                node_counts,
            ),
            Client(
                "typescript-fetch",
                "OpenAPI Generator typescript-fetch client",
                fetch_test,
                (spec, lock, config("typescript-fetch"), SMOKE_DIR, ROOT / "clients" / "typescript" / "src"),
                build_typescript_fetch,
                node(fetch_test),
                node_counts,
            ),
            Client(
                "python",
                "OpenAPI Generator python client (pydantic v2)",
                PYTHON_VENV / ".installed",
                (spec, config("python")),
                build_python,
                lambda: [str(PYTHON_VENV / "bin" / "python"), str(SMOKE_DIR / "python_smoke.py")],
                unittest_counts,
            ),
        )
    }


def prepare(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as admin:
        admin.patch("/__mock/config", json={"rate_limit": RATE_LIMIT}).raise_for_status()
        admin.post("/__mock/keys", json={"key": BROKE_KEY, "balance": 0}).raise_for_status()
        admin.post("/__mock/keys", json={"key": THROTTLED_KEY}).raise_for_status()


def run_test(client: Client, base_url: str) -> tuple[int, str]:
    env = dict(
        os.environ,
        BOOGU_BASE_URL=base_url,
        BOOGU_API_KEY="test-key",
        BOOGU_BROKE_KEY=BROKE_KEY,
        BOOGU_THROTTLED_KEY=THROTTLED_KEY,
        NO_COLOR="1",
    )
    code, output = run_captured(client.command(), cwd=ROOT, env=env, timeout=TEST_TIMEOUT)
    print(output, end="", flush=True)
    if code is None:
        print(f"client_smoke: {client.name} did not finish within {TEST_TIMEOUT:.0f} s")
        return 1, output
    return code, output


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


def smoke(client: Client, speed: str) -> bool:
    """Run one client's smoke test against a fresh mock; print its report and a summary line."""
    if not client.built.is_file():
        print(f"client_smoke: {client.name} is not built: run `make clients`", file=sys.stderr)
        return False
    started = time.monotonic()
    with gateway_process("--speed", speed) as base_url:
        prepare(base_url)
        code, report = run_test(client, base_url)
        problems = journal_problems(base_url)
    passed, failed = client.counts(report)
    if code != 0 and failed == 0:
        failed = 1  # it failed outside any test (a crash, a missing module): still a failure
    for problem in problems:
        print(f"client_smoke: {client.name}: journal check failed: {problem}")
    passed, failed = (passed + 1, failed) if not problems else (passed, failed + 1)
    print(f"client_smoke: {client.title} against the mock gateway in {time.monotonic() - started:.1f} s")
    print(f"client_smoke: {client.name}: {passed} passed, {failed} failed", flush=True)
    return failed == 0 and passed > 0


def main(argv: Sequence[str] | None = None) -> int:
    known = clients()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "names", nargs="*", metavar="CLIENT", help=f"any of {', '.join(known)} (default: all)"
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--no-build", action="store_true", help="do not rebuild a stale client")
    group.add_argument("--build-only", action="store_true", help="rebuild the clients, test none")
    parser.add_argument("--speed", default="50", help="the mock's --speed (default: %(default)s)")
    args = parser.parse_args(argv)
    if unknown := sorted(set(args.names) - set(known)):
        parser.error(f"unknown client(s) {', '.join(unknown)}; known: {', '.join(known)}")
    chosen = [known[name] for name in args.names or known]

    for client in chosen:
        if args.build_only or (not args.no_build and client.stale()):
            started = time.monotonic()
            print(f"client_smoke: building the {client.title}", flush=True)
            client.build()
            print(f"client_smoke: {client.name} built in {time.monotonic() - started:.1f} s", flush=True)
    if args.build_only:
        return 0
    results = [smoke(client, args.speed) for client in chosen]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
