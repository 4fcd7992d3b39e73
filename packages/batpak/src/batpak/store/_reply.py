"""A one-shot answer from the writer thread to the caller that submitted a command.

A ``concurrent.futures.Future`` costs a ``Condition`` (a lock, a waiter list and Python-level
notify code) per command; on the append path that was a fifth of the GIL time under group
commit. A ``Reply`` is one lock, held from birth and released when the answer is set: the
waiter's ``acquire`` is the wait, the writer's ``release`` the wake-up.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class Reply(Generic[T]):
    __slots__ = ("_error", "_ready", "_value")

    def __init__(self) -> None:
        self._ready = threading.Lock()
        self._ready.acquire()
        self._value: T | None = None
        self._error: BaseException | None = None

    def set_result(self, value: T) -> None:
        self._value = value
        self._ready.release()  # a second answer raises RuntimeError: a writer bug, not a race

    def set_exception(self, error: BaseException) -> None:
        self._error = error
        self._ready.release()

    def result(self, timeout: float | None = None) -> T:
        """The answer, waiting for it; ``TimeoutError`` after ``timeout`` seconds."""
        if not self._ready.acquire(timeout=-1 if timeout is None else timeout):
            raise TimeoutError
        self._ready.release()  # stay answered for any later call
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]  # set before the release
