"""The single canonical-encoding seam of batpak: ``rmp_serde::to_vec_named`` MessagePack.

Every byte batpak writes or hashes goes through :func:`encode` and :func:`digest`; no other
module touches msgpack or blake3. Compatibility rules (spec/format.md §1):

1. Structs are maps with string keys in Rust *declaration order*, never sorted. Pass a
   ``dict`` built in that order, or a plain ``msgspec.Struct`` (no ``array_like``,
   ``omit_defaults`` or ``tag``). Every field is written; ``None`` is nil (``c0``).
2. u128 values (ids, idempotency keys) are bin8 of 16 bytes, big-endian (``c4 10 ..``):
   pass :func:`u128_to_bytes` (a ``uuid.UUID`` gives the same bytes). The ``Vec<u128>``
   helper form is an array of 16-int arrays: :func:`u128_int_arrays`.
3. Byte arrays (``[u8; N]`` and ``Vec<u8>``: hashes, payload bytes, signatures) are int
   arrays, not bin: pass :func:`byte_array`. Python ``bytes`` always become bin.
4. Enums are externally tagged: unit variant ``"Name"``, struct variant ``{"Name": {..}}``,
   newtype variant ``{"Name": v}``, tuple variant ``{"Name": [..]}``.
5. ``BTreeMap`` keys are written in Rust ``Ord`` order, bytewise for strings:
   :func:`sorted_map`.
6. ``serde_json::Value`` objects have sorted keys (no ``preserve_order``): :func:`json_value`.
7. Integers take the smallest encoding, non-negative ones as unsigned; the range is
   i64::MIN..=u64::MAX. Strings are fixstr/str8/str16/str32. Tuples and lists are arrays.
8. Floats are always f64 (``cb``). f32 (``ca``) is **not supported**: no core struct has one.

Sets, datetimes and other msgspec extras have no rmp counterpart; do not encode them.
"""

import functools
from collections.abc import Iterable, Mapping
from typing import Any, Final, TypeAlias, TypeVar, overload

import blake3
import msgspec

__all__ = (
    "U128_MAX",
    "CanonicalDecodeError",
    "CanonicalEncodeError",
    "byte_array",
    "decode",
    "digest",
    "encode",
    "json_value",
    "sorted_map",
    "u128_from_bytes",
    "u128_int_arrays",
    "u128_to_bytes",
)

T = TypeVar("T")
K = TypeVar("K", str, int, bytes)
V = TypeVar("V")
Buffer: TypeAlias = bytes | bytearray | memoryview

U128_MAX: Final = (1 << 128) - 1
"""Largest u128 value."""


# msgspec matches rmp byte-for-byte for every shape above (verified against all core
# goldens); uuid_format="bytes" makes a UUID the same bin16 as a u128 id.
def _int_subclass(obj: object) -> object:
    # EventKind and other int subclasses encode as the plain uint they are.
    if isinstance(obj, int):
        return int(obj)
    raise TypeError(f"Encoding objects of type {type(obj).__name__} is unsupported")


_ENCODER: Final = msgspec.msgpack.Encoder(uuid_format="bytes", enc_hook=_int_subclass)
_DECODER: Final = msgspec.msgpack.Decoder()


class CanonicalEncodeError(ValueError):
    """Raised when a value has no canonical encoding (int out of range, nesting too deep)."""


class CanonicalDecodeError(ValueError):
    """Raised when bytes are not valid canonical MessagePack or do not match the type."""


def encode(obj: object) -> bytes:
    """Return the canonical MessagePack bytes of ``obj``."""
    try:
        return _ENCODER.encode(obj)
    except (OverflowError, RecursionError, TypeError) as exc:
        raise CanonicalEncodeError(f"no canonical encoding: {exc}") from exc


@functools.lru_cache(maxsize=256)
def _decoder_for(tp: Any) -> msgspec.msgpack.Decoder[Any]:
    return msgspec.msgpack.Decoder(tp)


@overload
def decode(data: Buffer) -> Any: ...
@overload
def decode(data: Buffer, type: type[T]) -> T: ...
def decode(data: Buffer, type: Any = Any) -> Any:
    """Decode canonical bytes, as ``type`` when given; raise :class:`CanonicalDecodeError`."""
    decoder = _DECODER if type is Any else _decoder_for(type)
    try:
        return decoder.decode(data)
    # msgspec.DecodeError/ValidationError, invalid UTF-8 and over-deep nesting.
    except (ValueError, RecursionError) as exc:
        raise CanonicalDecodeError(f"invalid canonical MessagePack: {exc}") from exc


def digest(data: Buffer) -> bytes:
    """Return the 32-byte BLAKE3 digest of ``data``."""
    out: bytes = blake3.blake3(data).digest()
    return out


def u128_to_bytes(v: int) -> bytes:
    """Return ``v`` as 16 big-endian bytes (the bin16 form of a u128)."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"u128 must be an int, not {v.__class__.__name__}")
    if not 0 <= v <= U128_MAX:
        raise ValueError(f"u128 out of range: {v}")
    return v.to_bytes(16, "big")


def u128_from_bytes(b: Buffer) -> int:
    """Return the u128 held in exactly 16 big-endian bytes."""
    if len(b) != 16:
        raise ValueError(f"u128 needs exactly 16 bytes, got {len(b)}")
    return int.from_bytes(b, "big")


def byte_array(b: Buffer) -> list[int]:
    """Return the int-array form rmp uses for ``[u8; N]`` and ``Vec<u8>``."""
    return list(bytes(b))


def u128_int_arrays(ids: Iterable[int]) -> list[list[int]]:
    """Return the ``Vec<u128>`` helper form: one 16-int big-endian array per id."""
    return [list(u128_to_bytes(i)) for i in ids]


def sorted_map(m: Mapping[K, V]) -> dict[K, V]:
    """Return ``m`` with keys in Rust ``BTreeMap`` order.

    Python orders str by code point, which equals UTF-8 bytewise order.
    """
    return {k: m[k] for k in sorted(m)}


def json_value(v: object) -> object:
    """Return ``v`` shaped as rmp writes a ``serde_json::Value``: object keys sorted."""
    if isinstance(v, Mapping):
        if not all(isinstance(k, str) for k in v):
            raise TypeError("serde_json object keys must be str")
        return {k: json_value(v[k]) for k in sorted(v)}
    if isinstance(v, list | tuple):
        return [json_value(x) for x in v]
    return v
