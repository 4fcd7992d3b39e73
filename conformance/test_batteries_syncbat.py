"""syncbat dispatch against a real batpak store: receipts, capability grants, the register catalog.

Every check reads the store back (and reopens it) instead of trusting what ``invoke`` returned:
receipts are ``0xC5B7`` events at the sink's coordinate, status facts ``0xC5B9`` events, catalog
rows ``0xC5B8`` events.

PROVES: INV-SYNCBAT-DISPATCH-RECEIPTS (a seeded mix of completed, failed, denied and unknown calls
leaves exactly one receipt per resolved call, with the right outcome and hashes, none for unknown
operations, identical after reopen; a receipt sink that cannot write fails the call closed and
hides the output),
INV-SYNCBAT-CAPABILITY-GRANT-ENFORCEMENT (an ungranted capability is denied before the guard,
before the Started fact and before the handler; granting it lets the same call complete),
INV-SYNCBAT-REGISTER-CATALOG-DETERMINISTIC (catalog rows fold in commit order into the same
register before and after reopen and read-only reopen; every bad transition is refused with
nothing written; a bad row planted in the store makes the rebuild refuse).
CATCHES: a receipt per attempt instead of per resolved call, receipts for unknown names, output
returned although its receipt was lost, a handler or guard that runs before the capability
check, a catalog that folds by arrival order of something other than the commit order, a
refused transition that still appends, a rebuild that skips rows it cannot apply.
SEEDED: the call mix comes from random.Random(6).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import blake3
import pytest

from batpak import Coordinate, Store, StoreConfig
from syncbat import (
    ADMIT,
    SYNCBAT_OPERATION_STATUS_EVENT_KIND,
    SYNCBAT_RECEIPT_EVENT_KIND,
    SYNCBAT_REGISTER_EVENT_KIND,
    Admit,
    CatalogConflict,
    Completed,
    CoreBuilder,
    Ctx,
    Denied,
    Deny,
    EffectClass,
    Failed,
    HandlerFailed,
    InvalidInput,
    OperationDenied,
    OperationDescriptor,
    OperationEffectRow,
    OperationFailed,
    ReceiptEnvelope,
    ReceiptSinkFailed,
    Register,
    RegisterOperationRow,
    StoreEffectBackend,
    StoreReceiptSink,
    StoreRegisterCatalog,
    StoreStatusSink,
    UnknownOperation,
    append_target,
    read_operation_status,
    rebuild_register_from_store,
)

RECEIPTS = Coordinate("syncbat:receipts", "scope:receipts")
NOTES = Coordinate("note:1", "scope:notes")
CATALOG = Coordinate("syncbat:catalog", "scope:catalog")
NOTE_KIND = 0xF101


def descriptor(name: str, row: OperationEffectRow | None = None) -> OperationDescriptor:
    effect = EffectClass.PERSIST if row is not None and row.appends_events else EffectClass.INSPECT
    base = OperationDescriptor(name, effect, f"{name}.request", f"{name}.ack", f"receipt.{name}.v1")
    return base if row is None else base.with_effect_row(row)


def store_receipts(store: Store) -> list[tuple[ReceiptEnvelope, dict[str, bytes]]]:
    """Every receipt envelope at the sink's coordinate, in commit order, with its extensions."""
    out = []
    for entry in store.by_entity(RECEIPTS.entity):
        assert entry.event_kind == SYNCBAT_RECEIPT_EVENT_KIND
        stored = store.get(entry.event_id)
        out.append((ReceiptEnvelope.decode(stored.event.payload), stored.extensions))
    return out


class Calls:
    """Handlers that count how often they really ran."""

    def __init__(self) -> None:
        self.ran: dict[str, int] = {}

    def note(self, name: str) -> None:
        self.ran[name] = self.ran.get(name, 0) + 1

    def add(self, input: bytes, ctx: Ctx, /) -> bytes:
        self.note("notes.add")
        ctx.event_append_handle().append_event(NOTE_KIND, input)
        return b"stored:" + input

    def fail(self, input: bytes, ctx: Ctx, /) -> bytes:
        self.note("notes.fail")
        raise HandlerFailed("disk says no")

    def reject(self, input: bytes, ctx: Ctx, /) -> bytes:
        self.note("notes.reject")
        raise InvalidInput("not a note")

    def sneak(self, input: bytes, ctx: Ctx, /) -> bytes:
        self.note("notes.sneak")
        ctx.event_append_handle().append_event(NOTE_KIND, input)  # undeclared append
        return b"sneaked"

    def guarded(self, input: bytes, ctx: Ctx, /) -> bytes:
        self.note("ledger.write")
        return b"written"


def build_core(store: Store, calls: Calls, *, grants: tuple[str, ...] = ()) -> CoreBuilder:
    appends = OperationEffectRow().appends_event(append_target(NOTE_KIND))
    builder = (
        CoreBuilder()
        .register(descriptor("notes.add", appends), calls.add)
        .register(descriptor("notes.fail"), calls.fail)
        .register(descriptor("notes.reject"), calls.reject)
        .register(descriptor("notes.sneak"), calls.sneak)
        .register(
            descriptor("ledger.write", OperationEffectRow().requires_capability("ledger.write")),
            calls.guarded,
        )
        .receipt_sink(StoreReceiptSink(store, RECEIPTS))
        .status_sink(StoreStatusSink(store))
        .effect_backend(StoreEffectBackend(store, NOTES))
    )
    return builder.grant_capabilities(grants)


@pytest.mark.invariant("INV-SYNCBAT-DISPATCH-RECEIPTS")
def test_one_receipt_per_resolved_call_none_for_unknown(tmp_path: Path) -> None:
    rng = random.Random(6)
    calls = Calls()
    expected: list[tuple[str, str, bytes, bytes | None]] = []  # name, outcome, input, output
    unknown = 0
    with Store.open(StoreConfig(tmp_path)) as store:
        core = build_core(store, calls).build()
        for i in range(40):
            name = rng.choice(
                [
                    "notes.add",
                    "notes.fail",
                    "notes.reject",
                    "notes.sneak",
                    "ledger.write",
                    "no.such",
                ]
            )
            data = f"note {i}".encode()
            if name == "no.such":
                with pytest.raises(UnknownOperation):
                    core.invoke(name, data)
                unknown += 1
            elif name == "notes.add":
                result = core.invoke(name, data)
                assert result.output == b"stored:" + data
                assert result.recorded_receipt is not None
                expected.append((name, "completed", data, result.output))
            elif name in ("notes.fail", "notes.reject"):
                with pytest.raises(OperationFailed):
                    core.invoke(name, data)
                expected.append((name, "failed", data, None))
            else:
                with pytest.raises(OperationDenied):
                    core.invoke(name, data)
                expected.append((name, "denied", data, None))
        assert unknown > 0
        assert {e[1] for e in expected} == {"completed", "failed", "denied"}
        live = store_receipts(store)
        notes = [store.read_raw(e.event_id) for e in store.by_entity(NOTES.entity)]

    with Store.open_read_only(StoreConfig(tmp_path)) as reopened:
        assert store_receipts(reopened) == live
        assert read_operation_status(reopened, "no.such") is None  # unknown: no status either
        for name in {e[0] for e in expected}:
            view = read_operation_status(reopened, name)
            assert view is not None
            assert view.attempts_seen == sum(1 for e in expected if e[0] == name)

    assert len(live) == len(expected)
    for (envelope, extensions), (name, outcome, data, output) in zip(live, expected, strict=True):
        assert envelope.descriptor_name == name
        assert envelope.receipt_kind == f"receipt.{name}.v1"
        assert envelope.input_hash == blake3.blake3(data).digest()
        assert envelope.output_hash == (None if output is None else blake3.blake3(output).digest())
        assert envelope.outcome.outcome_class == outcome
        assert extensions["syncbat.outcome"] == outcome.encode()
        assert extensions["syncbat.descriptor"] == name.encode()
        if outcome == "completed":
            assert envelope.outcome == Completed()
        elif outcome == "failed":
            assert isinstance(envelope.outcome, Failed)
        else:
            assert isinstance(envelope.outcome, Denied)
            assert envelope.outcome.code in ("capability.denied", "effect.violation")
    # The sneaking handler's append happened (the backend performed it) but was denied, and
    # the completed adds appended exactly their notes.
    completed_adds = sum(1 for e in expected if e[0] == "notes.add")
    sneaks = sum(1 for e in expected if e[0] == "notes.sneak")
    assert len(notes) == completed_adds + sneaks


class RefusingSink:
    def record_receipt(self, envelope: ReceiptEnvelope) -> object:
        raise OSError("receipt disk full")


@pytest.mark.invariant("INV-SYNCBAT-DISPATCH-RECEIPTS")
def test_a_failing_receipt_sink_fails_the_call_closed(tmp_path: Path) -> None:
    calls = Calls()
    with Store.open(StoreConfig(tmp_path / "journal")) as store:
        # A store-backed sink whose store is already closed: the append raises.
        gone = Store.open(StoreConfig(tmp_path / "receipts"))
        gone.close()
        for sink in (StoreReceiptSink(gone, RECEIPTS), RefusingSink()):
            core = build_core(store, calls).receipt_sink(sink).build()  # type: ignore[arg-type]
            with pytest.raises(ReceiptSinkFailed) as info:
                core.invoke("notes.add", b"lost")
            assert info.value.wire_code == "receipt_sink"
            with pytest.raises(ReceiptSinkFailed):
                core.invoke("notes.fail", b"lost too")
        view = read_operation_status(store, "notes.add")
        assert view is not None
        # Started was recorded, the receipt was not, so Completed never was.
        assert (view.started_count, view.completed_count) == (2, 0)
    with Store.open_read_only(StoreConfig(tmp_path / "receipts")) as receipts:
        assert receipts.by_entity(RECEIPTS.entity) == []


@pytest.mark.invariant("INV-SYNCBAT-CAPABILITY-GRANT-ENFORCEMENT")
def test_an_ungranted_capability_is_denied_before_anything_runs(tmp_path: Path) -> None:
    calls = Calls()
    guarded: list[str] = []

    def guard(desc: OperationDescriptor, data: bytes, ctx: Ctx) -> Admit | Deny:
        guarded.append(desc.name)
        return ADMIT

    with Store.open(StoreConfig(tmp_path)) as store:
        denied = build_core(store, calls).admission_guard(guard).build()
        with pytest.raises(OperationDenied) as info:
            denied.invoke("ledger.write", b"x")
        assert info.value.code == "capability.denied"
        assert "ledger.write" in info.value.message
        assert calls.ran.get("ledger.write", 0) == 0
        assert guarded == []
        view = read_operation_status(store, "ledger.write")
        assert view is not None
        assert (view.started_count, view.denied_count, view.last_code) == (
            0,
            1,
            "capability.denied",
        )
        ((envelope, _),) = store_receipts(store)
        assert envelope.outcome == Denied("capability.denied", info.value.message)
        assert envelope.output_hash is None

        # Ambient tokens (event.append) need no grant; a granted token lets the call run.
        granted = build_core(store, calls, grants=("ledger.write",)).admission_guard(guard)
        result = granted.build().invoke("ledger.write", b"x")
        assert result.output == b"written"
        assert calls.ran["ledger.write"] == 1
        assert guarded == ["ledger.write"]
        assert build_core(store, calls).build().invoke("notes.add", b"ok").output == b"stored:ok"
        status_kinds = {e.event_kind for e in store.by_scope("scope:operation-status")}
        assert status_kinds == {SYNCBAT_OPERATION_STATUS_EVENT_KIND}


def op(name: str, title: str | None = None) -> OperationDescriptor:
    row = OperationEffectRow().appends_event(f"event.{name}.v1")
    return descriptor(name, row).with_title(title)


@pytest.mark.invariant("INV-SYNCBAT-REGISTER-CATALOG-DETERMINISTIC")
def test_register_catalog_folds_in_order_and_survives_reopen(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path)
    with Store.open(config) as store:
        catalog = StoreRegisterCatalog(store, CATALOG)
        catalog.persist_operation(op("inventory.reserve"))
        catalog.persist_operation(op("inventory.release"))
        catalog.persist_operation(op("inventory.audit"))
        catalog.update_operation(op("inventory.reserve", "Reserve v2"))
        catalog.supersede_operation("inventory.release", op("inventory.free"))
        catalog.delete_operation("inventory.audit")
        rows = len(store.by_fact(SYNCBAT_REGISTER_EVENT_KIND))
        refused: list[Callable[[], object]] = [
            lambda: catalog.delete_operation("inventory.audit"),  # already deleted
            lambda: catalog.update_operation(op("inventory.audit")),  # tombstoned
            lambda: catalog.persist_operation(op("inventory.reserve", "other")),  # put over active
            lambda: catalog.update_operation(op("never.put")),  # update before put
            lambda: catalog.supersede_operation("inventory.release", op("inventory.x")),
            lambda: catalog.delete_operation("never.put"),
        ]
        for attempt in refused:
            with pytest.raises(CatalogConflict):
                attempt()
        assert len(store.by_fact(SYNCBAT_REGISTER_EVENT_KIND)) == rows  # nothing written
        live = catalog.register()
        assert live == Register([op("inventory.reserve", "Reserve v2"), op("inventory.free")])
        assert live.names() == ["inventory.free", "inventory.reserve"]
        live_entries = catalog.entries()

    for _ in range(2):
        with Store.open(config) as reopened:
            assert rebuild_register_from_store(reopened, CATALOG) == live
            assert StoreRegisterCatalog(reopened, CATALOG).entries() == live_entries
    with Store.open_read_only(config) as frozen:
        assert rebuild_register_from_store(frozen, CATALOG) == live


@pytest.mark.invariant("INV-SYNCBAT-REGISTER-CATALOG-DETERMINISTIC")
def test_rows_fold_by_commit_order_and_a_bad_stored_row_is_refused(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        # Rows written straight to the store (no catalog checks): the fold alone decides.
        store.append_typed(CATALOG, RegisterOperationRow.put(op("a.op", "one")).to_wire())
        store.append_typed(CATALOG, RegisterOperationRow.update(op("a.op", "two")).to_wire())
        store.append_typed(CATALOG, RegisterOperationRow.update(op("a.op", "three")).to_wire())
        assert rebuild_register_from_store(store, CATALOG) == Register([op("a.op", "three")])
        # Another coordinate's rows do not leak in.
        other = Coordinate("syncbat:catalog-2", "scope:catalog")
        store.append_typed(other, RegisterOperationRow.put(op("b.op")).to_wire())
        assert rebuild_register_from_store(store, CATALOG).names() == ["a.op"]
        # A transition the fold cannot apply (update of a deleted name) is refused on rebuild.
        store.append_typed(CATALOG, RegisterOperationRow.delete("a.op").to_wire())
        store.append_typed(CATALOG, RegisterOperationRow.update(op("a.op", "four")).to_wire())
        with pytest.raises(CatalogConflict):
            rebuild_register_from_store(store, CATALOG)
