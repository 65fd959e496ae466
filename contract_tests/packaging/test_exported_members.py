"""The public names of each package are frozen here: adding or removing one fails until this file says so.

As httpx's ``tests/test_exported_members.py``: for each public package, ``__all__`` is compared with the
list below, and every name in it resolves. For packages whose ``__init__`` imports eagerly, the public
module attributes (submodules aside) are exactly ``__all__``; ``mock_gateway`` and ``boogu_contract``
load their names on first use (PEP 562), so there only ``__all__`` is checked. The modules inside the
layered packages are private (``_name``), ``boogu_contract.wire`` aside, and the module paths of the old
flat layout (``mock_gateway/_compat.py``) still import, with a DeprecationWarning.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import pytest

from mock_gateway._compat import MOVED

ROOT = Path(__file__).resolve().parent.parent.parent

EXPORTED: Final[dict[str, tuple[str, ...]]] = {
    "boogu": (
        "API_KEY_ENV",
        "BASE_URL_ENV",
        "DEFAULT_BASE_URL",
        "DEFAULT_TIMEOUT",
        "DEFAULT_WAIT_TIMEOUT",
        "NOT_GIVEN",
        "APIConnectionError",
        "APIError",
        "APIResponseValidationError",
        "APIStatusError",
        "APITimeoutError",
        "AsyncBoogu",
        "BadRequestError",
        "Boogu",
        "BooguError",
        "ClientOptions",
        "ConfigurationError",
        "CustomImageSize",
        "DownloadError",
        "ForbiddenError",
        "ImageEditParams",
        "ImageEditRequest",
        "InsufficientBalanceError",
        "JobError",
        "JobErroredError",
        "JobFailedError",
        "JobNotFinishedError",
        "JobStatus",
        "ModelNotFoundError",
        "NotFoundError",
        "NotGiven",
        "NotTheGatewayError",
        "PollPolicy",
        "RateLimitError",
        "RequestOutput",
        "RequestStatus",
        "Result",
        "RetryEvent",
        "RetryPolicy",
        "Runtime",
        "ServerError",
        "StatusValue",
        "Submission",
        "TextToImageParams",
        "TextToImageRequest",
        "Timings",
        "UnauthorizedError",
        "UnknownStatusError",
        "WaitOptions",
        "WaitTimeoutError",
        "WebhookError",
        "__version__",
    ),
    "boogu_contract": (
        "MAX_BODY_CHARS",
        "REDACTED",
        "Conformance",
        "Contract",
        "ContractViolation",
        "HeaderRule",
        "Operation",
        "ResponseRule",
        "Violation",
        "docs_path",
        "fast_valid",
        "is_secret",
        "iso_time",
        "load_spec",
        "pointer_of",
        "redact_headers",
        "redact_query",
        "redact_url",
        "shared_tls_args",
        "shared_tls_context",
        "spec_path",
        "summarize_body",
        "wire",
        "without_userinfo",
    ),
    "mock_gateway": (
        "DEFAULT_API_KEY",
        "Clock",
        "GatewayBackend",
        "GatewayError",
        "ManualClock",
        "MockConfig",
        "OffsetClock",
        "SystemClock",
        "create_app",
    ),
    "mock_gateway.model": (
        "DEFAULT_API_KEY",
        "LATEST",
        "MAX_ADVANCE",
        "OUTCOME_HEADER",
        "REALISTIC",
        "Admission",
        "ApiKey",
        "Clock",
        "ConfigError",
        "DroppedConnection",
        "GatewayBackend",
        "GatewayError",
        "Job",
        "ManualClock",
        "MockConfig",
        "OffsetClock",
        "RateLimit",
        "Sender",
        "Submission",
        "SyncWait",
        "SystemClock",
        "check_key",
        "internal_error",
        "is_loopback",
        "money",
        "parse_amount",
        "sleep_until",
        "validation_error",
    ),
    "mock_gateway.server": (
        "MAX_JSON_DEPTH",
        "AdminAuth",
        "add_admin_options",
        "admin_refusal",
        "check_token",
        "create_app",
        "server_config",
        "strict_json",
    ),
    "mock_gateway.contract_tools": (
        "OWN_ANSWER_HEADER",
        "VIOLATIONS_HEADER",
        "CassetteError",
        "CassetteWriter",
        "Check",
        "ContractProxy",
        "Exchange",
        "Matcher",
        "Miss",
        "Problem",
        "Recording",
        "ReplayApp",
        "Unreachable",
        "Verifier",
        "ViolationLog",
        "load",
    ),
    "mock_gateway.testing": (
        "IN_PROCESS_URL",
        "KEY_HEADER",
        "InProcessTransport",
        "LiveServer",
        "MockGateway",
        "ReplayGateway",
        "call_app",
        "free_port_socket",
        "gateway_popen",
        "gateway_process",
        "mock_gateway",
    ),
}
#: Packages whose names load on first use (PEP 562 ``__getattr__``): their module attributes are not
#: their exports until used, so only ``__all__`` is held to the list.
LAZY: Final = frozenset({"mock_gateway", "boogu_contract"})
#: Packages whose modules are all private (``_name``), but these public ones.
LAYERED: Final[dict[str, frozenset[str]]] = {
    "mock_gateway.model": frozenset(),
    "mock_gateway.server": frozenset(),
    "mock_gateway.contract_tools": frozenset(),
    "mock_gateway.testing": frozenset(),
    "boogu_contract": frozenset({"wire"}),
}


def drift(actual: list[str], expected: tuple[str, ...], hint: str) -> str:
    added, removed = sorted(set(actual) - set(expected)), sorted(set(expected) - set(actual))
    return f"added {added}, removed {removed}: {hint}"


@pytest.mark.parametrize("package", list(EXPORTED))
def test_all_is_the_frozen_list(package: str) -> None:
    exported = list(importlib.import_module(package).__all__)
    assert len(set(exported)) == len(exported), f"{package}.__all__ repeats a name"
    assert set(exported) == set(EXPORTED[package]), f"{package}.__all__ changed: " + drift(
        exported, EXPORTED[package], f"update EXPORTED in {Path(__file__).name} if that is meant"
    )


@pytest.mark.parametrize("package", list(EXPORTED))
def test_every_exported_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    missing = []
    for name in module.__all__:
        try:
            getattr(module, name)
        except AttributeError:
            missing.append(name)
    assert not missing, f"{package}.__all__ names what it does not have: {missing}"


def is_future_feature(value: Any) -> bool:
    """``annotations`` from ``from __future__ import annotations`` is a module attribute, not an export."""
    return type(value).__module__ == "__future__"


@pytest.mark.parametrize("package", [p for p in EXPORTED if p not in LAZY])
def test_eager_package_attributes_are_exactly_all(package: str) -> None:
    module = importlib.import_module(package)
    public = sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, ModuleType) and not is_future_feature(value)
    )
    exported = tuple(name for name in module.__all__ if not name.startswith("_"))
    assert set(public) == set(exported), f"{package}'s public attributes are not its __all__: " + drift(
        public, exported, "export the name in __all__, or import it as _name"
    )


@pytest.mark.parametrize("package", list(LAYERED))
def test_modules_inside_a_layer_are_private(package: str) -> None:
    module = importlib.import_module(package)
    names = sorted(info.name for info in pkgutil.iter_modules(module.__path__))
    assert names, f"{package} holds no modules?"
    public = [name for name in names if not name.startswith("_") and name not in LAYERED[package]]
    assert not public, f"{package}: public modules {public}; make them private and export from __init__"


# ---------------------------------------------------------------------------------- deprecated paths

# Run in a fresh interpreter: each old path warns on its first import only, and importing one changes
# module state that later tests in this process would see.
CHILD: Final = """
import importlib, json, warnings
from mock_gateway._compat import MOVED
report = {}
for old, new in MOVED.items():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    real = importlib.import_module(new)
    report[old] = {
        "same_module": module is real,
        "warnings": [[w.category.__name__, str(w.message)] for w in caught],
        "spec_name": real.__spec__.name,
    }
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from mock_gateway.backend import GatewayBackend
    import mock_gateway.spec
    import boogu_contract
    import mock_gateway.model
    model, contract = mock_gateway.model, boogu_contract
    report["examples"] = {
        "from mock_gateway.backend import GatewayBackend": GatewayBackend is model.GatewayBackend,
        "mock_gateway.spec.Contract": mock_gateway.spec.Contract is contract.Contract,
    }
    try:
        boogu_contract.spec_path()
        report["spec_path_after_import_of_mock_gateway.spec"] = "ok"
    except Exception as error:
        report["spec_path_after_import_of_mock_gateway.spec"] = f"{type(error).__name__}: {error}"
print("REPORT", json.dumps(report))
"""


@pytest.fixture(scope="module")
def moved_report() -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("REPORT "))
    report: dict[str, Any] = json.loads(line.removeprefix("REPORT "))
    return report


def public_home(module: str) -> str:
    """``mock_gateway.model._jobs`` → ``mock_gateway.model``."""
    parts = module.split(".")
    return ".".join(parts[: next((i for i, p in enumerate(parts) if p.startswith("_")), len(parts))])


@pytest.mark.parametrize(("old", "new"), list(MOVED.items()), ids=list(MOVED))
def test_old_module_path_warns_and_gives_the_module_of_its_names(
    moved_report: dict[str, Any], old: str, new: str
) -> None:
    found = moved_report[old]
    assert found["same_module"], f"import {old} does not give {new}"
    assert found["warnings"] == [
        ["DeprecationWarning", f"{old} moved: import from {public_home(new)} instead"]
    ], f"import {old}: {found['warnings']}"


def test_old_module_paths_give_the_old_names(moved_report: dict[str, Any]) -> None:
    assert moved_report["examples"] == {
        "from mock_gateway.backend import GatewayBackend": True,
        "mock_gateway.spec.Contract": True,
    }


def test_old_module_paths_leave_the_real_modules_intact(moved_report: dict[str, Any]) -> None:
    renamed = {old: found["spec_name"] for old, found in moved_report.items() if old in MOVED}
    assert renamed == {old: new for old, new in MOVED.items()}, "__spec__.name of the real module changed"
    assert moved_report["spec_path_after_import_of_mock_gateway.spec"] == "ok"
