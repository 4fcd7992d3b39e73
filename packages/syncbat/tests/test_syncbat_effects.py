"""Ctx handles, effect-row enforcement per axis, and the fail-closed backends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from syncbat_support import descriptor

from batpak import Coordinate, Store, StoreConfig
from syncbat import (
    CoreBuilder,
    Ctx,
    EffectClass,
    EffectError,
    FailClosedBackend,
    OperationDenied,
    OperationEffectRow,
    OperationFailed,
    ReceiptEnvelope,
    RecordedReceipt,
    StoreEffectBackend,
    append_target,
)

NAME = "effects.op"


class Recorder(FailClosedBackend):
    """Accepts every effect and records it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def append_event(self, kind: int, payload: bytes) -> None:
        self.calls.append(("append", append_target(kind)))

    def read_event(self, event_category: str) -> None:
        self.calls.append(("read", event_category))

    def query_projection(self, projection_id: str) -> None:
        self.calls.append(("query", projection_id))

    def emit_receipt(self, receipt_kind: str, payload: bytes) -> None:
        self.calls.append(("emit", receipt_kind))

    def use_host_control(self, control: str) -> None:
        self.calls.append(("control", control))


class Keep:
    def __init__(self) -> None:
        self.envelopes: list[ReceiptEnvelope] = []

    def record_receipt(self, envelope: ReceiptEnvelope) -> RecordedReceipt:
        self.envelopes.append(envelope)
        return RecordedReceipt(envelope)


Effect = Callable[[Ctx], None]

AXES: list[tuple[str, EffectClass, OperationEffectRow, Effect]] = [
    (
        "reads_events",
        EffectClass.INSPECT,
        OperationEffectRow().reads_event("evt.f101"),
        lambda ctx: ctx.event_read_handle().read_event("evt.f101"),
    ),
    (
        "appends_events",
        EffectClass.PERSIST,
        OperationEffectRow().appends_event("evt.f101"),
        lambda ctx: ctx.event_append_handle().append_event(0xF101, b"p"),
    ),
    (
        "queries_projections",
        EffectClass.INSPECT,
        OperationEffectRow().queries_projection("stock"),
        lambda ctx: ctx.projection_read_handle().query_projection("stock"),
    ),
    (
        "emits_receipts",
        EffectClass.EMIT,
        OperationEffectRow().emits_receipt("receipt.effects.op.v1"),
        lambda ctx: ctx.receipt_emit_handle().emit_receipt("receipt.effects.op.v1", b"e"),
    ),
    (
        "uses_host_controls",
        EffectClass.CONTROL,
        OperationEffectRow().uses_host_control("host.restart"),
        lambda ctx: ctx.host_control_handle().use_host_control("host.restart"),
    ),
]


def core_for(
    effect: EffectClass,
    row: OperationEffectRow,
    act: Effect,
    backend: FailClosedBackend | None,
    sink: Keep,
) -> CoreBuilder:
    def handler(input: bytes, ctx: Ctx) -> bytes:
        act(ctx)
        return b"done"

    builder = CoreBuilder().register(descriptor(NAME, effect, row), handler).receipt_sink(sink)
    if backend is not None:
        builder.effect_backend(backend)
    return builder


@pytest.mark.parametrize(("axis", "effect", "row", "act"), AXES, ids=[a[0] for a in AXES])
def test_declared_effect_completes(
    axis: str, effect: EffectClass, row: OperationEffectRow, act: Effect
) -> None:
    backend, sink = Recorder(), Keep()
    result = core_for(effect, row, act, backend, sink).build().invoke(NAME, b"")
    assert result.output == b"done"
    assert len(backend.calls) == 1


@pytest.mark.parametrize(("axis", "effect", "row", "act"), AXES, ids=[a[0] for a in AXES])
def test_undeclared_effect_is_denied(
    axis: str, effect: EffectClass, row: OperationEffectRow, act: Effect
) -> None:
    # Declare a different target on the same axis (or nothing), then perform the effect.
    other = OperationEffectRow().uses_host_control("other.control")
    backend, sink = Recorder(), Keep()
    with pytest.raises(OperationDenied) as info:
        core_for(EffectClass.CONTROL, other, act, backend, sink).build().invoke(NAME, b"")
    assert info.value.code == "effect.violation"
    assert info.value.message.startswith(f"observed undeclared {axis} target ")
    assert len(sink.envelopes) == 1


@pytest.mark.parametrize(("axis", "effect", "row", "act"), AXES, ids=[a[0] for a in AXES])
def test_no_backend_is_a_handler_failure(
    axis: str, effect: EffectClass, row: OperationEffectRow, act: Effect
) -> None:
    sink = Keep()
    with pytest.raises(OperationFailed) as info:
        core_for(effect, row, act, None, sink).build().invoke(NAME, b"")
    assert info.value.code == "failed"
    assert "no effect backend is bound" in info.value.message


@pytest.mark.parametrize(("axis", "effect", "row", "act"), AXES, ids=[a[0] for a in AXES])
def test_backend_rejection_is_not_observed(
    axis: str, effect: EffectClass, row: OperationEffectRow, act: Effect
) -> None:
    sink = Keep()
    with pytest.raises(OperationFailed, match="not supported"):
        core_for(effect, row, act, FailClosedBackend(), sink).build().invoke(NAME, b"")


def test_ctx_records_metadata_and_observed_row() -> None:
    ctx = Ctx(descriptor(NAME), Recorder())
    ctx.attach_signed_extension("app.trace", b"t")
    ctx.attach_local_extension("app.note", b"n")
    ctx.receipt_emit_handle().emit_receipt("receipt.x.v1", b"payload")
    assert ctx.metadata.signed == {"app.trace": b"t"}
    assert ctx.metadata.local == {
        "app.note": b"n",
        "syncbat.emit_receipt.receipt.x.v1": b"payload",
    }
    assert ctx.observed_effects.emits_receipts == ("receipt.x.v1",)
    assert ctx.observed_effects.requires_capabilities == ("receipt.emit",)


def test_emitted_payload_lands_in_the_local_drawer_of_the_receipt() -> None:
    row = OperationEffectRow().emits_receipt("receipt.effects.op.v1")
    sink = Keep()
    act: Effect = lambda ctx: ctx.receipt_emit_handle().emit_receipt(  # noqa: E731
        "receipt.effects.op.v1", b"evidence"
    )
    core_for(EffectClass.EMIT, row, act, Recorder(), sink).build().invoke(NAME, b"")
    assert sink.envelopes[0].local_extensions == {
        "syncbat.emit_receipt.receipt.effects.op.v1": b"evidence"
    }


def test_extension_values_must_be_bytes() -> None:
    ctx = Ctx(descriptor(NAME), None)
    with pytest.raises(TypeError):
        ctx.attach_signed_extension("a.b", "text")  # type: ignore[arg-type]


def test_fail_closed_backend_refuses_everything() -> None:
    backend = FailClosedBackend()
    for call in (
        lambda: backend.append_event(0xF101, b""),
        lambda: backend.read_event("x"),
        lambda: backend.query_projection("x"),
        lambda: backend.emit_receipt("x", b""),
        lambda: backend.use_host_control("x"),
        lambda: backend.append_typed_event(Coordinate("a", "b"), None),  # type: ignore[arg-type]
    ):
        with pytest.raises(EffectError, match="not supported"):
            call()


def test_store_effect_backend_against_a_real_store(tmp_path: Path) -> None:
    coordinate = Coordinate("note:1", "scope:notes")
    with Store.open(StoreConfig(tmp_path / "store")) as store:
        backend = StoreEffectBackend(store, coordinate)
        backend.read_event("evt.f101")  # empty stream reads nothing and succeeds
        backend.append_event(0xF101, b"\x01\x02")
        backend.read_event("evt.f101")
        backend.query_projection("notes")
        (entry,) = store.by_fact(0xF101)
        assert store.read_raw(entry.event_id) == b"\xc4\x02\x01\x02"  # bin, not an int array
        with pytest.raises(EffectError, match="not supported"):
            backend.emit_receipt("r", b"")
        with pytest.raises(EffectError, match="not supported"):
            backend.use_host_control("h")
        with pytest.raises(EffectError):
            backend.append_event(0x0001, b"")  # reserved system kind
    with pytest.raises(EffectError):
        backend.read_event("evt.f101")  # closed store


def test_store_backed_persist_operation(tmp_path: Path) -> None:
    coordinate = Coordinate("note:1", "scope:notes")

    def add(input: bytes, ctx: Ctx) -> bytes:
        ctx.event_append_handle().append_event(0xF101, input)
        return b"ok"

    row = OperationEffectRow().appends_event(append_target(0xF101))
    with Store.open(StoreConfig(tmp_path / "store")) as store:
        core = (
            CoreBuilder()
            .register(descriptor("notes.add", EffectClass.PERSIST, row), add)
            .effect_backend(StoreEffectBackend(store, coordinate))
            .without_receipts()
            .build()
        )
        core.invoke("notes.add", b"hello")
        (entry,) = store.by_fact(0xF101)
        assert entry.coord == coordinate
        assert store.get(entry.event_id).value() == b"hello"
