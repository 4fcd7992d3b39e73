"""hostbat's host contract: content-identified modules, order-free hosts, checked mounts, hooks.

Modules are built from the public builder only. A tampered manifest is simulated the way an
attacker or a bug would produce one: a sealed manifest whose parts were changed after sealing.

PROVES: INV-HOSTBAT-CONTRACT (H_module depends on the declared set, not on declaration order,
and changes with any declared part; H_host and H_interface are the same for every mount order
of three modules; a manifest whose digest or parts were changed after sealing is refused at
mount and the refused mount changes nothing; duplicate module ids, operations, receipt
namespaces, job kinds, subscriptions, bindings and schema collisions are refused at mount or
build; startup hooks run in (order, module, name) order whatever the mount order, and the first
failing hook aborts start with the later hooks not run).
CATCHES: digests over insertion order, a host fingerprint that hashes the mount order, a mount
that trusts a stored digest, a mount that half-applies before refusing, hooks run in mount or
declaration order, a start that keeps going (or reports started) after a failing hook.
SEEDED: deterministic; all 6 mount orders are enumerated.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from batpak import canonical
from hostbat import (
    GoldenVector,
    HookPhase,
    HostBuilder,
    HostModule,
    HostModuleBuilder,
    SchemaDescriptor,
    SchemaRole,
)
from hostbat.errors import (
    DuplicateEventPayloadBinding,
    DuplicateJobKind,
    DuplicateModuleId,
    DuplicateOperation,
    DuplicateReceiptNamespace,
    HostError,
    ModuleCoherence,
    ModuleHashMismatch,
    SchemaCollision,
    StartupHookFailed,
)
from hostbat.identity import ModuleDigest
from syncbat import Ctx, EffectClass, OperationDescriptor

Log = list[str]


def echo(input: bytes, ctx: Ctx, /) -> bytes:
    return input


def schema(sid: str, role: SchemaRole, example: object = "ping") -> SchemaDescriptor:
    return SchemaDescriptor(sid, 1, role, [GoldenVector("example", canonical.encode(example))])


def recorder(log: Log, label: str, *, fail: bool = False) -> Callable[[], None]:
    def hook() -> None:
        log.append(label)
        if fail:
            raise RuntimeError(f"{label} refused")

    return hook


def hook_step(
    name: str, order: int, hook: Callable[[], None]
) -> Callable[[HostModuleBuilder], HostModuleBuilder]:
    return lambda b: b.hook(HookPhase.STARTUP, name, order, hook)


def parts(mid: str, log: Log, *, reverse: bool = False, fail_hook: str = "") -> HostModule:
    """A module with one op, its three schemas, a binding, two startup hooks and a job; the
    parts are declared forwards or backwards."""
    op = mid + ".echo"
    steps: list[Callable[[HostModuleBuilder], HostModuleBuilder]] = [
        lambda b: b.operation(
            OperationDescriptor(op, EffectClass.INSPECT, op + ".in", op + ".out", op + ".receipt"),
            echo,
        ),
        lambda b: b.schema(schema(op + ".in", SchemaRole.OPERATION_INPUT)),
        lambda b: b.schema(schema(op + ".out", SchemaRole.OPERATION_OUTPUT)),
        lambda b: b.schema(schema(op + ".receipt", SchemaRole.RECEIPT_PAYLOAD, {})),
        lambda b: b.schema(schema(mid + ".evt", SchemaRole.EVENT_PAYLOAD)),
        lambda b: b.bind_event_payload(KINDS[mid], mid + ".evt"),
        lambda b: b.receipt_namespace(mid.replace(".", "-")),
        lambda b: b.job(mid + ".sweep", lambda: lambda: None),
    ]
    for name, order in HOOKS[mid]:
        label = f"{mid}:{name}"
        steps.append(hook_step(name, order, recorder(log, label, fail=label == fail_hook)))
    builder = HostModule.builder(mid, 1)
    for step in reversed(steps) if reverse else steps:
        builder = step(builder)
    return builder.build()


KINDS = {"mod.a": 0xF101, "mod.b": 0xF102, "mod.c": 0xF103}
HOOKS = {
    "mod.a": [("warm", 2), ("load", 0)],
    "mod.b": [("check", 1), ("warm", 2)],
    "mod.c": [("prime", 0), ("late", 9)],
}
# (order, module, name): the documented total order across modules.
START_ORDER = ["mod.a:load", "mod.c:prime", "mod.b:check", "mod.a:warm", "mod.b:warm", "mod.c:late"]


@pytest.mark.invariant("INV-HOSTBAT-CONTRACT")
def test_module_digest_is_the_declared_set() -> None:
    log: Log = []
    forwards = parts("mod.a", log).manifest
    backwards = parts("mod.a", log, reverse=True).manifest
    assert forwards.digest == backwards.digest
    assert forwards.verify_hash()
    assert backwards.verify_hash()
    assert parts("mod.a", log).manifest.digest == forwards.digest  # deterministic rebuild
    # Any declared part changes the digest.
    variants = [
        HostModule.builder("mod.a", 2).schema(schema("x.in", SchemaRole.OPERATION_INPUT)),
        HostModule.builder("mod.a", 1).schema(schema("x.in", SchemaRole.OPERATION_INPUT)),
        HostModule.builder("mod.a", 1).schema(schema("x.in", SchemaRole.OPERATION_OUTPUT)),
        HostModule.builder("mod.a", 1).schema(schema("x.in", SchemaRole.OPERATION_INPUT, "pong")),
    ]
    digests = {forwards.digest, *(v.build().manifest.digest for v in variants)}
    assert len(digests) == 1 + len(variants)


@pytest.mark.invariant("INV-HOSTBAT-CONTRACT")
def test_host_fingerprints_do_not_depend_on_mount_order() -> None:
    log: Log = []
    ids = ["mod.a", "mod.b", "mod.c"]
    seen = set()
    for order in itertools.permutations(ids):
        builder = HostBuilder()
        for mid in order:
            builder.mount(parts(mid, log, reverse=mid == "mod.b"))
        host = builder.build()
        seen.add((host.fingerprint(), host.interface_fingerprint()))
        assert host.invoke("mod.c.echo", canonical.encode("ping")).output == canonical.encode(
            "ping"
        )
    assert len(seen) == 1
    ((fingerprint, interface),) = seen
    smaller = HostBuilder().mount(parts("mod.a", log)).mount(parts("mod.b", log)).build()
    assert smaller.fingerprint() != fingerprint
    assert smaller.interface_fingerprint() != interface


@pytest.mark.invariant("INV-HOSTBAT-CONTRACT")
def test_a_tampered_manifest_is_refused_and_changes_nothing() -> None:
    log: Log = []
    clean = HostBuilder().mount(parts("mod.a", log)).mount(parts("mod.b", log)).build()

    forged_digest = parts("mod.b", log)
    flipped = bytearray(forged_digest.manifest.digest)
    flipped[0] ^= 0x01
    object.__setattr__(forged_digest.manifest, "_digest", ModuleDigest(bytes(flipped)))

    forged_part = parts("mod.b", log)
    object.__setattr__(forged_part.manifest, "_version", 99)  # parts edited after sealing

    foreign = parts("mod.b", log)  # a digest copied from another module
    object.__setattr__(foreign.manifest, "_digest", parts("mod.c", log).manifest.digest)

    for tampered in (forged_digest, forged_part, foreign):
        assert not tampered.manifest.verify_hash()
        builder = HostBuilder().mount(parts("mod.a", log))
        with pytest.raises(ModuleHashMismatch):
            builder.mount(tampered)
        host = builder.mount(parts("mod.b", log)).build()  # the refused mount left no trace
        assert host.fingerprint() == clean.fingerprint()
        assert host.interface_fingerprint() == clean.interface_fingerprint()


def one_op(
    mid: str, op: str, *, extra: Callable[[HostModuleBuilder], HostModuleBuilder] | None = None
) -> HostModule:
    builder = (
        HostModule.builder(mid, 1)
        .operation(
            OperationDescriptor(op, EffectClass.INSPECT, op + ".in", op + ".out", op + ".r"), echo
        )
        .schema(schema(op + ".in", SchemaRole.OPERATION_INPUT))
        .schema(schema(op + ".out", SchemaRole.OPERATION_OUTPUT))
        .schema(schema(op + ".r", SchemaRole.RECEIPT_PAYLOAD, {}))
    )
    return (extra(builder) if extra else builder).build()


@pytest.mark.invariant("INV-HOSTBAT-CONTRACT")
def test_duplicates_are_refused() -> None:
    base = one_op("mod.x", "x.op")
    clashes: list[tuple[HostModule, type[HostError]]] = [
        (one_op("mod.x", "y.op"), DuplicateModuleId),
        (one_op("mod.y", "x.op"), DuplicateOperation),
        (
            one_op(
                "mod.y",
                "y.op",
                extra=lambda b: b.schema(schema("x.op.in", SchemaRole.OPERATION_INPUT, "other")),
            ),
            SchemaCollision,
        ),
    ]
    for clash, error in clashes:
        builder = HostBuilder().mount(base)
        with pytest.raises(error):
            builder.mount(clash)
        assert builder.build().fingerprint() == HostBuilder().mount(base).build().fingerprint()

    def with_parts(b: HostModuleBuilder) -> HostModuleBuilder:
        return (
            b.receipt_namespace("shared-ns")
            .job("shared.job", lambda: lambda: None)
            .schema(schema("evt.shared", SchemaRole.EVENT_PAYLOAD))
            .bind_event_payload(0xF1F1, "evt.shared")
        )

    first = one_op("mod.p", "p.op", extra=with_parts)
    for error, extra in (
        (DuplicateReceiptNamespace, lambda b: b.receipt_namespace("shared-ns")),
        (DuplicateJobKind, lambda b: b.job("shared.job", lambda: lambda: None)),
        (
            DuplicateEventPayloadBinding,
            lambda b: b.schema(schema("evt.shared", SchemaRole.EVENT_PAYLOAD)).bind_event_payload(
                0xF1F1, "evt.shared"
            ),
        ),
    ):
        with pytest.raises(error):
            HostBuilder().mount(first).mount(one_op("mod.q", "q.op", extra=extra))
    # Within one module the builder refuses the repeat itself.
    with pytest.raises(ModuleCoherence):
        one_op(
            "mod.z",
            "z.op",
            extra=lambda b: b.operation(
                OperationDescriptor("z.op", EffectClass.INSPECT, "z.op.in", "z.op.out", "z.op.r"),
                echo,
            ),
        )
    with pytest.raises(ModuleCoherence):
        one_op(
            "mod.z",
            "z.op",
            extra=lambda b: b.hook(HookPhase.STARTUP, "a", 1, lambda: None).hook(
                HookPhase.STARTUP, "b", 1, lambda: None
            ),
        )


@pytest.mark.invariant("INV-HOSTBAT-CONTRACT")
def test_startup_hooks_run_in_a_deterministic_order_and_a_failure_aborts() -> None:
    for order in itertools.permutations(["mod.a", "mod.b", "mod.c"]):
        log: Log = []
        builder = HostBuilder()
        for mid in order:
            builder.mount(parts(mid, log, reverse=mid == "mod.a"))
        host = builder.build()
        assert log == []  # building runs no hook
        host.start()
        assert log == START_ORDER
        assert host.is_started
        host.shutdown()

    log = []
    failing = "mod.b:check"
    builder = HostBuilder()
    for mid in ("mod.c", "mod.b", "mod.a"):
        builder.mount(parts(mid, log, fail_hook=failing))
    host = builder.build()
    with pytest.raises(StartupHookFailed) as info:
        host.start()
    assert (info.value.failure.module, info.value.failure.hook) == ("mod.b", "check")
    assert log == START_ORDER[: START_ORDER.index(failing) + 1]  # nothing after the failure ran
    assert not host.is_started
