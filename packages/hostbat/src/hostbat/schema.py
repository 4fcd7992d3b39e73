"""Schema identity: language-neutral wire-shape descriptors and the runtime registry.

A schema is named by ``(id, version, role)`` and pinned by a :class:`CanonicalEncoding`, the
hash of ``{domain:"hostbat.schema.v3", id, version, role, golden}`` with golden vectors sorted by
case. The diagnostic Rust type is informational and never hashed.
"""

from __future__ import annotations

import builtins
import enum
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from batpak import canonical
from hostbat.errors import SchemaInvalid, SchemaValidation
from hostbat.identity import CanonicalEncoding, canonical_digest

SCHEMA_ENCODING_DOMAIN: Final = "hostbat.schema.v3"
MAX_SCHEMA_ID_BYTES: Final = 256
U32_MAX: Final = 0xFFFF_FFFF

_ID_BYTES: Final = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789._-")


class SchemaRole(enum.IntEnum):
    """The wire role of a schema; the int order is the Rust enum order used for sorting."""

    OPERATION_INPUT = 0
    OPERATION_OUTPUT = 1
    EVENT_PAYLOAD = 2
    RECEIPT_PAYLOAD = 3
    SUBSCRIPTION_PAYLOAD = 4

    @property
    def wire(self) -> str:
        """The kebab-case spelling hashed into every view."""
        return _ROLE_WIRE[self]

    def __str__(self) -> str:
        return self.wire


_ROLE_WIRE: Final = {
    SchemaRole.OPERATION_INPUT: "operation-input",
    SchemaRole.OPERATION_OUTPUT: "operation-output",
    SchemaRole.EVENT_PAYLOAD: "event-payload",
    SchemaRole.RECEIPT_PAYLOAD: "receipt-payload",
    SchemaRole.SUBSCRIPTION_PAYLOAD: "subscription-payload",
}


def validate_schema_id(schema_id: str) -> str:
    """Return ``schema_id`` if it is ``[a-z0-9._-]``, ≤256 bytes, no edge or doubled dot."""

    def reject(detail: str) -> SchemaInvalid:
        return SchemaInvalid(schema_id, detail)

    if not isinstance(schema_id, str):
        raise SchemaInvalid(repr(schema_id), "schema id must be a str")
    if not schema_id:
        raise reject("empty schema id")
    raw = schema_id.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_SCHEMA_ID_BYTES:
        raise reject(f"schema id longer than {MAX_SCHEMA_ID_BYTES} bytes")
    if schema_id.startswith(".") or schema_id.endswith("."):
        raise reject("schema id has a leading or trailing '.'")
    if ".." in schema_id:
        raise reject("schema id has a doubled '.'")
    if not all(b in _ID_BYTES for b in raw):
        raise reject("schema id has characters outside [a-z0-9._-]")
    return schema_id


@dataclass(frozen=True, slots=True)
class GoldenVector:
    """One committed canonical example of a schema's wire bytes."""

    case: str
    bytes: builtins.bytes

    def view(self) -> dict[str, object]:
        return {"case": self.case, "bytes": canonical.byte_array(self.bytes)}


def _compute_encoding(
    schema_id: str, version: int, role: SchemaRole, golden: Sequence[GoldenVector]
) -> CanonicalEncoding:
    view = {
        "domain": SCHEMA_ENCODING_DOMAIN,
        "id": schema_id,
        "version": version,
        "role": role.wire,
        "golden": [g.view() for g in golden],
    }
    return CanonicalEncoding(canonical_digest(view))


class SchemaDescriptor:
    """The identity-bearing declaration of one wire schema; its encoding is computed once."""

    __slots__ = ("_diagnostic_rust_type", "_encoding", "_golden", "_id", "_role", "_version")

    def __init__(
        self,
        schema_id: str,
        version: int,
        role: SchemaRole,
        golden: Iterable[GoldenVector] = (),
        *,
        diagnostic_rust_type: str | None = None,
    ) -> None:
        validate_schema_id(schema_id)
        if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= U32_MAX:
            raise SchemaInvalid(schema_id, f"schema version {version!r} is not a u32")
        role = SchemaRole(role)
        ordered = sorted(golden, key=lambda g: g.case)
        for a, b in itertools.pairwise(ordered):
            if a.case == b.case:
                raise SchemaInvalid(schema_id, f"golden vector case {a.case!r} is declared twice")
        self._id = schema_id
        self._version = version
        self._role = role
        self._golden: tuple[GoldenVector, ...] = tuple(ordered)
        self._diagnostic_rust_type = diagnostic_rust_type
        self._encoding = _compute_encoding(schema_id, version, role, self._golden)

    @property
    def id(self) -> str:
        return self._id

    @property
    def version(self) -> int:
        return self._version

    @property
    def role(self) -> SchemaRole:
        return self._role

    @property
    def golden(self) -> tuple[GoldenVector, ...]:
        """Golden vectors in case-name order."""
        return self._golden

    @property
    def encoding(self) -> CanonicalEncoding:
        return self._encoding

    @property
    def diagnostic_rust_type(self) -> str | None:
        """Informational only; excluded from every digest."""
        return self._diagnostic_rust_type

    @property
    def identity_key(self) -> tuple[str, int, SchemaRole]:
        """The ``(id, version, role)`` key; sorts with roles in enum order."""
        return (self._id, self._version, self._role)

    def verify_encoding(self) -> bool:
        """Recompute the encoding from the golden vectors and compare it to the sealed one."""
        return _compute_encoding(self._id, self._version, self._role, self._golden) == (
            self._encoding
        )

    def manifest_view(self) -> dict[str, object]:
        """``{id, version, role, encoding}``: the SIV hashed into manifests and interfaces."""
        return {
            "id": self._id,
            "version": self._version,
            "role": self._role.wire,
            "encoding": self._encoding.wire(),
        }

    def __repr__(self) -> str:
        return (
            f"SchemaDescriptor({self._id!r}, {self._version}, {self._role.wire}, "
            f"encoding={self._encoding.hex()})"
        )


def _decode_msgpack(data: bytes) -> str | None:
    try:
        canonical.decode(data)
    except canonical.CanonicalDecodeError as exc:
        return str(exc)
    return None


class SchemaRegistry:
    """Resolves schema refs by ``(id, role)`` and validates bytes structurally."""

    __slots__ = ("_by_ref", "_sound")

    def __init__(self, descriptors: Iterable[SchemaDescriptor] = ()) -> None:
        by_ref: dict[tuple[str, SchemaRole], list[SchemaDescriptor]] = {}
        for d in descriptors:
            by_ref.setdefault((d.id, d.role), []).append(d)
        for entries in by_ref.values():
            entries.sort(key=lambda d: d.version)
        self._by_ref = by_ref
        # Refs whose descriptor passed its encoding and golden checks: descriptors are
        # immutable, so each is checked once, not on every call.
        self._sound: set[tuple[str, SchemaRole]] = set()

    def resolve(self, schema_id: str, role: SchemaRole) -> SchemaDescriptor:
        """Return the one descriptor for ``(id, role)``; raise :class:`SchemaValidation`."""
        entries = self._by_ref.get((schema_id, role))
        if not entries:
            raise SchemaValidation(schema_id, role.wire, "required descriptor is not present")
        if len(entries) != 1:
            versions = ", ".join(str(d.version) for d in entries)
            raise SchemaValidation(
                schema_id, role.wire, f"schema ref is ambiguous across versions [{versions}]"
            )
        return entries[0]

    def validate(self, schema_id: str, role: SchemaRole, data: bytes) -> None:
        """Check resolution, encoding integrity, goldens and ``data`` all decode as msgpack."""
        descriptor = self.resolve(schema_id, role)
        if (schema_id, role) not in self._sound:
            self._check(descriptor)
            self._sound.add((schema_id, role))
        if (detail := _decode_msgpack(bytes(data))) is not None:
            raise SchemaValidation(
                schema_id, role.wire, f"payload is not canonical bytes: {detail}"
            )

    @staticmethod
    def _check(descriptor: SchemaDescriptor) -> None:
        schema_id, role = descriptor.id, descriptor.role
        if not descriptor.verify_encoding():
            raise SchemaValidation(
                schema_id, role.wire, "descriptor encoding no longer matches its golden vectors"
            )
        for g in descriptor.golden:
            if (detail := _decode_msgpack(g.bytes)) is not None:
                raise SchemaValidation(
                    schema_id,
                    role.wire,
                    f"golden vector {g.case!r} is not canonical bytes: {detail}",
                )
