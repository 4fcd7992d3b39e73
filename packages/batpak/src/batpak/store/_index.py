"""The in-memory index: every visible event's metadata, in commit order, with lookups.

The writer thread is the only mutator; readers take a consistent prefix under a short lock.
Payloads are not held here: reads fetch them from segments by disk position.
"""

from __future__ import annotations

import bisect
import heapq
import threading
from collections.abc import Iterable, Iterator

import msgspec

from batpak.coordinate import Coordinate, Region, entity_matches_prefix


class IndexEntry(msgspec.Struct, frozen=True, gc=False):
    """One committed event's metadata, as the index holds it."""

    event_id: int
    correlation_id: int
    causation_id: int | None
    entity: str
    scope: str
    event_kind: int
    wall_ms: int
    clock: int
    lane: int
    depth: int
    prev_hash: bytes
    event_hash: bytes
    global_sequence: int
    segment_id: int
    offset: int
    length: int
    receipt_extensions: dict[str, bytes] | None = None

    @property
    def coord(self) -> Coordinate:
        return Coordinate(self.entity, self.scope)


def _seq(entry: IndexEntry) -> int:
    return entry.global_sequence


class Index:
    """Commit-ordered entries plus id, entity, scope, kind and chain-head lookups."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: list[IndexEntry] = []
        self.by_id: dict[int, IndexEntry] = {}
        self.by_entity: dict[str, list[IndexEntry]] = {}
        self.by_scope: dict[str, list[IndexEntry]] = {}
        self.by_kind: dict[int, list[IndexEntry]] = {}
        self.heads: dict[tuple[str, int], IndexEntry] = {}

    def insert(self, batch: Iterable[IndexEntry]) -> None:
        """Publish entries (in commit order) atomically with respect to readers."""
        with self.lock:
            for entry in batch:
                self.entries.append(entry)
                self.by_id[entry.event_id] = entry
                self.by_entity.setdefault(entry.entity, []).append(entry)
                self.by_scope.setdefault(entry.scope, []).append(entry)
                self.by_kind.setdefault(entry.event_kind, []).append(entry)
                self.heads[(entry.entity, entry.lane)] = entry

    def replace(self, entries: list[IndexEntry]) -> None:
        """Swap in a whole new history atomically (compaction). Old snapshots stay valid."""
        fresh = Index()
        fresh.insert(entries)
        with self.lock:
            self.entries = fresh.entries
            self.by_id = fresh.by_id
            self.by_entity = fresh.by_entity
            self.by_scope = fresh.by_scope
            self.by_kind = fresh.by_kind
            self.heads = fresh.heads

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, event_id: int) -> IndexEntry | None:
        return self.by_id.get(event_id)

    def head(self, entity: str, lane: int = 0) -> IndexEntry | None:
        return self.heads.get((entity, lane))

    def last_sequence(self) -> int | None:
        with self.lock:
            return self.entries[-1].global_sequence if self.entries else None

    def _stream(self, region: Region) -> tuple[list[IndexEntry], int]:
        """The narrowest commit-ordered list covering the region, and its visible length.

        Lists only ever grow (compaction swaps the whole Index), so a (list, length) pair read
        under the lock is a stable snapshot without copying.
        """
        lists: list[list[IndexEntry]] = []
        with self.lock:
            if region.scope_name is not None:
                stream = self.by_scope.get(region.scope_name, [])
            elif region.entity_prefix is not None:
                prefix = region.entity_prefix
                lists = [
                    entries[:]
                    for entity, entries in self.by_entity.items()
                    if entity_matches_prefix(entity, prefix)
                ]
                stream = lists[0] if len(lists) == 1 else []
            elif region.kinds.exact is not None:
                stream = self.by_kind.get(region.kinds.exact, [])
            else:
                stream = self.entries
            visible = len(stream)
        if len(lists) > 1:
            stream = list(heapq.merge(*lists, key=_seq))
            visible = len(stream)
        return stream, visible

    def query(self, region: Region) -> list[IndexEntry]:
        stream, visible = self._stream(region)
        return list(_take(stream, 0, visible, region, visible))

    def after(self, region: Region, after: int | None, limit: int) -> list[IndexEntry]:
        stream, visible = self._stream(region)
        start = 0 if after is None else bisect.bisect_right(stream, after, 0, visible, key=_seq)
        return list(_take(stream, start, visible, region, limit))

    def entity_stream(self, entity: str) -> list[IndexEntry]:
        with self.lock:
            return list(self.by_entity.get(entity, ()))


def _take(
    stream: list[IndexEntry], start: int, stop: int, region: Region, limit: int
) -> Iterator[IndexEntry]:
    taken = 0
    for i in range(start, stop):
        if taken >= limit:
            return
        entry = stream[i]
        if region.matches(entry.entity, entry.scope, entry.event_kind):
            taken += 1
            yield entry
