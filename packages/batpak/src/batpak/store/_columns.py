"""The columnar base of the index, and the checkpoint file that stores it (``index.cols``).

A store reopened from a checkpoint must not pay per event: the base keeps every column in a
flat array (``array`` for numbers, one ``bytes`` blob for ids and hashes) that loads with a
memory copy, and materializes an ``IndexEntry`` only when a reader asks for one. Lookups by
id bisect a stored id order; per-entity, per-scope and per-kind row lists are stored too.

The file is private to this implementation (the reference ignores it). It records the length
of every segment it covers; any difference, a bad CRC, or a newer version makes open ignore
it and rebuild from the segments, so it is never trusted blindly.
"""

from __future__ import annotations

import bisect
import struct
from array import array
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import msgspec
from zlib_ng.zlib_ng import crc32

from batpak.fs import OS_FS, StoreFs
from batpak.sidefile import PREFIX, write_atomic
from batpak.store._entry import IndexEntry

NAME = "index.cols"
MAGIC = b"FBATPC"
VERSION = 1
_LEN = struct.Struct("<Q")
_NUMERIC = (
    ("entity", "I"),
    ("scope", "I"),
    ("kind", "H"),
    ("wall", "Q"),
    ("clock", "I"),
    ("lane", "I"),
    ("depth", "I"),
    ("seq", "Q"),
    ("seg", "Q"),
    ("off", "Q"),
    ("length", "I"),
    ("order", "I"),
)


class Frames(NamedTuple):
    """Where a run of events' frames are, column by column (the replay path's batches)."""

    sequences: Sequence[int]
    segments: Sequence[int]
    offsets: Sequence[int]
    lengths: Sequence[int]
    ids: bytes
    """The events' ids, 16 big-endian bytes each, joined."""


_BLOBS = (("ids", 16), ("corr", 16), ("caus", 16), ("prev", 32), ("hash", 32))


class Header(msgspec.Struct):
    count: int
    next_sequence: int
    segments: list[tuple[int, int]]
    strings: list[str]
    extensions: dict[int, dict[str, bytes]]
    groups: dict[str, list[tuple[int, int, int]]]


class ColumnBase:
    """An immutable, commit-ordered block of index entries held column by column."""

    def __init__(self, header: Header, columns: dict[str, array[int]], blobs: dict[str, bytes]):
        self.count = header.count
        self.next_sequence = header.next_sequence
        self.segments = header.segments
        self._strings = header.strings
        self._intern = {s: i for i, s in enumerate(header.strings)}
        self._ext = header.extensions
        self._cols = columns
        # Most events are their own correlation and have no causation: then those two
        # columns (32 of about 200 bytes an event) are not held, only derived.
        if blobs["corr"] == blobs["ids"]:
            blobs = {**blobs, "corr": b""}
        if blobs["caus"] == bytes(len(blobs["caus"])):
            blobs = {**blobs, "caus": b""}
        self._blobs = blobs
        self._groups: dict[str, dict[int, tuple[int, int]]] = {
            name: {key: (start, end) for key, start, end in spans}
            for name, spans in header.groups.items()
        }
        self._rows = columns["rows"]
        self._raw_groups = header.groups

    # -- building and storing -------------------------------------------------------------

    @classmethod
    def build(
        cls, entries: Iterable[IndexEntry], next_sequence: int, segments: list[tuple[int, int]]
    ) -> ColumnBase:
        strings: dict[str, int] = {}
        cols = {name: array(code) for name, code in _NUMERIC if name != "order"}
        blobs: dict[str, list[bytes]] = {name: [] for name, _ in _BLOBS}
        extensions: dict[int, dict[str, bytes]] = {}
        ids: list[int] = []
        for row, e in enumerate(entries):
            cols["entity"].append(strings.setdefault(e.entity, len(strings)))
            cols["scope"].append(strings.setdefault(e.scope, len(strings)))
            cols["kind"].append(e.event_kind)
            cols["wall"].append(e.wall_ms)
            cols["clock"].append(e.clock)
            cols["lane"].append(e.lane)
            cols["depth"].append(e.depth)
            cols["seq"].append(e.global_sequence)
            cols["seg"].append(e.segment_id)
            cols["off"].append(e.offset)
            cols["length"].append(e.length)
            ids.append(e.event_id)
            blobs["ids"].append(e.event_id.to_bytes(16, "big"))
            blobs["corr"].append(e.correlation_id.to_bytes(16, "big"))
            blobs["caus"].append((e.causation_id or 0).to_bytes(16, "big"))
            blobs["prev"].append(e.prev_hash)
            blobs["hash"].append(e.event_hash)
            if e.receipt_extensions:
                extensions[row] = dict(e.receipt_extensions)
        count = len(ids)
        cols["order"] = array("I", sorted(range(count), key=ids.__getitem__))
        groups: dict[str, list[tuple[int, int, int]]] = {}
        rows = array("I")
        for name in ("entity", "scope", "kind"):
            members: dict[int, array[int]] = {}
            for row, key in enumerate(cols[name]):
                members.setdefault(key, array("I")).append(row)
            spans = []
            for key, member_rows in members.items():
                spans.append((key, len(rows), len(rows) + len(member_rows)))
                rows.extend(member_rows)
            groups[name] = spans
        cols["rows"] = rows
        header = Header(count, next_sequence, segments, list(strings), extensions, groups)
        return cls(header, cols, {name: b"".join(parts) for name, parts in blobs.items()})

    def write(self, directory: Path, fs: StoreFs = OS_FS) -> None:
        header = msgspec.msgpack.encode(
            Header(
                self.count,
                self.next_sequence,
                self.segments,
                self._strings,
                self._ext,
                self._raw_groups,
            )
        )
        parts = [_LEN.pack(len(header)), header, _LEN.pack(len(self._rows))]
        parts += [self._cols[name].tobytes() for name, _ in _NUMERIC]
        parts.append(self._rows.tobytes())
        parts += [self._blob(name) for name, _ in _BLOBS]
        body = b"".join(parts)
        write_atomic(directory / NAME, PREFIX.pack(MAGIC, VERSION, crc32(body)) + body, fs)

    @classmethod
    def load(
        cls, directory: Path, segments: list[tuple[int, int]], fs: StoreFs = OS_FS
    ) -> ColumnBase | None:
        """The stored base if it is intact and every segment it covers is unchanged."""
        try:
            data = fs.read(directory / NAME)
        except FileNotFoundError:
            return None
        if len(data) < PREFIX.size:
            return None
        magic, version, crc = PREFIX.unpack_from(data)
        body = memoryview(data)[PREFIX.size :]
        if magic != MAGIC or version != VERSION or crc32(body) != crc:
            return None
        try:
            (size,) = _LEN.unpack_from(body)
            header = msgspec.msgpack.decode(body[8 : 8 + size], type=Header)
            at = 8 + size
            (rows_count,) = _LEN.unpack_from(body, at)
            at += 8
            cols: dict[str, array[int]] = {}
            for name, code in _NUMERIC:
                column = array(code)
                end = at + header.count * column.itemsize
                column.frombytes(body[at:end])
                cols[name], at = column, end
            rows = array("I")
            rows.frombytes(body[at : at + rows_count * rows.itemsize])
            at += rows_count * rows.itemsize
            cols["rows"] = rows
            blobs = {}
            for name, width in _BLOBS:
                blobs[name] = bytes(body[at : at + header.count * width])
                at += header.count * width
        except (struct.error, ValueError, RecursionError):
            return None
        if at != len(body) or any(len(b) == 0 and header.count for b in blobs.values()):
            return None
        if not _consistent(header, cols):
            return None
        covered = dict(header.segments)
        reach = max(cols["off"]) + max(cols["length"]) if header.count else 0
        if reach > max(covered.values(), default=0):  # a frame past every covered segment
            return None
        actual = dict(segments)
        if any(actual.get(i) != size for i, size in covered.items()):
            return None
        if any(i not in covered and i < max(covered, default=-1) for i in actual):
            return None
        return cls(header, cols, blobs)

    # -- reading --------------------------------------------------------------------------

    def _blob(self, name: str) -> bytes:
        """A blob column in full, the elided ones rebuilt (for writing the file)."""
        blob = self._blobs[name]
        if blob or not self.count:
            return blob
        return self._blobs["ids"] if name == "corr" else bytes(16 * self.count)

    def entry(self, row: int) -> IndexEntry:
        c, b = self._cols, self._blobs
        event_id = int.from_bytes(b["ids"][row * 16 : row * 16 + 16], "big")
        corr, caus = b["corr"], b["caus"]
        causation = int.from_bytes(caus[row * 16 : row * 16 + 16], "big") if caus else 0
        return IndexEntry(
            event_id=event_id,
            correlation_id=(
                int.from_bytes(corr[row * 16 : row * 16 + 16], "big") if corr else event_id
            ),
            causation_id=causation or None,
            entity=self._strings[c["entity"][row]],
            scope=self._strings[c["scope"][row]],
            event_kind=c["kind"][row],
            wall_ms=c["wall"][row],
            clock=c["clock"][row],
            lane=c["lane"][row],
            depth=c["depth"][row],
            prev_hash=b["prev"][row * 32 : row * 32 + 32],
            event_hash=b["hash"][row * 32 : row * 32 + 32],
            global_sequence=c["seq"][row],
            segment_id=c["seg"][row],
            offset=c["off"][row],
            length=c["length"][row],
            receipt_extensions=self._ext.get(row),
        )

    def find(self, event_id: int) -> IndexEntry | None:
        if not 0 <= event_id < 1 << 128:
            return None
        target = event_id.to_bytes(16, "big")
        ids, order = self._blobs["ids"], self._cols["order"]
        position = bisect.bisect_left(order, target, key=lambda r: ids[r * 16 : r * 16 + 16])
        if (
            position < len(order)
            and ids[order[position] * 16 : order[position] * 16 + 16] == target
        ):
            return self.entry(order[position])
        return None

    def group(self, name: str, value: str | int) -> Sequence[int]:
        """Rows of one entity, scope (by name) or kind (by number), in commit order."""
        key = self._intern.get(value) if isinstance(value, str) else value
        span = None if key is None else self._groups[name].get(key)
        return () if span is None else self._rows[span[0] : span[1]]

    def first_after(self, rows: Sequence[int], sequence: int) -> int:
        """The position in ``rows`` (commit-ordered) of the first row above ``sequence``."""
        return bisect.bisect_right(rows, sequence, key=self._cols["seq"].__getitem__)

    def frames(self, rows: Sequence[int]) -> Frames:
        """Where the frames of ``rows`` (commit-ordered) are, without building entries."""
        c, ids = self._cols, self._blobs["ids"]
        if rows and rows[-1] - rows[0] == len(rows) - 1:  # consecutive rows: plain slices
            a, z = rows[0], rows[-1] + 1
            cut = slice(a, z)
            return Frames(
                c["seq"][cut], c["seg"][cut], c["off"][cut], c["length"][cut], ids[a * 16 : z * 16]
            )
        return Frames(
            [c["seq"][r] for r in rows],
            [c["seg"][r] for r in rows],
            [c["off"][r] for r in rows],
            [c["length"][r] for r in rows],
            b"".join([ids[r * 16 : r * 16 + 16] for r in rows]),
        )

    def names(self, name: str) -> list[str]:
        return [self._strings[key] for key in self._groups[name]]

    def head(self, entity: str, lane: int) -> IndexEntry | None:
        rows = self.group("entity", entity)
        for row in reversed(rows):
            if self._cols["lane"][row] == lane:
                return self.entry(row)
        return None

    def last(self) -> IndexEntry | None:
        return self.entry(self.count - 1) if self.count else None


def _consistent(header: Header, cols: dict[str, array[int]]) -> bool:
    """Every stored row number and string id is in range (a CRC only proves the bytes
    are as written, not that what wrote them was sane)."""
    count, strings = header.count, len(header.strings)
    if count < 0 or not {"entity", "scope", "kind"} <= set(header.groups):
        return False
    if count and (max(cols["entity"]) >= strings or max(cols["scope"]) >= strings):
        return False
    if any(
        not 0 <= span[0] < strings for name in ("entity", "scope") for span in header.groups[name]
    ):
        return False
    if len(cols["order"]) != count or (count and max(cols["order"]) >= count):
        return False
    return not cols["rows"] or max(cols["rows"]) < count
