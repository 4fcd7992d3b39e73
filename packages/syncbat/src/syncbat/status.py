"""Operation status facts (event kind ``0xC5B9``), their store sink and their folded view.

A fact is ``{schema_version: 1, operation, lifecycle, receipt_kind?, code?, message?,
input_hash?, output_hash?}`` (absent fields omitted, hashes as 32-int arrays). The store
sink writes each operation's facts to entity ``syncbat:operation-status:{op}`` in scope
``scope:operation-status``; :func:`read_operation_status` folds them into counters.
"""

from __future__ import annotations

import enum
from typing import Final, Protocol

import msgspec

from batpak import AppendOptions, Coordinate, Store, StoreError, canonical
from syncbat._wire import (
    SYNCBAT_OPERATION_STATUS_EVENT_KIND,
    StatusFactWire,
    decode_as,
    opt,
    serde_bytes,
    skip_none,
)
from syncbat.errors import StatusSinkError

__all__ = (
    "OPERATION_STATUS_SCOPE",
    "SYNCBAT_OPERATION_STATUS_EVENT_KIND",
    "OperationStatusFact",
    "OperationStatusLifecycle",
    "OperationStatusView",
    "StatusSink",
    "StoreStatusSink",
    "operation_status_coordinate",
    "read_operation_status",
)

OPERATION_STATUS_SCOPE: Final = "scope:operation-status"
OPERATION_STATUS_ENTITY_PREFIX: Final = "syncbat:operation-status:"
STATUS_SCHEMA_VERSION: Final = 1


class OperationStatusLifecycle(enum.StrEnum):
    """The phase a fact records."""

    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"
    DENIED = "denied"


class OperationStatusFact(msgspec.Struct, frozen=True, kw_only=True):
    """One status fact (``OperationStatusFactV1``)."""

    operation: str
    lifecycle: OperationStatusLifecycle
    receipt_kind: str | None = None
    code: str | None = None
    message: str | None = None
    input_hash: bytes | None = None
    output_hash: bytes | None = None
    schema_version: int = STATUS_SCHEMA_VERSION

    def to_wire(self) -> StatusFactWire:
        return StatusFactWire(
            schema_version=self.schema_version,
            operation=self.operation,
            lifecycle=self.lifecycle.value,
            receipt_kind=skip_none(self.receipt_kind),
            code=skip_none(self.code),
            message=skip_none(self.message),
            input_hash=skip_none(None if self.input_hash is None else serde_bytes(self.input_hash)),
            output_hash=skip_none(
                None if self.output_hash is None else serde_bytes(self.output_hash)
            ),
        )

    def encode(self) -> bytes:
        return canonical.encode(self.to_wire())

    @classmethod
    def decode(cls, data: bytes) -> OperationStatusFact:
        """Decode payload bytes; raises :class:`WireDecodeError` for anything else."""
        wire = decode_as(data, StatusFactWire, "operation status fact")
        input_hash, output_hash = opt(wire.input_hash), opt(wire.output_hash)
        return cls(
            schema_version=wire.schema_version,
            operation=wire.operation,
            lifecycle=OperationStatusLifecycle(wire.lifecycle),
            receipt_kind=opt(wire.receipt_kind),
            code=opt(wire.code),
            message=opt(wire.message),
            input_hash=None if input_hash is None else bytes(input_hash),
            output_hash=None if output_hash is None else bytes(output_hash),
        )


class StatusSink(Protocol):
    """Records one status fact; raises (any exception) to fail the call closed."""

    def record_fact(self, fact: OperationStatusFact) -> None: ...


def operation_status_coordinate(operation: str) -> Coordinate:
    """``syncbat:operation-status:{operation}`` in ``scope:operation-status``."""
    return Coordinate(OPERATION_STATUS_ENTITY_PREFIX + operation, OPERATION_STATUS_SCOPE)


class StoreStatusSink:
    """Appends status facts to a batpak store, one entity per operation."""

    def __init__(self, store: Store, options: AppendOptions | None = None) -> None:
        self.store = store
        self.options = options or AppendOptions()

    def record_fact(self, fact: OperationStatusFact) -> None:
        try:
            coordinate = operation_status_coordinate(fact.operation)
            self.store.append_typed(coordinate, fact.to_wire(), self.options)
        except (StoreError, ValueError, TypeError) as exc:
            raise StatusSinkError(f"batpak status append failed: {exc}") from exc


class OperationStatusView(msgspec.Struct, kw_only=True):
    """Counters folded from one operation's facts (``OperationStatusView``)."""

    operation: str
    lifecycle: OperationStatusLifecycle = OperationStatusLifecycle.STARTED
    attempts_seen: int = 0
    started_count: int = 0
    completed_count: int = 0
    failed_count: int = 0
    denied_count: int = 0
    last_phase: str | None = None
    last_receipt_kind: str | None = None
    last_code: str | None = None
    last_message: str | None = None
    last_input_hash: bytes | None = None
    last_output_hash: bytes | None = None

    def apply(self, fact: OperationStatusFact) -> None:
        """Fold one fact in; a denial with no open attempt counts as an attempt."""
        self.operation = fact.operation
        self.lifecycle = fact.lifecycle
        self.last_phase = fact.lifecycle.value
        if fact.lifecycle is OperationStatusLifecycle.STARTED:
            self.attempts_seen += 1
            self.started_count += 1
            return
        if fact.lifecycle is OperationStatusLifecycle.COMPLETED:
            self.completed_count += 1
        elif fact.lifecycle is OperationStatusLifecycle.FAILED:
            self.failed_count += 1
        else:
            if not self._has_open_attempt():
                self.attempts_seen += 1
            self.denied_count += 1
        self.last_receipt_kind = fact.receipt_kind
        self.last_code = fact.code
        self.last_message = fact.message
        self.last_input_hash = fact.input_hash
        self.last_output_hash = fact.output_hash

    def _has_open_attempt(self) -> bool:
        return self.started_count > self.completed_count + self.failed_count + self.denied_count


def read_operation_status(store: Store, operation: str) -> OperationStatusView | None:
    """Fold the operation's stored facts in commit order; None when it has none."""
    coordinate = operation_status_coordinate(operation)
    view: OperationStatusView | None = None
    for entry in store.by_entity(coordinate.entity):
        if entry.scope != coordinate.scope:
            continue
        if entry.event_kind != SYNCBAT_OPERATION_STATUS_EVENT_KIND:
            continue
        fact = OperationStatusFact.decode(store.read_raw(entry.event_id))
        if view is None:
            view = OperationStatusView(operation=fact.operation)
        view.apply(fact)
    return view
