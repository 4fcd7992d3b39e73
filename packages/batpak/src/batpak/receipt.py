"""Append receipts, the signature cover, and the one receipt-claim verifier (format.md §6).

Receipts are never persisted. ``verify_receipt_claim`` is the single implementation used both
by ``Store.verify_append_receipt`` and by store-free callers.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Collection, Mapping

import msgspec
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from batpak import canonical
from batpak.coordinate import Coordinate
from batpak.errors import InvalidExtension

ZERO_KEY_ID = bytes(32)
COVER_VERSION = 1
_COVER_HEAD = struct.Struct("<B16sQ")
_KIND = struct.Struct("<H")


class DiskPos(msgspec.Struct, frozen=True, gc=False):
    """Where a frame lives: segment id, frame start offset, whole frame length."""

    segment_id: int
    offset: int
    length: int


class AppendReceipt(msgspec.Struct, frozen=True):
    """What an append returns: the committed id, order, position, hash and signature."""

    event_id: int
    global_sequence: int
    disk_pos: DiskPos
    content_hash: bytes
    key_id: bytes = ZERO_KEY_ID
    signature: bytes | None = None
    extensions: dict[str, bytes] = msgspec.field(default_factory=dict)

    @property
    def is_signed(self) -> bool:
        return self.signature is not None


class Outcome(enum.StrEnum):
    """The verdict of a receipt check: signed, unsigned but accepted, or invalid."""

    SIGNED = "signed"
    UNSIGNED_ACCEPTED = "unsigned_accepted"
    INVALID = "invalid"


class Reason(enum.StrEnum):
    """Why a receipt is invalid. The first group is store-side only."""

    MISSING_COMMITTED_EVENT = "missing_committed_event"
    EVENT_ID_MISMATCH = "event_id_mismatch"
    SEQUENCE_MISMATCH = "sequence_mismatch"
    DISK_POSITION_MISMATCH = "disk_position_mismatch"
    CONTENT_HASH_MISMATCH = "content_hash_mismatch"
    EXTENSIONS_MISMATCH = "extensions_mismatch"
    UNSIGNED_RECEIPT_REJECTED = "unsigned_receipt_rejected"
    COVER_BUILD_FAILED = "cover_build_failed"
    MISSING_SIGNATURE = "missing_signature"
    ZERO_KEY_WITH_SIGNATURE = "zero_key_with_signature"
    UNKNOWN_SIGNING_KEY = "unknown_signing_key"
    INVALID_SIGNATURE = "invalid_signature"


class ReceiptVerdict(msgspec.Struct, frozen=True):
    """The outcome of verifying a receipt, with the reason when it is invalid."""

    outcome: Outcome
    reason: Reason | None = None

    @property
    def is_valid(self) -> bool:
        return self.outcome is not Outcome.INVALID


def check_extension_key(key: str) -> None:
    """ASCII, 1..256 bytes, exactly one '.' with both sides non-empty; ``batpak.`` reserved."""
    if not isinstance(key, str) or not key.isascii() or not 1 <= len(key) <= 256:
        raise InvalidExtension(f"extension key {key!r} must be 1..256 ASCII characters")
    namespace, dot, field = key.partition(".")
    if not dot or not namespace or not field or "." in field:
        raise InvalidExtension(f"extension key {key!r} must be 'namespace.field'")
    if namespace == "batpak":
        raise InvalidExtension(f"extension namespace 'batpak' is reserved ({key!r})")


def encode_extensions(extensions: Mapping[str, bytes]) -> bytes:
    """Canonical extensions map: keys in bytewise order, values as int arrays."""
    ordered = {k: list(extensions[k]) for k in sorted(extensions, key=str.encode)}
    return canonical.encode(ordered)


def cover_digest(
    event_id: int,
    global_sequence: int,
    coordinate: Coordinate,
    kind: int,
    prev_hash: bytes,
    content_hash: bytes,
    extensions: Mapping[str, bytes],
) -> bytes:
    """The 32-byte cover v1 digest that an Ed25519 receipt signature signs."""
    return canonical.digest(
        b"".join(
            (
                _COVER_HEAD.pack(COVER_VERSION, event_id.to_bytes(16, "little"), global_sequence),
                canonical.encode(coordinate.to_wire()),
                _KIND.pack(kind),
                prev_hash,
                content_hash,
                encode_extensions(extensions),
            )
        )
    )


def key_id_of(public_key: bytes) -> bytes:
    """A signing key's id: blake3 of its 32-byte Ed25519 public key."""
    return canonical.digest(public_key)


def verify_receipt_claim(
    receipt: AppendReceipt,
    coordinate: Coordinate,
    kind: int,
    prev_hash: bytes,
    verifying_keys: Collection[bytes] = (),
) -> ReceiptVerdict:
    """Check a receipt's signature claim without a store (the order of format.md §6)."""
    if receipt.signature is None and receipt.key_id == ZERO_KEY_ID:
        if not verifying_keys:
            return ReceiptVerdict(Outcome.UNSIGNED_ACCEPTED)
        return ReceiptVerdict(Outcome.INVALID, Reason.UNSIGNED_RECEIPT_REJECTED)
    try:
        digest = cover_digest(
            receipt.event_id,
            receipt.global_sequence,
            coordinate,
            kind,
            prev_hash,
            receipt.content_hash,
            receipt.extensions,
        )
    except (ValueError, TypeError, OverflowError, struct.error):
        return ReceiptVerdict(Outcome.INVALID, Reason.COVER_BUILD_FAILED)
    if receipt.signature is None:
        return ReceiptVerdict(Outcome.INVALID, Reason.MISSING_SIGNATURE)
    if receipt.key_id == ZERO_KEY_ID:
        return ReceiptVerdict(Outcome.INVALID, Reason.ZERO_KEY_WITH_SIGNATURE)
    by_id = {key_id_of(pk): pk for pk in verifying_keys}
    public_key = by_id.get(receipt.key_id)
    if public_key is None:
        return ReceiptVerdict(Outcome.INVALID, Reason.UNKNOWN_SIGNING_KEY)
    try:
        VerifyKey(public_key).verify(digest, receipt.signature)
    except (BadSignatureError, ValueError):
        return ReceiptVerdict(Outcome.INVALID, Reason.INVALID_SIGNATURE)
    return ReceiptVerdict(Outcome.SIGNED)


class Signer:
    """Ed25519 receipt signing from 32-byte seeds: the last key signs, every key verifies."""

    def __init__(self, seeds: Collection[bytes]) -> None:
        keys = [SigningKey(bytes(seed)) for seed in seeds]
        self._signing = keys[-1] if keys else None
        self.verifying_keys: tuple[bytes, ...] = tuple(bytes(k.verify_key) for k in keys)
        self.key_id = key_id_of(self.verifying_keys[-1]) if keys else ZERO_KEY_ID

    @property
    def active(self) -> bool:
        return self._signing is not None

    def sign(self, digest: bytes) -> bytes | None:
        """The 64-byte signature over a cover digest, or None when no key is configured."""
        if self._signing is None:
            return None
        return bytes(self._signing.sign(digest).signature)
