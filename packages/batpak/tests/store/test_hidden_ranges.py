"""Cancelled-fence ranges written by the reference (``visibility_ranges.fbv``) stay hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from batpak import Coordinate, FailClosedError, Region, Store, StoreConfig, canonical
from batpak.errors import FutureVersion
from batpak.sidefile import wrap

KIND = 0xF0A1


def _store(path: Path) -> list[int]:
    with Store.open(StoreConfig(path)) as store:
        receipts = [store.append(Coordinate(f"e:{i % 2}", "s"), KIND, {"i": i}) for i in range(6)]
    (path / "index.cols").unlink()  # the reference's files only: rebuild from segments
    return [r.global_sequence for r in receipts]


def _write_ranges(path: Path, body: object, version: int = 2) -> None:
    (path / "visibility_ranges.fbv").write_bytes(wrap(b"FBATVR", version, canonical.encode(body)))


def test_global_and_lane_ranges_hide_committed_events(tmp_path: Path) -> None:
    sequences = _store(tmp_path)
    _write_ranges(
        tmp_path,
        {
            "ranges": [{"start": sequences[1], "end": sequences[3]}],
            "lane_ranges": [{"lane": 0, "ranges": [{"start": sequences[5], "end": 10**6}]}],
        },
    )
    with Store.open_read_only(StoreConfig(tmp_path)) as store:
        visible = [e.global_sequence for e in store.query(Region.scope("s"))]
    assert visible == [sequences[0], sequences[3], sequences[4]]


def test_damaged_or_future_ranges_refuse_to_open(tmp_path: Path) -> None:
    _store(tmp_path)
    (tmp_path / "visibility_ranges.fbv").write_bytes(b"FBATVR\x02\x00garbage!")
    with pytest.raises(FailClosedError):
        Store.open_read_only(StoreConfig(tmp_path))
    _write_ranges(tmp_path, {"ranges": [], "lane_ranges": []}, version=3)
    with pytest.raises(FutureVersion):
        Store.open_read_only(StoreConfig(tmp_path))
