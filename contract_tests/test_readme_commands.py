"""Every shell block of README.md and of every page under docs/ runs as written.

Each ```sh block runs with `bash -euo pipefail` in a fresh folder that holds a symlink to every
top-level entry of the repository (so `make ...`, `.venv/bin/...`, `openapi.yaml` and `git` work as
in a clone), with BOOGU_BASE_URL and BOOGU_API_KEY set for a mock gateway that this module serves.
The one substitution: the mock's documented address, http://127.0.0.1:8080, becomes that mock's.
A block that cannot run here is preceded by `<!-- readme-test: skip: <reason> -->`; those stay few.
The blocks run two at a time, once per session (about 40 s here).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from mock_gateway.testing import gateway_process
from tools.processes import run_captured

ROOT = Path(__file__).resolve().parent.parent


DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCUMENTED_MOCK = "http://127.0.0.1:8080"
SKIP = re.compile(r"<!-- readme-test: skip: (?P<reason>[^\n]*?) -->\n")
BLOCK = re.compile(r"(?P<skip><!-- readme-test: skip: [^\n]*? -->\n)?^```sh\n(?P<code>.*?)^```$", re.M | re.S)
MAX_SKIPPED = 7  # the three blocks that start servers, and four that run make test's own steps
WRITTEN = {"images", "batch-out", "status.json", "jobs.jsonl", "old.yaml"}
"""What the blocks write where they run: never a symlink into the repository."""
BLOCK_TIMEOUT = 240.0
BASH = shutil.which("bash") or "/bin/bash"


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


def shadow_of_the_repository(folder: Path) -> Path:
    """A folder that looks like the repository's root: a symlink to each of its top-level entries."""
    folder.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in WRITTEN:
            (folder / entry.name).symlink_to(entry)
    return folder


def run(block: Block, folder: Path, base_url: str) -> Ran:
    env = {
        **os.environ,
        "BOOGU_BASE_URL": base_url,
        "BOOGU_API_KEY": "test-key",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        "NO_COLOR": "1",
    }
    started = time.monotonic()
    script = block.code.replace(DOCUMENTED_MOCK, base_url)
    code, output = run_captured(
        [BASH, "-euo", "pipefail", "-c", script], cwd=folder, env=env, timeout=BLOCK_TIMEOUT
    )
    if code is None:
        return Ran(-1, f"{output}\n(no end within {BLOCK_TIMEOUT:.0f} s)", time.monotonic() - started)
    return Ran(code, output, time.monotonic() - started)


@pytest.fixture(scope="session")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ran]:
    """Every runnable block, run once, two at a time, each in its own shadow of the repository."""
    base = tmp_path_factory.mktemp("readme")
    folders = [shadow_of_the_repository(base / f"block-{n}") for n in range(len(RUNNABLE))]
    started = time.monotonic()
    with gateway_process("--speed", "100") as base_url, ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            pool.map(lambda pair: run(pair[0], pair[1], base_url), zip(RUNNABLE, folders, strict=True))
        )
    print(f"\nREADME commands: {len(RUNNABLE)} blocks in {time.monotonic() - started:.1f} s")
    return {block.id: result for block, result in zip(RUNNABLE, results, strict=True)}


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.id for block in RUNNABLE])
def test_the_shell_block_runs(ran: dict[str, Ran], block: Block) -> None:
    result = ran[block.id]
    assert result.code == 0, (
        f"{block.id} exited {result.code} after {result.seconds:.1f} s:\n{result.output[-3000:]}"
    )


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
