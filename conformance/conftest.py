"""Black-box conformance suite: public API, real processes and on-disk bytes only.

Every test names the invariant it proves with ``@pytest.mark.invariant(id)``; ids come from
``invariants.yaml``. Collection fails if a test has no marker or names an unknown id. Each run
prints which invariants were proved and writes a JSON receipt (``--receipt PATH``); with
``--invariants-gate`` the run fails while any catalogued invariant has no executed, passing
test, or when no test ran at all.
"""

from __future__ import annotations

import json
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

CATALOGUE = Path(__file__).with_name("invariants.yaml")
_passed: dict[str, list[str]] = {}
_failed: dict[str, list[str]] = {}
_started = time.time()


def catalogue() -> dict[str, str]:
    """Invariant id -> statement, from invariants.yaml."""
    data: dict[str, Any] = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
    return {entry["id"]: entry["statement"] for entry in data["invariants"]}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance")
    group.addoption("--invariants-gate", action="store_true", help="fail on unproved invariants")
    group.addoption("--receipt", default=None, help="write the run's JSON receipt here")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "invariant(id): the invariants.yaml id (INV-...) that this test proves"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    known = catalogue()
    problems = []
    for item in items:
        marks = list(item.iter_markers("invariant"))
        if not marks:
            problems.append(f"{item.nodeid}: no @pytest.mark.invariant")
        for mark in marks:
            if len(mark.args) != 1 or mark.args[0] not in known:
                problems.append(f"{item.nodeid}: unknown invariant {mark.args!r}")
    if problems:
        raise pytest.UsageError("\n".join(problems))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call" and not (report.when == "setup" and not report.passed):
        return
    ids = [
        str(arg)
        for key, value in report.user_properties
        if key == "invariant" and isinstance(value, list)
        for arg in value
    ]
    target = _passed if report.passed and report.when == "call" else _failed
    for invariant in ids:
        target.setdefault(invariant, []).append(report.nodeid)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.user_properties.append(("invariant", [m.args[0] for m in item.iter_markers("invariant")]))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    known = catalogue()
    proved = sorted(i for i in _passed if i not in _failed)
    unproved = sorted(set(known) - set(proved))
    config = session.config
    receipt = {
        "started": _started,
        "finished": time.time(),
        "tests_collected": session.testscollected,
        "tests_failed": session.testsfailed,
        "invariants": {"catalogued": len(known), "proved": proved, "unproved": unproved},
        "failing": {i: tests for i, tests in sorted(_failed.items())},
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in ("batpak", "syncbat", "netbat", "hostbat")},
        "hypothesis_seed": config.getoption("hypothesis_seed", None),
    }
    path = config.getoption("--receipt")
    if path:
        Path(path).write_text(json.dumps(receipt, indent=2) + "\n", encoding="utf-8")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("-", "invariants")
        reporter.write_line(f"{len(proved)} of {len(known)} catalogued invariants proved")
        for invariant in unproved:
            reporter.write_line(f"  unproved: {invariant}")
    if config.getoption("--invariants-gate") and (unproved or session.testscollected == 0):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
