"""Receipts and status facts in a real batpak store, and what survives a reopen."""

from __future__ import annotations

from pathlib import Path

import pytest
from syncbat_support import descriptor

from batpak import Coordinate, Region, Store, StoreConfig
from syncbat import (
    SYNCBAT_OPERATION_STATUS_EVENT_KIND,
    SYNCBAT_RECEIPT_EVENT_KIND,
    CoreBuilder,
    Ctx,
    Deny,
    HandlerFailed,
    OperationDenied,
    OperationEffectRow,
    OperationFailed,
    OperationStatusFact,
    OperationStatusLifecycle,
    ReceiptEnvelope,
    ReceiptHashPolicy,
    ReceiptSinkFailed,
    StoreReceiptSink,
    StoreStatusSink,
    encode_drawer,
    operation_status_coordinate,
    read_operation_status,
)
from syncbat.receipt import COMPLETED, Denied, Failed
from syncbat.store_sink import receipt_extensions

RECEIPTS = Coordinate("syncbat:receipt", "scope:receipts")


def handler(input: bytes, ctx: Ctx) -> bytes:
    ctx.attach_signed_extension("app.beta", b"B")
    ctx.attach_signed_extension("app.alpha", b"A")
    ctx.attach_local_extension("app.local", b"L")
    if input == b"fail":
        raise HandlerFailed("asked to fail")
    return input.upper()


def build(store: Store) -> CoreBuilder:
    gated = descriptor("ops.gated", row=OperationEffectRow().requires_capability("ops.secret"))
    return (
        CoreBuilder()
        .register(descriptor("ops.echo"), handler)
        .register(gated, handler)
        .receipt_sink(StoreReceiptSink(store, RECEIPTS))
        .status_sink(StoreStatusSink(store))
    )


def receipts(store: Store) -> list[ReceiptEnvelope]:
    entries = store.query(Region.entity(RECEIPTS.entity).with_kind(SYNCBAT_RECEIPT_EVENT_KIND))
    return [ReceiptEnvelope.decode(store.read_raw(e.event_id)) for e in entries]


def run_calls(store: Store) -> None:
    core = build(store).build()
    core.invoke("ops.echo", b"ok")
    with pytest.raises(OperationFailed):
        core.invoke("ops.echo", b"fail")
    with pytest.raises(OperationDenied):
        core.invoke("ops.gated", b"x")


def test_receipts_and_status_facts_are_stored_and_survive_reopen(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path / "store")
    with Store.open(config) as store:
        run_calls(store)
        before = receipts(store)
        echo_before = read_operation_status(store, "ops.echo")
        gated_before = read_operation_status(store, "ops.gated")
    with Store.open(config) as store:
        after = receipts(store)
        assert after == before
        assert [type(e.outcome) for e in after] == [type(COMPLETED), Failed, Denied]
        assert after[0].output_hash == ReceiptHashPolicy.BLAKE3.hash(b"OK")
        assert after[0].signed_extensions == {"app.alpha": b"A", "app.beta": b"B"}
        assert after[0].local_extensions == {"app.local": b"L"}
        assert after[2].outcome == Denied(
            "capability.denied", 'operation requires ungranted capability "ops.secret"'
        )
        assert after[2].signed_extensions == {}
        echo = read_operation_status(store, "ops.echo")
        assert echo == echo_before
        assert echo is not None
        assert (echo.attempts_seen, echo.started_count) == (2, 2)
        assert (echo.completed_count, echo.failed_count, echo.denied_count) == (1, 1, 0)
        assert (echo.last_phase, echo.last_code) == ("failed", "failed")
        gated = read_operation_status(store, "ops.gated")
        assert gated == gated_before
        assert gated is not None
        assert (gated.attempts_seen, gated.started_count, gated.denied_count) == (1, 0, 1)
        assert read_operation_status(store, "ops.none") is None


def test_status_fact_coordinates_and_order(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path / "store")) as store:
        run_calls(store)
        coordinate = operation_status_coordinate("ops.echo")
        assert coordinate == Coordinate(
            "syncbat:operation-status:ops.echo", "scope:operation-status"
        )
        entries = store.by_entity(coordinate.entity)
        assert {e.event_kind for e in entries} == {SYNCBAT_OPERATION_STATUS_EVENT_KIND}
        assert {e.scope for e in entries} == {"scope:operation-status"}
        facts = [OperationStatusFact.decode(store.read_raw(e.event_id)) for e in entries]
        assert [f.lifecycle for f in facts] == [
            OperationStatusLifecycle.STARTED,
            OperationStatusLifecycle.COMPLETED,
            OperationStatusLifecycle.STARTED,
            OperationStatusLifecycle.FAILED,
        ]
        # The Completed receipt is appended before the Completed status fact.
        receipt = store.query(Region.entity(RECEIPTS.entity))[0]
        assert receipt.global_sequence < entries[1].global_sequence
        stored = store.get(entries[0].event_id)
        assert stored.event.header.payload_version == 1


def test_receipt_extensions_and_signed_drawer(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path / "store")) as store:
        result = build(store).build().invoke("ops.echo", b"ok")
        recorded = result.recorded_receipt
        assert recorded is not None
        append = recorded.append_receipt
        assert append is not None
        stored = store.get(append.event_id)
        assert stored.coordinate == RECEIPTS
        assert stored.event.header.event_kind == SYNCBAT_RECEIPT_EVENT_KIND
        assert stored.event.payload == recorded.envelope.encode()
        extensions = stored.extensions
        assert extensions == append.extensions
        assert extensions["syncbat.descriptor"] == b"ops.echo"
        assert extensions["syncbat.outcome"] == b"completed"
        assert extensions["syncbat.kind"] == b"receipt.ops.echo.v1"
        assert extensions["syncbat.input"] == ReceiptHashPolicy.BLAKE3.hash(b"ok")
        assert extensions["syncbat.output"] == ReceiptHashPolicy.BLAKE3.hash(b"OK")
        assert extensions["syncbat.signed"] == encode_drawer({"app.alpha": b"A", "app.beta": b"B"})
        assert "syncbat.local" not in extensions
        assert store.verify_append_receipt(append).is_valid


def test_drawer_encoding_bytes() -> None:
    assert encode_drawer({}) == b"syncbat.drawer.v1\x00"
    assert encode_drawer({"b": b"2", "a": b""}) == (
        b"syncbat.drawer.v1\x00"
        + (1).to_bytes(8, "big")
        + b"a"
        + (0).to_bytes(8, "big")
        + (1).to_bytes(8, "big")
        + b"b"
        + (1).to_bytes(8, "big")
        + b"2"
    )


def test_extensions_omit_absent_parts() -> None:
    envelope = ReceiptEnvelope(descriptor_name="op", receipt_kind="", outcome=Denied("c", "m"))
    assert receipt_extensions(envelope) == {
        "syncbat.descriptor": b"op",
        "syncbat.outcome": b"denied",
    }


def test_guard_denial_is_stored_with_its_metadata(tmp_path: Path) -> None:
    def guard(desc: object, input: bytes, ctx: Ctx) -> Deny:
        ctx.attach_signed_extension("policy.rule", b"r1")
        return Deny("policy.closed", "closed")

    with Store.open(StoreConfig(tmp_path / "store")) as store:
        core = build(store).admission_guard(guard).build()
        with pytest.raises(OperationDenied):
            core.invoke("ops.echo", b"x")
        (envelope,) = receipts(store)
        assert envelope.signed_extensions == {"policy.rule": b"r1"}
        view = read_operation_status(store, "ops.echo")
        assert view is not None
        assert (view.denied_count, view.started_count, view.last_code) == (1, 0, "policy.closed")


def test_receipt_sink_on_a_closed_store_fails_closed(tmp_path: Path) -> None:
    store = Store.open(StoreConfig(tmp_path / "store"))
    core = CoreBuilder().register(descriptor("ops.echo"), handler)
    built = core.receipt_sink(StoreReceiptSink(store, RECEIPTS)).build()
    store.close()
    with pytest.raises(ReceiptSinkFailed, match="batpak receipt append failed"):
        built.invoke("ops.echo", b"ok")
