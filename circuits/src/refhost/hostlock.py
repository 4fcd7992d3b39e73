"""The lock that serialises calls into the shared Host, with one way out: a durable wait.

A syncbat Core is not thread-safe, so the reference host runs one ``Host.invoke`` at a time
(syncbat-hostbat.md §3, decision 4: one shared Host behind a lock). But a ``bank.commit``
spends most of its time waiting for its append's fsync, and holding the lock through that
wait would make every commit pay its own fsync. So ``CommitBackend`` makes the store call
inside :meth:`HostLock.released`: the append is ordered by the store's single writer, other
calls run meanwhile, and concurrent commits share one fsync (group commit).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ("HostLock",)


class HostLock:
    """A lock around ``Host.invoke`` that the holding thread may step out of and back in."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: int | None = None

    def held(self) -> HostLock:
        """Hold the lock for one call: ``with lock.held(): ...``."""
        return self

    def __enter__(self) -> None:
        self._lock.acquire()
        self._holder = threading.get_ident()

    def __exit__(self, *exc_info: object) -> None:
        self._holder = None
        self._lock.release()

    @contextmanager
    def released(self) -> Iterator[None]:
        """Let go of the lock for the block when this thread holds it (else do nothing), and
        take it back afterwards."""
        if self._holder != threading.get_ident():
            yield
            return
        self._holder = None
        self._lock.release()
        try:
            yield
        finally:
            self._lock.acquire()
            self._holder = threading.get_ident()
