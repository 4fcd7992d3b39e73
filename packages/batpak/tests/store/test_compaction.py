"""Compaction (store-api §1.10, facts3 §4): merge, retention, and crash safety at every step.

Three sessions leave sealed segments 1-3; a fourth session (active segment 4) compacts them.
A crash is simulated by a ``_hook`` that copies the directory (the disk as a killed process
leaves it) and raises a ``BaseException`` that is not an ``Exception``, so no rollback runs.
Kinds used here are 0xEBxx.
"""

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import msgpack  # type: ignore[import-untyped]
import pytest

from batpak import (
    AppendOptions,
    AppendReceipt,
    BatchAppendItem,
    Coordinate,
    IndexEntry,
    NotFound,
    Region,
    Store,
    StoreConfig,
    WriterCrashed,
)
from batpak.errors import Configuration
from batpak.kinds import EventKind

KIND = EventKind.custom(0xE, 0xB60)
STEPS = (
    "marker_written",
    "source_renamed",
    "staged_written",
    "committed",
    "renamed",
    "sources_removed",
)
COMMITTED_FROM = STEPS.index("committed")
KEY = 0x5EED


class SimulatedCrash(BaseException):
    """Process death at a compaction step: not an Exception, so no rollback handler runs."""


@dataclass(frozen=True)
class Seen:
    """What a reader can observe of one event."""

    global_sequence: int
    event_hash: bytes
    prev_hash: bytes
    payload: bytes
    content_hash: bytes


def observe(store: Store) -> dict[int, Seen]:
    return {
        e.event_id: Seen(
            e.global_sequence,
            e.event_hash,
            e.prev_hash,
            store.read_raw(e.event_id),
            store.get(e.event_id).event.header.content_hash,
        )
        for e in store.query(Region.all())
        if e.event_kind == KIND
    }


def frames(store: Store) -> dict[int, bytes]:
    out = {}
    for e in store.query(Region.all()):
        data = (store.config.path / f"{e.segment_id:06d}.fbat").read_bytes()
        out[e.event_id] = data[e.offset : e.offset + e.length]
    return out


def three_sessions(directory: Path) -> AppendReceipt:
    """Sealed segments 1, 2, 3 with kept and doomed events; returns the keyed doomed one."""
    keyed = None
    for session in range(3):
        with Store.open(StoreConfig(directory)) as store:
            for i in range(3):
                store.append(Coordinate(f"keep:{i}", "c"), KIND, {"s": session, "i": i})
                store.append(Coordinate("drop:x", "c"), KIND, {"s": session, "i": i})
            store.append_batch(
                [
                    BatchAppendItem.new(Coordinate(f"keep:{i}", "c"), KIND, [session])
                    for i in range(2)
                ]
            )
            if session == 1:
                keyed = store.append(
                    Coordinate("drop:k", "c"), KIND, "keyed", AppendOptions(idempotency_key=KEY)
                )
    assert keyed is not None
    return keyed


def not_doomed(entry: IndexEntry) -> bool:
    return not entry.entity.startswith("drop")


def leftovers(directory: Path) -> list[str]:
    return sorted(
        p.name
        for p in directory.iterdir()
        if ".compact-" in p.name or p.name.startswith("compaction.pending")
    )


def segment_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.fbat"))


def test_compact_skips_below_min_segments(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path / "young")) as store:
        assert store.compact().outcome == "skipped"  # no sealed segment at all
    three_sessions(tmp_path / "s")
    with Store.open(StoreConfig(tmp_path / "s")) as store:
        before = {p.name: p.read_bytes() for p in (tmp_path / "s").glob("*.fbat")}
        result = store.compact(min_segments=4)
        assert (result.outcome, result.segments_removed, result.merged_segment_id) == (
            "skipped",
            0,
            None,
        )
        assert {p.name: p.read_bytes() for p in (tmp_path / "s").glob("*.fbat")} == before
        assert leftovers(tmp_path / "s") == []
        with pytest.raises(Configuration):
            store.compact(min_segments=0)


def test_merge_keeps_every_event_byte_for_byte(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path)
    three_sessions(tmp_path)
    with Store.open(config) as store:
        identity = store.identity()
        before, raw = observe(store), frames(store)
        everything = [e.event_id for e in store.query(Region.all())]
        result = store.compact()
        assert result.outcome == "performed"
        assert (result.merged_segment_id, result.segments_removed, result.events_dropped) == (
            1,
            2,
            0,
        )
        assert result.bytes_reclaimed >= 0
        assert observe(store) == before
        assert frames(store) == raw  # every surviving frame is byte-identical
        assert [e.event_id for e in store.query(Region.all())] == everything
        assert {e.segment_id for e in store.query(Region.all())} == {1, 4}
        assert store.verify_chain().is_intact()
        assert store.identity() == identity
        assert segment_names(tmp_path) == ["000001.fbat", "000004.fbat"]
        assert leftovers(tmp_path) == []
        head = store.by_entity("keep:0")[-1]
        after = store.append(Coordinate("keep:0", "c"), KIND, "after")
        assert store.get(after.event_id).event.hash_chain is not None
        assert store.by_entity("keep:0")[-1].prev_hash == head.event_hash
    meta = msgpack.unpackb((tmp_path / "store.meta").read_bytes()[12:], raw=False)
    commit = meta["last_compaction_commit"]
    assert (commit["merged_segment_id"], commit["source_segment_ids"]) == (1, [1, 2, 3])
    with Store.open(config) as store:
        assert {k: v for k, v in observe(store).items() if k in before} == before
        assert store.verify_chain().is_intact()
        assert store.identity() == identity


def test_retention_drops_exactly_the_rejected_events(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path)
    keyed = three_sessions(tmp_path)
    with Store.open(config) as store:
        identity = store.identity()
        live = store.append(Coordinate("drop:active", "c"), KIND, "in the active segment")
        before = observe(store)
        doomed = {e.event_id for e in store.query(Region.entity("drop")) if e.segment_id < 4}
        assert len(doomed) == 10
        result = store.compact(retain=not_doomed)
        assert result.events_dropped == len(doomed)
        expected = {k: v for k, v in before.items() if k not in doomed}
        assert observe(store) == expected
        for event_id in doomed:
            with pytest.raises(NotFound):
                store.get(event_id)
        assert [e.event_id for e in store.by_entity("drop:active")] == [live.event_id]
        assert store.identity() == identity
        assert leftovers(tmp_path) == []
        assert store.append(keyed_coord(), KIND, "retry", AppendOptions(idempotency_key=KEY)) == (
            keyed
        )
    with Store.open(config) as store:
        assert {k: v for k, v in observe(store).items() if k in before} == expected
        assert store.query(Region.entity("drop:x")) == []
        assert store.identity() == identity
        assert store.append(keyed_coord(), KIND, "retry", AppendOptions(idempotency_key=KEY)) == (
            keyed
        )


def keyed_coord() -> Coordinate:
    return Coordinate("drop:k", "c")


def copy_dir(source: Path, dest: Path) -> None:
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(".batpak.lock"))


@pytest.mark.parametrize("step", STEPS)
def test_a_crash_at_each_compaction_step_reopens_to_one_generation(
    tmp_path: Path, step: str
) -> None:
    live = tmp_path / "live"
    image = tmp_path / "image"
    keyed = three_sessions(live)
    store = Store.open(StoreConfig(live))
    identity = store.identity()
    old = observe(store)
    doomed = {e.event_id for e in store.query(Region.entity("drop"))}
    new = {k: v for k, v in old.items() if k not in doomed}
    reached: list[str] = []

    def hook(name: str) -> None:
        reached.append(name)
        if name == step:
            copy_dir(live, image)  # the directory exactly as the dying process leaves it
            raise SimulatedCrash(name)

    with pytest.raises((SimulatedCrash, WriterCrashed)):
        store.compact(retain=not_doomed, _hook=hook)
    assert reached[-1] == step
    assert reached == list(STEPS[: STEPS.index(step) + 1])
    with contextlib.suppress(WriterCrashed):  # a poisoned writer may report itself here
        store._abandon()

    assert "compaction.pending" in leftovers(image)  # the crash left work to resolve
    expected = new if STEPS.index(step) >= COMMITTED_FROM else old
    # Reopen both the live directory (after _abandon) and the copy taken at the crash step.
    for directory in (live, image):
        for attempt in range(2):
            with Store.open(StoreConfig(directory)) as reopened:
                where = (step, directory.name, attempt)
                assert observe(reopened) == expected, where
                assert leftovers(directory) == [], where
                assert reopened.identity() == identity, where
                retry = reopened.append(
                    keyed_coord(), KIND, "retry", AppendOptions(idempotency_key=KEY)
                )
                assert retry == keyed, where
                everything = reopened.query(Region.all())
                assert len({e.global_sequence for e in everything}) == len(everything), where
        with Store.open_read_only(StoreConfig(directory)) as again:
            assert observe(again) == expected


def test_abandon_after_a_failed_compaction_releases_the_store(tmp_path: Path) -> None:
    """The crash recipe itself: ``_abandon()`` after the writer died must still unlock."""
    three_sessions(tmp_path)
    store = Store.open(StoreConfig(tmp_path))

    def hook(name: str) -> None:
        if name == "staged_written":
            raise SimulatedCrash(name)

    with pytest.raises((SimulatedCrash, WriterCrashed)):
        store.compact(retain=not_doomed, _hook=hook)
    store._abandon()
    with Store.open(StoreConfig(tmp_path)) as reopened:
        assert reopened.query(Region.entity("drop:x"))
        assert leftovers(tmp_path) == []
