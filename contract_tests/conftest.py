"""Suite-wide contract audit: every API response any mock gateway gives in these tests must conform
to openapi.yaml, and together the tests must produce every response openapi.yaml declares.

Also the ``needs_reference`` mark: a test that reads the vendor's reference text skips, before its
fixtures, when the text is absent, and fails under ``CI=true`` (spec_helpers.REFERENCE_PATH says where
it is looked for)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from contract_tests.spec_helpers import (
    declared_responses,
    in_ci,
    reference_here,
    require_reference,
    response_problems,
)
from mock_gateway.testing import MockGateway

TESTS_ROOT = Path(__file__).resolve().parent
PRODUCED: set[tuple[str, str]] = set()
"""(operationId, status) of every API response seen by the audit in this session."""
COVERAGE_TEST = "test_every_declared_response_is_produced"


def audit(gateway: MockGateway) -> None:
    """Check every journaled API answer of a gateway against the spec and note what was produced."""
    problems: list[str] = []
    for entry in gateway.backend.journal.entries():
        operation_id, status = entry["operation_id"], entry["status"]
        if operation_id is None or status == 0:  # not an API operation, or a dropped connection
            continue
        PRODUCED.add((operation_id, str(status)))
        problems += response_problems(operation_id, status, entry["response"], entry["response_headers"])
    assert not problems, "responses that break openapi.yaml:\n" + "\n".join(sorted(set(problems)))


@pytest.fixture(autouse=True, scope="session")
def _audit_gateways() -> Iterator[None]:
    """Every gateway stopped in this session is audited first: fixtures of any scope, `with` blocks."""
    stop = MockGateway.stop

    def audited_stop(self: MockGateway) -> None:
        try:
            audit(self)
        finally:
            stop(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MockGateway, "stop", audited_stop)
        yield


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs_reference: reads the vendor's reference text; skipped when it is absent, failed under CI=true",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Without the reference, a test marked ``needs_reference`` skips before any fixture is set up."""
    if item.get_closest_marker("needs_reference") and not reference_here() and not in_ci():
        require_reference()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Under CI the same test fails (as a failed test, not a setup error): CI must have the reference."""
    if item.get_closest_marker("needs_reference"):
        require_reference()


SLOWEST_FIRST = (
    "packaging/test_wheel_install.py",
    "mock/test_hostile.py",
    "packaging/test_readme_commands.py",
    "codegen/test_end_to_end.py",
    "client/test_deadlines.py",
    "client/test_cli.py",
    "proxy/test_proxy_limits.py",
    "mock/test_webhook_bounds.py",
    "proxy/test_cassette_limits.py",
    "mock/test_schemathesis.py",
    "mock/test_fuzz.py",
    "client/test_batch_faults.py",
)
"""The modules that take longest (mostly waiting on processes, the network or real time), longest
first: `make test`'s pytest-xdist hands out whole modules in collection order (`--dist loadfile`),
so these start at once instead of one of them running alone at the end. test_deadlines.py comes a
little later than its length says: its real-time bounds are tight, and the first minute, with the
schemathesis CLI and the smoke tests beside pytest, is the busiest."""


def slowness_rank(item: pytest.Item) -> int:
    relative = item.path.relative_to(TESTS_ROOT).as_posix() if item.path.is_relative_to(TESTS_ROOT) else ""
    return SLOWEST_FIRST.index(relative) if relative in SLOWEST_FIRST else len(SLOWEST_FIRST)


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """The slowest modules first, each module's tests in their order (a stable sort); the coverage
    test last, after every test that produces responses."""
    last = [item for item in items if item.name == COVERAGE_TEST]
    items[:] = sorted((item for item in items if item.name != COVERAGE_TEST), key=slowness_rank) + last


def whole_suite(session: pytest.Session) -> bool:
    """The coverage check means something only when every test that produces responses ran: every test
    module under contract_tests/ was collected, and nothing deselected by ``-k``, ``-m`` or ``--deselect``
    (so ``pytest contract_tests/spec``, or any other one group, does not claim to be the whole suite)."""
    option = session.config.option
    if option.keyword or option.markexpr or getattr(option, "deselect", None):
        return False
    collected = {path.resolve() for path in {item.path for item in session.items}}
    return all(module in collected for module in TESTS_ROOT.rglob("test_*.py"))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under pytest-xdist each worker sees only its own tests' responses: workers hand theirs to the
    controller (`pytest_testnodedown`), which checks the coverage of the whole suite at the end."""
    config = session.config
    if hasattr(config, "workeroutput"):
        config.workeroutput["produced"] = sorted(PRODUCED)
        config.workeroutput["whole_suite"] = whole_suite(session)
    elif config.pluginmanager.hasplugin("dsession") and getattr(config, "_whole_suite", False):
        missing = missing_responses()
        if missing:
            reporter = config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.ensure_newline()
                reporter.write_line(
                    f"declared in openapi.yaml but never produced by the mock: {missing}", red=True
                )
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    output = getattr(node, "workeroutput", {})
    PRODUCED.update((operation_id, status) for operation_id, status in output.get("produced", []))
    if output.get("whole_suite"):
        node.config._whole_suite = True  # type: ignore[attr-defined]


def missing_responses() -> list[str]:
    return sorted(
        f"{operation_id} {status}"
        for operation_id, statuses in declared_responses().items()
        for status in statuses
        if (operation_id, status) not in PRODUCED
    )
