"""Every committed fuzz crasher and interesting input, replayed through its target on every run.

PROVES: INV-WIRE-ROUNDTRIP-TOTALITY (inputs that once escaped a decoder untyped, such as
invalid UTF-8 behind a valid CRC, values nested 100,000 deep, an ``index.cols`` pointing past
its segments, or a 5000-digit NETBAT/2 integer, now end in a typed error or a clean open).
CATCHES: a fixed decoder bug coming back; a regression folder whose target was renamed.
SEEDED: no randomness; ``python -m fuzz`` adds the crashers atheris finds to
``conformance/regressions/<target>/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz.targets import TARGETS

REGRESSIONS = Path(__file__).with_name("regressions")
CASES = sorted(p for p in REGRESSIONS.rglob("*") if p.is_file() and p.name != "README.md")


@pytest.mark.invariant("INV-WIRE-ROUNDTRIP-TOTALITY")
def test_every_regression_folder_names_a_target() -> None:
    folders = {p.name for p in REGRESSIONS.iterdir() if p.is_dir()}
    assert folders <= set(TARGETS), folders - set(TARGETS)
    assert CASES, "the regression corpus is empty"


@pytest.mark.invariant("INV-WIRE-ROUNDTRIP-TOTALITY")
@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_regression_replays_legally(case: Path) -> None:
    TARGETS[case.parent.name](case.read_bytes())
