"""Run every Python block of the docs pages, in order, as a reader would paste them."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = ["batpak-durability.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize("page", PAGES)
def test_every_snippet_runs(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = BLOCK.findall((DOCS / page).read_text())
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for number, block in enumerate(blocks, 1):
        code = compile(block, f"{page} block {number}", "exec")
        exec(code, namespace)
    assert os.listdir(tmp_path)


def test_conformance_page_is_current() -> None:
    spec = importlib.util.spec_from_file_location(
        "conformance_catalogue", DOCS.parent / "conformance" / "catalogue.py"
    )
    assert spec is not None
    assert spec.loader is not None
    catalogue = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(catalogue)
    rendered = catalogue.render()
    assert (DOCS / "conformance.md").read_text(encoding="utf-8") == rendered, (
        "docs/conformance.md is stale: run python3 conformance/catalogue.py"
    )
