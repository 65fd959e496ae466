"""The third-party wheels that the two wheels of this repository install with, kept in build/wheelhouse/.

The tests that install the wheels into a fresh venv (test_wheel_install.py, and README.md's block run by
test_readme_commands.py) install offline from it: resolving against the package index cost each
install 15 s of CPU, and a test run needs no network but at set-up. It is filled once, by `pip download`
(from the pip cache or the package registry), and again only when the requirements change; a lock
keeps two pytest-xdist workers from filling it at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
WHEELHOUSE = ROOT / "build" / "wheelhouse"
OURS = ("boogu-image-client", "boogu-image-toolkit")


def requirements() -> list[str]:
    """What `boogu-image-toolkit[mock]` and pytest (for the plugin's tests) install besides our wheels."""
    toolkit = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    client = tomllib.loads((ROOT / "generated" / "pyproject.toml").read_text())["project"]
    wanted = [*toolkit["dependencies"], *toolkit["optional-dependencies"]["mock"], *client["dependencies"]]
    return [*(r for r in wanted if not r.startswith(OURS)), f"pytest=={pytest.__version__}"]


def filled() -> Path:
    """The wheelhouse, with a wheel for every requirement (downloaded now when they changed)."""
    wanted = requirements()
    stamp = WHEELHOUSE / f".filled-{hashlib.sha256(repr(wanted).encode()).hexdigest()[:16]}"
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    with (WHEELHOUSE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists():
            command = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(WHEELHOUSE)]
            result = subprocess.run([*command, *wanted], capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, f"pip download failed:\n{result.stdout}\n{result.stderr}"
            for old in WHEELHOUSE.glob(".filled-*"):
                old.unlink()
            stamp.touch()
    return WHEELHOUSE
