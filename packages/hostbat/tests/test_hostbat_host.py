"""The built host: lowering into one syncbat Core, schema checks, guards, hooks and jobs."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hostbat_fixtures import PING, echo, noop_job, op, op_schemas, schema, single_op_module

from batpak import canonical
from hostbat.backends import HostControlEffectBackend, ValidatingEffectBackend
from hostbat.builder import HostBuilder
from hostbat.descriptor import GuardDescriptor, HookPhase
from hostbat.errors import ShutdownHookFailed, StartupHookFailed, UnknownJobKind
from hostbat.host import Host
from hostbat.module import HostModule
from hostbat.schema import SchemaRegistry, SchemaRole
from hostbat.supervisor import JobStatus, Supervisor, ThreadSpawn
from syncbat.admission import Deny
from syncbat.core import Dispatcher
from syncbat.ctx import Ctx
from syncbat.errors import EffectError, OperationDenied, OperationFailed
from syncbat.operation import EffectClass, OperationDescriptor, OperationEffectRow
from syncbat.receipt import ReceiptEnvelope, RecordedReceipt
from syncbat.status import OperationStatusFact


def host_of(*modules: HostModule, **config: Any) -> Host:
    builder = HostBuilder(**config)
    for m in modules:
        builder.mount(m)
    return builder.build()


class ListReceipts:
    def __init__(self) -> None:
        self.envelopes: list[ReceiptEnvelope] = []

    def record_receipt(self, envelope: ReceiptEnvelope) -> RecordedReceipt:
        self.envelopes.append(envelope)
        return RecordedReceipt(envelope)


class ListStatus:
    def __init__(self) -> None:
        self.facts: list[OperationStatusFact] = []

    def record_fact(self, fact: OperationStatusFact) -> None:
        self.facts.append(fact)


class RecordingBackend:
    def __init__(self) -> None:
        self.appends: list[tuple[int, bytes]] = []

    def append_event(self, kind: int, payload: bytes) -> None:
        self.appends.append((kind, payload))

    def append_typed_event(self, coordinate: Any, value: Any) -> Any:
        raise EffectError("not used")

    def read_event(self, event_category: str) -> None:
        return None

    def query_projection(self, projection_id: str) -> None:
        return None

    def emit_receipt(self, receipt_kind: str, payload: bytes) -> None:
        raise EffectError("emit is not supported")

    def use_host_control(self, control: str) -> None:
        raise EffectError("no host control here")


# -- dispatch and schema validation ---------------------------------------------------------


def test_host_dispatches_through_one_core_and_is_a_dispatcher() -> None:
    host = host_of(single_op_module("mod.a", "mod.a.echo"), single_op_module("mod.b", "mod.b.echo"))
    dispatcher: Dispatcher = host
    assert dispatcher.invoke("mod.a.echo", PING).output == PING
    assert host.invoke("mod.b.echo", PING).output == PING
    assert sorted(host.core.operation_names()) == ["mod.a.echo", "mod.b.echo"]


def test_receipts_and_status_pass_through_to_the_sinks() -> None:
    receipts, status = ListReceipts(), ListStatus()
    host = host_of(
        single_op_module("mod.a", "mod.a.echo"), receipt_sink=receipts, status_sink=status
    )
    result = host.invoke("mod.a.echo", PING)
    assert result.recorded_receipt is not None
    assert [e.descriptor_name for e in receipts.envelopes] == ["mod.a.echo"]
    assert len(status.facts) == 2


def test_non_msgpack_input_is_invalid_input() -> None:
    receipts = ListReceipts()
    host = host_of(single_op_module("mod.a", "mod.a.echo"), receipt_sink=receipts)
    with pytest.raises(OperationFailed) as info:
        host.invoke("mod.a.echo", b"\xc1 not msgpack")
    assert info.value.code == "invalid_input"
    assert "input schema validation failed" in info.value.message
    assert len(receipts.envelopes) == 1  # the failure still gets its receipt


def test_non_msgpack_output_is_failed() -> None:
    def garbage(input: bytes, ctx: Any, /) -> bytes:
        return b"\xc1"

    host = host_of(single_op_module("mod.a", "mod.a.bad", garbage))
    with pytest.raises(OperationFailed) as info:
        host.invoke("mod.a.bad", PING)
    assert info.value.code == "failed"
    assert "output schema validation failed" in info.value.message


def test_handler_is_not_called_on_bad_input() -> None:
    calls: list[bytes] = []

    def spy(input: bytes, ctx: Any, /) -> bytes:
        calls.append(input)
        return input

    host = host_of(single_op_module("mod.a", "mod.a.spy", spy))
    with pytest.raises(OperationFailed):
        host.invoke("mod.a.spy", b"")
    assert calls == []


def test_guard_governs_only_its_own_modules_operations() -> None:
    def deny(descriptor: OperationDescriptor, input: bytes, ctx: Ctx, /) -> Deny:
        return Deny("test.policy", "blocked")

    guarded = op_schemas(
        HostModule.builder("mod.guarded", 1)
        .operation(op("mod.guarded.echo"), echo)
        .guard(GuardDescriptor("test.guard.v1"), deny),
        "mod.guarded.echo",
    ).build()
    host = host_of(guarded, single_op_module("mod.open", "mod.open.echo"))
    with pytest.raises(OperationDenied) as info:
        host.invoke("mod.guarded.echo", PING)
    assert info.value.code == "test.policy"
    assert host.invoke("mod.open.echo", PING).output == PING


def test_grants_pass_through() -> None:
    row = OperationEffectRow().requires_capability("demo.admin")
    module = op_schemas(
        HostModule.builder("mod.a", 1).operation(op("mod.a.admin").with_effect_row(row), echo),
        "mod.a.admin",
    ).build()
    with pytest.raises(OperationDenied, match="capability"):
        host_of(module).invoke("mod.a.admin", PING)
    module = op_schemas(
        HostModule.builder("mod.a", 1).operation(op("mod.a.admin").with_effect_row(row), echo),
        "mod.a.admin",
    ).build()
    assert host_of(module, grant_capabilities=["demo.admin"]).invoke("mod.a.admin", PING)


# -- effect backends ------------------------------------------------------------------------


def persist_module(kind: int, payload: bytes, *, bind: bool = True) -> HostModule:
    def append(input: bytes, ctx: Ctx, /) -> bytes:
        ctx.event_append_handle().append_event(kind, payload)
        return input

    row = OperationEffectRow().appends_event(f"evt.{kind:04x}")
    desc = op("mod.p.write", effect=EffectClass.PERSIST).with_effect_row(row)
    b = op_schemas(HostModule.builder("mod.p", 1).operation(desc, append), "mod.p.write")
    b = b.schema(schema("mod.p.evt", SchemaRole.EVENT_PAYLOAD))
    if bind:
        b = b.bind_event_payload(kind, "mod.p.evt")
    return b.build()


def test_a_bound_valid_append_reaches_the_inner_backend() -> None:
    backend = RecordingBackend()
    host = host_of(persist_module(0x1001, PING), effect_backend=backend)
    host.invoke("mod.p.write", PING)
    assert backend.appends == [(0x1001, PING)]


def test_an_unbound_kind_fails_before_the_inner_backend() -> None:
    backend = RecordingBackend()
    host = host_of(persist_module(0x1002, PING, bind=False), effect_backend=backend)
    with pytest.raises(OperationFailed, match="no payload schema binding"):
        host.invoke("mod.p.write", PING)
    assert backend.appends == []


def test_a_non_msgpack_payload_fails_before_the_inner_backend() -> None:
    backend = RecordingBackend()
    host = host_of(persist_module(0x1001, b"\xc1"), effect_backend=backend)
    with pytest.raises(OperationFailed, match="payload schema validation failed"):
        host.invoke("mod.p.write", PING)
    assert backend.appends == []


def test_validating_backend_forwards_the_other_axes() -> None:
    inner = RecordingBackend()
    registry = SchemaRegistry([schema("e", SchemaRole.EVENT_PAYLOAD)])
    backend = ValidatingEffectBackend(inner, {7: "e"}, registry)
    backend.read_event("evt")
    backend.query_projection("p")
    with pytest.raises(EffectError, match="emit is not supported"):
        backend.emit_receipt("r", PING)
    with pytest.raises(EffectError, match="payload must be bytes"):
        backend.append_event(7, "str")  # type: ignore[arg-type]
    backend.append_event(7, canonical.encode({"ok": True}))
    assert inner.appends == [(7, canonical.encode({"ok": True}))]


def test_control_ops_reach_only_the_bound_controller() -> None:
    used: list[str] = []

    class Controller:
        def use_host_control(self, control: str) -> None:
            used.append(control)

    def control(input: bytes, ctx: Ctx, /) -> bytes:
        ctx.host_control_handle().use_host_control("host.drain")
        return input

    row = OperationEffectRow().uses_host_control("host.drain")
    desc = op("mod.c.drain", effect=EffectClass.CONTROL).with_effect_row(row)

    def module() -> HostModule:
        b = HostModule.builder("mod.c", 1).operation(desc, control)
        return op_schemas(b, "mod.c.drain").build()

    with pytest.raises(OperationFailed):
        host_of(module()).invoke("mod.c.drain", PING)  # no backend at all: fail closed
    host_of(module(), host_control=Controller()).invoke("mod.c.drain", PING)
    assert used == ["host.drain"]
    with pytest.raises(EffectError, match="none is bound"):
        HostControlEffectBackend(None, Controller()).append_event(1, PING)


# -- hooks ----------------------------------------------------------------------------------


def test_startup_hooks_run_by_order_then_module_then_name() -> None:
    log: list[str] = []

    def record(tag: str) -> Any:
        return lambda: log.append(tag)

    a = (
        HostModule.builder("mod.a", 1)
        .hook(HookPhase.STARTUP, "late", 2, record("a-late"))
        .hook(HookPhase.STARTUP, "early", 0, record("a-early"))
        .hook(HookPhase.SHUTDOWN, "bye", 0, record("a-bye"))
        .build()
    )
    b = (
        HostModule.builder("mod.b", 1)
        .hook(HookPhase.STARTUP, "mid", 1, record("b-mid"))
        .hook(HookPhase.STARTUP, "tie", 2, record("b-tie"))
        .build()
    )
    host = host_of(b, a)
    host.start()
    assert host.is_started
    assert log == ["a-early", "b-mid", "a-late", "b-tie"]
    host.shutdown()
    assert log[-1] == "a-bye"
    assert not host.is_started


def test_a_failing_startup_hook_aborts_start() -> None:
    ran: list[str] = []

    def boom() -> None:
        raise RuntimeError("precondition failed")

    m = (
        HostModule.builder("mod.a", 1)
        .hook(HookPhase.STARTUP, "boom", 0, boom)
        .hook(HookPhase.STARTUP, "after", 1, lambda: ran.append("after"))
        .build()
    )
    host = host_of(m)
    with pytest.raises(StartupHookFailed) as info:
        host.start()
    assert info.value.failure.hook == "boom"
    assert info.value.failure.module == "mod.a"
    assert info.value.failure.detail == "precondition failed"
    assert not host.is_started
    assert ran == []


def test_shutdown_runs_every_hook_and_reports_the_first_failure() -> None:
    ran: list[str] = []

    def fail(tag: str) -> Any:
        def hook() -> None:
            ran.append(tag)
            raise RuntimeError(tag)

        return hook

    m = (
        HostModule.builder("mod.a", 1)
        .hook(HookPhase.SHUTDOWN, "first", 0, fail("first"))
        .hook(HookPhase.SHUTDOWN, "second", 1, fail("second"))
        .build()
    )
    host = host_of(m)
    with pytest.raises(ShutdownHookFailed) as info:
        host.shutdown()
    assert ran == ["first", "second"]
    assert info.value.failure.hook == "first"


# -- supervised jobs ------------------------------------------------------------------------


def test_a_supervised_job_runs_and_is_joined_on_shutdown() -> None:
    ran = threading.Event()

    def factory() -> Any:
        return ran.set

    m = HostModule.builder("mod.w", 1).job("background", factory).build()
    host = host_of(m)
    host.spawn_job("background")
    assert host.supervisor.job_count == 1
    outcomes = host.shutdown()
    assert ran.is_set()
    assert [(o.name, o.ok) for o in outcomes] == [("background", True)]
    assert host.supervisor.job_count == 0


def test_an_unknown_job_kind_is_rejected() -> None:
    host = host_of(HostModule.builder("mod.w", 1).job("known", noop_job).build())
    with pytest.raises(UnknownJobKind):
        host.spawn_job("ghost")


def test_a_raising_job_becomes_a_join_error_without_losing_siblings() -> None:
    supervisor = Supervisor(ThreadSpawn())
    done: list[int] = []

    def body(i: int) -> Any:
        def run() -> None:
            if i == 1:
                raise RuntimeError("intentional job failure")
            done.append(i)

        return run

    for i in range(3):
        supervisor.spawn(f"job-{i}", body(i))
    outcomes = supervisor.join_all()
    assert [o.ok for o in outcomes] == [True, False, True]
    assert "intentional job failure" in str(outcomes[1].error)
    assert sorted(done) == [0, 2]


def test_status_tracks_a_gated_job() -> None:
    gate = threading.Event()
    supervisor = Supervisor()

    def gated() -> None:
        gate.wait(5)

    supervisor.spawn("gated", gated)
    assert supervisor.statuses() == [("gated", JobStatus.RUNNING)]
    gate.set()
    assert supervisor.join_all()[0].ok
