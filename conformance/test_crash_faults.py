"""Injected faults, the injected clock and the side files, through the documented seams
(``StoreConfig.with_fs`` and ``StoreConfig.with_clock``).

PROVES: INV-FRONTIER-DURABLE-COVERS-RECOVERED (a failed fsync poisons the writer: the next
command gets WriterCrashed and the durable frontier stays frozen; after the crash the
reopened durable HLC covers every recovered event and is not behind the last acknowledged one),
INV-DST-RECOVERY-LEGAL (a read or write fault at any op of an open is a typed error, never
a raw OSError), INV-INJECTED-CLOCK-OWNS-TIMEKEEPING (with a frozen injected clock every time
on disk, in segment headers, frames, ids, lineage and the open report, is that clock's),
INV-EXTERNAL-REPLAY-NO-SIDECAR-TRUTH (deleting index.cols rebuilds the identical state; losing
index.idemp or store.meta is a typed refusal), INV-COLD-START-ARTIFACTS (clean close then
reopen gives the same events; a stale index.cols is never trusted).
CATCHES: fsyncgate (a retried fsync reported durable), untyped I/O errors, ambient time reads,
a checkpoint trusted after its segments changed, a silently re-minted authority.
SEEDED: none; every fault point is enumerated.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from crashrun import ROOT, Driver, observe, sim_config
from refstore import parse_segment, segment_files, unpack
from simfs import SimFs

from batpak import (
    BatchAppendItem,
    Coordinate,
    HlcPoint,
    Region,
    Store,
    StoreConfig,
    StoreError,
    WriterCrashed,
)

FROZEN_US = 978_307_200_000_000  # 2001-01-01T00:00:00Z, far from the machine's clock


@pytest.mark.invariant("INV-FRONTIER-DURABLE-COVERS-RECOVERED")
def test_a_failed_fsync_poisons_the_writer_and_freezes_the_durable_frontier() -> None:
    fs = SimFs()
    driver = Driver(fs, Store.open(sim_config(fs)))
    driver.append("meter:1")
    driver.sync()
    acked = driver.store.frontier().durable
    driver.append("meter:1")
    fs.arm("sync")
    with pytest.raises(WriterCrashed):
        driver.store.sync()
    fs.disarm()  # a later fsync would succeed: the frontier must not believe it
    with pytest.raises(WriterCrashed):
        driver.store.append(Coordinate("meter:1", "crash"), 0x1000, {"late": 1})
    with pytest.raises(WriterCrashed):
        driver.store.sync()
    assert driver.store.frontier().durable == acked
    driver.store._abandon()  # the documented crash seam
    fs.crash()
    with Store.open(sim_config(fs)) as store:
        entries = store.query(Region.all())
        durable = store.frontier().durable
        assert durable >= HlcPoint(entries[-1].wall_ms, entries[-1].global_sequence)
        assert durable >= acked
        assert (
            driver.history.states[driver.history.durable]
            == tuple(s.event_id for s in observe(store))[
                : len(driver.history.states[driver.history.durable])
            ]
        )


def _closed_store(fs: SimFs) -> list[int]:
    driver = Driver(fs, Store.open(sim_config(fs)))
    for i in range(3):
        driver.append(f"acct:{i}", keyed=True)
    driver.close()
    return list(driver.history.states[-1])


@pytest.mark.invariant("INV-DST-RECOVERY-LEGAL")
@pytest.mark.parametrize("kind", ["read", "write", "sync", "create", "replace", "sync_dir"])
def test_a_fault_at_any_op_of_an_open_is_a_typed_error(kind: str) -> None:
    fs = SimFs()
    _closed_store(fs)
    probe = fs.crash_image()
    Store.open(sim_config(probe)).close()
    total = probe.counts.get(kind, 0)  # how many such ops an open and close perform
    assert total > 0
    typed = 0
    for nth in range(1, total + 1):
        image = fs.crash_image()
        image.arm(kind, nth, errno.EIO)
        try:
            Store.open(sim_config(image)).close()
        except StoreError:  # anything untyped fails the test
            typed += 1
    assert typed > 0, f"no {kind} fault reached the open"


def _stamp_ms(event_id: bytes) -> int:
    return int.from_bytes(event_id, "big") >> 80


@pytest.mark.invariant("INV-INJECTED-CLOCK-OWNS-TIMEKEEPING")
def test_a_frozen_injected_clock_owns_every_time_on_disk(tmp_path: Path) -> None:
    directory = tmp_path / "store"
    config = StoreConfig(directory, segment_max_bytes=4096).with_clock(lambda: FROZEN_US)
    coord = Coordinate("meter:1", "clock")
    with Store.open(config) as store:
        for i in range(10):
            store.append(coord, 0x1000, {"i": i, "pad": "x" * 600})
        store.append_batch([BatchAppendItem.new(coord, 0x1000, {"b": j}) for j in range(2)])
        store.compact()
        lineage = store.identity()
    with Store.open(config) as store:
        store.append(coord, 0x1000, {"after": "reopen"})
    assert lineage is not None
    assert lineage >> 80 == FROZEN_US // 1000
    segments = [parse_segment(path) for path in segment_files(directory)]
    assert len(segments) >= 3, "the workload must rotate"
    reports = []
    for segment in segments:
        assert segment.header["created_ns"] == FROZEN_US * 1000, segment.segment_id
        for frame in segment.frames:
            header = frame.value["event"]["header"]
            assert header["position"]["wall_ms"] == FROZEN_US // 1000
            assert header["timestamp_us"] == FROZEN_US
            if frame.value["entity"] != "_batch":  # a batch marker's id is its sequence
                assert _stamp_ms(header["event_id"]) == FROZEN_US // 1000
            if header["event_kind"] == 0x0008:
                reports.append(unpack(bytes(frame.value["event"]["payload"])))
    assert len(reports) == 2
    for report in reports:
        timings = {k: v for k, v in report.items() if k.endswith("_us")}
        assert timings
        assert set(timings.values()) == {0}, f"ambient time in the open report: {timings}"


@pytest.mark.invariant("INV-EXTERNAL-REPLAY-NO-SIDECAR-TRUTH")
@pytest.mark.invariant("INV-COLD-START-ARTIFACTS")
def test_side_files_are_rebuilt_or_refused_never_trusted_blindly() -> None:
    fs = SimFs()
    ids = _closed_store(fs)
    with Store.open_read_only(sim_config(fs)) as store:
        truth = store.query(Region.all())
    assert [e.event_id for e in truth if e.entity.startswith("acct:")] == ids
    names = fs.files(ROOT)
    assert {"index.cols", "index.idemp", "store.meta"} <= names.keys()

    with Store.open_read_only(sim_config(fs)) as store:
        assert store.query(Region.all()) == truth  # clean close, then reopen: the same
    rebuilt = fs.crash_image()
    rebuilt.remove(ROOT / "index.cols")
    with Store.open_read_only(sim_config(rebuilt)) as store:
        assert store.query(Region.all()) == truth  # regenerable: rebuilt identically

    stale = fs.crash_image()
    old_cols = names["index.cols"]
    with Store.open(sim_config(stale)) as store:
        store.append(Coordinate("acct:9", "crash"), 0x1000, {"later": True})
    with Store.open_read_only(sim_config(stale)) as store:
        later = store.query(Region.all())
    stale.put(ROOT / "index.cols", old_cols)  # a checkpoint from before the last session
    with Store.open_read_only(sim_config(stale)) as store:
        assert store.query(Region.all()) == later, "a stale checkpoint was trusted"

    for authority in ("index.idemp", "store.meta"):
        lost = fs.crash_image()
        lost.remove(ROOT / authority)
        with pytest.raises(StoreError):  # an authority is never silently re-minted
            Store.open(sim_config(lost)).close()
