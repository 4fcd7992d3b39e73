"""HLC watermarks: how far the journal has accepted, written, made durable and made visible.

Each watermark is an ``HlcPoint(wall_ms, global_sequence)``, ordered lexicographically, and
only moves forward. Invariants: accepted >= written >= durable and accepted >= visible >=
applied, where applied is how far every projection run so far has replayed.
Waiters block on one condition variable, with a mandatory timeout.
"""

from __future__ import annotations

import threading
import time
from typing import Literal, NamedTuple

from batpak.errors import WaitTimeout, WriterCrashed

Watermark = Literal["accepted", "written", "durable", "visible", "applied"]


class HlcPoint(NamedTuple):
    """A point on the store's clock: wall milliseconds, then global sequence."""

    wall_ms: int
    global_sequence: int


ORIGIN = HlcPoint(0, -1)


class Frontier(NamedTuple):
    """A consistent snapshot of every watermark."""

    accepted: HlcPoint
    written: HlcPoint
    durable: HlcPoint
    visible: HlcPoint
    applied: HlcPoint


class Watermarks:
    """The live watermarks, advanced by the writer and awaited by callers."""

    def __init__(self, start: HlcPoint = ORIGIN) -> None:
        self._lock = threading.Lock()  # taken directly on the writer's path (no Python frame)
        self._cond = threading.Condition(self._lock)
        self._points: dict[Watermark, HlcPoint] = dict.fromkeys(
            ("accepted", "written", "durable", "visible", "applied"), start
        )
        self._projections: dict[str, HlcPoint] = {}
        self._crashed = False
        self._waiters = 0  # callers inside ``wait``; ``advance`` notifies only if there are any

    def snapshot(self) -> Frontier:
        with self._lock:
            p = self._points
            return Frontier(p["accepted"], p["written"], p["durable"], p["visible"], p["applied"])

    def advance(self, *marks: Watermark, to: HlcPoint) -> None:
        """Move marks up to ``to``; each component only grows, so a clock that steps back
        never holds a watermark behind a newer global sequence."""
        with self._lock:
            points = self._points
            for mark in marks:
                now = points[mark]
                if to.wall_ms > now.wall_ms or to.global_sequence > now.global_sequence:
                    points[mark] = HlcPoint(
                        max(now.wall_ms, to.wall_ms), max(now.global_sequence, to.global_sequence)
                    )
            if self._waiters:
                self._cond.notify_all()

    def projected(self, projection: str, upto: HlcPoint) -> None:
        """Record that a projection replayed up to ``upto``; applied is the minimum over every
        projection seen, and still never moves back."""
        with self._lock:
            self._projections[projection] = max(upto, self._projections.get(projection, upto))
            floor = min(self._projections.values())
            if floor > self._points["applied"]:
                self._points["applied"] = min(floor, self._points["visible"])
            self._cond.notify_all()

    def crash(self) -> None:
        """Freeze the watermarks and wake every waiter with ``WriterCrashed``."""
        with self._lock:
            self._crashed = True
            self._cond.notify_all()

    def wait(self, mark: Watermark, global_sequence: int, timeout: float) -> HlcPoint:
        """Block until ``mark`` covers ``global_sequence``; raise ``WaitTimeout`` after
        ``timeout`` seconds, or ``WriterCrashed`` once the writer is poisoned."""
        if timeout < 0:
            raise ValueError("timeout must not be negative")
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                point = self._points[mark]
                if point.global_sequence >= global_sequence:
                    return point
                if self._crashed:
                    raise WriterCrashed(f"the writer crashed before {mark} reached the target")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeout(mark, global_sequence, int(timeout * 1000))
                self._waiters += 1
                try:
                    self._cond.wait(left)
                finally:
                    self._waiters -= 1
