"""Shared helpers for the syncbat tests: vector loading, descriptors and recording spies.

Vectors come from the shared tree beside the checkout (``<repo>/../shared/vectors``) when it
exists, else from the committed copy in ``<repo>/conformance/vectors``.
"""

from __future__ import annotations

from pathlib import Path

from syncbat import (
    ADMIT,
    AdmissionDecision,
    Ctx,
    Deny,
    EffectClass,
    OperationDescriptor,
    OperationEffectRow,
    OperationStatusFact,
    ReceiptEnvelope,
    RecordedReceipt,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED_VECTORS = REPO_ROOT.parent / "shared" / "vectors"
COMMITTED_VECTORS = REPO_ROOT / "conformance" / "vectors"


def vectors_dir() -> Path:
    """The directory vectors are loaded from: shared if present, else committed."""
    return SHARED_VECTORS if SHARED_VECTORS.is_dir() else COMMITTED_VECTORS


def load_vector(rel: str) -> bytes:
    """The bytes of the hex vector at ``rel`` (e.g. ``syncbat/receipt_envelope_completed.hex``)."""
    return bytes.fromhex((vectors_dir() / rel).read_text(encoding="ascii").rstrip())


def descriptor(
    name: str = "inventory.reserve",
    effect: EffectClass = EffectClass.INSPECT,
    row: OperationEffectRow | None = None,
) -> OperationDescriptor:
    """A valid descriptor with conventional refs."""
    return OperationDescriptor(
        name,
        effect,
        f"schema.{name}.input.v1",
        f"schema.{name}.output.v1",
        f"receipt.{name}.v1",
        effect_row=row or OperationEffectRow(),
    )


class Journal:
    """Records, in order, what every spy saw."""

    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def kinds(self) -> list[str]:
        return [event[0] for event in self.events]


class SpyReceiptSink:
    """Keeps envelopes; raises when ``fail`` is set."""

    def __init__(self, journal: Journal, fail: bool = False) -> None:
        self.journal = journal
        self.fail = fail
        self.envelopes: list[ReceiptEnvelope] = []

    def record_receipt(self, envelope: ReceiptEnvelope) -> RecordedReceipt:
        self.journal.events.append(("receipt", envelope.outcome.outcome_class))
        if self.fail:
            raise RuntimeError("receipt sink offline")
        self.envelopes.append(envelope)
        return RecordedReceipt(envelope)


class SpyStatusSink:
    """Keeps facts; raises on the lifecycle named by ``fail_on``."""

    def __init__(self, journal: Journal, fail_on: str | None = None) -> None:
        self.journal = journal
        self.fail_on = fail_on
        self.facts: list[OperationStatusFact] = []

    def record_fact(self, fact: OperationStatusFact) -> None:
        self.journal.events.append(("status", fact.lifecycle.value))
        if fact.lifecycle.value == self.fail_on:
            raise RuntimeError("status sink offline")
        self.facts.append(fact)


class SpyGuard:
    """Admits (or denies with ``deny``) and records that it ran."""

    def __init__(self, journal: Journal, deny: tuple[str, str] | None = None) -> None:
        self.journal = journal
        self.deny = deny

    def __call__(self, desc: OperationDescriptor, input: bytes, ctx: Ctx) -> AdmissionDecision:
        self.journal.events.append(("guard", desc.name))
        ctx.attach_signed_extension("guard.seen", b"1")
        if self.deny is not None:
            return Deny(*self.deny)
        return ADMIT


class SpyHandler:
    """Returns ``output`` (or raises ``error``) and records that it ran."""

    def __init__(
        self, journal: Journal, output: bytes = b"out", error: Exception | None = None
    ) -> None:
        self.journal = journal
        self.output = output
        self.error = error
        self.calls = 0

    def __call__(self, input: bytes, ctx: Ctx) -> bytes:
        self.calls += 1
        self.journal.events.append(("handler", ctx.descriptor.name))
        if self.error is not None:
            raise self.error
        return self.output
