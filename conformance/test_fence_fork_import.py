"""Visibility fences, forks and imports, through the public API and the bytes on disk.

PROVES: INV-FENCE-CANCELLED-STAYS-HIDDEN (writes made under a cancelled fence are on disk,
fsynced, yet absent from every read path after a reopen from the fast-start checkpoint, a
rebuild from the segments, a read-only open, a snapshot and a fork; removing the cancelled
ranges file brings exactly them back, so they were durable, not lost),
INV-FORK-ISOLATION (a fork opens on its own after the source directory is deleted, keeps the
source identity, shares no later write in either direction, has its own copy of every
idempotency key; snapshot and fork boot, and both are refused during an active fence; a fork
that hits a full disk, through the public ``StoreConfig.with_fs`` seam, publishes nothing),
INV-IMPORT-CONTENT-ISOMORPHISM (every imported event keeps its payload bytes, content hash,
coordinate, kind and correlation id; gets a new id, sequence and chain link; loses its
causation; a second import is a no-op; a store importing itself stops at the frontier it saw).
CATCHES: fenced events leaking to readers or subscribers, cancelled ranges that are not
persisted (or not copied by snapshot and fork, or not honoured by the checkpoint), a fork that
shares mutable files or keys with its source, an import that rewrites payloads, keeps foreign
causation, re-imports on retry, or chases its own output forever.
SEEDED: the event mix (entities, batch sizes, payload sizes, causation links) comes from a
fixed seed per test.
"""

from __future__ import annotations

import errno
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
from refstore import b3, frame_fields, parse_segment, segment_files

from batpak import (
    AppendOptions,
    AppendReceipt,
    BatchAppendItem,
    Coordinate,
    ImportOptions,
    ImportProvenance,
    ImportSelector,
    IndexEntry,
    NotFound,
    Region,
    RetryableError,
    Store,
    StoreConfig,
    StoreError,
    VisibilityFenceActive,
)
from batpak.fs import OS_FS, WriteFile

KIND = 0xE0F1
SCOPE = "scope:ffi"


def _frames_on_disk(directory: Path) -> dict[int, dict[str, object]]:
    """Every CRC-valid frame in the store's segments, by event id (markers excluded)."""
    found = {}
    for path in segment_files(directory):
        for frame in parse_segment(path).frames:
            fields = frame_fields(frame)
            if fields["entity"] != "_batch":
                found[int(str(fields["event_id"]))] = fields
    return found


def _user_ids(store: Store) -> list[int]:
    return [e.event_id for e in store.query(Region.scope(SCOPE))]


def _assert_hidden(store: Store, hidden: list[AppendReceipt], visible: list[int]) -> None:
    assert _user_ids(store) == visible
    every = {e.event_id for e in store.query(Region.all())}
    after = {e.event_id for e in store.query_entries_after(Region.all(), None, 10_000)}
    cursor = store.cursor(Region.all())
    polled = {e.event_id for e in cursor.poll_batch(10_000)}
    for receipt in hidden:
        with pytest.raises(NotFound):
            store.get(receipt.event_id)
        assert receipt.event_id not in every | after | polled
        entity = store.get(visible[0]).coordinate.entity
        assert receipt.event_id not in {e.event_id for e in store.by_entity(entity)}
    assert store.verify_chain().is_intact()


@pytest.mark.invariant("INV-FENCE-CANCELLED-STAYS-HIDDEN")
def test_cancelled_fence_writes_are_durable_and_stay_hidden(tmp_path: Path) -> None:
    rng = random.Random(0xFE9CE)
    home = tmp_path / "store"
    config = StoreConfig(home, segment_max_bytes=4096)  # rotation happens under the fence
    coords = [Coordinate(f"acct:{i}", SCOPE) for i in range(3)]
    with Store.open(config) as store:
        visible = [store.append(c, KIND, {"before": i}).event_id for i, c in enumerate(coords)]
        watcher = store.subscribe_lossy(Region.scope(SCOPE))
        fence = store.begin_visibility_fence()
        hidden: list[AppendReceipt] = []
        while len(hidden) < 40:
            blob = rng.randbytes(rng.randrange(10, 300))
            if rng.random() < 0.3:
                items = [
                    BatchAppendItem.new(rng.choice(coords), KIND, {"blob": blob, "j": j})
                    for j in range(rng.randrange(1, 5))
                ]
                hidden += store.append_batch(items)
            else:
                hidden.append(store.append(rng.choice(coords), KIND, {"blob": blob}))
        _assert_hidden(store, hidden, visible)
        fence.cancel()
        assert store.frontier().durable.global_sequence >= hidden[-1].global_sequence
        assert store.frontier().visible.global_sequence < hidden[0].global_sequence
        for coord in coords:
            visible.append(store.append(coord, KIND, {"after": coord.entity}).event_id)
        assert [note.event_id for note in iter(lambda: watcher.recv(timeout=0.2), None)] == (
            visible[3:]
        )
        _assert_hidden(store, hidden, visible)
    on_disk = _frames_on_disk(home)
    assert len(segment_files(home)) > 2
    for receipt in hidden:  # durable: every hidden frame is in the segments, CRC-valid
        assert b3(on_disk[receipt.event_id]["payload"]) == receipt.content_hash  # type: ignore[arg-type]

    with Store.open(config) as store:  # fast start: the checkpoint written at close
        _assert_hidden(store, hidden, visible)
        store.snapshot(tmp_path / "snapshot")
        store.fork(tmp_path / "fork")
    for name in ("index.cols", "index.ckpt", "index.fbati"):
        (home / name).unlink(missing_ok=True)
    with Store.open(config) as store:  # no checkpoint: rebuilt from the segments
        _assert_hidden(store, hidden, visible)
    with Store.open_read_only(config) as store:
        _assert_hidden(store, hidden, visible)
    for copy in ("snapshot", "fork"):
        with Store.open(StoreConfig(tmp_path / copy)) as store:
            _assert_hidden(store, hidden, visible)

    # Control: without the cancelled ranges the very same bytes are events again.
    shutil.copytree(tmp_path / "snapshot", tmp_path / "control")
    (tmp_path / "control" / "visibility_ranges.fbv").unlink()
    (tmp_path / "control" / "index.cols").unlink(missing_ok=True)
    with Store.open_read_only(StoreConfig(tmp_path / "control")) as store:
        revived = [store.get(r.event_id) for r in hidden]
        assert [b3(e.event.payload) for e in revived] == [r.content_hash for r in hidden]


@pytest.mark.invariant("INV-FORK-ISOLATION")
def test_fork_is_self_contained_isolated_and_owns_its_idempotency(tmp_path: Path) -> None:
    source_dir, fork_dir = tmp_path / "source", tmp_path / "fork"
    coord = Coordinate("acct:fork", SCOPE)
    with Store.open(StoreConfig(source_dir)) as store:  # a sealed segment to share
        sealed = [store.append(coord, KIND, {"i": i}).event_id for i in range(5)]
    sealed_bytes = {p.name: p.read_bytes() for p in segment_files(source_dir)}
    with Store.open(StoreConfig(source_dir)) as store:
        keyed = store.append(coord, KIND, "keyed", AppendOptions(idempotency_key=0xF0)).event_id
        with store.begin_visibility_fence():
            for refused in (store.snapshot, store.fork):
                with pytest.raises(VisibilityFenceActive):
                    refused(tmp_path / "refused")
            assert not (tmp_path / "refused").exists() or not list((tmp_path / "refused").iterdir())
        for bad in (source_dir, source_dir / ".." / "source"):
            with pytest.raises(StoreError):
                store.fork(bad)
        report = store.fork_with_evidence(fork_dir)
        assert report.shared_segment_ids  # the sealed segment is shared, not copied
        identity = store.identity()
        taken = store.query(Region.all())
        only_source = store.append(coord, KIND, "source only").event_id
        source_key = store.append(coord, KIND, "sk", AppendOptions(idempotency_key=0xF1))
        store.snapshot(tmp_path / "snapshot")
    with Store.open(StoreConfig(tmp_path / "snapshot")) as snapshot:  # a snapshot boots
        assert only_source in _user_ids(snapshot)
    assert {p.name: p.read_bytes() for p in segment_files(source_dir)}.items() >= (
        sealed_bytes.items()
    )

    shutil.rmtree(source_dir)  # self-contained: the fork needs nothing from the source
    with Store.open(StoreConfig(fork_dir)) as fork:
        assert fork.identity() == identity
        assert fork.query(Region.all())[: len(taken)] == taken
        assert _user_ids(fork) == [*sealed, keyed]
        retry = fork.append(coord, KIND, "retry", AppendOptions(idempotency_key=0xF0))
        assert retry.event_id == keyed
        assert len(_user_ids(fork)) == 6
        other = fork.append(coord, KIND, "fk", AppendOptions(idempotency_key=0xF1))
        assert fork.read_raw(other.event_id) == b"\xa2fk"  # the source's key is not here
        assert only_source not in _user_ids(fork)
        assert fork.verify_chain().is_intact()
        mine = fork.append(coord, KIND, "fork only").event_id
    with Store.open(StoreConfig(tmp_path / "snapshot")) as source_copy:
        assert mine not in _user_ids(source_copy)
        assert source_copy.read_raw(source_key.event_id) == b"\xa2sk"


class _FullDiskOutside:
    """A filesystem (the public ``StoreConfig.with_fs`` seam) that reports ENOSPC for every
    file created or linked outside ``home`` once armed: the store itself keeps working."""

    def __init__(self, home: Path) -> None:
        self.home = home.resolve()
        self.armed = False
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(OS_FS, name)

    def _check(self, path: Path) -> None:
        if self.armed and not path.resolve().is_relative_to(self.home):
            self.refused += 1
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

    def create(self, path: Path, *, exclusive: bool) -> WriteFile:
        self._check(path)
        return OS_FS.create(path, exclusive=exclusive)

    def link(self, source: Path, target: Path) -> None:
        self._check(target)
        OS_FS.link(source, target)


@pytest.mark.invariant("INV-FORK-ISOLATION")
def test_a_fork_that_hits_a_full_disk_publishes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "source"
    disk = _FullDiskOutside(home)
    config = StoreConfig(home).with_fs(disk)
    with Store.open(config) as store:
        store.append(Coordinate("acct:full", SCOPE), KIND, "sealed soon")
    with Store.open(config) as store:
        kept = store.append(Coordinate("acct:full", SCOPE), KIND, "active")
        disk.armed = True
        with pytest.raises(RetryableError):
            store.fork(tmp_path / "fork")
        assert disk.refused
        assert sorted(p.name for p in tmp_path.iterdir()) == ["source"]  # nothing published
        disk.armed = False
        store.fork(tmp_path / "fork")  # the same fork succeeds once there is room
        after = store.append(Coordinate("acct:full", SCOPE), KIND, "source goes on")
    with Store.open(StoreConfig(tmp_path / "fork")) as fork:
        assert kept.event_id in _user_ids(fork)
        assert after.event_id not in _user_ids(fork)


def _chain_ok(directory: Path, entries: list[IndexEntry]) -> None:
    """Each event's stored prev_hash is its entity's previous event hash, from the frames."""
    frames = _frames_on_disk(directory)
    heads: dict[str, bytes] = {}
    for entry in entries:
        fields = frames[entry.event_id]
        assert fields["prev_hash"] == heads.get(entry.entity, bytes(32))
        heads[entry.entity] = b3(fields["payload"])  # type: ignore[arg-type]


@pytest.mark.invariant("INV-IMPORT-CONTENT-ISOMORPHISM")
def test_import_keeps_content_regenerates_identity_and_is_idempotent(tmp_path: Path) -> None:
    rng = random.Random(0x1A9027)
    coords = [Coordinate(f"acct:{i}", SCOPE) for i in range(4)]
    with Store.open(StoreConfig(tmp_path / "src")) as source:
        originals: list[AppendReceipt] = []
        for i in range(30):
            options = AppendOptions()
            if originals and rng.random() < 0.5:
                cause = rng.choice(originals)
                options = AppendOptions(correlation_id=cause.event_id, causation_id=cause.event_id)
            payload = {"i": i, "blob": rng.randbytes(rng.randrange(0, 64))}
            originals.append(source.append(rng.choice(coords), KIND, payload, options))
        with Store.open(StoreConfig(tmp_path / "dst")) as dest:
            for coord in coords[:2]:
                dest.append(coord, KIND, "already here")
            before = dest.frontier().visible.global_sequence
            report = dest.import_events(source, ImportSelector.all(), ImportOptions("src-1"))
            assert (report.imported, report.deduplicated) == (len(originals), 0)
            copies = {}
            for entry in dest.query(Region.scope(SCOPE)):
                carried = ImportProvenance.of(entry.receipt_extensions)
                if carried is not None:
                    copies[int.from_bytes(carried.source_event_id, "big")] = entry
            assert len(copies) == len(originals)
            for original in originals:
                copy = copies[original.event_id]
                src, dst = source.get(original.event_id), dest.get(copy.event_id)
                assert dst.event.payload == src.event.payload
                assert dst.event.header.content_hash == src.event.header.content_hash
                assert b3(dst.event.payload) == original.content_hash
                assert dst.event.header.correlation_id == src.event.header.correlation_id
                assert (dst.coordinate, dst.event.header.event_kind) == (
                    src.coordinate,
                    src.event.header.event_kind,
                )
                assert dst.event.header.causation_id is None
                assert copy.event_id != original.event_id
                assert copy.global_sequence > before
            moved = [
                (source.get(o.event_id).event.hash_chain, dest.get(copies[o.event_id].event_id))
                for o in originals
            ]
            assert any(a != b.event.hash_chain for a, b in moved)  # links were regenerated
            assert dest.verify_chain().is_intact()

            count = len(dest.query(Region.all()))
            again = dest.import_events(source, ImportSelector.all(), ImportOptions("src-1"))
            assert (again.imported, again.deduplicated) == (0, len(originals))
            assert len(dest.query(Region.all())) == count
            entries = dest.query(Region.scope(SCOPE))
        _chain_ok(tmp_path / "dst", entries)

        # Same store: bounded by the frontier seen at the call, then a no-op.
        mine = len(_user_ids(source))
        first = source.import_events(source, ImportSelector.all(), ImportOptions("self", 7))
        assert first.imported == mine
        assert len(_user_ids(source)) == 2 * mine
        second = source.import_events(source, ImportSelector.all(), ImportOptions("self"))
        assert (second.imported, second.deduplicated, second.skipped_reimported) == (
            0,
            mine,
            mine,
        )
        assert len(_user_ids(source)) == 2 * mine
