"""The generic supervisor: runs named job bodies over a :class:`Spawn` seam and joins them.

Mechanism, not policy: a module that owns long-lived work signals it to wind down from a
shutdown hook, which the host runs before :meth:`Supervisor.join_all`.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class JobStatus(enum.Enum):
    """Non-blocking status of a spawned job."""

    RUNNING = "running"
    FINISHED = "finished"


class JoinError(Exception):
    """A job body raised; the join reports it instead of losing sibling jobs."""


class JobHandle(Protocol):
    """A spawned body: poll its status or block until it finishes."""

    def status(self) -> JobStatus: ...
    def join(self) -> None:
        """Block until the body returns; raise :class:`JoinError` if it raised."""
        ...


class Spawn(Protocol):
    """The seam that starts a named body (a thread, a test scheduler...)."""

    def spawn(
        self, name: str, body: Callable[[], None], *, stack_size: int | None = None
    ) -> JobHandle: ...


class _ThreadHandle:
    __slots__ = ("_error", "_thread")

    def __init__(self, name: str, body: Callable[[], None]) -> None:
        self._error: BaseException | None = None

        def run() -> None:
            try:
                body()
            except BaseException as exc:  # a job's crash is reported at join
                self._error = exc

        self._thread = threading.Thread(target=run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def status(self) -> JobStatus:
        return JobStatus.RUNNING if self._thread.is_alive() else JobStatus.FINISHED

    def join(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise JoinError(f"job {self._thread.name!r} failed: {self._error!r}") from self._error


class ThreadSpawn:
    """The production :class:`Spawn`: one daemon thread per body."""

    def spawn(
        self, name: str, body: Callable[[], None], *, stack_size: int | None = None
    ) -> JobHandle:
        if stack_size is not None:
            threading.stack_size(stack_size)
        handle = _ThreadHandle(name, body)
        handle.start()
        return handle


@dataclass(frozen=True, slots=True)
class JoinOutcome:
    """One joined job: its name and the error it raised, if any."""

    name: str
    error: JoinError | None

    @property
    def ok(self) -> bool:
        return self.error is None


class Supervisor:
    """Owns the host's background jobs over one :class:`Spawn` backend."""

    def __init__(self, spawn: Spawn | None = None) -> None:
        self._spawn: Spawn = spawn if spawn is not None else ThreadSpawn()
        self._running: list[tuple[str, JobHandle]] = []

    def spawn(self, name: str, body: Callable[[], None], *, stack_size: int | None = None) -> None:
        handle = self._spawn.spawn(name, body, stack_size=stack_size)
        self._running.append((name, handle))

    @property
    def job_count(self) -> int:
        """Jobs tracked (running or finished) since the last :meth:`join_all`."""
        return len(self._running)

    def statuses(self) -> list[tuple[str, JobStatus]]:
        return [(name, h.status()) for name, h in self._running]

    def join_all(self) -> list[JoinOutcome]:
        """Join every job in spawn order; a failing job never hides its siblings."""
        jobs, self._running = self._running, []
        outcomes = []
        for name, handle in jobs:
            try:
                handle.join()
            except JoinError as exc:
                outcomes.append(JoinOutcome(name, exc))
            else:
                outcomes.append(JoinOutcome(name, None))
        return outcomes
