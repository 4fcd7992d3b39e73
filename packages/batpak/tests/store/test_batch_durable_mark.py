"""A batch is fsynced before it is visible, so the durable watermark must cover it.

Found by the conformance suite (INV-FRONTIER-APPEND-GATE-HONORED storms): the writer fsynced
the batch before publishing it, but advanced ``durable`` only to what was already written, and
a later ``sync()`` had nothing left to fsync, so ``durable`` stayed behind for good.
"""

from pathlib import Path

from batpak import BatchAppendItem, Coordinate, Store, StoreConfig

KIND = 0xEB31


def test_batch_advances_durable_to_its_last_event(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path / "s")) as store:
        coord = Coordinate("batch:1", "durable")
        items = [BatchAppendItem.new(coord, KIND, {"n": n}) for n in range(3)]
        receipts = store.append_batch(items)
        last = receipts[-1].global_sequence
        assert store.frontier().durable.global_sequence == last
        store.sync()
        assert store.wait_for_durable(last, timeout=0.5).global_sequence >= last


def test_batch_after_plain_appends_covers_them_too(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path / "s")) as store:
        coord = Coordinate("batch:2", "durable")
        store.append(coord, KIND, {"plain": True})
        receipts = store.append_batch([BatchAppendItem.new(coord, KIND, {"n": 0})])
        frontier = store.frontier()
        assert frontier.durable == frontier.written
        assert frontier.durable.global_sequence == receipts[0].global_sequence
