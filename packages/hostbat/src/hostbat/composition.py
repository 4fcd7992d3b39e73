"""The host composition: every mounted module's schemas, collision-checked and digested.

Sorted by ``(id, version, role)`` with roles in enum order; an identical re-declaration keeps
the first owner, so mount order *can* change the digest. The same key with a different
encoding raises :class:`~hostbat.errors.SchemaCollision`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from hostbat.errors import SchemaCollision
from hostbat.identity import HostFingerprint, canonical_digest
from hostbat.schema import SchemaDescriptor, SchemaRole

COMPOSITION_DIGEST_DOMAIN: Final = "hostbat.composition.schema.v1"


@dataclass(frozen=True, slots=True)
class CompositionSchema:
    """One resolved schema and the module that declared it first."""

    descriptor: SchemaDescriptor
    owner_module: str

    def view(self) -> dict[str, object]:
        d = self.descriptor
        return {
            "id": d.id,
            "version": d.version,
            "role": d.role.wire,
            "encoding": d.encoding.wire(),
            "owner_module": self.owner_module,
        }


def _composition_view(schemas: tuple[CompositionSchema, ...]) -> dict[str, object]:
    return {"domain": COMPOSITION_DIGEST_DOMAIN, "schemas": [s.view() for s in schemas]}


class HostCompositionManifest:
    """The sealed schema set of a host (schemas only) and its digest."""

    __slots__ = ("_digest", "_schemas")

    def __init__(self, schemas: tuple[CompositionSchema, ...]) -> None:
        self._schemas = schemas
        self._digest = HostFingerprint(canonical_digest(_composition_view(schemas)))

    @property
    def schemas(self) -> tuple[CompositionSchema, ...]:
        """Entries in ``(id, version, role)`` order."""
        return self._schemas

    @property
    def digest(self) -> HostFingerprint:
        return self._digest

    def __len__(self) -> int:
        return len(self._schemas)

    def __iter__(self) -> Iterator[CompositionSchema]:
        return iter(self._schemas)

    def find(self, schema_id: str, version: int, role: SchemaRole) -> CompositionSchema | None:
        for entry in self._schemas:
            if entry.descriptor.identity_key == (schema_id, version, role):
                return entry
        return None

    def matching(self, reference: str, role: SchemaRole) -> list[SchemaDescriptor]:
        """Every schema with this id and role (a ref resolves to exactly one)."""
        return [
            e.descriptor
            for e in self._schemas
            if e.descriptor.id == reference and e.descriptor.role == role
        ]

    def verify_digest(self) -> bool:
        return canonical_digest(_composition_view(self._schemas)) == self._digest


class CompositionSchemaBuilder:
    """Aggregates module schemas, failing closed on a differing re-declaration."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, int, SchemaRole], CompositionSchema] = {}

    def check(self, module: str, descriptor: SchemaDescriptor) -> None:
        """Raise :class:`SchemaCollision` if ``descriptor`` would collide; add nothing."""
        existing = self._by_key.get(descriptor.identity_key)
        if existing is not None and existing.descriptor.encoding != descriptor.encoding:
            raise SchemaCollision(
                descriptor.id,
                descriptor.version,
                descriptor.role.wire,
                existing.owner_module,
                existing.descriptor.encoding.hex(),
                module,
                descriptor.encoding.hex(),
            )

    def add(self, module: str, descriptor: SchemaDescriptor) -> None:
        self.check(module, descriptor)
        self._by_key.setdefault(descriptor.identity_key, CompositionSchema(descriptor, module))

    def seal(self) -> HostCompositionManifest:
        return HostCompositionManifest(tuple(self._by_key[k] for k in sorted(self._by_key)))
