"""The pytest side of a bite run: ``-p bite.plugin --bite NAME [--bite-report PATH]``.

With ``--bite NAME`` the variant's bug is planted in this process and, through
``CONFORMANCE_BITE`` and ``bite/site`` on ``PYTHONPATH``, in every Python child the tests
start. With ``--bite-select`` the run keeps only the tests proving the variants' invariants
(one variant, or every variant's for the unmutated baseline with ``--bite-select all``).
``--bite-report`` writes each test's outcome as JSON for ``python -m bite``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bite import ENV, VARIANTS
from bite.mutants import NotPlanted, plant

SITE = Path(__file__).with_name("site")
_outcomes: dict[str, str] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bite")
    group.addoption("--bite", default=None, choices=sorted(VARIANTS), help="plant this bug")
    group.addoption(
        "--bite-select",
        default=None,
        help="keep only the tests of this variant's invariants ('all': every variant's)",
    )
    group.addoption("--bite-report", default=None, help="write per-test outcomes here (JSON)")


def pytest_configure(config: pytest.Config) -> None:
    name = config.getoption("--bite")
    if not name:
        return
    os.environ[ENV] = name
    inherited = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(SITE), *([inherited] if inherited else [])])
    _no_shrinking()
    try:
        plant(name)
    except (NotPlanted, ImportError) as exc:
        raise pytest.UsageError(f"bite variant {name} cannot be planted: {exc}") from exc


def _no_shrinking() -> None:
    """A bite run needs a failure, not a minimal one: hypothesis skips shrinking."""
    try:
        from hypothesis import Phase, settings  # noqa: PLC0415
    except ImportError:
        return
    phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
    settings.register_profile("bite", settings(settings.default, phases=phases))
    settings.load_profile("bite")


def _wanted(config: pytest.Config) -> set[str] | None:
    select = config.getoption("--bite-select")
    if not select:
        return None
    names = sorted(VARIANTS) if select == "all" else [select]
    return {i for n in names for i in VARIANTS[n].invariants}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = _wanted(config)
    if wanted is None:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        ids = {m.args[0] for m in item.iter_markers("invariant") if m.args}
        (keep if ids & wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed:
        _outcomes[report.nodeid] = "failed"
    elif report.skipped and report.nodeid not in _outcomes:
        _outcomes[report.nodeid] = "skipped"
    elif report.when == "call" and report.passed:
        _outcomes.setdefault(report.nodeid, "passed")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = session.config.getoption("--bite-report")
    if path:
        variant = session.config.getoption("--bite")
        report = {"variant": variant, "exitstatus": int(exitstatus), "outcomes": _outcomes}
        Path(path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
