"""``H_interface``: the fingerprint of the contract clients see (view version 5).

Hooks, jobs, guards and diagnostic types never enter it. Every ref resolves by ``(id, role)``
against the composition and must match exactly one schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from hostbat.composition import HostCompositionManifest
from hostbat.errors import SchemaReferenceAmbiguous, SchemaReferenceMissing
from hostbat.identity import InterfaceFingerprint, canonical_digest
from hostbat.manifest import HostModuleManifest
from hostbat.schema import SchemaRole
from hostbat.subscription import SUBSCRIPTION_WIRE_REQUIRES

INTERFACE_DIGEST_DOMAIN: Final = "hostbat.interface.v5"
INTERFACE_VIEW_SCHEMA_VERSION: Final = 5
WIRE_PROTOCOL_VERSION: Final = "NETBAT/1"
WIRE_ENCODING_VERSION: Final = "named-field-msgpack:v1"


def resolve_schema_ref(
    composition: HostCompositionManifest,
    module: str,
    operation: str | None,
    reference: str,
    role: SchemaRole,
) -> dict[str, object]:
    """Return the SIV ``{id, version, role, encoding}`` of the one schema ``reference`` names."""
    matches = composition.matching(reference, role)
    if not matches:
        raise SchemaReferenceMissing(module, operation, reference, role.wire)
    if len(matches) > 1:
        raise SchemaReferenceAmbiguous(
            module, operation, reference, role.wire, [m.version for m in matches]
        )
    return matches[0].manifest_view()


def interface_view(
    manifests: Sequence[HostModuleManifest], composition: HostCompositionManifest
) -> dict[str, object]:
    """The exact ``H_interface`` input map (spec §2.1), in field order."""
    operations: list[tuple[tuple[str, str], dict[str, object]]] = []
    subscriptions: list[tuple[tuple[str, str], dict[str, object]]] = []
    bindings: list[tuple[tuple[str, int], dict[str, object]]] = []
    for m in manifests:
        for d in m.operations:
            view: dict[str, object] = {
                "module_id": m.id,
                "name": d.name,
                "input_schema": resolve_schema_ref(
                    composition, m.id, d.name, d.input_schema_ref, SchemaRole.OPERATION_INPUT
                ),
                "output_schema": resolve_schema_ref(
                    composition, m.id, d.name, d.output_schema_ref, SchemaRole.OPERATION_OUTPUT
                ),
                "receipt_kind": d.receipt_kind,
                "receipt_schema": resolve_schema_ref(
                    composition, m.id, d.name, d.receipt_kind, SchemaRole.RECEIPT_PAYLOAD
                ),
            }
            operations.append(((m.id, d.name), view))
        for s in m.subscriptions:
            view = {
                "module_id": m.id,
                "id": s.id,
                "source": s.source.view(),
                "payload_schema": resolve_schema_ref(
                    composition, m.id, None, s.payload_schema_ref, s.required_payload_role
                ),
                "delivery": s.delivery.value,
                "backpressure": s.backpressure.view(),
            }
            subscriptions.append(((m.id, s.id), view))
        for b in m.event_payload_bindings:
            view = {
                "module_id": m.id,
                "kind": b.kind,
                "payload_schema": resolve_schema_ref(
                    composition, m.id, None, b.payload_schema_ref, SchemaRole.EVENT_PAYLOAD
                ),
            }
            bindings.append(((m.id, b.kind), view))
    exported = sorted(
        (
            e.descriptor
            for e in composition.schemas
            if e.descriptor.role == SchemaRole.EVENT_PAYLOAD
        ),
        key=lambda d: (d.id, d.version),
    )
    return {
        "domain": INTERFACE_DIGEST_DOMAIN,
        "view_schema_version": INTERFACE_VIEW_SCHEMA_VERSION,
        "wire_protocol_version": WIRE_PROTOCOL_VERSION,
        "wire_encoding_version": WIRE_ENCODING_VERSION,
        "subscription_wire_requires": SUBSCRIPTION_WIRE_REQUIRES,
        "operations": [v for _, v in sorted(operations, key=lambda kv: kv[0])],
        "subscriptions": [v for _, v in sorted(subscriptions, key=lambda kv: kv[0])],
        "event_payload_bindings": [v for _, v in sorted(bindings, key=lambda kv: kv[0])],
        "exported_event_payloads": [d.manifest_view() for d in exported],
    }


def compute_interface_fingerprint(
    manifests: Sequence[HostModuleManifest], composition: HostCompositionManifest
) -> InterfaceFingerprint:
    """``H_interface`` of a host; raises on a missing or ambiguous ref."""
    return InterfaceFingerprint(canonical_digest(interface_view(manifests, composition)))
