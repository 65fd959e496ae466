"""Where the contract's files are: packed into `boogu_contract/` by the wheel, or in the source checkout."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML has it (openapi.yaml in 11 ms instead of 97), else PyYAML's own."""


def data_file(packaged: str, checkout: str) -> Path | None:
    """A file the wheel packs into `boogu_contract/` (as `packaged`), else its place in the source
    checkout (`checkout`, from the root); None when this install has neither."""
    inside = resources.files("boogu_contract") / packaged
    if inside.is_file():
        return Path(str(inside))
    outside = Path(__file__).resolve().parent.parent / checkout
    return outside if outside.is_file() else None


def spec_path() -> Path:
    """openapi.yaml: every wheel packs it, and every checkout has it."""
    path = data_file("openapi.yaml", "openapi.yaml")
    if path is None:
        raise FileNotFoundError("openapi.yaml is neither packaged in boogu_contract/ nor in the checkout")
    return path


def docs_path() -> Path | None:
    """The HTML reference (`make docs`): packed into the wheel by hatch_build.py, or built in the checkout."""
    return data_file("docs/index.html", "build/docs/index.html")


@cache
def load_spec() -> dict[str, Any]:
    """openapi.yaml, parsed once per process (by `SAFE_LOADER`, in every process that starts a mock or
    checks a body); callers must not change it."""
    with spec_path().open(encoding="utf-8") as handle:
        spec: dict[str, Any] = yaml.load(handle, Loader=SAFE_LOADER)  # noqa: S506 - a safe loader
    return spec
