"""docs/reference-host.md: the "under fifty lines" example runs as written."""

from __future__ import annotations

from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "reference-host.md"
SECTION = "## A host from the four batteries in under fifty lines"


def example() -> str:
    text = DOC.read_text("utf-8")
    section = text[text.index(SECTION) :]
    start = section.index("```python\n") + len("```python\n")
    return section[start : section.index("```\n", start)]


def test_example_is_under_fifty_lines() -> None:
    assert len(example().splitlines()) < 50


def test_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code = compile(example(), str(DOC), "exec")
    exec(code, {"__name__": "__main__"})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    reply, fingerprint = lines[0].split(" ")
    assert reply == "stored"
    assert len(fingerprint) == 16
    assert lines[1] == "['0xf101']"
