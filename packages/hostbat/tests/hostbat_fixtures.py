"""Shared builders for the hostbat tests: descriptors, schemas and a small example host."""

from __future__ import annotations

from typing import Any

from batpak import canonical
from hostbat.descriptor import GuardDescriptor, HookPhase
from hostbat.module import HostModule, HostModuleBuilder
from hostbat.schema import GoldenVector, SchemaDescriptor, SchemaRole
from hostbat.subscription import EventCategorySource, SubscriptionDescriptor
from syncbat.operation import EffectClass, OperationDescriptor

PING = canonical.encode("ping")


def op(
    name: str,
    *,
    input_ref: str | None = None,
    output_ref: str | None = None,
    receipt_kind: str | None = None,
    effect: EffectClass = EffectClass.INSPECT,
    title: str | None = None,
) -> OperationDescriptor:
    """An Inspect descriptor whose refs default to ``<name>.in`` / ``.out`` / ``.receipt``."""
    return OperationDescriptor(
        name,
        effect,
        input_ref or f"{name}.in",
        output_ref or f"{name}.out",
        receipt_kind or f"{name}.receipt",
        title=title,
    )


def echo(input: bytes, ctx: Any, /) -> bytes:
    return input


def schema(
    schema_id: str, role: SchemaRole, version: int = 1, golden: bytes = PING
) -> SchemaDescriptor:
    return SchemaDescriptor(schema_id, version, role, [GoldenVector("c", golden)])


def op_schemas(builder: HostModuleBuilder, name: str) -> HostModuleBuilder:
    """Declare the three schemas ``op(name)`` refers to."""
    return (
        builder.schema(schema(f"{name}.in", SchemaRole.OPERATION_INPUT))
        .schema(schema(f"{name}.out", SchemaRole.OPERATION_OUTPUT))
        .schema(schema(f"{name}.receipt", SchemaRole.RECEIPT_PAYLOAD))
    )


def single_op_module(module_id: str, op_name: str, handler: Any = echo) -> HostModule:
    """A module with one echo op and the schemas it needs."""
    return op_schemas(
        HostModule.builder(module_id, 1).operation(op(op_name), handler), op_name
    ).build()


def allow(descriptor: Any, input: bytes, ctx: Any, /) -> Any:
    from syncbat.admission import ADMIT  # noqa: PLC0415

    return ADMIT


def noop() -> None:
    return None


def noop_job() -> Any:
    return noop


def example_modules() -> tuple[HostModule, HostModule]:
    """The small example host whose digests are pinned in test_hostbat_pinned.py."""
    echo_module = (
        HostModule.builder("demo.echo", 1)
        .operation(op("demo.echo", title="Echo"), echo)
        .receipt_namespace("demo")
        .hook(HookPhase.STARTUP, "warm", 0, noop)
        .hook(HookPhase.SHUTDOWN, "cool", 0, noop)
        .job("demo.sweep", noop_job)
        .schema(schema("demo.event.pinged", SchemaRole.EVENT_PAYLOAD))
        .bind_event_payload(0x1001, "demo.event.pinged")
        .subscription(
            SubscriptionDescriptor("demo.pings.v1", EventCategorySource(1), "demo.event.pinged")
        )
    )
    echo_module = op_schemas(echo_module, "demo.echo")
    audit_module = op_schemas(
        HostModule.builder("demo.audit", 2)
        .operation(op("demo.audit.read"), echo)
        .guard(GuardDescriptor("demo.audit.guard.v1"), allow),
        "demo.audit.read",
    )
    return echo_module.build(), audit_module.build()
