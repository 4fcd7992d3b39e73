"""Shared fixtures: the op manifest, an open store, and the BatenBase core service."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from batenbase_support import Clock

from batenbase.service import BatenBase
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


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def bb(tmp_path: Path, clock: Clock) -> Iterator[BatenBase]:
    service = BatenBase.open(tmp_path / "data", clock=clock, free_quota=20)
    service.create_tenant("acme")
    yield service
    service.close()
