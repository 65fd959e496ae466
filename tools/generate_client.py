"""Regenerate generated/ from openapi.yaml, or (--check) fail when generated/ is stale.

The generator's own templates are used except those in clients/openapi-python-client/ (the README,
the client's auth header and timeout defaults, the open `Status` enum). The check regenerates into
a temporary folder and compares trees, so it catches any drift: a changed spec, a changed generator
config or template, or a hand edit of generated code.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "openapi.yaml"
CONFIG = ROOT / "openapi-python-client.yaml"
TEMPLATES = ROOT / "clients" / "openapi-python-client"
TARGET = ROOT / "generated"


def generate(into: Path) -> None:
    """Run openapi-python-client with the venv's tools first on PATH (its ruff post-hooks)."""
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run(
        [
            str(bindir / "openapi-python-client"),
            "generate",
            "--path",
            str(SPEC),
            "--config",
            str(CONFIG),
            "--custom-template-path",
            str(TEMPLATES),
            "--meta",
            "uv",
            "--output-path",
            str(into),
            "--overwrite",
            "--fail-on-warning",
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def differences(left: Path, right: Path) -> list[str]:
    """Relative paths that differ between two trees, ignoring caches."""
    found: list[str] = []

    def walk(cmp: filecmp.dircmp[str], prefix: str) -> None:
        for name in cmp.left_only + cmp.right_only + cmp.diff_files + cmp.funny_files:
            found.append(prefix + name)
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(left, right, ignore=["__pycache__", ".ruff_cache", ".mypy_cache"]), "")
    return sorted(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if generated/ is out of date")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "generated"
        generate(fresh)
        if args.check:
            stale = differences(fresh, TARGET) if TARGET.exists() else ["generated/ is missing"]
            if stale:
                print("generated/ is out of date with openapi.yaml; run `make generate`. Differs:")
                for path in stale:
                    print(f"  {path}")
                return 1
            print("generated/ is up to date with openapi.yaml")
            return 0
        shutil.rmtree(TARGET, ignore_errors=True)
        shutil.copytree(fresh, TARGET, ignore=shutil.ignore_patterns("__pycache__", ".ruff_cache"))
        print(f"regenerated {TARGET.relative_to(ROOT)}/ from {SPEC.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
