"""Compaction: merge sealed segments into one, optionally dropping events, crash-safe.

The steps follow the reference (facts in format.md §7 and the compaction.pending marker): a
marker names the work, the lowest source is renamed aside, the merged segment is staged under
a temporary name, ``store.meta`` records the commit (the commit point), then the staged file
takes the final name and the sources are deleted. An open that finds the marker rolls the work
forward if ``store.meta`` holds its commit, and back otherwise, so a crash at any step reopens
to the old generation or the new one, never a mix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from batpak import canonical
from batpak.errors import FailClosedError, FutureVersion, SideFileCorrupt
from batpak.fs import OS_FS, ReadFile, StoreFs
from batpak.ids import uuid7
from batpak.segment import encode_footer, encode_header, segment_name
from batpak.sidefile import unwrap, wrap, write_atomic
from batpak.store._authority import (
    CompactionCommit,
    KeyRecords,
    StoreMeta,
    publish_idempotency,
    settled,
)
from batpak.store._entry import IndexEntry
from batpak.store._recover import list_segments
from batpak.store._segments import sidx_row

PENDING_NAME = "compaction.pending"
ACCELERATORS = ("index.cols", "index.fbati", "index.ckpt")
PENDING_MAGIC = b"FBATCM"
PENDING_VERSION = 2
Retain = Callable[[IndexEntry], bool]
Hook = Callable[[str], None]


class CompactionRecoveryRefused(FailClosedError):
    """An interrupted compaction cannot be resolved safely; the store is left untouched."""


class PendingCompaction(msgspec.Struct):
    compaction_id: bytes
    lineage: bytes
    merged_id: int
    source_segment_ids: list[int]
    expected_authority_image_id: bytes | None = None


@dataclass(frozen=True, slots=True)
class CompactionResult:
    """What ``Store.compact`` did."""

    outcome: str
    segments_removed: int = 0
    bytes_reclaimed: int = 0
    merged_segment_id: int | None = None
    events_dropped: int = 0


def _src(directory: Path, segment_id: int) -> Path:
    return directory / (segment_name(segment_id) + ".compact-src")


def _staged(directory: Path, segment_id: int) -> Path:
    return directory / (segment_name(segment_id) + ".compact-new")


def _clear_marker(directory: Path, fs: StoreFs) -> None:
    fs.remove(directory / PENDING_NAME)
    fs.sync_dir(directory)


def resolve_pending(
    directory: Path, meta: StoreMeta | None, writable: bool, fs: StoreFs = OS_FS
) -> bool:
    """Finish or undo an interrupted compaction; True when a repair ran."""
    path = directory / PENDING_NAME
    try:
        data = fs.read(path)
    except FileNotFoundError:
        return False
    if not writable:
        raise CompactionRecoveryRefused("a pending compaction needs a writable open to resolve")
    try:
        _, body = unwrap(path, data, PENDING_MAGIC, PENDING_VERSION)
        marker = msgspec.msgpack.decode(body, type=PendingCompaction)
    except (SideFileCorrupt, ValueError, RecursionError) as exc:
        raise CompactionRecoveryRefused(f"compaction.pending is corrupt: {exc}") from exc
    except FutureVersion:
        raise
    if meta is None:
        raise CompactionRecoveryRefused("compaction.pending exists but store.meta does not")
    if marker.lineage != meta.lineage:
        raise CompactionRecoveryRefused("compaction.pending belongs to another store lineage")
    merged = marker.merged_id
    final, src, staged = directory / segment_name(merged), _src(directory, merged), None
    staged = _staged(directory, merged)
    commit = meta.last_compaction_commit
    if (
        commit is not None
        and commit.compaction_id == marker.compaction_id
        and commit.merged_segment_id == merged
    ):
        retire = [directory / segment_name(i) for i in marker.source_segment_ids if i != merged]
        retire.append(src)
        if fs.exists(final):
            retire.append(staged)
        elif fs.exists(staged):
            fs.replace(staged, final)
            fs.sync_dir(directory)
        else:
            raise CompactionRecoveryRefused(f"merged segment {merged} is missing")
        for stale in retire:
            fs.remove(stale)
    else:
        if fs.exists(src) and fs.exists(final):
            raise CompactionRecoveryRefused(f"both {src.name} and {final.name} exist")
        if fs.exists(src):
            fs.replace(src, final)
        elif not fs.exists(final):
            raise CompactionRecoveryRefused(f"source segment {merged} is missing")
        for other in marker.source_segment_ids:
            if not fs.exists(directory / segment_name(other)):
                raise CompactionRecoveryRefused(f"source segment {other} is missing")
        fs.remove(staged)
    fs.sync_dir(directory)
    _clear_marker(directory, fs)
    return True


def compact(
    directory: Path,
    active_id: int,
    entries: list[IndexEntry],
    meta: StoreMeta,
    keys: KeyRecords,
    retain: Retain | None,
    min_segments: int,
    clock_us: Callable[[], int],
    hook: Hook,
    fs: StoreFs = OS_FS,
) -> tuple[CompactionResult, list[IndexEntry] | None, StoreMeta]:
    """Merge every sealed segment; return the result, the new entries and the new meta."""
    sealed = [i for i, _ in list_segments(directory, fs) if i < active_id]
    if len(sealed) < min_segments:
        return CompactionResult("skipped"), None, meta
    merged = sealed[0]
    sources = set(sealed)
    compaction_id = uuid7(clock_us()).to_bytes(16, "big")
    marker = PendingCompaction(
        compaction_id,
        meta.lineage,
        merged,
        sealed,
        uuid7(clock_us()).to_bytes(16, "big"),
    )
    before = sum(fs.size(directory / segment_name(i)) for i in sealed)
    for accelerator in ACCELERATORS:  # they describe the old layout; reopen rebuilds
        fs.remove(directory / accelerator)
    write_atomic(
        directory / PENDING_NAME,
        wrap(PENDING_MAGIC, PENDING_VERSION, canonical.encode(marker)),
        fs,
    )
    hook("marker_written")
    final, src, staged = (
        directory / segment_name(merged),
        _src(directory, merged),
        _staged(directory, merged),
    )
    fs.remove(src)
    fs.replace(final, src)
    fs.sync_dir(directory)
    hook("source_renamed")
    try:
        kept, dropped, rest = _stage(directory, merged, sources, entries, retain, clock_us, fs)
        hook("staged_written")
        survivors = {e.event_id for e in kept}
        for key, record in settled(keys).items():
            if key not in survivors and record.disk_pos_segment in sources:
                record.event_evicted = True
        commit = CompactionCommit(compaction_id, b"", merged, sealed)
        meta = publish_idempotency(directory, meta, keys, clock_us(), commit, fs)
    except Exception:
        fs.remove(staged)
        fs.replace(src, final)
        fs.sync_dir(directory)
        _clear_marker(directory, fs)
        raise
    hook("committed")
    fs.replace(staged, final)
    fs.sync_dir(directory)
    hook("renamed")
    for segment_id in sealed[1:]:
        fs.remove(directory / segment_name(segment_id))
    fs.remove(src)
    fs.sync_dir(directory)
    hook("sources_removed")
    _clear_marker(directory, fs)
    result = CompactionResult(
        "performed",
        segments_removed=len(sealed) - 1,
        bytes_reclaimed=max(before - fs.size(final), 0),
        merged_segment_id=merged,
        events_dropped=dropped,
    )
    return result, kept + rest, meta


def _stage(
    directory: Path,
    merged: int,
    sources: set[int],
    entries: list[IndexEntry],
    retain: Retain | None,
    clock_us: Callable[[], int],
    fs: StoreFs,
) -> tuple[list[IndexEntry], int, list[IndexEntry]]:
    """Write the merged segment under its staged name; surviving frames keep their bytes."""
    header = encode_header(merged, max(clock_us(), 0) * 1000)
    kept: list[IndexEntry] = []
    rest: list[IndexEntry] = []
    dropped = 0
    handles: dict[int, ReadFile] = {}
    staged = _staged(directory, merged)
    fs.remove(staged)
    out = fs.create(staged, exclusive=True)
    try:
        out.write(header)
        offset = len(header)
        for entry in entries:
            if entry.segment_id not in sources:
                rest.append(entry)
                continue
            if retain is not None and not retain(entry):
                dropped += 1
                continue
            if entry.segment_id not in handles:
                path = (
                    _src(directory, merged)
                    if entry.segment_id == merged
                    else (directory / segment_name(entry.segment_id))
                )
                handles[entry.segment_id] = fs.open_read(path)
            frame = handles[entry.segment_id].pread(entry.length, entry.offset)
            if len(frame) != entry.length:
                raise OSError(f"short read of segment {entry.segment_id} at {entry.offset}")
            out.write(frame)
            kept.append(msgspec.structs.replace(entry, segment_id=merged, offset=offset))
            offset += entry.length
        out.write(encode_footer([sidx_row(e) for e in kept], offset))
        out.sync()
    finally:
        out.close()
        for handle in handles.values():
            handle.close()
    return kept, dropped, rest
