"""Shared fixtures: the op manifest, the vector directory and an open store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batpak import Store, StoreConfig

VECTORS = Path(__file__).resolve().parents[2] / "conformance" / "vectors"


@pytest.fixture(scope="session")
def manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / "netbat-ops" / "batpak.manifest.json").read_text())
    return data


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(StoreConfig(tmp_path / "store")) as opened:
        yield opened
