"""OpenAPI Generator (the pinned `openapi-generator-cli`, which bundles the jar) over openapi.yaml.

    python tools/openapi_generator.py python typescript-fetch   # what `make clients` generates
    python tools/openapi_generator.py --all                     # every language with a config

Each language's options live in clients/openapi-generator/<language>.yaml (generator name, spec,
output folder under build/, additional properties), so that the command a user runs by hand,
`openapi-generator-cli generate -c clients/openapi-generator/go.yaml`, is the one tested here.
Languages are generated in parallel (one JVM each: the CLI's `batch` mode would share one JVM but
silences the log, and the log is what the generator test checks).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "clients" / "openapi-generator"
SPEC = ROOT / "openapi.yaml"
TIMEOUT = 300.0
WARNING = re.compile(r"^\[[^\]]*\] WARN +\S+ - (?P<message>.*)$", re.M)


@dataclass(frozen=True)
class Generated:
    """One language's generation: where it went and the generator's warnings, each message once."""

    language: str
    output: Path
    warnings: tuple[str, ...]


def find_cli() -> str | None:
    """The venv's `openapi-generator-cli` (pinned in the dev extras), else the one on PATH."""
    beside = Path(sys.executable).parent / "openapi-generator-cli"
    return str(beside) if beside.is_file() else shutil.which("openapi-generator-cli")


def cli() -> str:
    found = find_cli()
    if found is None:
        raise SystemExit("openapi-generator-cli is missing: run `make setup` (it is in the dev extras)")
    return found


def languages() -> list[str]:
    return sorted(path.stem for path in CONFIG_DIR.glob("*.yaml"))


def config(language: str) -> Path:
    path = CONFIG_DIR / f"{language}.yaml"
    if not path.is_file():
        raise SystemExit(f"no generator config {path.relative_to(ROOT)}; known: {', '.join(languages())}")
    return path


def default_output(language: str) -> Path:
    return ROOT / str(yaml.safe_load(config(language).read_text())["outputDir"])


QUICK_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
"""For the generator's JVM, unless JAVA_TOOL_OPTIONS is set already, and Maven's (`client_smoke`): a
short-lived JVM with only the quick compiler and one GC thread spends half the CPU (3 s, not 6, for
one language) and writes the same files."""
ARCHIVES = ROOT / "build" / "jvm"
JVM_CRASH = "A fatal error has been detected by the Java Runtime Environment"


def class_archive() -> Path:
    """Where the generator's classes are kept parsed and verified (JVM class-data sharing, Java 13+):
    a generation took 4.0 CPU-s without, 2.6 with. One per generator version and `java` binary, as a
    JVM refuses an archive that another build of it wrote."""
    java = Path(shutil.which("java") or "java").resolve()
    built = java.stat().st_mtime_ns if java.is_file() else 0
    stamp = f"{metadata.version('openapi-generator-cli')} {java} {built}"
    return ARCHIVES / f"openapi-generator-{hashlib.sha256(stamp.encode()).hexdigest()[:16]}.jsa"


def run(*args: str) -> str:
    """The CLI's output (stdout and stderr); CalledProcessError, with that output, on failure.

    The generator's JVM gets `QUICK_JVM` (unless JAVA_TOOL_OPTIONS is set) and reads the class archive;
    without one yet, it writes one as it exits, under a name of its own moved into place only after
    a run that succeeded, while other runs wait for it (writing one cost a JVM 7 CPU-s, reading one
    2.6: the first two generations of a fresh clone each wrote one). Whatever goes wrong with the
    archive costs a run again without it, never the generation: one cut short (a full disk) crashes
    the JVM that maps it, and is deleted; one that cannot be written (a read-only `build/`) fails the
    JVM at its start."""
    if "JAVA_TOOL_OPTIONS" in os.environ:
        return _checked(_generator(args, os.environ["JAVA_TOOL_OPTIONS"]))
    archive = class_archive()
    if not archive.is_file():
        with _archive_lock():
            if not archive.is_file():
                return _checked(_writing_the_archive(args, archive))
    shared = _generator(args, _reading(archive))
    if JVM_CRASH not in shared.stdout + shared.stderr:
        return _checked(shared)
    with contextlib.suppress(OSError):
        archive.unlink(missing_ok=True)
    with _archive_lock():
        return _checked(_writing_the_archive(args, archive))


def jvm_options() -> str:
    """For a generator JVM that another caller starts (the docs' commands under test), as `run` would:
    the caller's JAVA_TOOL_OPTIONS when set, else `QUICK_JVM` reading the class archive when one is there."""
    if "JAVA_TOOL_OPTIONS" in os.environ:
        return os.environ["JAVA_TOOL_OPTIONS"]
    archive = class_archive()
    return _reading(archive) if archive.is_file() else QUICK_JVM


def _reading(archive: Path) -> str:
    return _sharing(f"-XX:SharedArchiveFile={_rooted(archive)}")


@contextlib.contextmanager
def _archive_lock() -> Iterator[None]:
    """Held while a JVM writes the archive, across threads and processes; none where `build/` cannot
    hold the lock's file."""
    try:
        ARCHIVES.mkdir(parents=True, exist_ok=True)
        lock = (ARCHIVES / ".lock").open("a")
    except OSError:
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _writing_the_archive(args: Sequence[str], archive: Path) -> subprocess.CompletedProcess[str]:
    written = archive.with_suffix(f".{os.getpid()}.{threading.get_ident()}.part")
    result: subprocess.CompletedProcess[str] | None = None
    try:
        result = _generator(args, _sharing(f"-XX:ArchiveClassesAtExit={_rooted(written)}"))
        if result.returncode == 0 and written.is_file():
            written.replace(archive)
    except OSError:
        pass  # build/ cannot hold the archive: made again without it, below
    finally:
        with contextlib.suppress(OSError):
            written.unlink(missing_ok=True)
    if result is None or result.returncode != 0:
        result = _generator(args, QUICK_JVM)
    return result


def _sharing(archive_option: str) -> str:
    """`QUICK_JVM` with an archive option. Java 11, which has no such archive, ignores the options; a
    JVM's crash report goes beside the archives, not to the repository's root."""
    crash_report = _rooted(ARCHIVES / "hs_err_%p.log")
    return f"{QUICK_JVM} -XX:+IgnoreUnrecognizedVMOptions -XX:ErrorFile={crash_report} {archive_option}"


def _rooted(path: Path) -> str:
    """`path` as the generator's JVM, working in the root, finds it: relative when it can be, as
    JAVA_TOOL_OPTIONS is split at spaces, which a clone's path may hold."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _generator(args: Sequence[str], jvm_options: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "JAVA_TOOL_OPTIONS": jvm_options}
    return subprocess.run(
        [cli(), *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=TIMEOUT
    )


def _checked(result: subprocess.CompletedProcess[str]) -> str:
    log = result.stdout + result.stderr
    if result.returncode != 0:
        raise subprocess.CalledProcessError(result.returncode, result.args, log)
    return log


def validate() -> str:
    return run("validate", "-i", str(SPEC))


RECORD = ".openapi-generator/boogu-generation.json"
"""Written in a generated folder once its generation succeeded: its inputs, the generator's warnings."""


def generation_inputs(language: str) -> str:
    """What a generation depends on: the spec, the language's config and the generator's version."""
    digest = hashlib.sha256()
    for path in (SPEC, config(language)):
        digest.update(path.read_bytes())
    digest.update(metadata.version("openapi-generator-cli").encode())
    return digest.hexdigest()


def generate(language: str, output: Path | None = None) -> Generated:
    """Generate one language from its committed config, into `output` (default: the config's), with
    the record that lets `reusable` find it again."""
    target = output or default_output(language)
    shutil.rmtree(target, ignore_errors=True)
    log = run("generate", "-c", str(config(language)), "-o", str(target))
    warnings = tuple(dict.fromkeys(match["message"].strip() for match in WARNING.finditer(log)))
    record = {"inputs": generation_inputs(language), "warnings": list(warnings)}
    (target / RECORD).write_text(json.dumps(record, indent=1) + "\n")
    return Generated(language, target, warnings)


def reusable(language: str) -> Generated | None:
    """The generation in its config's folder when its record says it came from today's inputs, else None.

    contract_tests/codegen/test_openapi_generator.py checks these instead of generating every
    language again (a JVM each) right after `make clients` did."""
    output = default_output(language)
    try:
        record = json.loads((output / RECORD).read_text())
    except (OSError, ValueError):
        return None
    if record.get("inputs") != generation_inputs(language):
        return None
    return Generated(language, output, tuple(record["warnings"]))


def generate_all(names: Iterable[str], into: Path | None = None) -> list[Generated]:
    """Generate several languages two at a time (each JVM keeps one core busy)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda name: generate(name, into / name if into else None), names))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("languages", nargs="*", help=f"any of: {', '.join(languages())}")
    parser.add_argument("--all", action="store_true", help="every language with a config")
    args = parser.parse_args(argv)
    names = languages() if args.all else args.languages
    if not names:
        parser.error("name at least one language, or --all")
    for generated in generate_all(names):
        print(f"openapi-generator: {generated.language} → {generated.output.relative_to(ROOT)}/")
        for warning in generated.warnings:
            print(f"  warning: {warning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
