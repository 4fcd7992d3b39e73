"""A checkpoint (index.cols) written before events were hidden must not resurrect them."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from batpak import Coordinate, Store, StoreConfig
from batpak.sidefile import wrap


def hide(directory: Path, start: int, end: int) -> None:
    body = msgspec.msgpack.encode({"ranges": [{"start": start, "end": end}], "lane_ranges": []})
    (directory / "visibility_ranges.fbv").write_bytes(wrap(b"FBATVR", 2, body))


@pytest.mark.parametrize("read_only", [False, True])
def test_hidden_ranges_planted_after_the_checkpoint_win(tmp_path: Path, read_only: bool) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        receipts = [store.append(Coordinate("e:1", "s"), 0xF001, {"n": i}) for i in range(4)]
    assert (tmp_path / "index.cols").exists()
    hidden = receipts[1].global_sequence
    hide(tmp_path, hidden, hidden + 1)
    opener = Store.open_read_only if read_only else Store.open
    with opener(StoreConfig(tmp_path)) as store:
        seen = [e.global_sequence for e in store.by_entity("e:1")]
        assert seen == [r.global_sequence for r in receipts if r.global_sequence != hidden]
