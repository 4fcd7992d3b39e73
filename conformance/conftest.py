"""Black-box conformance suite for batpak: public API, real processes and on-disk bytes only.

Every test names the conformance.md invariant it proves with ``@pytest.mark.invariant(id)``;
collection fails if a test has none or names a malformed id.
"""

from __future__ import annotations

import re

import pytest

_INVARIANT_ID = re.compile(r"INV-[A-Z0-9]+(?:-[A-Z0-9]+)*")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "invariant(id): the conformance.md invariant id (INV-...) that this test proves",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    problems = []
    for item in items:
        marks = list(item.iter_markers("invariant"))
        if not marks:
            problems.append(f"{item.nodeid}: no @pytest.mark.invariant")
        for mark in marks:
            ids = [arg for arg in mark.args if isinstance(arg, str)]
            if len(ids) != 1 or len(mark.args) != 1 or not _INVARIANT_ID.fullmatch(ids[0]):
                problems.append(f"{item.nodeid}: malformed invariant marker {mark.args!r}")
    if problems:
        raise pytest.UsageError("\n".join(problems))
