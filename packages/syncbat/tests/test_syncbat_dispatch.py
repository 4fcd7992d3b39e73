"""Dispatch order (spec §1.1): each step's outcome, and nothing after it runs."""

from __future__ import annotations

import pytest
from syncbat_support import (
    Journal,
    SpyGuard,
    SpyHandler,
    SpyReceiptSink,
    SpyStatusSink,
    descriptor,
)

from syncbat import (
    Checkout,
    Core,
    CoreBuilder,
    Ctx,
    Denied,
    EffectClass,
    EffectError,
    FailClosedBackend,
    Failed,
    HandlerFailed,
    InvalidInput,
    MissingHandler,
    OperationDenied,
    OperationDescriptor,
    OperationEffectRow,
    OperationFailed,
    ReceiptHashPolicy,
    ReceiptSinkFailed,
    StatusSinkFailed,
    UnknownOperation,
    append_target,
)
from syncbat.receipt import Completed

NAME = "inventory.reserve"


class Rig:
    """A Core wired to spies sharing one journal."""

    def __init__(
        self,
        *,
        desc: OperationDescriptor | None = None,
        handler: SpyHandler | None = None,
        deny: tuple[str, str] | None = None,
        receipt_fail: bool = False,
        status_fail_on: str | None = None,
        grants: tuple[str, ...] = (),
        backend: FailClosedBackend | None = None,
        policy: ReceiptHashPolicy | None = None,
    ) -> None:
        self.journal = Journal()
        self.receipts = SpyReceiptSink(self.journal, receipt_fail)
        self.statuses = SpyStatusSink(self.journal, status_fail_on)
        self.handler = handler or SpyHandler(self.journal)
        self.handler.journal = self.journal
        builder = (
            CoreBuilder()
            .register(desc or descriptor(NAME), self.handler)
            .admission_guard(SpyGuard(self.journal, deny))
            .receipt_sink(self.receipts)
            .status_sink(self.statuses)
            .grant_capabilities(grants)
        )
        if backend is not None:
            builder.effect_backend(backend)
        if policy is not None:
            builder.receipt_hash_policy(policy)
        self.core = builder.build()


class AppendingBackend(FailClosedBackend):
    def __init__(self) -> None:
        self.appended: list[tuple[int, bytes]] = []

    def append_event(self, kind: int, payload: bytes) -> None:
        self.appended.append((kind, payload))


def test_success_order_receipt_then_completed_status() -> None:
    rig = Rig()
    result = rig.core.invoke(NAME, b"in")
    assert rig.journal.events == [
        ("guard", NAME),
        ("status", "started"),
        ("handler", NAME),
        ("receipt", "completed"),
        ("status", "completed"),
    ]
    assert result.output == b"out"
    assert result.descriptor == descriptor(NAME)
    assert result.recorded_receipt is not None
    envelope = rig.receipts.envelopes[0]
    assert envelope.outcome == Completed()
    assert envelope.input_hash == ReceiptHashPolicy.BLAKE3.hash(b"in")
    assert envelope.output_hash == ReceiptHashPolicy.BLAKE3.hash(b"out")
    assert envelope.signed_extensions == {"guard.seen": b"1"}
    completed = rig.statuses.facts[-1]
    assert completed.output_hash == envelope.output_hash
    assert completed.receipt_kind == "receipt.inventory.reserve.v1"
    started = rig.statuses.facts[0]
    assert (started.input_hash, started.code) == (None, None)


def test_step1_unknown_operation_leaves_nothing() -> None:
    rig = Rig()
    with pytest.raises(UnknownOperation) as info:
        rig.core.invoke("no.such.op", b"")
    assert info.value.wire_code == "unknown_operation"
    assert rig.journal.events == []


def test_step2_capability_gate_runs_before_guard_and_started() -> None:
    desc = descriptor(NAME, row=OperationEffectRow().requires_capability("billing.charge"))
    rig = Rig(desc=desc)
    with pytest.raises(OperationDenied) as info:
        rig.core.invoke(NAME, b"in")
    assert rig.journal.events == [("status", "denied"), ("receipt", "denied")]
    assert info.value.code == "capability.denied"
    assert info.value.message == 'operation requires ungranted capability "billing.charge"'
    assert info.value.wire_code == "runtime"
    envelope = rig.receipts.envelopes[0]
    assert envelope.outcome == Denied("capability.denied", info.value.message)
    assert envelope.signed_extensions == {}
    assert envelope.local_extensions == {}
    assert envelope.output_hash is None
    assert rig.handler.calls == 0


def test_step2_granted_and_ambient_tokens_pass() -> None:
    row = OperationEffectRow().reads_event("evt.f101").requires_capability("billing.charge")
    rig = Rig(desc=descriptor(NAME, row=row), grants=("billing.charge",))
    assert rig.core.invoke(NAME, b"").output == b"out"


def test_step2_first_missing_token_in_sorted_order() -> None:
    row = OperationEffectRow().requires_capability("z.cap").requires_capability("b.cap")
    rig = Rig(desc=descriptor(NAME, row=row), grants=("z.cap",))
    with pytest.raises(OperationDenied, match=r'"b\.cap"'):
        rig.core.invoke(NAME, b"")


def test_step3_guard_denial_before_started_with_guard_metadata() -> None:
    rig = Rig(deny=("policy.closed", "store is closed"))
    with pytest.raises(OperationDenied) as info:
        rig.core.invoke(NAME, b"in")
    assert rig.journal.events == [
        ("guard", NAME),
        ("status", "denied"),
        ("receipt", "denied"),
    ]
    assert (info.value.code, info.value.message) == ("policy.closed", "store is closed")
    envelope = rig.receipts.envelopes[0]
    assert envelope.outcome == Denied("policy.closed", "store is closed")
    assert envelope.signed_extensions == {"guard.seen": b"1"}
    assert rig.statuses.facts[0].code == "policy.closed"


def test_step5_missing_handler_fails_status_without_receipt() -> None:
    rig = Rig()
    del rig.core._handlers[NAME]
    with pytest.raises(MissingHandler) as info:
        rig.core.invoke(NAME, b"in")
    assert info.value.wire_code == "missing_handler"
    assert rig.journal.events == [("guard", NAME), ("status", "started"), ("status", "failed")]
    assert rig.statuses.facts[-1].code == "missing_handler"
    assert rig.receipts.envelopes == []


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidInput("bad bytes"), "invalid_input"),
        (HandlerFailed("boom"), "failed"),
        (EffectError("backend down"), "failed"),
    ],
)
def test_step7_handler_error_failed_status_then_failed_receipt(error: Exception, code: str) -> None:
    journal = Journal()
    rig = Rig(handler=SpyHandler(journal, error=error))
    with pytest.raises(OperationFailed) as info:
        rig.core.invoke(NAME, b"in")
    assert info.value.code == code
    assert info.value.wire_code == "handler"
    assert rig.journal.events == [
        ("guard", NAME),
        ("status", "started"),
        ("handler", NAME),
        ("status", "failed"),
        ("receipt", "failed"),
    ]
    envelope = rig.receipts.envelopes[0]
    assert isinstance(envelope.outcome, Failed)
    assert envelope.outcome.code == code
    assert envelope.input_hash is not None
    assert envelope.output_hash is None


def test_unexpected_exception_is_a_failed_receipt_and_chained() -> None:
    journal = Journal()
    rig = Rig(handler=SpyHandler(journal, error=KeyError("k")))
    with pytest.raises(OperationFailed) as info:
        rig.core.invoke(NAME, b"")
    assert info.value.code == "failed"
    assert "KeyError" in info.value.message
    assert isinstance(info.value.__cause__, KeyError)
    assert rig.journal.kinds()[-1] == "receipt"


def test_non_bytes_output_is_a_failure() -> None:
    journal = Journal()
    rig = Rig(handler=SpyHandler(journal, output="text"))  # type: ignore[arg-type]
    with pytest.raises(OperationFailed, match="not bytes"):
        rig.core.invoke(NAME, b"")


def append_handler(kind: int) -> SpyHandler:
    class Appender(SpyHandler):
        def __call__(self, input: bytes, ctx: Ctx) -> bytes:
            ctx.event_append_handle().append_event(kind, input)
            return super().__call__(input, ctx)

    return Appender(Journal())


def test_step6_undeclared_effect_denies_even_after_success() -> None:
    backend = AppendingBackend()
    rig = Rig(handler=append_handler(0xF101), backend=backend)  # inspect: no appends declared
    with pytest.raises(OperationDenied) as info:
        rig.core.invoke(NAME, b"in")
    assert info.value.code == "effect.violation"
    assert info.value.message == 'observed undeclared appends_events target "evt.f101"'
    assert rig.journal.events == [
        ("guard", NAME),
        ("status", "started"),
        ("handler", NAME),
        ("status", "denied"),
        ("receipt", "denied"),
    ]
    envelope = rig.receipts.envelopes[0]
    assert envelope.output_hash is None
    assert backend.appended == [(0xF101, b"in")]  # the backend ran; the output is dropped


def test_step6_violation_wins_over_handler_error() -> None:
    class AppendThenFail(SpyHandler):
        def __call__(self, input: bytes, ctx: Ctx) -> bytes:
            ctx.event_append_handle().append_event(0xF101, b"x")
            raise HandlerFailed("after append")

    rig = Rig(handler=AppendThenFail(Journal()), backend=AppendingBackend())
    with pytest.raises(OperationDenied):
        rig.core.invoke(NAME, b"")
    assert rig.journal.kinds()[-2:] == ["status", "receipt"]
    assert isinstance(rig.receipts.envelopes[0].outcome, Denied)


def test_declared_append_completes() -> None:
    row = OperationEffectRow().appends_event(append_target(0xF101))
    backend = AppendingBackend()
    rig = Rig(
        desc=descriptor(NAME, EffectClass.PERSIST, row),
        handler=append_handler(0xF101),
        backend=backend,
    )
    assert rig.core.invoke(NAME, b"in").output == b"out"
    assert backend.appended == [(0xF101, b"in")]


def test_status_sink_failure_on_started_stops_before_handler() -> None:
    rig = Rig(status_fail_on="started")
    with pytest.raises(StatusSinkFailed) as info:
        rig.core.invoke(NAME, b"")
    assert info.value.wire_code == "runtime"
    assert rig.journal.events == [("guard", NAME), ("status", "started")]
    assert rig.handler.calls == 0


def test_status_sink_failure_on_denial_records_no_receipt() -> None:
    rig = Rig(deny=("no", "no"), status_fail_on="denied")
    with pytest.raises(StatusSinkFailed):
        rig.core.invoke(NAME, b"")
    assert rig.journal.events == [("guard", NAME), ("status", "denied")]


def test_status_sink_failure_after_handler_failure_carries_cause() -> None:
    rig = Rig(handler=SpyHandler(Journal(), error=InvalidInput("bad")), status_fail_on="failed")
    with pytest.raises(StatusSinkFailed) as info:
        rig.core.invoke(NAME, b"")
    assert info.value.caused_by_handler == ("invalid_input", "bad")
    assert "receipt" not in rig.journal.kinds()


def test_receipt_sink_failure_fails_closed_without_completed_status() -> None:
    rig = Rig(receipt_fail=True)
    with pytest.raises(ReceiptSinkFailed) as info:
        rig.core.invoke(NAME, b"")
    assert info.value.wire_code == "receipt_sink"
    assert info.value.caused_by_handler is None
    assert rig.journal.events[-1] == ("receipt", "completed")
    assert ("status", "completed") not in rig.journal.events


def test_receipt_sink_failure_after_handler_failure_carries_cause() -> None:
    rig = Rig(handler=SpyHandler(Journal(), error=HandlerFailed("boom")), receipt_fail=True)
    with pytest.raises(ReceiptSinkFailed) as info:
        rig.core.invoke(NAME, b"")
    assert info.value.caused_by_handler == ("failed", "boom")
    assert "after handler error failed: boom" in str(info.value)


def test_at_most_one_receipt_per_call() -> None:
    rig = Rig()
    for _ in range(3):
        rig.core.invoke(NAME, b"")
    with pytest.raises(UnknownOperation):
        rig.core.invoke("other", b"")
    assert len(rig.receipts.envelopes) == 3


def test_hash_policies() -> None:
    deferred = Rig(policy=ReceiptHashPolicy.DEFERRED)
    deferred.core.invoke(NAME, b"in")
    envelope = deferred.receipts.envelopes[0]
    assert (envelope.input_hash, envelope.output_hash) == (None, None)
    custom = Rig(policy=ReceiptHashPolicy.raw_bytes(lambda data: bytes([len(data)]) * 32))
    custom.core.invoke(NAME, b"abc")
    envelope = custom.receipts.envelopes[0]
    assert envelope.input_hash == b"\x03" * 32
    assert envelope.output_hash == b"\x03" * 32
    with pytest.raises(ValueError, match="32 bytes"):
        ReceiptHashPolicy.raw_bytes(lambda data: b"short").hash(b"")


def test_core_descriptor_wins_over_checkout_descriptor() -> None:
    rig = Rig()
    forged = descriptor(NAME).with_title("forged")
    result = rig.core.checkout(Checkout(forged, b""))
    assert result.descriptor.title is None
    with pytest.raises(UnknownOperation):
        rig.core.checkout(Checkout(descriptor("not.mounted"), b""))


def test_without_receipts_records_none() -> None:
    core = CoreBuilder().register(descriptor(NAME), SpyHandler(Journal())).without_receipts()
    result = core.build().invoke(NAME, bytearray(b"x"))  # type: ignore[arg-type]
    assert result.recorded_receipt is None


def test_input_must_be_bytes() -> None:
    rig = Rig()
    with pytest.raises(TypeError):
        rig.core.invoke(NAME, "text")  # type: ignore[arg-type]


def test_core_builder_is_reachable_from_core() -> None:
    assert isinstance(Core.builder(), CoreBuilder)
