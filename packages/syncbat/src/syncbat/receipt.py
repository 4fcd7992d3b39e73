"""Receipt envelopes (event kind ``0xC5B7``), outcomes, the hash policy and the sink seam.

The envelope's wire form is the reference's ``ReceiptEnvelope`` byte for byte: fields
``descriptor_name, receipt_kind, input_hash, output_hash, outcome, signed_extensions,
local_extensions``; hashes are 32-int arrays or nil; the outcome is ``"Completed"`` or a
one-key map ``{"Failed"|"Denied": {code, message}}``; drawers are sorted maps of int arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar, Final, Protocol, TypeAlias

import msgspec

from batpak import AppendReceipt, canonical
from syncbat._wire import (
    SYNCBAT_RECEIPT_EVENT_KIND,
    CodeMessage,
    ReceiptEnvelopeWire,
    decode_as,
    opt,
    serde_bytes,
    sorted_drawer,
)
from syncbat.errors import WireDecodeError
from syncbat.operation import OperationDescriptor

__all__ = (
    "COMPLETED",
    "SYNCBAT_RECEIPT_EVENT_KIND",
    "Completed",
    "Denied",
    "Failed",
    "ReceiptEnvelope",
    "ReceiptHashPolicy",
    "ReceiptOutcome",
    "ReceiptSink",
    "RecordedReceipt",
)


class Completed(msgspec.Struct, frozen=True):
    """The operation completed and produced its output."""

    outcome_class: ClassVar[str] = "completed"


class Failed(msgspec.Struct, frozen=True):
    """The handler ran and failed; ``code`` is its class."""

    code: str
    message: str

    outcome_class: ClassVar[str] = "failed"


class Denied(msgspec.Struct, frozen=True):
    """The call was refused (capability, guard or effect row); ``code`` is the denial class."""

    code: str
    message: str

    outcome_class: ClassVar[str] = "denied"


COMPLETED: Final = Completed()
ReceiptOutcome: TypeAlias = Completed | Failed | Denied


def _check_hash(name: str, value: bytes | None) -> None:
    if value is not None and (not isinstance(value, bytes) or len(value) != 32):
        raise ValueError(f"{name} must be 32 bytes or None")


def _check_drawer(name: str, drawer: Mapping[str, bytes]) -> None:
    for key, value in drawer.items():
        if not isinstance(key, str) or not isinstance(value, bytes):
            raise TypeError(f"{name} maps str to bytes")


class ReceiptEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """One operation attempt's receipt, as the runtime records it."""

    descriptor_name: str
    receipt_kind: str
    input_hash: bytes | None = None
    output_hash: bytes | None = None
    outcome: ReceiptOutcome = COMPLETED
    signed_extensions: dict[str, bytes] = msgspec.field(default_factory=dict)
    local_extensions: dict[str, bytes] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_hash("input_hash", self.input_hash)
        _check_hash("output_hash", self.output_hash)
        if not isinstance(self.outcome, Completed | Failed | Denied):
            raise TypeError("outcome must be Completed, Failed or Denied")
        _check_drawer("signed_extensions", self.signed_extensions)
        _check_drawer("local_extensions", self.local_extensions)

    @classmethod
    def for_descriptor(
        cls, descriptor: OperationDescriptor, outcome: ReceiptOutcome
    ) -> ReceiptEnvelope:
        return cls(
            descriptor_name=descriptor.name, receipt_kind=descriptor.receipt_kind, outcome=outcome
        )

    def to_wire(self) -> ReceiptEnvelopeWire:
        outcome: str | dict[str, CodeMessage]
        if isinstance(self.outcome, Completed):
            outcome = "Completed"
        else:
            name = "Failed" if isinstance(self.outcome, Failed) else "Denied"
            outcome = {name: CodeMessage(self.outcome.code, self.outcome.message)}
        return ReceiptEnvelopeWire(
            descriptor_name=self.descriptor_name,
            receipt_kind=self.receipt_kind,
            input_hash=None if self.input_hash is None else serde_bytes(self.input_hash),
            output_hash=None if self.output_hash is None else serde_bytes(self.output_hash),
            outcome=outcome,
            signed_extensions=sorted_drawer(self.signed_extensions),
            local_extensions=sorted_drawer(self.local_extensions),
        )

    def encode(self) -> bytes:
        """The canonical payload bytes (the reference's ``to_vec_named``)."""
        return canonical.encode(self.to_wire())

    @classmethod
    def decode(cls, data: bytes) -> ReceiptEnvelope:
        """Decode payload bytes; raises :class:`WireDecodeError` for anything else."""
        wire = decode_as(data, ReceiptEnvelopeWire, "receipt envelope")
        return cls(
            descriptor_name=wire.descriptor_name,
            receipt_kind=wire.receipt_kind,
            input_hash=_opt_bytes(opt(wire.input_hash)),
            output_hash=_opt_bytes(opt(wire.output_hash)),
            outcome=_decode_outcome(wire.outcome),
            signed_extensions={k: bytes(v) for k, v in wire.signed_extensions.items()},
            local_extensions={k: bytes(v) for k, v in wire.local_extensions.items()},
        )


def _opt_bytes(value: list[int] | None) -> bytes | None:
    return None if value is None else bytes(value)


def _decode_outcome(value: str | dict[str, CodeMessage]) -> ReceiptOutcome:
    if isinstance(value, str):
        if value == "Completed":
            return COMPLETED
        raise WireDecodeError(f"invalid receipt envelope: unknown outcome {value!r}")
    if len(value) != 1:
        raise WireDecodeError("invalid receipt envelope: outcome map must have one key")
    ((name, body),) = value.items()
    if name == "Failed":
        return Failed(body.code, body.message)
    if name == "Denied":
        return Denied(body.code, body.message)
    raise WireDecodeError(f"invalid receipt envelope: unknown outcome {name!r}")


Hasher: TypeAlias = Callable[[bytes], bytes]


class ReceiptHashPolicy:
    """How receipts hash input and output bytes: BLAKE3-256 (default), deferred (no
    hashes), or a caller's ``raw_bytes(fn)`` returning 32 bytes."""

    __slots__ = ("_hasher", "_label")

    BLAKE3: ClassVar[ReceiptHashPolicy]
    DEFERRED: ClassVar[ReceiptHashPolicy]

    def __init__(self, hasher: Hasher | None, label: str) -> None:
        self._hasher = hasher
        self._label = label

    @classmethod
    def raw_bytes(cls, hasher: Hasher) -> ReceiptHashPolicy:
        return cls(hasher, "raw_bytes")

    def hash(self, data: bytes) -> bytes | None:
        """The 32-byte hash of ``data``, or None when hashing is deferred."""
        if self._hasher is None:
            return None
        digest = self._hasher(data)
        if not isinstance(digest, bytes) or len(digest) != 32:
            raise ValueError("a receipt hasher must return exactly 32 bytes")
        return digest

    def __repr__(self) -> str:
        return f"ReceiptHashPolicy.{self._label}"


ReceiptHashPolicy.BLAKE3 = ReceiptHashPolicy(canonical.digest, "BLAKE3")
ReceiptHashPolicy.DEFERRED = ReceiptHashPolicy(None, "DEFERRED")


class RecordedReceipt(msgspec.Struct, frozen=True):
    """The recorded envelope, plus the batpak append receipt when a store recorded it."""

    envelope: ReceiptEnvelope
    append_receipt: AppendReceipt | None = None


class ReceiptSink(Protocol):
    """Records one envelope; raises (any exception) to fail the call closed."""

    def record_receipt(self, envelope: ReceiptEnvelope) -> RecordedReceipt: ...
