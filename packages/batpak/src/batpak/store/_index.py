"""The in-memory index: every visible event's metadata, in commit order, with lookups.

It has two parts. The base is the columnar block loaded from the checkpoint (or empty); the
tail holds entries committed since, as objects. Every tail sequence is above every base
sequence, so commit order is base then tail. The writer thread is the only mutator; readers
take a consistent snapshot under a short lock. Payloads are not held here.
"""

from __future__ import annotations

import bisect
import heapq
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

from batpak.coordinate import Region, entity_matches_prefix
from batpak.store._columns import ColumnBase
from batpak.store._entry import IndexEntry

__all__ = ["Index", "IndexEntry"]


COLUMNS_AT = 1024
"""From this many entries a rebuilt history is held column by column (about 180 bytes an
event instead of about 700 as objects)."""


def columns(entries: Sequence[IndexEntry]) -> ColumnBase | None:
    """A columnar base holding ``entries`` (commit-ordered), or None for a short history."""
    if len(entries) < COLUMNS_AT:
        return None
    return ColumnBase.build(entries, entries[-1].global_sequence + 1, [])


def _seq(entry: IndexEntry) -> int:
    return entry.global_sequence


class _Joined(Sequence[IndexEntry]):
    """Base rows (materialized on access) followed by tail entries: one commit-ordered view."""

    def __init__(
        self,
        base: ColumnBase | None,
        rows: Sequence[int],
        tail: Sequence[IndexEntry],
        tail_count: int | None = None,
    ) -> None:
        self._base = base
        self._rows = rows
        self._tail = tail
        self._split = len(rows)
        self._length = self._split + (len(tail) if tail_count is None else tail_count)

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, i: int) -> IndexEntry: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[IndexEntry]: ...
    def __getitem__(self, i: int | slice) -> IndexEntry | Sequence[IndexEntry]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self._length))]
        if i < 0:
            i += self._length
        if not 0 <= i < self._length:
            raise IndexError(i)
        if i < self._split:
            assert self._base is not None
            return self._base.entry(self._rows[i])
        return self._tail[i - self._split]


class Index:
    """Commit-ordered entries plus id, entity, scope, kind and chain-head lookups."""

    def __init__(self, base: ColumnBase | None = None) -> None:
        self.lock = threading.Lock()
        self._reset(base)

    def _reset(self, base: ColumnBase | None) -> None:
        self.base = base
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
        fresh = Index(columns(entries))
        if fresh.base is None:
            fresh.insert(entries)
        with self.lock:
            self.base = fresh.base
            self.entries = fresh.entries
            self.by_id = fresh.by_id
            self.by_entity = fresh.by_entity
            self.by_scope = fresh.by_scope
            self.by_kind = fresh.by_kind
            self.heads = fresh.heads

    def __len__(self) -> int:
        return (self.base.count if self.base else 0) + len(self.entries)

    def get(self, event_id: int) -> IndexEntry | None:
        with self.lock:  # base and map as one pair: a compaction swaps both
            by_id, base = self.by_id, self.base
        entry = by_id.get(event_id)
        if entry is None and base is not None and isinstance(event_id, int):
            return base.find(event_id)
        return entry

    def head(self, entity: str, lane: int = 0) -> IndexEntry | None:
        with self.lock:
            heads, base = self.heads, self.base
        entry = heads.get((entity, lane))
        if entry is None and base is not None:
            return base.head(entity, lane)
        return entry

    def last(self) -> IndexEntry | None:
        if self.entries:
            return self.entries[-1]
        return self.base.last() if self.base is not None else None

    def everything(self) -> Sequence[IndexEntry]:
        """Every entry, base and tail, in commit order (a lazy view)."""
        with self.lock:
            base = self.base
            tail = self.entries
            visible = len(tail)
        return _Joined(base, range(base.count) if base else (), tail, visible)

    def _view(self, base_rows: Sequence[int], tail: list[IndexEntry]) -> _Joined:
        return _Joined(self.base, base_rows, tail, len(tail))  # under the lock only

    def _stream(self, region: Region) -> Sequence[IndexEntry]:
        """The narrowest commit-ordered view covering the region, as a stable snapshot.

        Tail lists only grow (compaction swaps them whole), so slicing to the length seen under
        the lock gives a snapshot; base rows never change.
        """
        with self.lock:  # the base is read with the tails: a compaction swaps them together
            base = self.base
            if region.scope_name is not None:
                name = region.scope_name
                rows = base.group("scope", name) if base else ()
                return self._view(rows, self.by_scope.get(name, []))
            if region.entity_prefix is not None:
                prefix = region.entity_prefix
                names = set(self.by_entity) | set(base.names("entity") if base else ())
                views = [
                    self._view(
                        base.group("entity", name) if base else (),
                        self.by_entity.get(name, []),
                    )
                    for name in sorted(names)
                    if entity_matches_prefix(name, prefix)
                ]
                if len(views) != 1:
                    return list(heapq.merge(*views, key=_seq))
                return views[0]
            if region.kinds.exact is not None:
                kind = region.kinds.exact
                rows = base.group("kind", kind) if base else ()
                return self._view(rows, self.by_kind.get(kind, []))
            return self._view(range(base.count) if base else (), self.entries)

    def query(self, region: Region) -> list[IndexEntry]:
        stream = self._stream(region)
        return list(_take(stream, 0, region, len(stream)))

    def after(self, region: Region, after: int | None, limit: int) -> list[IndexEntry]:
        stream = self._stream(region)
        start = 0 if after is None else bisect.bisect_right(stream, after, key=_seq)
        return list(_take(stream, start, region, limit))

    def kind_rows(self, kind: int) -> tuple[ColumnBase | None, Sequence[int], list[IndexEntry]]:
        """A consistent snapshot of one kind's events: the base, its rows, and the tail."""
        with self.lock:
            base = self.base
            tail = self.by_kind.get(kind, [])
            tail = tail[: len(tail)]
        return base, base.group("kind", kind) if base else (), tail

    def entity_stream(self, entity: str) -> list[IndexEntry]:
        with self.lock:
            base = self.base
            tail = list(self.by_entity.get(entity, ()))
        rows = base.group("entity", entity) if base else ()
        return list(_Joined(base, rows, tail, len(tail)))


def _take(
    stream: Sequence[IndexEntry], start: int, region: Region, limit: int
) -> Iterator[IndexEntry]:
    taken = 0
    for i in range(start, len(stream)):
        if taken >= limit:
            return
        entry = stream[i]
        if region.matches(entry.entity, entry.scope, entry.event_kind):
            taken += 1
            yield entry
