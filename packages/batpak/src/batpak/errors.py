"""The one error tree of batpak, sorted by what a caller should do about it.

    StoreError
    ├── DomainError          fix the input; retrying the same call fails the same way
    ├── RetryableError       an operational hiccup; the same call may succeed later
    └── FailClosedError      the store refuses to go on; a human or a restore is needed

Every condition has its own subclass, so callers can catch by meaning (``except StoreLocked``)
or by handling class (``except RetryableError``). ``handling_class`` names the class as the
reference's published three-way contract spells it.
"""

from __future__ import annotations

from typing import ClassVar, Literal

HandlingClass = Literal["domain", "retryable_operational", "fail_closed_operational"]


class StoreError(Exception):
    """Base of every error the store raises."""

    handling_class: ClassVar[HandlingClass]


class DomainError(StoreError):
    """The input was wrong: fix it rather than retry."""

    handling_class = "domain"


class RetryableError(StoreError):
    """A transient operational failure: the same call may succeed later."""

    handling_class = "retryable_operational"


class FailClosedError(StoreError):
    """The store found damage or lost its writer and refuses to continue."""

    handling_class = "fail_closed_operational"


# -- domain -------------------------------------------------------------------------------


class StoreLocked(DomainError):
    """Another Store (in this or another process) holds the directory lock."""

    def __init__(self, path: str, mode: str) -> None:
        super().__init__(f"store directory {path!r} is locked (requested {mode} open)")
        self.path = path
        self.mode = mode


class NotFound(DomainError):
    """No visible event has this id."""

    def __init__(self, event_id: int) -> None:
        shown = f"{event_id:032x}" if isinstance(event_id, int) else repr(event_id)
        super().__init__(f"event {shown} not found")
        self.event_id = event_id


class InvalidCoordinate(DomainError, ValueError):
    """An entity or scope breaks the coordinate rules (format.md §2)."""


class InvalidKind(DomainError, ValueError):
    """A category or type id is out of range for an EventKind."""


class ReservedKind(DomainError):
    """The public append refuses system (0x0) and effect (0xD) kinds."""

    def __init__(self, kind: int, index: int = 0) -> None:
        super().__init__(f"event kind 0x{kind:04X} is reserved and cannot be appended")
        self.kind = kind
        self.index = index


class InvalidExtension(DomainError, ValueError):
    """A receipt extension key is malformed or uses the reserved ``batpak`` namespace."""


class PayloadTooLarge(DomainError):
    """The payload exceeds ``single_append_max_bytes``."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"payload of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class InvalidPayload(DomainError, ValueError):
    """A raw payload is not one well-formed MessagePack value."""


class EventPayloadRegistryError(DomainError):
    """Two payload types claim one kind, or a payload declaration is invalid."""


class ProjectionError(DomainError):
    """A projection class is malformed (for example, it handles no event type)."""


class Configuration(DomainError, ValueError):
    """A StoreConfig value or combination is invalid."""


class EntityClockOverflow(DomainError):
    """The per-(entity, lane) sequence would pass the u32 range."""


class SequenceMismatch(DomainError):
    """A compare-and-set append expected another current sequence; nothing was written."""

    def __init__(self, entity: str, expected: int, actual: int) -> None:
        super().__init__(
            f"entity {entity!r}: expected sequence {expected}, current sequence is {actual}"
        )
        self.entity = entity
        self.expected = expected
        self.actual = actual


class IdempotencyRequired(DomainError):
    """Group commit is configured, so every append must carry an idempotency key."""


class IdempotencyPartialBatch(DomainError):
    """A batch mixes keyed and unkeyed items, repeats a key, or only partly replays."""


class BatchTooLarge(DomainError):
    """A batch has too many items or bytes (``batch_max_size`` / ``batch_max_bytes``)."""


class InvalidCausation(DomainError, ValueError):
    """A correlation or causation id is out of range, or a prior-item reference is invalid."""


class InvalidClock(DomainError):
    """The clock returned a negative timestamp."""


class ReadOnlyStore(DomainError):
    """A write was attempted on a store opened read-only."""


class StoreClosed(DomainError):
    """The store was already closed."""


# -- retryable ----------------------------------------------------------------------------


class Io(RetryableError):
    """An operating-system I/O call failed."""


class WaitTimeout(RetryableError):
    """A wait (or a durability gate) ran out of time; what was appended stays appended."""

    def __init__(self, watermark: str, target: int, waited_ms: int) -> None:
        super().__init__(
            f"{watermark} did not reach global sequence {target} within {waited_ms} ms"
        )
        self.watermark = watermark
        self.target = target
        self.waited_ms = waited_ms


# -- fail closed --------------------------------------------------------------------------


class CrcMismatch(FailClosedError):
    """A frame's CRC does not match its bytes where no torn tail is allowed."""

    def __init__(self, segment_id: int, offset: int) -> None:
        super().__init__(f"CRC mismatch in segment {segment_id} at offset {offset}")
        self.segment_id = segment_id
        self.offset = offset


class CorruptFrame(FailClosedError):
    """A frame has a valid CRC but its contents do not decode."""

    def __init__(self, segment_id: int, offset: int, detail: str) -> None:
        super().__init__(f"corrupt frame in segment {segment_id} at offset {offset}: {detail}")
        self.segment_id = segment_id
        self.offset = offset
        self.detail = detail


class CorruptSegment(FailClosedError):
    """A segment is damaged in a way recovery must not paper over."""

    def __init__(self, segment_id: int, detail: str) -> None:
        super().__init__(f"corrupt segment {segment_id}: {detail}")
        self.segment_id = segment_id
        self.detail = detail


class FutureVersion(FailClosedError):
    """A file on disk was written by a newer format version than this reader knows."""


class StoreMetadataCorrupt(FailClosedError):
    """``store.meta`` exists but cannot be trusted."""


class SideFileCorrupt(FailClosedError):
    """An authority side file failed its magic, CRC or decoding checks."""


class WriterCrashed(FailClosedError):
    """The writer thread died or an fsync failed; the store accepts no more writes."""


class InvariantViolation(FailClosedError):
    """The store caught itself in an impossible state."""


class TypedDecodeError(Exception):
    """A payload could not be decoded as the requested type (not a StoreError)."""


class KindMismatch(TypedDecodeError):
    """The stored kind is not the kind bound to the requested type."""


class DecodeFailure(TypedDecodeError):
    """The payload bytes do not decode into the requested type."""


class PayloadFutureVersion(TypedDecodeError):
    """The stored payload version is newer than the type's current version."""


class UpcastMissing(TypedDecodeError):
    """An older payload version has no upcaster chain up to the current version."""
