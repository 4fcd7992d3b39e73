"""Mount-time collision checks and the sealed contract: H_host, composition, H_interface."""

from __future__ import annotations

import pytest
from hostbat_fixtures import (
    allow,
    echo,
    example_modules,
    noop,
    noop_job,
    op,
    op_schemas,
    schema,
    single_op_module,
)

from hostbat.builder import HostBuilder, compute_host_fingerprint, host_view
from hostbat.composition import COMPOSITION_DIGEST_DOMAIN
from hostbat.descriptor import GuardDescriptor, HookPhase
from hostbat.errors import (
    DuplicateEventPayloadBinding,
    DuplicateJobKind,
    DuplicateModuleId,
    DuplicateOperation,
    DuplicateReceiptNamespace,
    DuplicateSubscriptionId,
    EffectConflict,
    EmptyHost,
    EventPayloadBindingConflict,
    EventPayloadBindingSchemaMissing,
    ModuleHashMismatch,
    SchemaCollision,
    SchemaReferenceAmbiguous,
    SchemaReferenceMissing,
    SubscriptionPayloadSchemaMissing,
)
from hostbat.identity import ModuleDigest
from hostbat.interface import INTERFACE_DIGEST_DOMAIN, interface_view
from hostbat.module import HostModule
from hostbat.schema import SchemaRole
from hostbat.subscription import EventCategorySource, SubscriptionDescriptor
from syncbat.operation import OperationEffectRow


def contract_of(*modules: HostModule) -> object:
    b = HostBuilder()
    for m in modules:
        b.mount(m)
    return b.contract()


def test_host_fingerprint_is_mount_order_independent() -> None:
    a, b = example_modules()
    forward = HostBuilder().mount(a).mount(b).contract()
    a, b = example_modules()
    reverse = HostBuilder().mount(b).mount(a).contract()
    assert forward.fingerprint == reverse.fingerprint
    assert forward.interface_fingerprint == reverse.interface_fingerprint
    assert forward.composition_digest == reverse.composition_digest  # no shared schema here


def test_host_fingerprint_changes_with_the_module_set() -> None:
    two = contract_of(*example_modules())
    one = HostBuilder().mount(example_modules()[0]).contract()
    assert two.fingerprint != one.fingerprint  # type: ignore[attr-defined]


def test_host_view_sorts_modules_by_id() -> None:
    a, b = example_modules()
    view = host_view([a.manifest, b.manifest])
    assert view["domain"] == "hostbat.host.v1"
    assert view["modules"] == [
        {"module_id": "demo.audit", "module_digest": list(b.manifest.digest)},
        {"module_id": "demo.echo", "module_digest": list(a.manifest.digest)},
    ]
    assert compute_host_fingerprint([a.manifest, b.manifest]) == compute_host_fingerprint(
        [b.manifest, a.manifest]
    )


def test_composition_owner_is_the_first_declarer() -> None:
    shared = schema("shared.evt", SchemaRole.EVENT_PAYLOAD)

    def mod(mid: str) -> HostModule:
        return single_op_module_with(mid, f"{mid}.op", shared)

    forward = HostBuilder().mount(mod("mod.a")).mount(mod("mod.b")).contract()
    reverse = HostBuilder().mount(mod("mod.b")).mount(mod("mod.a")).contract()
    assert forward.fingerprint == reverse.fingerprint  # H_host ignores mount order...
    assert forward.composition_digest != reverse.composition_digest  # ...the owner rule does not
    owners = {e.descriptor.id: e.owner_module for e in forward.composition.schemas}
    assert owners["shared.evt"] == "mod.a"
    assert {e.descriptor.id: e.owner_module for e in reverse.composition.schemas}[
        "shared.evt"
    ] == "mod.b"
    assert sum(1 for e in forward.composition.schemas if e.descriptor.id == "shared.evt") == 1


def single_op_module_with(mid: str, op_name: str, *extra: object) -> HostModule:
    b = op_schemas(HostModule.builder(mid, 1).operation(op(op_name), echo), op_name)
    for s in extra:
        b = b.schema(s)  # type: ignore[arg-type]
    return b.build()


def test_composition_sorts_roles_in_enum_order() -> None:
    m = (
        HostModule.builder("mod.a", 1)
        .schema(schema("s", SchemaRole.SUBSCRIPTION_PAYLOAD))
        .schema(schema("s", SchemaRole.EVENT_PAYLOAD))
        .schema(schema("s", SchemaRole.OPERATION_OUTPUT))
        .schema(schema("s", SchemaRole.RECEIPT_PAYLOAD))
        .schema(schema("s", SchemaRole.OPERATION_INPUT))
        .build()
    )
    c = HostBuilder().mount(m).contract().composition
    assert [e.descriptor.role.wire for e in c.schemas] == [
        "operation-input",
        "operation-output",
        "event-payload",
        "receipt-payload",
        "subscription-payload",
    ]
    assert c.verify_digest()
    assert COMPOSITION_DIGEST_DOMAIN == "hostbat.composition.schema.v1"


def test_schema_collision_is_rejected_at_mount() -> None:
    a = single_op_module_with("mod.a", "mod.a.op", schema("shared.evt", SchemaRole.EVENT_PAYLOAD))
    b = single_op_module_with(
        "mod.b", "mod.b.op", schema("shared.evt", SchemaRole.EVENT_PAYLOAD, golden=b"\xc0")
    )
    builder = HostBuilder().mount(a)
    with pytest.raises(SchemaCollision) as info:
        builder.mount(b)
    assert (info.value.first_module, info.value.second_module) == ("mod.a", "mod.b")


def test_tampered_manifest_is_rejected_at_mount() -> None:
    module = single_op_module("mod.a", "mod.a.echo")
    digest = bytearray(module.manifest.digest)
    digest[0] ^= 0xFF
    object.__setattr__(module.manifest, "_digest", ModuleDigest(bytes(digest)))
    assert not module.manifest.verify_hash()
    with pytest.raises(ModuleHashMismatch):
        HostBuilder().mount(module)


def test_tampered_part_is_rejected_at_mount() -> None:
    module = single_op_module("mod.a", "mod.a.echo")
    object.__setattr__(module.manifest, "_version", 7)
    with pytest.raises(ModuleHashMismatch):
        HostBuilder().mount(module)


def test_duplicate_module_id_is_rejected() -> None:
    builder = HostBuilder().mount(single_op_module("dup.id", "dup.id.a"))
    with pytest.raises(DuplicateModuleId):
        builder.mount(single_op_module("dup.id", "dup.id.b"))


def test_duplicate_operation_across_modules_is_rejected() -> None:
    builder = HostBuilder().mount(single_op_module("mod.a", "shared.op"))
    with pytest.raises(DuplicateOperation):
        builder.mount(single_op_module("mod.b", "shared.op"))


def test_duplicate_operation_with_other_effect_row_is_an_effect_conflict() -> None:
    builder = HostBuilder().mount(single_op_module("mod.a", "shared.op"))
    row = OperationEffectRow().reads_event("evt.1001")
    other = op_schemas(
        HostModule.builder("mod.b", 1).operation(op("shared.op").with_effect_row(row), echo),
        "shared.op",
    ).build()
    with pytest.raises(EffectConflict):
        builder.mount(other)


def test_duplicate_namespace_job_subscription_and_binding_are_rejected() -> None:
    def make(mid: str, **parts: bool) -> HostModule:
        b = HostModule.builder(mid, 1).hook(HookPhase.STARTUP, "h", 0, noop)
        if parts.get("ns"):
            b = b.receipt_namespace("shared.ns")
        if parts.get("job"):
            b = b.job("shared.kind", noop_job)
        if parts.get("sub"):
            b = b.subscription(
                SubscriptionDescriptor("shared.feed.v1", EventCategorySource(1), "shared.evt")
            )
        if parts.get("bind"):
            b = b.bind_event_payload(0x1001, "shared.evt")
        if parts.get("conflict"):
            b = b.bind_event_payload(0x1001, "other.evt")
        return b.build()

    cases: list[tuple[str, type[Exception]]] = [
        ("ns", DuplicateReceiptNamespace),
        ("job", DuplicateJobKind),
        ("sub", DuplicateSubscriptionId),
        ("bind", DuplicateEventPayloadBinding),
    ]
    for part, error in cases:
        builder = HostBuilder().mount(make("mod.a", **{part: True}))
        with pytest.raises(error):
            builder.mount(make("mod.b", **{part: True}))
    builder = HostBuilder().mount(make("mod.a", bind=True))
    with pytest.raises(EventPayloadBindingConflict):
        builder.mount(make("mod.b", conflict=True))


def test_a_rejected_mount_changes_nothing() -> None:
    a = (
        HostModule.builder("mod.a", 1)
        .receipt_namespace("ns.a")
        .hook(HookPhase.STARTUP, "h", 0, noop)
        .build()
    )
    clash = (
        HostModule.builder("mod.b", 1)
        .receipt_namespace("ns.b")
        .job("kind.b", noop_job)
        .receipt_namespace("ns.a")
        .build()
    )
    builder = HostBuilder().mount(a)
    with pytest.raises(DuplicateReceiptNamespace):
        builder.mount(clash)
    retry = HostModule.builder("mod.b", 1).receipt_namespace("ns.b").job("kind.b", noop_job).build()
    builder.mount(retry)  # neither ns.b nor kind.b was half-registered


def test_empty_host_is_rejected() -> None:
    with pytest.raises(EmptyHost):
        HostBuilder().contract()
    with pytest.raises(EmptyHost):
        HostBuilder().build()


def test_missing_operation_schema_is_rejected() -> None:
    m = HostModule.builder("mod.a", 1).operation(op("mod.a.echo"), echo).build()
    with pytest.raises(SchemaReferenceMissing) as info:
        contract_of(m)
    assert info.value.operation == "mod.a.echo"
    assert info.value.role == "operation-input"


def test_missing_receipt_schema_is_rejected() -> None:
    m = (
        HostModule.builder("mod.a", 1)
        .operation(op("mod.a.echo"), echo)
        .schema(schema("mod.a.echo.in", SchemaRole.OPERATION_INPUT))
        .schema(schema("mod.a.echo.out", SchemaRole.OPERATION_OUTPUT))
        .schema(schema("mod.a.echo.receipt", SchemaRole.OPERATION_OUTPUT))  # wrong role
        .build()
    )
    with pytest.raises(SchemaReferenceMissing, match="receipt-payload"):
        contract_of(m)


def test_ambiguous_operation_schema_is_rejected() -> None:
    m = single_op_module_with(
        "mod.a", "mod.a.echo", schema("mod.a.echo.in", SchemaRole.OPERATION_INPUT, version=2)
    )
    with pytest.raises(SchemaReferenceAmbiguous) as info:
        contract_of(m)
    assert info.value.versions == [1, 2]


def test_schemas_may_come_from_another_module() -> None:
    provider = op_schemas(
        HostModule.builder("mod.schemas", 1).hook(HookPhase.STARTUP, "h", 0, noop), "mod.a.echo"
    ).build()
    consumer = HostModule.builder("mod.a", 1).operation(op("mod.a.echo"), echo).build()
    contract_of(provider, consumer)


def test_subscription_and_binding_refs_must_resolve() -> None:
    sub = (
        HostModule.builder("mod.a", 1)
        .subscription(SubscriptionDescriptor("a.feed.v1", EventCategorySource(1), "a.evt"))
        .schema(schema("a.evt", SchemaRole.SUBSCRIPTION_PAYLOAD))  # wrong role for a category
        .build()
    )
    with pytest.raises(SubscriptionPayloadSchemaMissing):
        contract_of(sub)
    bind = HostModule.builder("mod.a", 1).bind_event_payload(0x1001, "a.evt").build()
    with pytest.raises(EventPayloadBindingSchemaMissing):
        contract_of(bind)


def test_interface_ignores_hooks_jobs_and_guards() -> None:
    plain = single_op_module("mod.a", "mod.a.echo")
    decorated = (
        op_schemas(HostModule.builder("mod.a", 1).operation(op("mod.a.echo"), echo), "mod.a.echo")
        .hook(HookPhase.STARTUP, "h", 0, noop)
        .job("sweep", noop_job)
        .guard(GuardDescriptor("g.v1"), allow)
        .build()
    )
    p = HostBuilder().mount(plain).contract()
    d = HostBuilder().mount(decorated).contract()
    assert p.interface_fingerprint == d.interface_fingerprint
    assert p.fingerprint != d.fingerprint


def test_interface_changes_with_the_client_contract() -> None:
    base = HostBuilder().mount(single_op_module("mod.a", "mod.a.echo")).contract()
    renamed = HostBuilder().mount(single_op_module("mod.b", "mod.a.echo")).contract()
    assert base.interface_fingerprint != renamed.interface_fingerprint


def test_interface_view_shape() -> None:
    a, b = example_modules()
    c = HostBuilder().mount(a).mount(b).contract()
    view = interface_view(c.manifests, c.composition)
    assert list(view) == [
        "domain",
        "view_schema_version",
        "wire_protocol_version",
        "wire_encoding_version",
        "subscription_wire_requires",
        "operations",
        "subscriptions",
        "event_payload_bindings",
        "exported_event_payloads",
    ]
    assert view["domain"] == INTERFACE_DIGEST_DOMAIN
    assert (view["view_schema_version"], view["wire_protocol_version"]) == (5, "NETBAT/1")
    ops = view["operations"]
    assert isinstance(ops, list)
    assert [(o["module_id"], o["name"]) for o in ops] == [
        ("demo.audit", "demo.audit.read"),
        ("demo.echo", "demo.echo"),
    ]
    assert list(ops[0]) == [
        "module_id",
        "name",
        "input_schema",
        "output_schema",
        "receipt_kind",
        "receipt_schema",
    ]
    assert list(ops[0]["input_schema"]) == ["id", "version", "role", "encoding"]
    subs = view["subscriptions"]
    assert isinstance(subs, list)
    assert subs[0]["backpressure"] == {"kind": "bounded-queue", "capacity": 256}
    assert view["event_payload_bindings"] == [
        {
            "module_id": "demo.echo",
            "kind": 0x1001,
            "payload_schema": next(
                s.manifest_view() for s in a.manifest.schemas if s.id == "demo.event.pinged"
            ),
        }
    ]
    exported = view["exported_event_payloads"]
    assert isinstance(exported, list)
    assert [e["id"] for e in exported] == ["demo.event.pinged"]
