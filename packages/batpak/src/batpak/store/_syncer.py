"""The fsync side of group commit: one thread that makes written groups durable while the
writer frames the next.

With group commit on, the writer hands a group's fsync here instead of waiting for the disk
itself. The next group's Python work (hashing, framing, indexing) then runs while the disk
syncs the last one, and the callers one fsync answers build their next appends during
another. Work queued while an fsync runs shares the next one. The writer drains this thread
before anything else touches the file (an fsync of its own, a seal, a close), so only
appends of whole frames run beside it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

J = TypeVar("J")


class Syncer(Generic[J]):
    """Runs ``work`` on its own thread over every job queued since its last run, in order."""

    def __init__(self, work: Callable[[list[J]], None], name: str) -> None:
        self._work = work
        self._cond = threading.Condition(threading.Lock())
        self._jobs: list[tuple[J, int]] = []
        self._busy = False
        self._stopping = False
        self.waiting = 0
        """Callers whose answer is queued here or in the running work (the writer's group
        window does not wait for them: they cannot submit before their fsync)."""
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: J, callers: int) -> None:
        with self._cond:
            self._jobs.append((job, callers))
            self.waiting += callers
            self._cond.notify()

    def drain(self) -> None:
        """Return once every job submitted before the call has run."""
        with self._cond:
            while self._jobs or self._busy:
                self._cond.wait()

    def stop(self) -> None:
        """Run what is queued, then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stopping:
                    self._cond.wait()
                if not self._jobs:
                    return
                taken, self._jobs = self._jobs, []
                self._busy = True
            try:
                self._work([job for job, _ in taken])
            finally:
                with self._cond:
                    self._busy = False
                    self.waiting -= sum(callers for _, callers in taken)
                    self._cond.notify_all()
