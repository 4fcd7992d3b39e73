"""The sealed, content-identified module manifest and its ``H_module`` view.

A manifest is never written by hand: :class:`~hostbat.module.HostModuleBuilder` seals it from the
parts registered on it. :meth:`HostModuleManifest.verify_hash` recomputes the digest; mount
refuses a manifest whose parts no longer hash to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from hostbat.binding import EventPayloadBinding
from hostbat.descriptor import GuardDescriptor, HookDescriptor, JobDescriptor
from hostbat.identity import ModuleDigest, canonical_digest
from hostbat.schema import SchemaDescriptor
from hostbat.subscription import SubscriptionDescriptor
from syncbat.operation import OperationDescriptor

MODULE_DIGEST_DOMAIN: Final = "hostbat.module.v1"


def operation_view(d: OperationDescriptor) -> dict[str, object]:
    """``{name, effect, input_schema_ref, output_schema_ref, receipt_kind, title}``.

    The effect row is deliberately not hashed (as in the reference).
    """
    return {
        "name": d.name,
        "effect": d.effect.value,
        "input_schema_ref": d.input_schema_ref,
        "output_schema_ref": d.output_schema_ref,
        "receipt_kind": d.receipt_kind,
        "title": d.title,
    }


class HostModuleManifest:
    """The declared parts of one module, held in canonical order, plus their digest."""

    __slots__ = (
        "_digest",
        "_event_payload_bindings",
        "_guard",
        "_hooks",
        "_id",
        "_jobs",
        "_operations",
        "_receipt_namespaces",
        "_schemas",
        "_subscriptions",
        "_version",
    )

    def __init__(
        self,
        *,
        module_id: str,
        version: int,
        operations: Sequence[OperationDescriptor],
        receipt_namespaces: Sequence[str],
        guard: GuardDescriptor | None,
        hooks: Sequence[HookDescriptor],
        jobs: Sequence[JobDescriptor],
        schemas: Sequence[SchemaDescriptor],
        subscriptions: Sequence[SubscriptionDescriptor],
        event_payload_bindings: Sequence[EventPayloadBinding],
    ) -> None:
        # Canonical order, so the digest depends on the declared set only.
        self._id = module_id
        self._version = version
        self._operations = tuple(sorted(operations, key=lambda d: d.name))
        self._receipt_namespaces = tuple(sorted(receipt_namespaces))
        self._guard = guard
        self._hooks = tuple(sorted(hooks, key=lambda h: h.order_key))
        self._jobs = tuple(sorted(jobs, key=lambda j: j.kind))
        self._schemas = tuple(sorted(schemas, key=lambda s: s.identity_key))
        self._subscriptions = tuple(sorted(subscriptions, key=lambda s: s.id))
        self._event_payload_bindings = tuple(sorted(event_payload_bindings, key=lambda b: b.kind))
        self._digest = self._compute_digest()

    def view(self) -> dict[str, object]:
        """The exact ``H_module`` input map (spec §2.1), in field order."""
        return {
            "domain": MODULE_DIGEST_DOMAIN,
            "id": self._id,
            "version": self._version,
            "operations": [operation_view(d) for d in self._operations],
            "receipt_namespaces": list(self._receipt_namespaces),
            "guard": self._guard.view() if self._guard is not None else None,
            "hooks": [h.view() for h in self._hooks],
            "jobs": [j.view() for j in self._jobs],
            "schemas": [s.manifest_view() for s in self._schemas],
            "subscriptions": [s.view() for s in self._subscriptions],
            "event_payload_bindings": [b.view() for b in self._event_payload_bindings],
        }

    def _compute_digest(self) -> ModuleDigest:
        return ModuleDigest(canonical_digest(self.view()))

    def verify_hash(self) -> bool:
        """Recompute the digest from the stored parts; ``False`` means tampered."""
        return self._compute_digest() == self._digest

    @property
    def id(self) -> str:
        return self._id

    @property
    def version(self) -> int:
        return self._version

    @property
    def digest(self) -> ModuleDigest:
        """``H_module``."""
        return self._digest

    @property
    def operations(self) -> tuple[OperationDescriptor, ...]:
        return self._operations

    @property
    def receipt_namespaces(self) -> tuple[str, ...]:
        return self._receipt_namespaces

    @property
    def guard(self) -> GuardDescriptor | None:
        return self._guard

    @property
    def hooks(self) -> tuple[HookDescriptor, ...]:
        return self._hooks

    @property
    def jobs(self) -> tuple[JobDescriptor, ...]:
        return self._jobs

    @property
    def schemas(self) -> tuple[SchemaDescriptor, ...]:
        return self._schemas

    @property
    def subscriptions(self) -> tuple[SubscriptionDescriptor, ...]:
        return self._subscriptions

    @property
    def event_payload_bindings(self) -> tuple[EventPayloadBinding, ...]:
        return self._event_payload_bindings

    def __repr__(self) -> str:
        return f"HostModuleManifest({self._id!r}, {self._version}, digest={self._digest.hex()})"
