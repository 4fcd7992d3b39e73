"""Opening and closing a store directory: the lock, store.meta, and torn-tail sealing."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

import msgspec

from batpak import canonical
from batpak.errors import FutureVersion, Io, SideFileCorrupt, StoreLocked
from batpak.fs import OS_FS, Lock, StoreFs
from batpak.segment import encode_footer, encode_header
from batpak.sidefile import unwrap, wrap, write_atomic
from batpak.store._entry import IndexEntry
from batpak.store._recover import Recovered
from batpak.store._segments import sidx_row

LOCK_NAME = ".batpak.lock"


def acquire_lock(directory: Path, mode: str, fs: StoreFs = OS_FS) -> Lock:
    """Take the exclusive, non-blocking directory lock, held until released."""
    try:
        return fs.lock(directory / LOCK_NAME)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise StoreLocked(str(directory), mode) from None
        raise Io(f"cannot lock {directory}: {exc}") from exc


def seal_torn_segment(
    directory: Path, recovered: Recovered, created_ns: int, fs: StoreFs = OS_FS
) -> None:
    """Replace a newest segment that ends in torn bytes by its whole prefix plus a footer.

    The reference ignores a torn tail only on the newest segment, and every open adds a newer
    one, so the next open would refuse the store. Sealing the CRC-valid prefix under a trusted
    SDX3 footer keeps the store openable (by either implementation) without destroying
    evidence: the original bytes stay beside it as ``NNNNNN.torn``. A newest segment whose
    header was cut short by a crash becomes an empty, sealed segment the same way.
    """
    if not recovered.segments:
        return
    last = recovered.segments[-1]
    if last.sealed or (last.header_ok and last.frames_end == last.size):
        return
    if last.header_ok:
        rows = [sidx_row(e) for e in recovered.entries if e.segment_id == last.segment_id]
        whole = fs.read(last.path, 0, last.frames_end) + encode_footer(rows, last.frames_end)
    else:
        header = encode_header(last.segment_id, created_ns)
        whole = header + encode_footer([], len(header))
    temporary = last.path.with_name(last.path.name + ".seal-tmp")
    handle = fs.create(temporary, exclusive=False)
    try:
        handle.write(whole)
        handle.sync()
    finally:
        handle.close()
    evidence = last.path.with_suffix(".torn")
    if not fs.exists(evidence):
        fs.link(last.path, evidence)
    fs.sync_dir(directory)
    fs.replace(temporary, last.path)
    fs.sync_dir(directory)


def open_report(
    path_kind: str, restored: int, tail: int, elapsed_us: int, phases: tuple[int, ...]
) -> bytes:
    """The OPEN_COMPLETED payload: the reference's OpenIndexReport map, in its key order."""
    plan_us, interner_us, restore_us, hidden_us = phases
    return canonical.encode(
        {
            "path": path_kind,
            "restored_entries": restored,
            "tail_entries": tail,
            "elapsed_us": elapsed_us,
            "phase_plan_build_us": plan_us,
            "phase_interner_us": interner_us,
            "phase_restore_index_us": restore_us,
            "phase_hidden_ranges_us": hidden_us,
            "unknown_reserved_system_kind_fallbacks": 0,
            "unknown_reserved_system_kind_histogram": {},
            "unknown_reserved_effect_kind_fallbacks": 0,
            "unknown_reserved_effect_kind_histogram": {},
            "cumulative_unknown_reserved_system_kind_fallbacks": 0,
            "cumulative_unknown_reserved_system_kind_histogram": {},
            "cumulative_unknown_reserved_effect_kind_fallbacks": 0,
            "cumulative_unknown_reserved_effect_kind_histogram": {},
        }
    )


def copy_prefix(source: Path, dest: Path, limit: int | None, fs: StoreFs = OS_FS) -> None:
    """Copy a file (or its first ``limit`` bytes) and fsync the copy."""
    reader = fs.open_read(source)
    try:
        writer = fs.create(dest, exclusive=False)
        try:
            offset = 0
            while limit is None or offset < limit:
                want = 1 << 20 if limit is None else min(1 << 20, limit - offset)
                chunk = reader.pread(want, offset)
                if not chunk:
                    break
                writer.write(chunk)
                offset += len(chunk)
            writer.sync()
        finally:
            writer.close()
    finally:
        reader.close()


# The reference's other side files, which this implementation does not read. A version newer
# than the reference's must still refuse the open rather than be silently skipped.
_FOREIGN_SIDE_FILES = (
    ("index.fbati", b"FBATIX", 5),
    ("index.ckpt", b"FBATCK", 6),
    ("visibility_ranges.fbv", b"FBATVR", 2),
)


def refuse_future_side_files(directory: Path, fs: StoreFs = OS_FS) -> None:
    for name, magic, newest in _FOREIGN_SIDE_FILES:
        try:
            head = fs.read(directory / name, 0, 8)
        except FileNotFoundError:
            continue
        if head[:6] == magic and int.from_bytes(head[6:8], "little") > newest:
            raise FutureVersion(
                f"{name} has version {int.from_bytes(head[6:8], 'little')}; "
                f"the newest known is {newest}"
            )


HIDDEN_NAME = "visibility_ranges.fbv"
HIDDEN_MAGIC = b"FBATVR"
HIDDEN_VERSION = 2


class _Range(msgspec.Struct):
    start: int
    end: int


class _LaneRanges(msgspec.Struct):
    lane: int
    ranges: list[_Range]


class _HiddenRanges(msgspec.Struct):
    ranges: list[_Range] = msgspec.field(default_factory=list)
    lane_ranges: list[_LaneRanges] = msgspec.field(default_factory=list)


def _read_hidden(directory: Path, fs: StoreFs) -> _HiddenRanges | None:
    path = directory / HIDDEN_NAME
    try:
        data = fs.read(path)
    except FileNotFoundError:
        return None
    try:
        _, body = unwrap(path, data, HIDDEN_MAGIC, HIDDEN_VERSION)
        return msgspec.msgpack.decode(body, type=_HiddenRanges)
    except (SideFileCorrupt, ValueError, RecursionError) as exc:
        raise SideFileCorrupt(f"{HIDDEN_NAME} cannot be trusted: {exc}") from exc


def persist_cancelled(directory: Path, span: tuple[int, int], fs: StoreFs = OS_FS) -> None:
    """Add ``span`` to ``visibility_ranges.fbv`` (merged and sorted, as the reference writes
    it), atomically. Damage in the existing file refuses rather than forgets old ranges."""
    known = _read_hidden(directory, fs) or _HiddenRanges()
    merged: list[tuple[int, int]] = []
    for start, end in sorted([(r.start, r.end) for r in known.ranges] + [span]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    body = canonical.encode(_HiddenRanges([_Range(s, e) for s, e in merged], known.lane_ranges))
    write_atomic(directory / HIDDEN_NAME, wrap(HIDDEN_MAGIC, HIDDEN_VERSION, body), fs)


def hidden_filter(directory: Path, fs: StoreFs = OS_FS) -> Callable[[IndexEntry], bool] | None:
    """Which committed events readers must not see: the half-open global-sequence ranges of
    cancelled visibility fences that the reference records in ``visibility_ranges.fbv``."""
    hidden = _read_hidden(directory, fs)
    if hidden is None:
        return None
    spans = [(r.start, r.end) for r in hidden.ranges]
    by_lane = {lane.lane: [(r.start, r.end) for r in lane.ranges] for lane in hidden.lane_ranges}
    if not spans and not by_lane:
        return None

    def is_hidden(entry: IndexEntry) -> bool:
        seq = entry.global_sequence
        if any(start <= seq < end for start, end in spans):
            return True
        return any(start <= seq < end for start, end in by_lane.get(entry.lane, ()))

    return is_hidden
