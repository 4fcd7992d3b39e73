"""Worker threads for blocking dispatcher calls: a bounded pool fed by one ``SimpleQueue``.

``anyio.to_thread.run_sync`` pays, per call, a capacity limiter, a checkpoint, a context copy
and a ``queue.Queue`` put whose ``Condition.notify`` was the largest single cost of a
NETBAT/1 call in the profiles (bench/profiles/w7-*.txt). Here a call is one C-level
``SimpleQueue.put`` and one ``call_soon_threadsafe`` back to the loop. This needs asyncio;
under another anyio backend the pool hands the call to ``anyio.to_thread``.

Like ``to_thread`` (without ``abandon_on_cancel``), a call in flight is waited for even when
its task is cancelled: the dispatcher's side effects and the server's accounting stay paired.
Idle threads exit after ``IDLE_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

__all__ = ("WorkerPool",)

T = TypeVar("T")

IDLE_SECONDS = 10.0

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


class WorkerPool:
    """Runs blocking calls on at most ``size`` threads; further calls queue."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a worker pool needs at least one thread")
        self._size = size
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, call: Callable[[], T]) -> T:
        """Return ``call()`` run on a worker thread (its exception raised here)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio: anyio's own thread pool
            if self._limiter is None:
                self._limiter = anyio.CapacityLimiter(self._size)
            return await anyio.to_thread.run_sync(call, limiter=self._limiter)
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            # ``_idle`` counts waiting workers not yet promised a job: promise one this job,
            # or start a worker for it. (Counting a worker idle until it dequeued let a job
            # wait behind a blocked call while the worker it was left to was taking another.)
            spawn = self._idle == 0 and self._threads < self._size
            if spawn:
                self._threads += 1
            elif self._idle > 0:
                self._idle -= 1
        self._jobs.put((loop, future, call))
        if spawn:
            thread = threading.Thread(target=_worker, args=(self,), name="netbat-worker")
            thread.daemon = True
            thread.start()
        with anyio.CancelScope(shield=True):
            result = await future
        return result


def _worker(pool: WorkerPool) -> None:
    """One pool thread: serve calls until idle for ``IDLE_SECONDS``. (Named like
    ``ThreadPoolExecutor``'s loop, so profilers count its wait as idle, not work.)"""
    while True:
        try:
            loop, future, call = pool._jobs.get(timeout=IDLE_SECONDS)
        except queue.Empty:
            with pool._lock:
                if pool._idle > 0:  # no queued job is promised to a waiting worker: leave
                    pool._idle -= 1
                    pool._threads -= 1
                    return
            continue  # a job was promised to a waiting worker: this one takes it
        try:
            result = call()
        except BaseException as error:  # delivered to the caller, whatever it is
            _deliver(loop, future, None, error)
        else:
            _deliver(loop, future, result, None)
        del loop, future, call  # hold nothing while idle
        with pool._lock:
            pool._idle += 1  # waiting again, free to be promised a job


def _deliver(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
        loop.call_soon_threadsafe(_settle, future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)
