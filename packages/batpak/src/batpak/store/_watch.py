"""Lossy push subscriptions: bounded per-subscriber queues the writer never waits on."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence

import msgspec

from batpak.coordinate import Coordinate, Region
from batpak.errors import RetryableError
from batpak.frontier import HlcPoint
from batpak.store._entry import IndexEntry

DEFAULT_SUBSCRIPTION_CAPACITY = 8192


class SubscriptionDropped(RetryableError):
    """The subscriber fell behind, its queue filled, and the store dropped it."""


class Notification(msgspec.Struct, frozen=True, gc=False):
    """A committed event's identity and place, without its payload."""

    event_id: int
    correlation_id: int
    causation_id: int | None
    coord: Coordinate
    kind: int
    sequence: int
    position: HlcPoint


_CLOSED = object()


class Subscription:
    """Events committed after ``subscribe_lossy`` returned, in commit order, until dropped.

    ``recv`` returns the next notification, or None on timeout or once the store closed; after
    a drop it first hands out what was queued, then raises ``SubscriptionDropped``.
    """

    def __init__(self, hub: Hub, region: Region, capacity: int) -> None:
        self._hub = hub
        self.region = region
        self._queue: queue.Queue[Notification | object] = queue.Queue(capacity + 1)
        self._capacity = capacity
        self.dropped = False
        self.closed = False

    def _offer(self, note: Notification) -> bool:
        """Queue without blocking; False (and dropped) when the subscriber is full."""
        if self._queue.qsize() >= self._capacity:
            self.dropped = True
            self._queue.put_nowait(_CLOSED)
            return False
        self._queue.put_nowait(note)
        return True

    def _end(self) -> None:
        self.closed = True
        self._queue.put_nowait(_CLOSED)

    def recv(self, timeout: float | None = None) -> Notification | None:
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is _CLOSED:
            self._queue.put_nowait(_CLOSED)  # stay ended for later calls
            if self.dropped:
                raise SubscriptionDropped("the subscriber fell behind and was dropped")
            return None
        assert isinstance(item, Notification)
        return item

    def __iter__(self) -> Iterator[Notification]:
        while (note := self.recv()) is not None:
            yield note

    def close(self) -> None:
        self._hub.remove(self)
        self._end()


class Hub:
    """The writer's fan-out to lossy subscribers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[Subscription] = []

    def subscribe(self, region: Region, capacity: int) -> Subscription:
        subscription = Subscription(self, region, capacity)
        with self._lock:
            self._subscribers.append(subscription)
        return subscription

    def remove(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscribers:
                self._subscribers.remove(subscription)

    def publish(self, entries: Sequence[IndexEntry]) -> None:
        if not self._subscribers:
            return
        with self._lock:
            subscribers = list(self._subscribers)
        for subscription in subscribers:
            for entry in entries:
                if not subscription.region.matches(entry.entity, entry.scope, entry.event_kind):
                    continue
                if not subscription._offer(_note(entry)):
                    self.remove(subscription)
                    break

    def close(self) -> None:
        with self._lock:
            subscribers, self._subscribers = self._subscribers, []
        for subscription in subscribers:
            subscription._end()


def _note(entry: IndexEntry) -> Notification:
    return Notification(
        event_id=entry.event_id,
        correlation_id=entry.correlation_id,
        causation_id=entry.causation_id,
        coord=entry.coord,
        kind=entry.event_kind,
        sequence=entry.global_sequence,
        position=HlcPoint(entry.wall_ms, entry.global_sequence),
    )
