"""The ten ops as one hostbat module, ``batpak.reference`` version 1, and the Host around it.

``reference_module(view, committable_kinds, backend)`` registers the ten ops with hostbat's
``HostModuleBuilder``: syncbat ``OperationDescriptor``s (``bank.commit`` Persist, the rest
Inspect; receipt kind ``receipt.<op>.v1``; schema refs ``<op>.request`` / ``<op>.ack``), a
``SchemaDescriptor`` for every ref (the op manifest's golden hex as golden vectors) and, for
``bank.commit``, one append target plus one event-payload binding per committable kind.

``bank.commit`` (docs/reference-host.md, "bank.commit's client-chosen kinds") appends only
through syncbat's ``Ctx``: ``ctx.event_append_handle().append_event(kind, payload)`` runs
hostbat's ``ValidatingEffectBackend`` (kind binding + msgpack check) and then
:class:`CommitBackend`, the store-backed backend that performs the append with the request's
coordinate and idempotency key. A kind outside the declared set is refused as
``invalid_input`` before any append. The nine read-only ops read the Store through the
``StoreView`` directly (reads are not an effect the host mediates).

``build_host(view, ...)`` mounts the module on a ``HostBuilder`` and returns the ``Host``
(receipts off, like refbat, unless a sink is passed).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final

from batpak import Coordinate
from hostbat import GoldenVector, Host, HostBuilder, HostModule, SchemaDescriptor, SchemaRole
from refhost import errors
from refhost.hostlock import HostLock
from refhost.ops import BY_NAME, OPERATIONS, Op, commit_ack, parse_commit
from refhost.view import CommitReceipt, StoreView
from syncbat import (
    Ctx,
    EffectClass,
    EffectError,
    FailClosedBackend,
    HandlerFailed,
    InvalidInput,
    OperationDescriptor,
    OperationEffectRow,
    ReceiptSink,
    StatusSink,
    append_target,
)

MODULE_ID: Final = "batpak.reference"
MODULE_VERSION: Final = 1
SCHEMA_VERSION: Final = 1
COMMIT_PAYLOAD_SCHEMA: Final = "bank.commit.payload"
"""The opaque event-payload schema every committable kind is bound to (any msgpack value)."""

GOLDEN_CASE: Final = "manifest"
"""Golden vector case name: the bytes come from batpak.manifest.json."""


@cache
def op_manifest() -> dict[str, Any]:
    """The historical op manifest (a byte-identical copy of conformance/vectors/netbat-ops)."""
    text = resources.files("refhost").joinpath("batpak.manifest.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _manifest_kinds() -> tuple[int, ...]:
    return tuple(
        sorted((event["category"] << 12) | event["typeId"] for event in op_manifest()["events"])
    )


APPLICATION_KINDS: Final = tuple(range(0xF001, 0xF011))
"""Sixteen application kinds, category 0xF type ids 0x001..0x010."""

DEFAULT_COMMITTABLE_KINDS: Final[tuple[int, ...]] = tuple(
    sorted({*_manifest_kinds(), *APPLICATION_KINDS})
)
"""The default committable set: the op manifest's 21 event kinds (0xFA01..0xFA81, so the
manifest's bank.commit golden, kind 0xFA01, commits) plus the sixteen application kinds."""


def parse_kind(text: str) -> int:
    """A committable kind from the CLI: ``0xF101``, ``f101`` or ``F:101`` (category:type id)."""
    raw = text.strip().lower()
    try:
        if ":" in raw:
            category_text, type_text = raw.split(":", 1)
            category, type_id = int(category_text, 16), int(type_text, 16)
            if category > 0xF or type_id > 0xFFF:
                raise ValueError
            kind = (category << 12) | type_id
        else:
            kind = int(raw.removeprefix("0x"), 16)
    except ValueError:
        raise ValueError(f"not an event kind: {text!r}") from None
    check_committable(kind)
    return kind


def check_committable(kind: int) -> None:
    """Refuse a kind no client may commit: reserved categories 0x0/0xD, or not a u16."""
    if not 0 <= kind <= 0xFFFF:
        raise ValueError(f"event kind {kind:#x} is not a u16")
    if kind >> 12 in (0x0, 0xD):
        raise ValueError(f"event kind 0x{kind:04x} is in a reserved category")


# --- the store-backed effect backend -------------------------------------------------------


@dataclass(slots=True)
class CommitSlot:
    """Where the next mediated append goes, and (after it) what the store returned."""

    coord: Coordinate
    idempotency_key: int | None
    receipt: CommitReceipt | None = None


class CommitBackend(FailClosedBackend):
    """The store-backed syncbat ``EffectBackend`` behind ``bank.commit``.

    syncbat's ``append_event(kind, payload)`` carries neither a coordinate nor an idempotency
    key and returns nothing, so the handler stages them with :meth:`target` (per thread) and
    reads the append receipt back from the slot. Every other effect fails closed. The append
    itself is ``view.commit`` (``BatpakView``: the verbatim msgpack payload, durable when it
    returns). Given the dispatcher's ``HostLock``, the backend makes that call outside the
    lock, so concurrent commits reach the store together and share its fsyncs.
    """

    def __init__(self, view: StoreView, lock: HostLock | None = None) -> None:
        self._view = view
        self._local = threading.local()
        self._unlocked = lock.released if lock is not None else nullcontext

    @contextmanager
    def target(self, coord: Coordinate, idempotency_key: int | None) -> Iterator[CommitSlot]:
        slot = CommitSlot(coord, idempotency_key)
        self._local.slot = slot
        try:
            yield slot
        finally:
            self._local.slot = None

    def append_event(self, kind: int, payload: bytes) -> None:
        slot: CommitSlot | None = getattr(self._local, "slot", None)
        if slot is None:
            raise EffectError("no commit target is staged for this append")
        if slot.receipt is not None:
            raise EffectError("a staged commit target takes exactly one append")
        try:
            with self._unlocked():  # the append waits for its fsync outside the host lock
                receipt = self._view.commit(slot.coord, kind, bytes(payload), slot.idempotency_key)
            slot.receipt = receipt
        except errors.ViewError as exc:
            raise EffectError(str(exc)) from None


# --- handlers ------------------------------------------------------------------------------

Handler = Callable[[bytes, Ctx], bytes]


def _translated(run: Callable[[], bytes]) -> bytes:
    """Run an op, turning refhost's op errors into syncbat handler errors (same class)."""
    try:
        return run()
    except errors.InvalidInput as exc:
        raise InvalidInput(exc.message) from None
    except errors.OpFailed as exc:
        raise HandlerFailed(exc.message) from None


def _read_handler(name: str, op: Op, view: StoreView) -> Handler:
    def handler(input: bytes, ctx: Ctx, /) -> bytes:
        return _translated(lambda: op(input, view))

    handler.__name__ = name.replace(".", "_")
    return handler


def _commit_handler(kinds: frozenset[int], backend: CommitBackend) -> Handler:
    def run(input: bytes, ctx: Ctx) -> bytes:
        plan = parse_commit(input)
        if plan.kind not in kinds:
            raise errors.InvalidInput(
                f"event kind: 0x{plan.kind:04x} is not a committable kind of this host"
            )
        with backend.target(plan.coord, plan.idempotency_key) as slot:
            try:
                ctx.event_append_handle().append_event(plan.kind, plan.payload)
            except EffectError as exc:
                raise errors.OpFailed(f"append: {exc.message}") from None
        assert slot.receipt is not None
        return commit_ack(slot.receipt)

    def bank_commit(input: bytes, ctx: Ctx, /) -> bytes:
        return _translated(lambda: run(input, ctx))

    return bank_commit


# --- the module ----------------------------------------------------------------------------


def descriptor(name: str, committable_kinds: Iterable[int] = ()) -> OperationDescriptor:
    """The syncbat descriptor of one of the ten ops (Persist with one append per kind)."""
    op = BY_NAME[name]
    effect = EffectClass.PERSIST if op.effect == "persist" else EffectClass.INSPECT
    base = OperationDescriptor(
        op.name, effect, op.input_schema_ref, op.output_schema_ref, op.receipt_kind
    )
    if effect is not EffectClass.PERSIST:
        return base
    row = OperationEffectRow()
    for kind in sorted(set(committable_kinds)):
        row = row.appends_event(append_target(kind))
    return base.with_effect_row(row)


def schemas() -> list[SchemaDescriptor]:
    """One schema per ref: request/ack with the manifest goldens, receipts without goldens
    (the manifest has none), and the opaque commit payload with the golden commit payload."""
    out: list[SchemaDescriptor] = []
    by_name = {o["name"]: o for o in op_manifest()["operations"]}
    for op in OPERATIONS:
        golden = by_name[op.name]
        out.append(
            SchemaDescriptor(
                op.input_schema_ref,
                SCHEMA_VERSION,
                SchemaRole.OPERATION_INPUT,
                [GoldenVector(GOLDEN_CASE, bytes.fromhex(golden["goldenInputHex"]))],
            )
        )
        out.append(
            SchemaDescriptor(
                op.output_schema_ref,
                SCHEMA_VERSION,
                SchemaRole.OPERATION_OUTPUT,
                [GoldenVector(GOLDEN_CASE, bytes.fromhex(golden["goldenOutputHex"]))],
            )
        )
        out.append(SchemaDescriptor(op.receipt_kind, SCHEMA_VERSION, SchemaRole.RECEIPT_PAYLOAD))
    events = {e["name"]: e for e in op_manifest()["events"]}
    payload = bytes.fromhex(events["bank.commit.request"]["fixtureValue"]["payload_hex"])
    out.append(
        SchemaDescriptor(
            COMMIT_PAYLOAD_SCHEMA,
            SCHEMA_VERSION,
            SchemaRole.EVENT_PAYLOAD,
            [GoldenVector(GOLDEN_CASE, payload)],
        )
    )
    return out


def reference_module(
    view: StoreView,
    committable_kinds: Iterable[int] = DEFAULT_COMMITTABLE_KINDS,
    backend: CommitBackend | None = None,
) -> HostModule:
    """``batpak.reference`` v1: the ten ops over ``view``; ``bank.commit`` appends through
    ``backend`` (a :class:`CommitBackend` over ``view`` unless given)."""
    kinds = frozenset(committable_kinds)
    if not kinds:
        raise ValueError("bank.commit needs at least one committable kind (Persist rule)")
    for kind in kinds:
        check_committable(kind)
    commit_backend = backend if backend is not None else CommitBackend(view)
    builder = HostModule.builder(MODULE_ID, MODULE_VERSION)
    for op in OPERATIONS:
        if op.name == "bank.commit":
            handler = _commit_handler(kinds, commit_backend)
        else:
            handler = _read_handler(op.name, op.handler, view)
        builder.operation(descriptor(op.name, kinds), handler)
    for schema in schemas():
        builder.schema(schema)
    for kind in sorted(kinds):
        builder.bind_event_payload(kind, COMMIT_PAYLOAD_SCHEMA)
    return builder.build()


def build_host(
    view: StoreView,
    committable_kinds: Iterable[int] = DEFAULT_COMMITTABLE_KINDS,
    *,
    receipt_sink: ReceiptSink | None = None,
    status_sink: StatusSink | None = None,
    lock: HostLock | None = None,
) -> Host:
    """The reference Host: ``batpak.reference`` mounted alone; its effect backend is the
    :class:`CommitBackend` over ``view`` (hostbat wraps it in ``ValidatingEffectBackend``).
    Pass the ``HostLock`` the ``ReferenceDispatcher`` will hold, so commits wait for the disk
    outside it."""
    backend = CommitBackend(view, lock)
    module = reference_module(view, committable_kinds, backend)
    builder = HostBuilder(
        receipt_sink=receipt_sink, status_sink=status_sink, effect_backend=backend
    )
    return builder.mount(module).build()
