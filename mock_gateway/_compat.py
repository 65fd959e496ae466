"""The module paths of the flat layout of before, kept working with a DeprecationWarning.

`import mock_gateway.proxy` (or `from mock_gateway.backend import GatewayBackend`) still finds what
it found: the module that now holds those names. One table instead of a shim file per old module.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

MOVED: dict[str, str] = {
    "mock_gateway.admin_auth": "mock_gateway.server._admin_auth",
    "mock_gateway.app": "mock_gateway.server._app",
    "mock_gateway.backend": "mock_gateway.model._backend",
    "mock_gateway.budget": "mock_gateway.model._budget",
    "mock_gateway.cassette": "mock_gateway.contract_tools._cassette",
    "mock_gateway.clock": "mock_gateway.model._clock",
    "mock_gateway.config": "mock_gateway.model._config",
    "mock_gateway.conformance": "boogu_contract._conformance",
    "mock_gateway.contract_cli": "mock_gateway.contract_tools._cli",
    "mock_gateway.extra": "mock_gateway._extra",
    "mock_gateway.jobs": "mock_gateway.model._jobs",
    "mock_gateway.journal": "mock_gateway.model._journal",
    "mock_gateway.limits": "mock_gateway.server._limits",
    "mock_gateway.media": "mock_gateway.model._media",
    "mock_gateway.proxy": "mock_gateway.contract_tools._proxy",
    "mock_gateway.ratelimit": "mock_gateway.model._ratelimit",
    "mock_gateway.redact": "boogu_contract._redact",
    "mock_gateway.replay": "mock_gateway.contract_tools._replay",
    "mock_gateway.scheduler": "mock_gateway.model._scheduler",
    "mock_gateway.spec": "boogu_contract",
    "mock_gateway.wallet": "mock_gateway.model._wallet",
    "mock_gateway.webhooks": "mock_gateway.model._webhooks",
}
"""Old module → where its names live now. Public homes: `mock_gateway.model`, `.server`, `.contract_tools`,
`.testing` and `boogu_contract`."""


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        return importlib.machinery.ModuleSpec(fullname, self) if fullname in MOVED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} moved: import from {_public_home(new)} instead",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(new)
        spec.loader_state = module.__spec__  # the import system puts the alias's spec on the module
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Loaded under its new name already: give it back its own spec (its package, its files)."""
        alias = module.__spec__
        if alias is not None and alias.loader_state is not None:
            module.__spec__ = alias.loader_state


def _public_home(module: str) -> str:
    """`mock_gateway.model._jobs` → `mock_gateway.model`: where its public names are listed."""
    parts = module.split(".")
    return ".".join(parts[: next((i for i, part in enumerate(parts) if part.startswith("_")), len(parts))])


def install() -> None:
    if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModules())
