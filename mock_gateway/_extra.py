"""The mock gateway needs the `[mock]` extra; a client-only install is told so plainly.

`pip install boogu-image-toolkit` gives the client alone, yet the package `mock_gateway` (and its pytest
plugin, registered in every pytest run) is installed with it: its entry points check here first.
"""

from __future__ import annotations

import importlib.util

MOCK_MODULES = ("starlette", "uvicorn", "httptools", "orjson", "PIL")
INSTALL_HINT = "pip install 'boogu-image-toolkit[mock]'"


class MockExtraMissing(ImportError):
    """An import the mock gateway needs is not installed."""


def require_mock_extra() -> None:
    """Raise `MockExtraMissing`, naming the absent modules and the install command, if any is absent."""
    missing = [name for name in MOCK_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise MockExtraMissing(
            f"the mock gateway needs the [mock] extra ({', '.join(missing)} not installed): {INSTALL_HINT}"
        )
