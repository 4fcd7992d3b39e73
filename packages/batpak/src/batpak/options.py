"""AppendOptions: the per-append knobs beyond coordinate, kind and payload."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from batpak import canonical
from batpak.errors import InvalidCausation
from batpak.receipt import check_extension_key

_U128 = 1 << 128


class IdempotencyKey(int):
    """A u128 naming one logical operation; an append carrying it gets it as its event id."""

    __slots__ = ()

    def __new__(cls, value: int) -> IdempotencyKey:
        if not isinstance(value, int) or not 0 < value < _U128:
            raise InvalidCausation(f"idempotency key must be a non-zero u128, got {value!r}")
        return super().__new__(cls, value)

    @classmethod
    def for_operation(cls, domain: str | bytes, parts: Sequence[str | bytes]) -> IdempotencyKey:
        """The first 16 bytes (big-endian) of a length-delimited BLAKE3 of domain and parts."""
        chunks = [_delimited(domain), len(parts).to_bytes(8, "little")]
        chunks.extend(_delimited(part) for part in parts)
        return cls(int.from_bytes(canonical.digest(b"".join(chunks))[:16], "big"))


def _delimited(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else bytes(value)
    return len(data).to_bytes(8, "little") + data


@dataclass(frozen=True, slots=True)
class DurabilityGate:
    """Make an append return only once it is durable, waiting at most ``timeout`` seconds.

    A timeout raises ``WaitTimeout`` but does not undo the append.
    """

    timeout: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendOptions:
    """The per-append knobs beyond coordinate, kind and payload.

    ``correlation_id`` defaults to the new event's own id; a ``causation_id`` of 0 means none.
    ``expected_sequence`` makes the append a compare-and-set on the entity's current sequence
    (``SequenceMismatch`` otherwise; a new entity reads as 0). ``idempotency_key`` becomes the
    event id, and a retry with the same key returns the original receipt. ``gate`` waits for
    durability. Extension keys are ``namespace.field`` (``batpak`` is reserved); they are signed.
    """

    correlation_id: int | None = None
    causation_id: int | None = None
    flags: int = 0
    extensions: Mapping[str, bytes] = field(default_factory=dict)
    expected_sequence: int | None = None
    idempotency_key: int | None = None
    gate: DurabilityGate | None = None

    def __post_init__(self) -> None:
        if self.idempotency_key is not None:
            object.__setattr__(self, "idempotency_key", IdempotencyKey(self.idempotency_key))
        if self.expected_sequence is not None and not (
            isinstance(self.expected_sequence, int) and 0 <= self.expected_sequence <= 0xFFFF_FFFF
        ):
            raise InvalidCausation(
                f"expected_sequence must be a u32, got {self.expected_sequence!r}"
            )
        for name in ("correlation_id", "causation_id"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and 0 <= value < _U128):
                raise InvalidCausation(f"{name} must be a u128 int, got {value!r}")
        if not isinstance(self.flags, int) or not 0 <= self.flags <= 0xFF:
            raise InvalidCausation(f"flags must fit in a u8, got {self.flags!r}")
        for key, value in self.extensions.items():
            check_extension_key(key)
            if not isinstance(value, bytes):
                raise InvalidCausation(f"extension {key!r} value must be bytes")


DEFAULT_OPTIONS = AppendOptions()
