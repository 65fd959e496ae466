"""Build the clients in other languages and run each one's smoke test against the mock gateway.

    python -m tools.client_smoke                      # build what is stale, then test every client
    python -m tools.client_smoke --no-build           # test what `make clients` built
    python -m tools.client_smoke --build-only         # `make clients`: build what is stale
    python -m tools.client_smoke --rebuild go         # rebuild one client whatever its inputs, test it

The clients:
- `typescript`: openapi-typescript types + openapi-fetch (clients/typescript/), compiled by tsc;
- `typescript-fetch`: OpenAPI Generator's typescript-fetch client, compiled by the same pinned tsc
  with its smoke test (clients/openapi-generator/smoke/);
- `python`: OpenAPI Generator's python client (pydantic v2), installed with its dependencies from
  the package index into its own venv (build/clients/openapi-generator/python-venv), run there;
- `go`, `rust`, `java`, `kotlin`: OpenAPI Generator's clients, each built with its language's own
  tool (go build, cargo, mvn) together with its smoke program (clients/openapi-generator/smoke/<name>/,
  every dependency pinned), which prints `PASS`/`FAIL` per check.

A client is built when it is stale (its product older than the spec, its config or its smoke
sources), two at a time; the language caches stay where the tools keep them. Each generated folder
gets a record of its inputs and the generator's warnings, and `make clients` also generates C#
(never compiled here): the generator test reuses those folders instead of generating them again.
For each client, `python -m mock_gateway --speed 50` starts on a free loopback port and is prepared
through the admin API: a per-key rate limit (10 requests a second, bursts of 10: room for polling,
not for hammering), a key with no balance (for the 402), a key of its own for the 429, and fields the spec
does not list in every answer (`extra_fields`). The client's smoke test then polls both submit
operations to COMPLETED and downloads and decodes their images, and handles a 402 and a 429 (the
compiled ones a 400 and a sync-mode 200 too). Last, the mock's journal must show those answers
really happened. Smoke tests run four at a time, each report printed whole with a closing
`N passed, N failed` line; the exit status is non-zero on any failure.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import venv
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
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
GO_SMOKE = BUILD / "openapi-generator" / "go-smoke"
RUST_TARGET = BUILD / "openapi-generator" / "rust-target"
RUST_SMOKE = RUST_TARGET / "debug" / "boogu-rust-smoke"
JAVA_CLASSPATH = BUILD / "openapi-generator" / "java-smoke" / "classpath.txt"
KOTLIN_CLASSPATH = BUILD / "openapi-generator" / "kotlin-smoke" / "classpath.txt"
"""Beside the generated folder, which every generation replaces."""
# What the python client's venv gets besides the generated package (Pillow decodes the downloads).
PYTHON_EXTRAS = ["pillow>=11,<14"]
RATE_LIMIT = {"rate": 10, "burst": 10}
EXTRA_FIELDS = {"progress": 0.5, "region": "eu-1"}
"""Fields the spec does not list, in every answer: each client must read answers from a gateway that grew."""
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


def check_counts(report: str) -> tuple[int, int]:
    """Passed and failed checks of the Go, Rust, Java and Kotlin programs (`PASS name`, `FAIL name: why`)."""
    return len(re.findall(r"^PASS ", report, re.M)), len(re.findall(r"^FAIL ", report, re.M))


def unittest_counts(report: str) -> tuple[int, int]:
    """Passed and failed tests from unittest's summary (`Ran 4 tests`, `FAILED (failures=1, errors=1)`)."""
    ran = re.search(r"^Ran (\d+) tests?", report, re.M)
    failed = sum(int(n) for n in re.findall(r"(?:failures|errors)=(\d+)", report))
    return (int(ran[1]) - failed if ran else 0), failed


def build_typescript_fetch() -> None:
    openapi_generator.generate("typescript-fetch")
    npm_run("clients:typescript-fetch:compile")


def toolchain(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemExit(f"client_smoke: `{name}` is not on PATH (Go, cargo, Java 17 and Maven are needed)")
    return path


def build_go() -> None:
    """`go build` of the smoke module, which requires the generated module and replaces it by its folder."""
    openapi_generator.generate("go")
    command = [
        toolchain("go"),
        "-C",
        str(SMOKE_DIR / "go"),
        "build",
        "-buildvcs=false",
        "-o",
        str(GO_SMOKE),
        ".",
    ]
    subprocess.run(command, check=True)


def build_rust() -> None:
    """`cargo build --locked` of the smoke crate, which depends on the generated crate by path."""
    openapi_generator.generate("rust")
    manifest = SMOKE_DIR / "rust" / "Cargo.toml"
    command = [toolchain("cargo"), "build", "--quiet", "--locked", "--manifest-path", str(manifest)]
    subprocess.run([*command, "--target-dir", str(RUST_TARGET)], check=True)


def maven(pom: Path, phase: str, *options: str) -> None:
    """One quiet Maven run, every plugin and dependency version pinned in the poms; Maven's own JVM is a
    quick one (the Java build takes 40% less CPU), unless MAVEN_OPTS says otherwise."""
    quiet = ["-B", "-q", "--no-transfer-progress", "-Dstyle.color=never", "-Dmaven.test.skip=true"]
    environment = {**os.environ, "MAVEN_OPTS": os.environ.get("MAVEN_OPTS", openapi_generator.QUICK_JVM)}
    result = subprocess.run(
        [toolchain("mvn"), *quiet, *options, "-f", str(pom), phase],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:  # Maven says why on stdout; a build that passes prints only colour codes
        print(result.stdout, result.stderr, sep="", file=sys.stderr)
        raise subprocess.CalledProcessError(result.returncode, result.args)


JAVA_SKIPPED = ["-Dmaven.javadoc.skip=true", "-Dmaven.source.skip=true"]
"""The generated pom also packs its javadoc and sources into jars at `package`: the smoke program runs
on the classes, and those two jars took 45% of the Java build's CPU (7.4 of 16.4 s)."""


def build_java() -> None:
    """The generated project, with its own generated pom, and the smoke program: one reactor build."""
    openapi_generator.generate("java")
    maven(SMOKE_DIR / "java" / "reactor" / "pom.xml", "package", *JAVA_SKIPPED)


def build_kotlin() -> None:
    """The generator writes only a Gradle build: the smoke pom compiles the generated sources with the
    program, with the Kotlin compiler from Maven, at the generated build.gradle's versions."""
    openapi_generator.generate("kotlin")
    maven(SMOKE_DIR / "kotlin" / "pom.xml", "compile")


def jvm(classpath_file: Path, main_class: str) -> list[str]:
    """`java` with the program's classes and the classpath file its build wrote (no Maven at run time)."""
    classpath = f"{classpath_file.parent / 'classes'}{os.pathsep}{classpath_file.read_text().strip()}"
    return [toolchain("java"), "-cp", classpath, main_class]


def build_python() -> None:
    """Into a venv without a pip of its own (ensurepip cost 5 s of CPU): the generated package from its
    folder (built by its own setuptools backend) and its dependencies, by the uv that `make setup` put
    beside this Python (pip took 18 s and 16 CPU-s, uv 3 s and 2), or by this Python's pip where uv
    cannot reach the index pip is set up for (uv reads none of pip's settings)."""
    generated = openapi_generator.generate("python")
    target = PYTHON_VENV / "bin" / "python"
    if not target.is_file():
        venv.create(PYTHON_VENV, with_pip=False)
    package = str(generated.output)
    name = tomllib.loads((generated.output / "pyproject.toml").read_text())["project"]["name"]
    uv = Path(sys.executable).parent / "uv"
    # The generation just replaced the folder: the package is reinstalled whatever its version says.
    command = [str(uv), "pip", "install", "--quiet", "--system-certs", "--python", str(target)]
    command += ["--reinstall-package", name, package, *PYTHON_EXTRAS]
    if not uv.is_file() or subprocess.run(command).returncode:
        say(f"client_smoke: {uv} is missing or failed (above); installing the python client with pip")
        pip = [sys.executable, "-m", "pip", "--python", str(target), "install", "--quiet"]
        subprocess.run([*pip, "--force-reinstall", "--no-deps", package], check=True)
        subprocess.run([*pip, package, *PYTHON_EXTRAS], check=True)
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


def program(
    name: str, title: str, built: Path, build: Callable[[], None], command: Callable[[], list[str]]
) -> Client:
    """A compiled language's client: its config and smoke folder (`smoke/<name>/`) are its inputs,
    and its program prints `PASS`/`FAIL` per check."""
    inputs = (ROOT / "openapi.yaml", openapi_generator.config(name), SMOKE_DIR / name)
    return Client(name, title, built, inputs, build, command, check_counts)


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
            program("go", "OpenAPI Generator go client", GO_SMOKE, build_go, lambda: [str(GO_SMOKE)]),
            program(
                "rust",
                "OpenAPI Generator rust client (reqwest)",
                RUST_SMOKE,
                build_rust,
                lambda: [str(RUST_SMOKE)],
            ),
            program(
                "java",
                "OpenAPI Generator java client (Spring RestClient on the JDK HttpClient)",
                JAVA_CLASSPATH,
                build_java,
                lambda: jvm(JAVA_CLASSPATH, "ai.boogu.smoke.Smoke"),
            ),
            program(
                "kotlin",
                "OpenAPI Generator kotlin client (jvm-okhttp4, Moshi)",
                KOTLIN_CLASSPATH,
                build_kotlin,
                lambda: jvm(KOTLIN_CLASSPATH, "ai.boogu.smoke.SmokeKt"),
            ),
        )
    }


def prepare(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as admin:
        admin.patch(
            "/__mock/config", json={"rate_limit": RATE_LIMIT, "extra_fields": EXTRA_FIELDS}
        ).raise_for_status()
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
    if code is None:
        return 1, f"{output}client_smoke: {client.name} did not finish within {TEST_TIMEOUT:.0f} s\n"
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


def smoke(client: Client, speed: str) -> tuple[bool, str]:
    """Run one client's smoke test against a fresh mock: whether it passed, and its report."""
    if not client.built.is_file():
        return False, f"client_smoke: {client.name} is not built: run `make clients`\n"
    started = time.monotonic()
    with gateway_process("--speed", speed) as base_url:
        prepare(base_url)
        code, report = run_test(client, base_url)
        problems = journal_problems(base_url)
    passed, failed = client.counts(report)
    if code != 0 and failed == 0:
        failed = 1  # it failed outside any test (a crash, a missing module): still a failure
    lines = [f"client_smoke: {client.name}: journal check failed: {problem}" for problem in problems]
    passed, failed = (passed + 1, failed) if not problems else (passed, failed + 1)
    lines.append(
        f"client_smoke: {client.title} against the mock gateway in {time.monotonic() - started:.1f} s"
    )
    lines.append(f"client_smoke: {client.name}: {passed} passed, {failed} failed")
    return failed == 0 and passed > 0, report + "\n".join(lines) + "\n"


def say(line: str) -> None:
    """One whole line at once: `print` writes the text and the newline apart, and builds run in threads."""
    sys.stdout.write(f"{line}\n")
    sys.stdout.flush()


def build(client: Client) -> None:
    started = time.monotonic()
    say(f"client_smoke: building the {client.title}")
    client.build()
    # Maven rewrites classpath.txt only when its content changes: without this, a Java or Kotlin
    # client whose smoke sources changed stays "stale" and is rebuilt by every `make clients`.
    client.built.touch()
    say(f"client_smoke: {client.name} built in {time.monotonic() - started:.1f} s")


SLOWEST_BUILDS = ("rust", "kotlin", "java", "python")
"""Longest first (a fresh build: Rust 100 s, Kotlin 55 s, Java 35 s, Python 28 s, the others 10-16 s):
started fourth, Rust ran alone at the end of `make clients`."""


def build_all(stale: Sequence[Client]) -> None:
    """Two builds at a time, the longest first: each mostly keeps one core busy (a compiler, the
    generator's JVM) or waits on a registry."""
    rank = {name: index for index, name in enumerate(SLOWEST_BUILDS)}
    ordered = sorted(stale, key=lambda client: rank.get(client.name, len(rank)))
    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(build, client) for client in ordered]:
            future.result()


def generate_missing(built: Sequence[Client]) -> None:
    """Every generator language that this run did not build and whose folder has no current record
    (C#, which nothing here compiles, or a folder generated before records existed): generated
    again, not compiled (same inputs, same files), two at a time."""
    names = {client.name for client in built}
    missing = [name for name in openapi_generator.languages() if name not in names]
    missing = [name for name in missing if openapi_generator.reusable(name) is None]

    def one(language: str) -> None:
        started = time.monotonic()
        openapi_generator.generate(language)
        say(f"client_smoke: {language} generated in {time.monotonic() - started:.1f} s (not built)")

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(one, missing))


def smoke_all(clients: Sequence[Client], speed: str, parallel: int) -> bool:
    """Each client against its own mock, `parallel` at a time (they mostly wait on the mock's clock);
    each report printed whole as it ends, so reports never interleave."""
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        futures = [pool.submit(smoke, client, speed) for client in clients]
        results = []
        for future in as_completed(futures):
            ok, report = future.result()
            say(report.rstrip("\n"))
            results.append(ok)
    return all(results)


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
    group.add_argument("--build-only", action="store_true", help="build what is stale, test none")
    parser.add_argument("--rebuild", action="store_true", help="build every client, stale or not")
    parser.add_argument("--speed", default="50", help="the mock's --speed (default: %(default)s)")
    parser.add_argument(
        "--parallel", type=int, default=4, help="smoke tests run at once (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    if unknown := sorted(set(args.names) - set(known)):
        parser.error(f"unknown client(s) {', '.join(unknown)}; known: {', '.join(known)}")
    chosen = [known[name] for name in args.names or known]

    if not args.no_build:
        stale = [client for client in chosen if args.rebuild or client.stale()]
        build_all(stale)
        if not args.names:  # `make clients`: every generated folder is current for the generator test
            generate_missing(stale)
    if args.build_only:
        return 0
    return 0 if smoke_all(chosen, args.speed, args.parallel) else 1


if __name__ == "__main__":
    sys.exit(main())
