"""Visibility fences: writes that are durable at once but visible only when the fence commits.

While a fence is open, every append the writer makes is written, fsynced and chained as usual,
but held back from the index, the visible watermark and the subscribers (the writer keeps it in
a ``FenceLedger``). ``commit()`` publishes the held events in one step; ``cancel()`` records
their global-sequence range in ``visibility_ranges.fbv`` (format.md §7.5), so they stay hidden
after a reopen, in a snapshot or fork, and from the fast-start checkpoint. One fence at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from batpak.errors import DomainError
from batpak.fs import OS_FS, StoreFs
from batpak.store._entry import IndexEntry
from batpak.store._lifecycle import HIDDEN_NAME, copy_prefix


class VisibilityFenceActive(DomainError):
    """A visibility fence is already open; snapshot, fork, compaction and a second fence wait
    for it to commit or cancel."""


class VisibilityFenceNotActive(DomainError):
    """This fence was already committed or cancelled (or the store closed and cancelled it)."""


def refuse_open_fence(fence: FenceLedger | None, what: str) -> None:
    if fence is not None:
        raise VisibilityFenceActive(f"{what} is refused while a visibility fence is open")


def copy_cancelled(source: Path, target: Path, fs: StoreFs = OS_FS) -> None:
    """Copy ``visibility_ranges.fbv`` (if any), so a copy of the store hides what it hid."""
    if fs.exists(source / HIDDEN_NAME):
        copy_prefix(source / HIDDEN_NAME, target / HIDDEN_NAME, None, fs)


class FenceLedger:
    """What the writer holds back while a fence is open (writer thread only)."""

    def __init__(self, token: int) -> None:
        self.token = token
        self.entries: list[IndexEntry] = []
        self._heads: dict[tuple[str, int], IndexEntry] = {}

    def stage(self, entries: list[IndexEntry]) -> None:
        self.entries.extend(entries)
        for entry in entries:
            self._heads[(entry.entity, entry.lane)] = entry

    def head(self, entity: str, lane: int = 0) -> IndexEntry | None:
        """The newest held event of the chain, which later fenced writes chain to."""
        return self._heads.get((entity, lane))

    def span(self) -> tuple[int, int] | None:
        """The half-open global-sequence range of the held events, if any."""
        if not self.entries:
            return None
        return self.entries[0].global_sequence, self.entries[-1].global_sequence + 1


class VisibilityFence:
    """An open fence, from ``Store.begin_visibility_fence()``.

    Every write the store makes while it is open (from any thread) is durable but hidden
    from ``get``, queries, ``by_*``, cursors, subscriptions and projections. ``commit()``
    makes them visible together; ``cancel()`` hides them for good. As a context manager it
    commits when the block succeeds and cancels when it raises. Closing the store with a
    fence open cancels it.
    """

    def __init__(self, token: int, finish: Callable[[int, bool], None]) -> None:
        self.token = token
        self._finish = finish
        self._done = False

    @property
    def open(self) -> bool:
        return not self._done

    def commit(self) -> None:
        """Publish every write made under the fence, in commit order."""
        self._end(True)

    def cancel(self) -> None:
        """Keep every write made under the fence hidden, durably (``visibility_ranges.fbv``)."""
        self._end(False)

    def _end(self, publish: bool) -> None:
        if self._done:
            raise VisibilityFenceNotActive(f"visibility fence {self.token} is already finished")
        self._done = True
        self._finish(self.token, publish)

    def __enter__(self) -> VisibilityFence:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._done:
            self._end(exc_type is None)
