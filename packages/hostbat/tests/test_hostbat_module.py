"""Module builders: every rejection in the spec §2 table, the id grammar and the manifest."""

from __future__ import annotations

import pytest
from hostbat_fixtures import (
    PING,
    allow,
    echo,
    noop,
    noop_job,
    op,
    op_schemas,
    schema,
    single_op_module,
)

from hostbat.descriptor import GuardDescriptor, HookPhase
from hostbat.errors import (
    DuplicateEventPayloadBinding,
    DuplicateSubscriptionId,
    EventPayloadBindingConflict,
    EventPayloadBindingInvalid,
    ModuleCoherence,
    SchemaInvalid,
)
from hostbat.manifest import MODULE_DIGEST_DOMAIN
from hostbat.module import HostModule, validate_module_id
from hostbat.schema import GoldenVector, SchemaDescriptor, SchemaRole
from hostbat.subscription import EventCategorySource, SubscriptionDescriptor
from syncbat.operation import EffectClass, OperationDescriptor, OperationEffectRow

# -- builder rejections ---------------------------------------------------------------------


def test_operation_rejects_invalid_descriptor() -> None:
    bad = OperationDescriptor("bad..name", EffectClass.INSPECT, "a.in", "a.out", "a.receipt")
    with pytest.raises(ModuleCoherence, match=r"bad\.\.name"):
        HostModule.builder("mod.a", 1).operation(bad, echo)


def test_operation_rejects_class_row_violation() -> None:
    persist_without_append = op("mod.a.write", effect=EffectClass.PERSIST)
    with pytest.raises(ModuleCoherence):
        HostModule.builder("mod.a", 1).operation(persist_without_append, echo)


def test_operation_rejects_duplicate_name() -> None:
    builder = HostModule.builder("mod.a", 1).operation(op("mod.a.echo"), echo)
    with pytest.raises(ModuleCoherence, match="declared twice"):
        builder.operation(op("mod.a.echo"), echo)


def test_guard_rejects_a_second_guard() -> None:
    builder = HostModule.builder("mod.a", 1).guard(GuardDescriptor("g.v1"), allow)
    with pytest.raises(ModuleCoherence, match="at most one guard"):
        builder.guard(GuardDescriptor("g.v2"), allow)


def test_receipt_namespace_rejects_duplicate() -> None:
    builder = HostModule.builder("mod.a", 1).receipt_namespace("ns")
    with pytest.raises(ModuleCoherence, match="receipt namespace"):
        builder.receipt_namespace("ns")


def test_schema_rejects_duplicate_identity_even_with_other_bytes() -> None:
    builder = HostModule.builder("mod.a", 1).schema(schema("s.in", SchemaRole.OPERATION_INPUT))
    with pytest.raises(SchemaInvalid, match="declared twice"):
        builder.schema(schema("s.in", SchemaRole.OPERATION_INPUT, golden=b"\xc0"))


def test_schema_same_id_other_role_or_version_is_fine() -> None:
    (
        HostModule.builder("mod.a", 1)
        .schema(schema("s", SchemaRole.OPERATION_INPUT))
        .schema(schema("s", SchemaRole.OPERATION_OUTPUT))
        .schema(schema("s", SchemaRole.OPERATION_INPUT, version=2))
        .build()
    )


def test_subscription_rejects_duplicate_id() -> None:
    sub = SubscriptionDescriptor("a.feed.v1", EventCategorySource(1), "a.evt")
    builder = HostModule.builder("mod.a", 1).subscription(sub)
    with pytest.raises(DuplicateSubscriptionId):
        builder.subscription(SubscriptionDescriptor("a.feed.v1", EventCategorySource(2), "x"))


def test_bind_event_payload_rejects_duplicate_kind_and_empty_ref() -> None:
    builder = HostModule.builder("mod.a", 1).bind_event_payload(0x1001, "a.evt")
    with pytest.raises(DuplicateEventPayloadBinding):
        builder.bind_event_payload(0x1001, "a.evt")
    with pytest.raises(EventPayloadBindingConflict):
        builder.bind_event_payload(0x1001, "b.evt")
    with pytest.raises(EventPayloadBindingInvalid, match="empty"):
        builder.bind_event_payload(0x1002, "")


def test_job_rejects_duplicate_kind() -> None:
    builder = HostModule.builder("mod.a", 1).job("sweep", noop_job)
    with pytest.raises(ModuleCoherence, match="supervised-job kind"):
        builder.job("sweep", noop_job)


def test_build_rejects_empty_module() -> None:
    with pytest.raises(ModuleCoherence, match="declares no"):
        HostModule.builder("mod.empty", 1).build()


def test_build_rejects_hook_order_collision_within_a_phase() -> None:
    builder = (
        HostModule.builder("mod.a", 1)
        .hook(HookPhase.STARTUP, "first", 0, noop)
        .hook(HookPhase.STARTUP, "second", 0, noop)
    )
    with pytest.raises(ModuleCoherence, match="share order 0"):
        builder.build()


def test_same_order_in_different_phases_is_fine() -> None:
    (
        HostModule.builder("mod.a", 1)
        .hook(HookPhase.STARTUP, "up", 0, noop)
        .hook(HookPhase.SHUTDOWN, "down", 0, noop)
        .build()
    )


@pytest.mark.parametrize(
    ("module_id", "detail"),
    [
        ("", "empty"),
        ("a" * 129, "longer than 128"),
        (".mod", "leading or trailing"),
        ("mod.", "leading or trailing"),
        ("mod..a", "doubled"),
        ("Mod.a", "outside"),
        ("mod/a", "outside"),
        ("mod a", "outside"),
        ("modé", "outside"),
    ],
)
def test_module_id_grammar_rejects(module_id: str, detail: str) -> None:
    with pytest.raises(ModuleCoherence, match=detail):
        HostModule.builder(module_id, 1).hook(HookPhase.STARTUP, "h", 0, noop).build()


@pytest.mark.parametrize("module_id", ["a", "mod.a", "mod-a_b.c9", "a" * 128])
def test_module_id_grammar_accepts(module_id: str) -> None:
    assert validate_module_id(module_id) == module_id


def test_module_version_must_be_u32() -> None:
    with pytest.raises(ModuleCoherence):
        HostModule.builder("mod.a", 2**32)


# -- the sealed manifest --------------------------------------------------------------------


def test_module_digest_is_deterministic() -> None:
    a = single_op_module("mod.a", "mod.a.echo")
    b = single_op_module("mod.a", "mod.a.echo")
    assert a.manifest.digest == b.manifest.digest
    assert a.manifest.verify_hash()
    assert len(a.manifest.digest.hex()) == 64


def test_module_digest_ignores_registration_order() -> None:
    orders = {"mod.a.x": 2, "mod.a.y": 0, "mod.a.z": 1}

    def build(names: list[str]) -> HostModule:
        b = HostModule.builder("mod.a", 1)
        for name in names:
            b = op_schemas(b.operation(op(name), echo), name).receipt_namespace(f"ns.{name}")
            b = b.hook(HookPhase.STARTUP, name, orders[name], noop).job(name, noop_job)
            b = b.bind_event_payload(0x1000 + orders[name], f"{name}.evt")
        return b.build()

    names = list(orders)
    assert build(names).manifest.digest == build(names[::-1]).manifest.digest
    hooks = build(names[::-1]).manifest.hooks
    assert [h.name for h in hooks] == ["mod.a.y", "mod.a.z", "mod.a.x"]


def test_module_digest_changes_with_each_declared_part() -> None:
    base = single_op_module("mod.a", "mod.a.echo").manifest.digest
    other_op = single_op_module("mod.a", "mod.a.other").manifest.digest
    other_version = (
        op_schemas(HostModule.builder("mod.a", 2).operation(op("mod.a.echo"), echo), "mod.a.echo")
        .build()
        .manifest.digest
    )
    with_ns = (
        op_schemas(HostModule.builder("mod.a", 1).operation(op("mod.a.echo"), echo), "mod.a.echo")
        .receipt_namespace("ns")
        .build()
        .manifest.digest
    )
    with_guard = (
        op_schemas(HostModule.builder("mod.a", 1).operation(op("mod.a.echo"), echo), "mod.a.echo")
        .guard(GuardDescriptor("g.v1"), allow)
        .build()
        .manifest.digest
    )
    assert len({base, other_op, other_version, with_ns, with_guard}) == 5


def test_effect_row_is_not_hashed() -> None:
    plain = op("mod.a.echo")
    with_row = plain.with_effect_row(OperationEffectRow().reads_event("evt.1001"))
    a = op_schemas(HostModule.builder("mod.a", 1).operation(plain, echo), "mod.a.echo").build()
    b = op_schemas(HostModule.builder("mod.a", 1).operation(with_row, echo), "mod.a.echo").build()
    assert a.manifest.digest == b.manifest.digest


def test_diagnostic_rust_type_does_not_change_identity() -> None:
    bare = SchemaDescriptor("s.in", 1, SchemaRole.OPERATION_INPUT, [GoldenVector("c", PING)])
    typed = SchemaDescriptor(
        "s.in",
        1,
        SchemaRole.OPERATION_INPUT,
        [GoldenVector("c", PING)],
        diagnostic_rust_type="x::Y",
    )
    a = HostModule.builder("mod.a", 1).schema(bare).build()
    b = HostModule.builder("mod.a", 1).schema(typed).build()
    assert a.manifest.digest == b.manifest.digest


def test_manifest_view_has_the_spec_field_order() -> None:
    m = (
        op_schemas(
            HostModule.builder("mod.a", 1).operation(op("mod.a.echo", title="Echo"), echo),
            "mod.a.echo",
        )
        .hook(HookPhase.SHUTDOWN, "down", 3, noop)
        .job("sweep", noop_job)
        .bind_event_payload(0x1001, "a.evt")
        .build()
        .manifest
    )
    view = m.view()
    assert list(view) == [
        "domain",
        "id",
        "version",
        "operations",
        "receipt_namespaces",
        "guard",
        "hooks",
        "jobs",
        "schemas",
        "subscriptions",
        "event_payload_bindings",
    ]
    assert view["domain"] == MODULE_DIGEST_DOMAIN
    assert view["operations"] == [
        {
            "name": "mod.a.echo",
            "effect": "inspect",
            "input_schema_ref": "mod.a.echo.in",
            "output_schema_ref": "mod.a.echo.out",
            "receipt_kind": "mod.a.echo.receipt",
            "title": "Echo",
        }
    ]
    assert view["guard"] is None
    assert view["hooks"] == [{"phase": "shutdown", "name": "down", "order": 3}]
    assert view["jobs"] == [{"kind": "sweep"}]
    assert view["event_payload_bindings"] == [{"kind": 0x1001, "payload_schema_ref": "a.evt"}]
    schemas = view["schemas"]
    assert isinstance(schemas, list)
    assert [s["role"] for s in schemas] == [
        "operation-input",
        "operation-output",
        "receipt-payload",
    ]
    assert all(len(s["encoding"]) == 32 for s in schemas)


def test_verify_hash_detects_a_tampered_part() -> None:
    module = single_op_module("mod.a", "mod.a.echo")
    assert module.manifest.verify_hash()
    object.__setattr__(module.manifest, "_receipt_namespaces", ("smuggled",))
    assert not module.manifest.verify_hash()
