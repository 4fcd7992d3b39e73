"""NETBAT/2 subscriptions of the reference host: a ``netbat.SubscriptionSource`` over a Store.

``StoreSubscriptionSource(store)`` serves event streams read from a real ``batpak.Store``. netbat
owns the wire and the session rules (delivery indexes, window, cumulative ACK, slow consumer,
cancel); this module only decides what to deliver and what a cursor means.

Subscription ids (every one matches netbat's ``^[a-z0-9][a-z0-9._-]*\\.v[1-9][0-9]*$``):

- ``events.all.v1``: every visible event, system events included (what ``event.query`` with
  no filter pages through), in commit (global-sequence) order.
- ``events.category.<n>.v1``: the events whose kind category is ``n``, written in decimal
  without leading zeros, for ``n`` in 1..15 except 13 (hostbat's ``EventCategory``; category 0
  holds system events and 0xD is reserved). This is hostbat's source
  ``{kind:"event-category", category:n}``.
- Any hostbat ``SubscriptionDescriptor`` passed as ``descriptors`` whose source is
  ``{kind:"event-category", category}`` or ``{kind:"entity-stream", coordinate:{entity,
  scope}}`` (exactly that entity, in exactly that scope), under the descriptor's own id.
  Other source kinds (projection, receipt-stream, operation-status) are refused with
  ``ValueError`` when the source is built: the store has nothing to feed them.

Any other id (including ``events.category.13.v1`` or ``events.category.01.v1``) fails the open
with SUB_ERR ``unknown_subscription``.

Delivery is ``cursor-at-least-once``: after the resume cursor (or from the first event when
SUBSCRIBE carries ``-``), every matching event in global-sequence order. A client that
resumes from the ``cursor_after`` of the last event it processed receives nothing twice; one
that resumes from an older cursor receives the events after it again.

SUB_EVENT payload (schema ref ``refhost.event-summary.v1``): the canonical named-field
MessagePack ``EventSummary`` of netbat.md §4, the entry shape of ``event.query``: 11 fields
in order, ``content_hash_hex`` from the hash chain's ``event_hash``.

SUB_WATERMARK: when a filtered stream has caught up with the store's visible frontier and that
frontier lies past the last cursor it sent (events of other routes were skipped), the feed
sends a watermark whose ``cursor_after`` is the frontier: resuming there skips the unrelated
events already scanned. At most one every ``watermark_interval`` seconds (None: never).
``events.all.v1`` never needs one, since its last event is the frontier.

Cursor (opaque to netbat, 37 bytes, big-endian)::

    magic  b"RHSC"          4 bytes
    version 0x01            1 byte
    store tag               16 bytes  blake3("refhost.subscription.cursor.store.v1\\0" ||
                                       decimal lineage id)[0..16]
    route tag               8 bytes   blake3("refhost.subscription.cursor.route.v1\\0" ||
                                       subscription id)[0..8]
    global_sequence u64     8 bytes   the last event scanned (delivered or skipped)

A cursor of the wrong length, magic or version is ``cursor_invalid``; one minted by another
store (lineage) or for another subscription id is ``cursor_mismatch``; one past the store's
visible frontier is ``cursor_invalid``. The same checks apply to SUB_ACK cursors.

``poll(timeout)`` never spins: with nothing to deliver it blocks on the store's visible
watermark (``Store.wait_for_visible``) until a newer event commits or ``timeout`` passes.
"""

from __future__ import annotations

import collections
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import blake3

from batpak import IndexEntry, Region, Store, StoreError, WaitTimeout, canonical
from hostbat import SubscriptionDescriptor
from hostbat.subscription import EntityStreamSource, EventCategorySource
from netbat import SourceEvent, SourceItem, SourceWatermark, SubscriptionFault
from refhost.wire import EventSummary, id_hex

__all__ = (
    "ALL_EVENTS_ID",
    "CURSOR_LEN",
    "EVENT_SUMMARY_SCHEMA_REF",
    "EventRoute",
    "StoreSubscriptionFeed",
    "StoreSubscriptionSource",
    "category_subscription_id",
    "decode_cursor",
    "encode_cursor",
    "event_summary_payload",
)

ALL_EVENTS_ID: Final = "events.all.v1"
EVENT_SUMMARY_SCHEMA_REF: Final = "refhost.event-summary.v1"
DEFAULT_PAGE_SIZE: Final = 64
DEFAULT_WATERMARK_INTERVAL: Final = 1.0

CURSOR_MAGIC: Final = b"RHSC"
CURSOR_VERSION: Final = 1
_CURSOR: Final = struct.Struct(">4sB16s8sQ")
CURSOR_LEN: Final = _CURSOR.size  # 37
_STORE_DOMAIN: Final = b"refhost.subscription.cursor.store.v1\0"
_ROUTE_DOMAIN: Final = b"refhost.subscription.cursor.route.v1\0"
_CATEGORY_PREFIX: Final = "events.category."
_SERVED_CATEGORIES: Final = frozenset(c for c in range(1, 16) if c != 0xD)


def category_subscription_id(category: int) -> str:
    """The built-in id of the category stream, e.g. ``events.category.15.v1``."""
    if category not in _SERVED_CATEGORIES:
        raise ValueError(f"category {category} is not served (1..15, never 13)")
    return f"{_CATEGORY_PREFIX}{category}.v1"


@dataclass(frozen=True, slots=True)
class EventRoute:
    """What one subscription id selects: a store region, optionally one exact entity."""

    region: Region
    exact_entity: str | None = None

    def admits(self, entry: IndexEntry) -> bool:
        return self.exact_entity is None or entry.entity == self.exact_entity


def _route_of(descriptor: SubscriptionDescriptor) -> EventRoute:
    source = descriptor.source
    if isinstance(source, EventCategorySource):
        return EventRoute(Region.all().with_category(source.category))
    if isinstance(source, EntityStreamSource):
        coordinate = source.coordinate
        return EventRoute(
            Region(entity_prefix=coordinate.entity, scope_name=coordinate.scope),
            exact_entity=coordinate.entity,
        )
    kind = source.view()["kind"]
    raise ValueError(f"subscription {descriptor.id!r}: a {kind} source is not served by refhost")


def _builtin_route(subscription_id: str) -> EventRoute | None:
    if subscription_id == ALL_EVENTS_ID:
        return EventRoute(Region.all())
    if subscription_id.startswith(_CATEGORY_PREFIX) and subscription_id.endswith(".v1"):
        digits = subscription_id[len(_CATEGORY_PREFIX) : -len(".v1")]
        if digits.isdigit() and digits.isascii() and not digits.startswith("0"):
            category = int(digits)
            if category in _SERVED_CATEGORIES:
                return EventRoute(Region.all().with_category(category))
    return None


def _tag(domain: bytes, value: bytes, size: int) -> bytes:
    return blake3.blake3(domain + value).digest()[:size]


def _store_tag(store: Store) -> bytes:
    lineage = store.identity()
    value = str(store.config.path.resolve()) if lineage is None else str(lineage)
    return _tag(_STORE_DOMAIN, value.encode("utf-8"), 16)


def _route_tag(subscription_id: str) -> bytes:
    return _tag(_ROUTE_DOMAIN, subscription_id.encode("utf-8"), 8)


def encode_cursor(store_tag: bytes, subscription_id: str, global_sequence: int) -> bytes:
    """The 37-byte cursor positioned after ``global_sequence``."""
    return _CURSOR.pack(
        CURSOR_MAGIC, CURSOR_VERSION, store_tag, _route_tag(subscription_id), global_sequence
    )


def decode_cursor(cursor: bytes, store_tag: bytes, subscription_id: str) -> int:
    """Return the cursor's global sequence, or raise ``SubscriptionFault``.

    ``cursor_invalid``: wrong length, magic or version. ``cursor_mismatch``: another store or
    another subscription id.
    """
    if len(cursor) != CURSOR_LEN:
        raise SubscriptionFault.cursor_invalid(
            f"cursor is {len(cursor)} bytes, expected {CURSOR_LEN}"
        )
    magic, version, store, route, global_sequence = _CURSOR.unpack(cursor)
    if magic != CURSOR_MAGIC:
        raise SubscriptionFault.cursor_invalid("cursor magic is not RHSC")
    if version != CURSOR_VERSION:
        raise SubscriptionFault.cursor_invalid(f"unsupported cursor version {version}")
    if store != store_tag:
        raise SubscriptionFault.cursor_mismatch("cursor belongs to another store")
    if route != _route_tag(subscription_id):
        raise SubscriptionFault.cursor_mismatch("cursor belongs to another subscription")
    seq: int = global_sequence
    return seq


def event_summary_payload(entry: IndexEntry) -> bytes:
    """The canonical MessagePack ``EventSummary`` (netbat.md §4) of one index entry."""
    return canonical.encode(
        EventSummary(
            event_id_hex=id_hex(entry.event_id),
            global_sequence=entry.global_sequence,
            wall_ms=entry.wall_ms,
            clock=entry.clock,
            correlation_id_hex=id_hex(entry.correlation_id),
            causation_id_hex=None if entry.causation_id is None else id_hex(entry.causation_id),
            kind_category=entry.event_kind >> 12,
            kind_type_id=entry.event_kind & 0xFFF,
            entity=entry.entity,
            scope=entry.scope,
            content_hash_hex=entry.event_hash.hex(),
        )
    )


class StoreSubscriptionSource:
    """A ``netbat.SubscriptionSource`` serving the ids of the module docstring from ``store``.

    ``page_size`` bounds one index read; ``watermark_interval`` spaces SUB_WATERMARKs (None
    disables them). The source does not own the store: closing a feed leaves it open.
    """

    def __init__(
        self,
        store: Store,
        descriptors: Iterable[SubscriptionDescriptor] = (),
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        watermark_interval: float | None = DEFAULT_WATERMARK_INTERVAL,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        if watermark_interval is not None and watermark_interval < 0:
            raise ValueError("watermark_interval must not be negative")
        self._store = store
        self._store_tag = _store_tag(store)
        self._page_size = page_size
        self._watermark_interval = watermark_interval
        self._declared: dict[str, EventRoute] = {}
        for descriptor in descriptors:
            if descriptor.id in self._declared or _builtin_route(descriptor.id) is not None:
                raise ValueError(f"subscription id {descriptor.id!r} is already served")
            self._declared[descriptor.id] = _route_of(descriptor)

    @property
    def store_tag(self) -> bytes:
        """The 16-byte store tag every cursor of this source carries."""
        return self._store_tag

    def route(self, subscription_id: str) -> EventRoute | None:
        """The route serving ``subscription_id``, or None when no route does."""
        return self._declared.get(subscription_id) or _builtin_route(subscription_id)

    def open(
        self, subscription_id: str, resume_cursor: bytes | None, client_window: int
    ) -> StoreSubscriptionFeed:
        """Open a feed after ``resume_cursor``; raise ``SubscriptionFault`` on a bad open."""
        route = self.route(subscription_id)
        if route is None:
            raise SubscriptionFault.unknown_subscription(subscription_id)
        after: int | None = None
        if resume_cursor is not None:
            after = decode_cursor(resume_cursor, self._store_tag, subscription_id)
            if after > self._store.frontier().visible.global_sequence:
                raise SubscriptionFault.cursor_invalid("cursor is ahead of the store")
        return StoreSubscriptionFeed(
            self._store,
            subscription_id,
            route,
            self._store_tag,
            after=after,
            resume_cursor=resume_cursor,
            page_size=self._page_size,
            watermark_interval=self._watermark_interval,
        )


class StoreSubscriptionFeed:
    """One open subscription: pages the store after its position, waits on the visible mark."""

    def __init__(
        self,
        store: Store,
        subscription_id: str,
        route: EventRoute,
        store_tag: bytes,
        *,
        after: int | None,
        resume_cursor: bytes | None,
        page_size: int,
        watermark_interval: float | None,
    ) -> None:
        self.subscription_id = subscription_id
        self._store = store
        self._route = route
        self._store_tag = store_tag
        self._scanned = after  # the last global sequence read (delivered or skipped)
        self._last_cursor = resume_cursor  # cursor_before of the next delivery
        self._last_cursor_seq = after
        self._page_size = page_size
        self._watermark_interval = watermark_interval
        self._last_watermark = float("-inf")
        self._pending: collections.deque[SourceEvent] = collections.deque()
        self._lock = threading.Lock()
        self._closed = False

    def poll(self, timeout: float) -> SourceItem | None:
        """The next event or watermark, or None when nothing arrived within ``timeout``."""
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._lock:
            while True:
                if self._closed:
                    raise SubscriptionFault("internal_error", "subscription feed is closed")
                if self._pending:
                    return self._pending.popleft()
                if self._fill():
                    continue
                watermark = self._watermark()
                if watermark is not None:
                    return watermark
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                target = 0 if self._scanned is None else self._scanned + 1
                try:
                    self._store.wait_for_visible(target, left)
                except WaitTimeout:
                    return None
                except StoreError as error:
                    raise SubscriptionFault("internal_error", type(error).__name__) from error

    def check_ack_cursor(self, cursor: bytes) -> None:
        """Raise ``SubscriptionFault`` for an ACK cursor that does not decode or is foreign."""
        decode_cursor(cursor, self._store_tag, self.subscription_id)

    def close(self) -> None:
        """Drop buffered deliveries; later polls fail. The store stays open."""
        self._closed = True
        self._pending.clear()

    # -- internals ------------------------------------------------------------------------

    def _fill(self) -> bool:
        """Read pages until an event is buffered (True) or the visible frontier is reached."""
        while True:
            try:
                frontier = self._store.frontier().visible.global_sequence
                if self._scanned is not None and self._scanned >= frontier:
                    return False
                page = self._store.query_entries_after(
                    self._route.region, self._scanned, self._page_size
                )
            except StoreError as error:
                raise SubscriptionFault("internal_error", type(error).__name__) from error
            if len(page) < self._page_size:
                # The index held every entry up to the frontier read before the query.
                end = max(frontier, page[-1].global_sequence) if page else frontier
            else:
                end = page[-1].global_sequence
            for entry in page:
                if self._route.admits(entry):
                    self._pending.append(self._event(entry))
            if end >= 0:
                self._scanned = end
            if self._pending:
                return True
            if len(page) < self._page_size:
                return False

    def _event(self, entry: IndexEntry) -> SourceEvent:
        seq = entry.global_sequence
        cursor = encode_cursor(self._store_tag, self.subscription_id, seq)
        event = SourceEvent(
            self._last_cursor, cursor, EVENT_SUMMARY_SCHEMA_REF, event_summary_payload(entry)
        )
        self._last_cursor, self._last_cursor_seq = cursor, seq
        return event

    def _watermark(self) -> SourceWatermark | None:
        if self._watermark_interval is None or self._scanned is None:
            return None
        if self._last_cursor_seq is not None and self._scanned <= self._last_cursor_seq:
            return None
        now = time.monotonic()
        if now - self._last_watermark < self._watermark_interval:
            return None
        self._last_watermark = now
        cursor = encode_cursor(self._store_tag, self.subscription_id, self._scanned)
        self._last_cursor, self._last_cursor_seq = cursor, self._scanned
        return SourceWatermark(cursor)
