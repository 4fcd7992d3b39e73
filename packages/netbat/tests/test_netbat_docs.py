"""docs/netbat.md: its example runs as written."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "netbat.md"


def test_doc_example_runs() -> None:
    if not DOC.is_file():
        pytest.skip("docs/netbat.md is not beside this checkout")
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) == 1
    assert len(blocks[0].strip().splitlines()) <= 22
    exec(compile(blocks[0], str(DOC), "exec"), {"__name__": "netbat_doc_example"})
