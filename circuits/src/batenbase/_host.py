"""BatenBase's host contract: the hostbat module ``batenbase.kv`` and the Host that runs it.

Every write (put, delete, caller event, and the operator's tenant and token changes) is a
syncbat operation dispatched through one hostbat ``Host``. That gives each write a sealed,
content-identified manifest entry (the module digest and host fingerprints are on
``GET /admin/host``) and a runtime receipt: a syncbat ``ReceiptEnvelope`` (kind ``0xC5B7``)
appended to the journal the call wrote to at :data:`RECEIPT_COORD`, binding the operation,
its outcome and the BLAKE3 hashes of the request (which names the caller's token) and of the
answer.

Durability costs one fsync per write, not two: the handler's appends are written without a
durability gate, and the receipt that follows them is gated, so the fsync that makes the
receipt durable covers everything before it. A call that appended nothing (a refused or
failed write) rides the next fsync instead. The projection is updated only after ``invoke``
returns, so no reader sees a write before it is durable.

Reads are not dispatched: a receipt per read would be an append per GET. "Who saw what" is
the batched read-receipt log instead.

One Host serves every tenant: the journal a call writes to is staged per thread by
:meth:`HostRuntime.staging` for the backend and the sink. The Core keeps no per-call state, so
concurrent calls on different threads are safe.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import msgspec

from batenbase import _journal
from batenbase._events import AUDIT_KIND, BLOCK_KINDS, OPERATOR_KINDS
from batenbase._tenant import Tenant
from batenbase.errors import BatenBaseError
from batenbase.model import Caller
from batpak import (
    AppendReceipt,
    Coordinate,
    Store,
    StoreError,
    canonical,
)
from hostbat import GoldenVector, Host, HostBuilder, HostModule, SchemaDescriptor, SchemaRole
from syncbat import (
    Ctx,
    DispatchError,
    EffectClass,
    EffectError,
    FailClosedBackend,
    OperationDescriptor,
    OperationEffectRow,
    ReceiptEnvelope,
    RecordedReceipt,
    append_target,
)
from syncbat.store_sink import receipt_extensions

MODULE_ID: Final = "batenbase.kv"
MODULE_VERSION: Final = 1
SCHEMA_VERSION: Final = 1
RECEIPT_COORD: Final = Coordinate("syncbat:receipt:batenbase", "scope:receipts")
"""Where a journal keeps the runtime receipts of the calls that wrote to it: each tenant's
journal for block and event writes, the operator journal for tenant and token changes."""

PUT: Final = "batenbase.block.put"
DELETE: Final = "batenbase.block.delete"
APPEND_EVENT: Final = "batenbase.event.append"
TENANT_CREATE: Final = "batenbase.tenant.create"
TENANT_PLAN: Final = "batenbase.tenant.plan"
TENANT_READ_RECEIPTS: Final = "batenbase.tenant.read_receipts"
TOKEN_ISSUE: Final = "batenbase.token.issue"
TOKEN_REVOKE: Final = "batenbase.token.revoke"
EVENT_PAYLOAD_SCHEMA: Final = "batenbase.journal.payload"


# -- wire shapes (canonical msgpack maps; they are what the receipt hashes bind) -------------


class PutRequest(msgspec.Struct, frozen=True):
    caller: Caller
    key: str
    data: bytes
    v: int | None
    h: int | None
    if_match: str | None
    if_none_match: bool
    t: float
    idem: bytes = b""


class DeleteRequest(msgspec.Struct, frozen=True):
    caller: Caller
    key: str
    if_match: str | None
    t: float
    idem: bytes = b""


class EventRequest(msgspec.Struct, frozen=True):
    caller: Caller
    kind: str
    details: bytes
    t: float
    idem: bytes = b""


class TenantRequest(msgspec.Struct, frozen=True):
    name: str
    plan: str
    t: float


class ReadReceiptsRequest(msgspec.Struct, frozen=True):
    name: str
    enabled: bool
    t: float


class TokenRequest(msgspec.Struct, frozen=True):
    tenant: str | None
    observer: str
    role: str
    scopes: list[int]
    t: float


class RevokeRequest(msgspec.Struct, frozen=True):
    token_id: str
    t: float


class WriteAck(msgspec.Struct, frozen=True):
    """What a write answers: the journal position of the event it appended."""

    global_sequence: int
    event_id: str
    content_hash: bytes


_OPS: Final = (
    (PUT, (BLOCK_KINDS[0], AUDIT_KIND), PutRequest),
    (DELETE, (BLOCK_KINDS[1],), DeleteRequest),
    (APPEND_EVENT, (AUDIT_KIND,), EventRequest),
    (TENANT_CREATE, (OPERATOR_KINDS[0],), TenantRequest),
    (TENANT_PLAN, (OPERATOR_KINDS[1],), TenantRequest),
    (TOKEN_ISSUE, (OPERATOR_KINDS[2],), TokenRequest),
    (TOKEN_REVOKE, (OPERATOR_KINDS[3],), RevokeRequest),
    (TENANT_READ_RECEIPTS, (OPERATOR_KINDS[4],), ReadReceiptsRequest),
)


def descriptor(name: str, kinds: tuple[int, ...]) -> OperationDescriptor:
    row = OperationEffectRow()
    for kind in kinds:
        row = row.appends_event(append_target(kind))
    return OperationDescriptor(
        name, EffectClass.PERSIST, f"{name}.request", f"{name}.ack", f"receipt.{name}.v1"
    ).with_effect_row(row)


# -- the per-call slot, the backend and the receipt sink -----------------------------------


class Journal(Protocol):
    """What a call writes to: a tenant's journal or the operator journal."""

    @property
    def store(self) -> Store: ...


@dataclass(slots=True)
class CallSlot:
    """The journal one call writes to, and what its handler staged for after the call."""

    journal: Journal
    wrote: bool = False
    staged: list[Any] = field(default_factory=list)


class _Calls:
    def __init__(self) -> None:
        self._local = threading.local()

    def current(self) -> CallSlot:
        slot: CallSlot | None = getattr(self._local, "slot", None)
        if slot is None:
            raise EffectError("no BatenBase call is in progress on this thread")
        return slot

    @contextlib.contextmanager
    def open(self, journal: Journal) -> Iterator[CallSlot]:
        slot = CallSlot(journal)
        self._local.slot = slot
        try:
            yield slot
        finally:
            self._local.slot = None


class JournalBackend(FailClosedBackend):
    """Appends a handler's typed events to the call's journal, ungated (the call's receipt
    carries the fsync). Every other effect fails closed."""

    def __init__(self, calls: _Calls) -> None:
        self._calls = calls

    def append_typed_event(self, coordinate: Coordinate, value: msgspec.Struct) -> AppendReceipt:
        slot = self._calls.current()
        try:
            receipt = slot.journal.store.append_typed(
                coordinate, value, _journal.options(coordinate, durable=False)
            )
        except StoreError as exc:
            raise EffectError(str(exc)) from exc
        slot.wrote = True
        return receipt


class JournalReceiptSink:
    """Appends each envelope to the call's journal at :data:`RECEIPT_COORD` with the
    ``syncbat.*`` extensions; gated (fsynced) when the call appended anything."""

    def __init__(self, calls: _Calls) -> None:
        self._calls = calls

    def record_receipt(self, envelope: ReceiptEnvelope) -> RecordedReceipt:
        slot = self._calls.current()
        options = _journal.options(
            RECEIPT_COORD, durable=slot.wrote, extensions=receipt_extensions(envelope)
        )
        receipt = slot.journal.store.append_typed(RECEIPT_COORD, envelope.to_wire(), options)
        return RecordedReceipt(envelope, receipt)


# -- the module and the runtime ------------------------------------------------------------

Handler = Callable[[Any, Ctx], WriteAck]


def _schema(ref: str, role: SchemaRole, example: msgspec.Struct | None = None) -> SchemaDescriptor:
    golden = [] if example is None else [GoldenVector("example", canonical.encode(example))]
    return SchemaDescriptor(ref, SCHEMA_VERSION, role, golden)


def module(handlers: dict[str, Handler]) -> HostModule:
    """``batenbase.kv`` v1: the write operations, their schemas and event bindings."""
    builder = HostModule.builder(MODULE_ID, MODULE_VERSION)
    for name, kinds, request_type in _OPS:
        builder.operation(descriptor(name, kinds), _wire_handler(handlers[name], request_type))
        builder.schema(_schema(f"{name}.request", SchemaRole.OPERATION_INPUT))
        builder.schema(
            _schema(f"{name}.ack", SchemaRole.OPERATION_OUTPUT, WriteAck(1, "0" * 32, bytes(32)))
        )
        builder.schema(_schema(f"receipt.{name}.v1", SchemaRole.RECEIPT_PAYLOAD))
    builder.schema(_schema(EVENT_PAYLOAD_SCHEMA, SchemaRole.EVENT_PAYLOAD))
    for kind in sorted({k for _, kinds, _ in _OPS for k in kinds}):
        builder.bind_event_payload(kind, EVENT_PAYLOAD_SCHEMA)
    return builder.build()


def _wire_handler(handler: Handler, request_type: type[Any]) -> Callable[[bytes, Ctx], bytes]:
    decoder = msgspec.msgpack.Decoder(request_type)

    def run(input: bytes, ctx: Ctx, /) -> bytes:
        return canonical.encode(handler(decoder.decode(input), ctx))

    run.__name__ = handler.__name__
    return run


class HostRuntime:
    """The service's Host and the per-thread staging its backend and sink read."""

    def __init__(self, handlers: dict[str, Handler]) -> None:
        self._calls = _Calls()
        self._ack = msgspec.msgpack.Decoder(WriteAck)
        self.module = module(handlers)
        self.host: Host = (
            HostBuilder(
                receipt_sink=JournalReceiptSink(self._calls),
                effect_backend=JournalBackend(self._calls),
            )
            .mount(self.module)
            .build()
        )
        self.host.start()

    def staging(self, journal: Journal) -> contextlib.AbstractContextManager[CallSlot]:
        """Stage ``journal`` for the calls made on this thread inside the block."""
        return self._calls.open(journal)

    def current(self) -> CallSlot:
        """The slot of the call running on this thread (for handlers)."""
        return self._calls.current()

    def tenant(self) -> Tenant:
        """The tenant whose journal the running call writes to (for tenant handlers)."""
        journal = self._calls.current().journal
        assert isinstance(journal, Tenant)
        return journal

    def invoke(self, name: str, request: msgspec.Struct) -> WriteAck:
        """Dispatch ``request`` to ``name`` (inside :meth:`staging`). A handler's
        :class:`BatenBaseError` is re-raised as is; other dispatch errors propagate."""
        try:
            result = self.host.invoke(name, canonical.encode(request))
        except DispatchError as exc:
            if isinstance(exc.__cause__, BatenBaseError):
                raise exc.__cause__ from None
            raise
        return self._ack.decode(result.output)

    def describe(self) -> dict[str, Any]:
        """The host contract as JSON: identities and the operations with their effect rows."""
        manifest = self.module.manifest
        return {
            "module": {
                "id": manifest.id,
                "version": manifest.version,
                "digest": manifest.digest.hex(),
            },
            "host_fingerprint": self.host.fingerprint().hex(),
            "interface_fingerprint": self.host.interface_fingerprint().hex(),
            "receipts": {"entity": RECEIPT_COORD.entity, "scope": RECEIPT_COORD.scope},
            "operations": [
                {
                    "name": name,
                    "effect": "persist",
                    "appends": [append_target(k) for k in kinds],
                    "receipt_kind": f"receipt.{name}.v1",
                }
                for name, kinds, _ in _OPS
            ],
        }
