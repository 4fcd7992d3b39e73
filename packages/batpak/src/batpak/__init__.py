"""batpak: an embedded, sync-first, append-only journal, byte-compatible with the Rust reference.

Open a ``Store`` with a ``StoreConfig``, append typed payloads (msgspec Structs bound to an event
kind with ``@event_payload``), and read them back by id, region, entity or kind. Every event is
BLAKE3 hash-chained to its entity's previous event, and every append returns a verifiable receipt.
"""

import contextlib as _contextlib

from batpak.batch import BatchAppendItem, PriorItem
from batpak.config import StoreConfig
from batpak.coordinate import Coordinate, KindFilter, Region
from batpak.errors import (
    DomainError,
    FailClosedError,
    NotFound,
    RetryableError,
    SequenceMismatch,
    StoreError,
    StoreLocked,
    TypedDecodeError,
    WaitTimeout,
    WriterCrashed,
)
from batpak.event import DagPosition, Event, EventHeader, HashChain, StoredEvent
from batpak.frontier import Frontier, HlcPoint
from batpak.kinds import EventKind
from batpak.options import AppendOptions, DurabilityGate, IdempotencyKey
from batpak.payload import event_payload, upcaster
from batpak.projection import Projection, handles
from batpak.projection_cache import MemoryCache, NativeCache, NoCache, ProjectionCache
from batpak.receipt import AppendReceipt, DiskPos, Outcome, ReceiptVerdict, verify_receipt_claim
from batpak.store._compact import CompactionResult
from batpak.store._cursor import Cursor
from batpak.store._fence import VisibilityFence, VisibilityFenceActive, VisibilityFenceNotActive
from batpak.store._fork import ForkReport
from batpak.store._import import ImportOptions, ImportProvenance, ImportReport, ImportSelector
from batpak.store._index import IndexEntry
from batpak.store._store import ChainReport, Store
from batpak.store._watch import Notification, Subscription, SubscriptionDropped

__version__ = "0.1.0"

__all__ = (
    "AppendOptions",
    "AppendReceipt",
    "BatchAppendItem",
    "ChainReport",
    "CompactionResult",
    "Coordinate",
    "Cursor",
    "DagPosition",
    "DiskPos",
    "DomainError",
    "DurabilityGate",
    "Event",
    "EventHeader",
    "EventKind",
    "FailClosedError",
    "ForkReport",
    "Frontier",
    "HashChain",
    "HlcPoint",
    "IdempotencyKey",
    "ImportOptions",
    "ImportProvenance",
    "ImportReport",
    "ImportSelector",
    "IndexEntry",
    "KindFilter",
    "MemoryCache",
    "NativeCache",
    "NoCache",
    "NotFound",
    "Notification",
    "Outcome",
    "PriorItem",
    "Projection",
    "ProjectionCache",
    "ReceiptVerdict",
    "Region",
    "RetryableError",
    "SequenceMismatch",
    "Store",
    "StoreConfig",
    "StoreError",
    "StoreLocked",
    "StoredEvent",
    "Subscription",
    "SubscriptionDropped",
    "TypedDecodeError",
    "VisibilityFence",
    "VisibilityFenceActive",
    "VisibilityFenceNotActive",
    "WaitTimeout",
    "WriterCrashed",
    "event_payload",
    "handles",
    "upcaster",
    "verify_receipt_claim",
)

for _name in __all__:
    with _contextlib.suppress(AttributeError, TypeError):
        globals()[_name].__module__ = "batpak"
