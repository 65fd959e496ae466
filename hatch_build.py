"""Hatch build hook: the wheel carries the offline HTML reference, so `/docs` works from any install.

The page is what `make docs` builds (Redocly, everything inlined, no outside request). The hook builds
it when it is missing or older than openapi.yaml or redocly.yaml, and packs it into the wheel as
`boogu_contract/docs/index.html`, and into the sdist where it was, so that a wheel built from the sdist
needs no Node.js. Editable installs read `build/docs/` in the checkout instead.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

HTML = Path("build/docs/index.html")
SOURCES = ("openapi.yaml", "redocly.yaml", "tools/offline_docs.py")
PACKED_AS = {"wheel": "boogu_contract/docs/index.html", "sdist": str(HTML)}


class DocsHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name not in PACKED_AS or version == "editable":
            return
        root = Path(self.root)
        html = root / HTML
        newest = max((root / name).stat().st_mtime for name in SOURCES if (root / name).exists())
        if not html.is_file() or html.stat().st_mtime < newest:
            npm = shutil.which("npm")
            if npm is None or not (root / "node_modules").is_dir():
                raise RuntimeError(f"{HTML} is missing or stale and cannot be built here: run `make docs`")
            # the two steps of `make docs`
            subprocess.run([npm, "run", "--silent", "docs"], cwd=root, check=True)
            subprocess.run([sys.executable, "tools/offline_docs.py", str(html)], cwd=root, check=True)
        build_data["force_include"][str(html)] = PACKED_AS[self.target_name]
