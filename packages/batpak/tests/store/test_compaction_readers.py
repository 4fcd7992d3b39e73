"""Readers racing a compaction: the index swap is atomic and every read lands on its frame.

Found by the conformance storms (INV-CONCURRENCY-SCHEDULE-PROOF): a reader could combine the
old checkpoint base with the new index (duplicates, or a transient NotFound), or read a frame
through a handle the compaction had just closed or at an offset that had moved (EBADF,
CrcMismatch). Readers now take the base with the index under one lock, and a read that failed
while a compaction moved files is retried where the index now places the event.
"""

import sys
import threading
from pathlib import Path

from batpak import Coordinate, Region, Store, StoreConfig

KIND = 0xEB32


def reader(store: Store, done: threading.Event, failures: list[BaseException]) -> None:
    before = store.query(Region.all())
    ids = [e.event_id for e in store.by_entity("r:0")]
    try:
        while not done.is_set():
            seqs = [e.global_sequence for e in store.query(Region.all())]
            assert seqs == sorted(set(seqs))
            assert [e.event_id for e in store.by_entity("r:0")] == ids
            for entry in before[1::7]:
                assert store.get(entry.event_id).global_sequence == entry.global_sequence
    except BaseException as exc:
        failures.append(exc)


def one_round(config: StoreConfig) -> list[BaseException]:
    for session in range(3):  # three sealed segments; the last close writes a checkpoint
        with Store.open(config) as store:
            for n in range(15):
                store.append(Coordinate(f"r:{n % 2}", "race"), KIND, {"s": session})
    failures: list[BaseException] = []
    with Store.open(config) as store:
        done = threading.Event()
        readers = [threading.Thread(target=reader, args=(store, done, failures)) for _ in range(3)]
        for thread in readers:
            thread.start()
        try:
            assert store.compact().outcome == "performed"
        finally:
            done.set()
            for thread in readers:
                thread.join()
    return failures


def test_readers_never_fail_while_a_compaction_swaps_the_index(tmp_path: Path) -> None:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for round_no in range(6):
            assert one_round(StoreConfig(tmp_path / f"s{round_no}")) == []
    finally:
        sys.setswitchinterval(previous)
