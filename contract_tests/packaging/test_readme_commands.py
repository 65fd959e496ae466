"""Every shell block of README.md and of every page under docs/ runs as written.

Each ```sh block runs with `bash -euo pipefail` in a fresh folder that holds a symlink to every
top-level entry of the repository (so `make ...`, `.venv/bin/...`, `openapi.yaml` and `git` work as
in a clone), with BOOGU_BASE_URL and BOOGU_API_KEY set for a mock gateway that this module serves.
The one substitution: the mock's documented address, http://127.0.0.1:8080, becomes that mock's.
A block that cannot run here is preceded by `<!-- readme-test: skip: <reason> -->`; those stay few.
pip installs offline, from the wheels the blocks build and build/wheelhouse/ (`wheelhouse.filled`).

The blocks run two at a time, once per session. Their `make` never redoes `make setup`: run from the
shadow folder, it would reinstall the shared venv with the shadow as its editable location.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

from contract_tests.packaging import wheelhouse
from mock_gateway.testing import gateway_process
from tools import openapi_generator
from tools.processes import run_captured

ROOT = Path(__file__).resolve().parent.parent.parent


DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCUMENTED_MOCK = "http://127.0.0.1:8080"
SKIP = re.compile(r"<!-- readme-test: skip: (?P<reason>[^\n]*?) -->\n")
BLOCK = re.compile(r"(?P<skip><!-- readme-test: skip: [^\n]*? -->\n)?^```sh\n(?P<code>.*?)^```$", re.M | re.S)
MAX_SKIPPED = 7
"""Three blocks serve until stopped (mock-gateway.md, shared-service.md, contract-tools.md); four are
make test's own steps or run it (README.md's make demo / make test, contributing.md's make test and its
parts, other-languages.md's make clients / make test-ts, contract.md's make generate)."""
WRITTEN = {
    "images",
    "batch-out",
    "status.json",
    "jobs.jsonl",
    "old.yaml",
    "go-client",
    "evidence.yaml",
    "evidence.media",
}
"""What the blocks write where they run: never a symlink into the repository."""
BLOCK_TIMEOUT = 240.0
BASH = shutil.which("bash") or "/bin/bash"
SETUP_STAMPS = (".venv/.installed", "node_modules/.installed")
"""The Makefile's set-up targets: `make` in a block takes them as done, whatever their age."""


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    code: str
    skip: str | None

    @property
    def id(self) -> str:
        return f"{self.document.name}:{self.line}"


def blocks() -> list[Block]:
    found = []
    for document in DOCUMENTS:
        text = document.read_text()
        for match in BLOCK.finditer(text):
            skip = SKIP.match(match["skip"]) if match["skip"] else None
            line = text.count("\n", 0, match.start("code"))
            found.append(Block(document, line, match["code"], skip["reason"] if skip else None))
    return found


BLOCKS = blocks()
RUNNABLE = [block for block in BLOCKS if block.skip is None]


@dataclass(frozen=True)
class Ran:
    code: int
    output: str
    seconds: float


@dataclass(frozen=True)
class Session:
    """Every runnable block's result, and the toolkit's install in the venv before and after them."""

    blocks: dict[str, Ran]
    install_before: str | None
    install_after: str | None


BUILD_WRITTEN = {"dist", "try", "clients"}
"""What the blocks write under build/ (`make dist`, its venv, the generator's configured folders):
each shadow has its own, so no block replaces what `make clients` built while other tests read it."""


def shadow_of_the_repository(folder: Path) -> Path:
    """A folder that looks like the repository's root: a symlink to each of its top-level entries,
    but build/, a folder of its own with a symlink to each entry of the repository's build/ that
    the blocks only read (such as the HTML reference, which `make dist` packs)."""
    folder.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in WRITTEN and entry.name != "build":
            (folder / entry.name).symlink_to(entry)
    (folder / "build").mkdir()
    for entry in (ROOT / "build").iterdir() if (ROOT / "build").is_dir() else ():
        if entry.name not in BUILD_WRITTEN:
            (folder / "build" / entry.name).symlink_to(entry)
    return folder


def make_without_setup(folder: Path) -> Path | None:
    """A folder with a `make` that takes `make setup` as done (`--assume-old` its stamps), or None
    without make."""
    real = shutil.which("make")
    if real is None:
        return None
    folder.mkdir()
    wrapper = folder / "make"
    stamps = " ".join(f"--assume-old={stamp}" for stamp in SETUP_STAMPS)
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(real)} {stamps} "$@"\n')
    wrapper.chmod(0o755)
    return folder


def installed_toolkit() -> str | None:
    """Where the venv's toolkit is installed from (its direct_url.json), read afresh."""
    try:
        return metadata.distribution("boogu-image-toolkit").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None


def run(block: Block, folder: Path, base_url: str, tools: Path | None, wheels: Path) -> Ran:
    paths = [str(tools)] if tools else []
    env = {
        **os.environ,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
        "BOOGU_BASE_URL": base_url,
        "BOOGU_API_KEY": "test-key",
        "PATH": os.pathsep.join([*paths, str(Path(sys.executable).parent), os.environ["PATH"]]),
        "NO_COLOR": "1",
        # The generator's JVMs read the class archive that `make clients` wrote (2.6 CPU-s a run, not 4).
        "JAVA_TOOL_OPTIONS": openapi_generator.jvm_options(),
        # No bytecode written for venvs used once: pip compiles what it installs whatever
        # PYTHONDONTWRITEBYTECODE says (3.4 of the wheel-install block's 7 CPU-s), unless told not to.
        # The repository's modules are read compiled from the run's cache all the same.
        "PYTHONDONTWRITEBYTECODE": "1",
        "PIP_COMPILE": "false",
    }
    started = time.monotonic()
    script = block.code.replace(DOCUMENTED_MOCK, base_url)
    code, output = run_captured(
        [BASH, "-euo", "pipefail", "-c", script], cwd=folder, env=env, timeout=BLOCK_TIMEOUT
    )
    if code is None:
        return Ran(-1, f"{output}\n(no end within {BLOCK_TIMEOUT:.0f} s)", time.monotonic() - started)
    return Ran(code, output, time.monotonic() - started)


def run_every_block(base: Path) -> Session:
    """Every runnable block, two at a time, each in its own shadow of the repository."""
    tools = make_without_setup(base / "bin")
    folders = [shadow_of_the_repository(base / f"block-{n}") for n in range(len(RUNNABLE))]
    before = installed_toolkit()
    wheels = wheelhouse.filled()
    started = time.monotonic()
    with gateway_process("--speed", "100") as base_url, ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            pool.map(lambda block, folder: run(block, folder, base_url, tools, wheels), RUNNABLE, folders)
        )
    print(f"\nREADME commands: {len(RUNNABLE)} blocks in {time.monotonic() - started:.1f} s")
    blocks = {block.id: result for block, result in zip(RUNNABLE, results, strict=True)}
    return Session(blocks, before, installed_toolkit())


@pytest.fixture(scope="session")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    """The blocks run once per session (`make test` keeps this file on one pytest-xdist worker)."""
    return run_every_block(tmp_path_factory.mktemp("readme"))


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.id for block in RUNNABLE])
def test_the_shell_block_runs(session: Session, block: Block) -> None:
    result = session.blocks[block.id]
    assert result.code == 0, (
        f"{block.id} exited {result.code} after {result.seconds:.1f} s:\n{result.output[-3000:]}"
    )


def test_no_block_reinstalled_the_venv(session: Session) -> None:
    """A block's `make setup`, or `pip install -e .`, would point the venv at its temporary folder."""
    assert session.install_after == session.install_before


def test_blocks_that_do_not_run_say_why_and_stay_few() -> None:
    skipped = [block for block in BLOCKS if block.skip is not None]
    assert all(len(block.skip or "") > 20 for block in skipped), [block.id for block in skipped]
    assert len(skipped) <= MAX_SKIPPED, [block.id for block in skipped]
    assert len(RUNNABLE) >= len(skipped)


def test_every_skip_marker_sits_on_a_shell_block() -> None:
    for document in DOCUMENTS:
        text = document.read_text()
        markers = len(SKIP.findall(text))
        assert markers == sum(1 for block in BLOCKS if block.document == document and block.skip), document


def test_every_cli_example_names_the_mock_or_base_url() -> None:
    """No `boogu` command could send a key to the production gateway by being pasted as it is."""
    for block in BLOCKS:
        if re.search(r"^boogu ", block.code, re.M):
            assert f"BOOGU_BASE_URL={DOCUMENTED_MOCK}" in block.code, block.id
