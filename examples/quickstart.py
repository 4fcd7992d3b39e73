"""Quickstart: open a store, append a typed event, read it back, close.

Run it from the repository root: ``python3 examples/quickstart.py [DATA_DIR]``. The store lives
in ``./batpak-data`` unless a directory is given; running it again reopens the same journal.
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec

from batpak import Coordinate, Region, Store, StoreConfig, event_payload


@event_payload(category=0xF, type_id=1)  # binds the type to kind 0xF001, version 1
class PlayerMoved(msgspec.Struct):
    x: int
    y: int


def main(path: Path) -> None:
    with Store.open(StoreConfig(path)) as store:
        coord = Coordinate("player:alice", "room:dungeon")
        receipt = store.append_typed(coord, PlayerMoved(x=10, y=20))
        stored = store.get(receipt.event_id)
        moved = stored.decode(PlayerMoved)
        print(f"store:     {path.resolve()}")
        print(f"event id:  {stored.event.header.event_id:032x}")
        print(f"sequence:  {receipt.global_sequence}")
        print(f"scope:     {stored.coordinate.scope}")
        print(f"payload:   {moved}")
        print(f"receipt:   {store.verify_append_receipt(receipt).outcome}")
        moves = store.query(Region.entity("player:alice"))
        print(f"alice has moved {len(moves)} time(s) in this journal")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("batpak-data"))
