"""The durable register catalog: lifecycle rows (event kind ``0xC5B8``) in a batpak store.

A row is ``RegisterOperationRowV1``: ``schema_version (1), action, name, supersedes?
(omitted when None), title (nil kept), effect, input_schema_ref, output_schema_ref,
receipt_kind, effect_row (omitted when empty)``. Rows at one coordinate are folded in
``(global_sequence, event_id)`` order into one state per name:

- ``put`` makes a name Active (repeating the identical descriptor is a no-op);
- ``update`` replaces an Active descriptor;
- ``delete`` tombstones an Active name (repeating it is a no-op);
- ``supersede`` tombstones an Active name and makes the replacement Active.

Any other transition, in a new write or in a stored row, raises :class:`CatalogConflict`;
:class:`StoreRegisterCatalog` checks each step against the fold before appending.
"""

from __future__ import annotations

import enum
from typing import Final, TypeAlias

import msgspec
from msgspec import UNSET

from batpak import AppendOptions, AppendReceipt, Coordinate, Region, Store, StoreError, canonical
from syncbat._wire import (
    SYNCBAT_REGISTER_EVENT_KIND,
    EffectRowWire,
    RegisterRowWire,
    decode_as,
    opt,
    skip_none,
)
from syncbat.errors import (
    CatalogConflict,
    CatalogDecodeError,
    CatalogStoreError,
    DescriptorValidationError,
    InvalidAction,
    InvalidCatalogDescriptor,
    InvalidEffect,
    InvalidLifecycleRow,
    InvalidSchemaVersion,
    WireDecodeError,
)
from syncbat.operation import ROW_AXES, EffectClass, OperationDescriptor, OperationEffectRow
from syncbat.register import Register

__all__ = (
    "SYNCBAT_REGISTER_EVENT_KIND",
    "Active",
    "CatalogEntry",
    "Deleted",
    "RegisterOperationAction",
    "RegisterOperationRow",
    "StoreRegisterCatalog",
    "Superseded",
    "fold_catalog",
    "rebuild_register_from_store",
)

REGISTER_SCHEMA_VERSION: Final = 1


class RegisterOperationAction(enum.StrEnum):
    """The lifecycle action of a catalog row."""

    PUT = "put"
    UPDATE = "update"
    DELETE = "delete"
    SUPERSEDE = "supersede"


def _row_to_wire(row: OperationEffectRow) -> EffectRowWire | msgspec.UnsetType:
    if row.is_empty():
        return UNSET
    return EffectRowWire(**{axis: list(getattr(row, axis)) or UNSET for axis in ROW_AXES})


def _row_from_wire(wire: EffectRowWire | msgspec.UnsetType) -> OperationEffectRow:
    if isinstance(wire, msgspec.UnsetType):
        return OperationEffectRow()
    return OperationEffectRow(**{axis: tuple(opt(getattr(wire, axis)) or ()) for axis in ROW_AXES})


class RegisterOperationRow(msgspec.Struct, frozen=True, kw_only=True):
    """One catalog row, as stored (fields are kept raw; the fold validates them)."""

    action: str
    name: str
    supersedes: str | None = None
    title: str | None = None
    effect: str = ""
    input_schema_ref: str = ""
    output_schema_ref: str = ""
    receipt_kind: str = ""
    effect_row: OperationEffectRow = OperationEffectRow()
    schema_version: int = REGISTER_SCHEMA_VERSION

    @classmethod
    def put(cls, descriptor: OperationDescriptor) -> RegisterOperationRow:
        return cls(
            action=RegisterOperationAction.PUT.value,
            name=descriptor.name,
            title=descriptor.title,
            effect=descriptor.effect.value,
            input_schema_ref=descriptor.input_schema_ref,
            output_schema_ref=descriptor.output_schema_ref,
            receipt_kind=descriptor.receipt_kind,
            effect_row=descriptor.effect_row,
        )

    @classmethod
    def update(cls, descriptor: OperationDescriptor) -> RegisterOperationRow:
        return msgspec.structs.replace(
            cls.put(descriptor), action=RegisterOperationAction.UPDATE.value
        )

    @classmethod
    def delete(cls, name: str) -> RegisterOperationRow:
        return cls(action=RegisterOperationAction.DELETE.value, name=name)

    @classmethod
    def supersede(cls, superseded: str, descriptor: OperationDescriptor) -> RegisterOperationRow:
        return msgspec.structs.replace(
            cls.put(descriptor),
            action=RegisterOperationAction.SUPERSEDE.value,
            supersedes=superseded,
        )

    def to_wire(self) -> RegisterRowWire:
        return RegisterRowWire(
            schema_version=self.schema_version,
            action=self.action,
            name=self.name,
            supersedes=skip_none(self.supersedes),
            title=self.title,
            effect=self.effect,
            input_schema_ref=self.input_schema_ref,
            output_schema_ref=self.output_schema_ref,
            receipt_kind=self.receipt_kind,
            effect_row=_row_to_wire(self.effect_row),
        )

    def encode(self) -> bytes:
        """The canonical payload bytes (the reference's ``to_vec_named``)."""
        return canonical.encode(self.to_wire())

    @classmethod
    def decode(cls, data: bytes) -> RegisterOperationRow:
        """Decode payload bytes; raises :class:`WireDecodeError` for anything else."""
        wire = decode_as(data, RegisterRowWire, "register catalog row")
        return cls(
            schema_version=wire.schema_version,
            action=wire.action,
            name=wire.name,
            supersedes=opt(wire.supersedes),
            title=opt(wire.title),
            effect=wire.effect,
            input_schema_ref=wire.input_schema_ref,
            output_schema_ref=wire.output_schema_ref,
            receipt_kind=wire.receipt_kind,
            effect_row=_row_from_wire(wire.effect_row),
        )

    def action_kind(self) -> RegisterOperationAction:
        if self.schema_version != REGISTER_SCHEMA_VERSION:
            raise InvalidSchemaVersion(self.schema_version)
        try:
            return RegisterOperationAction(self.action)
        except ValueError:
            raise InvalidAction(self.action) from None

    def descriptor(self) -> OperationDescriptor:
        """The validated descriptor this row carries."""
        try:
            effect = EffectClass(self.effect)
        except ValueError:
            raise InvalidEffect(self.effect) from None
        descriptor = OperationDescriptor(
            self.name,
            effect,
            self.input_schema_ref,
            self.output_schema_ref,
            self.receipt_kind,
            title=self.title,
            effect_row=self.effect_row,
        )
        try:
            descriptor.validate()
        except DescriptorValidationError as exc:
            raise InvalidCatalogDescriptor(exc) from None
        return descriptor

    def carries_only_name(self) -> bool:
        return (
            self.title is None
            and not self.effect
            and not self.input_schema_ref
            and not self.output_schema_ref
            and not self.receipt_kind
            and self.effect_row.is_empty()
        )


class Active(msgspec.Struct, frozen=True):
    """The name is live with this descriptor."""

    descriptor: OperationDescriptor


class Deleted(msgspec.Struct, frozen=True):
    """The name was deleted (terminal)."""


class Superseded(msgspec.Struct, frozen=True):
    """The name was replaced by ``replacement`` (terminal)."""

    replacement: OperationDescriptor


CatalogEntry: TypeAlias = Active | Deleted | Superseded

_PLACEHOLDER_REFS: Final = (
    "syncbat.lifecycle.input.v1",
    "syncbat.lifecycle.output.v1",
    "syncbat.lifecycle.receipt.v1",
)


def _validate_name(name: str) -> None:
    try:
        OperationDescriptor(name, EffectClass.INSPECT, *_PLACEHOLDER_REFS).validate()
    except DescriptorValidationError as exc:
        raise InvalidCatalogDescriptor(exc) from None


def _apply(entries: dict[str, CatalogEntry], row: RegisterOperationRow) -> None:
    action = row.action_kind()
    act = action.value
    if action in (RegisterOperationAction.PUT, RegisterOperationAction.UPDATE):
        if row.supersedes is not None:
            raise InvalidLifecycleRow(row.name, act, f"{act} rows cannot carry a supersedes name")
        descriptor = row.descriptor()
        current = entries.get(descriptor.name)
        if action is RegisterOperationAction.PUT:
            if isinstance(current, Deleted | Superseded):
                raise CatalogConflict(
                    descriptor.name, act, "cannot put a name after it has been tombstoned"
                )
            if isinstance(current, Active) and current.descriptor != descriptor:
                raise CatalogConflict(
                    descriptor.name, act, "put cannot replace an active descriptor; use update"
                )
        elif isinstance(current, Deleted | Superseded):
            raise CatalogConflict(descriptor.name, act, "cannot update a tombstoned operation")
        elif current is None:
            raise CatalogConflict(
                descriptor.name, act, "cannot update an operation before it has been put"
            )
        entries[descriptor.name] = Active(descriptor)
    elif action is RegisterOperationAction.DELETE:
        if row.supersedes is not None or not row.carries_only_name():
            raise InvalidLifecycleRow(
                row.name, act, "delete rows must carry only the operation name"
            )
        _validate_name(row.name)
        current = entries.get(row.name)
        if isinstance(current, Superseded):
            raise CatalogConflict(
                row.name, act, "cannot delete an operation after it has been superseded"
            )
        if current is None:
            raise CatalogConflict(
                row.name, act, "cannot delete an operation before it has been put"
            )
        entries[row.name] = Deleted()
    else:
        _apply_supersede(entries, row, act)


def _apply_supersede(entries: dict[str, CatalogEntry], row: RegisterOperationRow, act: str) -> None:
    old = row.supersedes
    if old is None:
        raise InvalidLifecycleRow(row.name, act, "supersede rows must carry a supersedes name")
    _validate_name(old)
    descriptor = row.descriptor()
    new = descriptor.name
    if old == new:
        raise InvalidLifecycleRow(new, act, "supersession target must differ from replacement name")
    source, target = entries.get(old), entries.get(new)
    if isinstance(source, Superseded):
        if (
            isinstance(target, Active)
            and target.descriptor == descriptor
            and source.replacement == descriptor
        ):
            return  # the same supersession replayed
        raise CatalogConflict(old, act, "supersession source was already tombstoned")
    if isinstance(source, Deleted):
        raise CatalogConflict(old, act, "cannot supersede an operation after it has been deleted")
    if source is None:
        raise CatalogConflict(old, act, "cannot supersede an operation before it has been put")
    if isinstance(target, Deleted | Superseded):
        raise CatalogConflict(new, act, "cannot supersede into a tombstoned replacement name")
    if isinstance(target, Active) and target.descriptor != descriptor:
        raise CatalogConflict(new, act, "replacement name is already active with different fields")
    entries[old] = Superseded(descriptor)
    entries[new] = Active(descriptor)


def fold_catalog(store: Store, coordinate: Coordinate) -> dict[str, CatalogEntry]:
    """Every name's state after folding the coordinate's rows in sequence order."""
    try:
        region = Region.entity(coordinate.entity).with_kind(SYNCBAT_REGISTER_EVENT_KIND)
        hits = [
            entry
            for entry in store.query(region)
            if entry.entity == coordinate.entity and entry.scope == coordinate.scope
        ]
        hits.sort(key=lambda entry: (entry.global_sequence, entry.event_id))
        payloads = [store.read_raw(entry.event_id) for entry in hits]
    except StoreError as exc:
        raise CatalogStoreError(f"batpak register catalog operation failed: {exc}") from exc
    entries: dict[str, CatalogEntry] = {}
    for payload in payloads:
        try:
            row = RegisterOperationRow.decode(payload)
        except WireDecodeError as exc:
            raise CatalogDecodeError(f"register catalog row decode failed: {exc}") from None
        _apply(entries, row)
    return {name: entries[name] for name in sorted(entries)}


def rebuild_register_from_store(store: Store, coordinate: Coordinate) -> Register:
    """The register of every Active descriptor at ``coordinate``."""
    entries = fold_catalog(store, coordinate)
    return Register(entry.descriptor for entry in entries.values() if isinstance(entry, Active))


class StoreRegisterCatalog:
    """Writes catalog rows to one coordinate, checking each lifecycle step first."""

    def __init__(
        self, store: Store, coordinate: Coordinate, options: AppendOptions | None = None
    ) -> None:
        self.store = store
        self.coordinate = coordinate
        self.options = options or AppendOptions()

    def entries(self) -> dict[str, CatalogEntry]:
        return fold_catalog(self.store, self.coordinate)

    def register(self) -> Register:
        return rebuild_register_from_store(self.store, self.coordinate)

    def persist_operation(self, descriptor: OperationDescriptor) -> AppendReceipt:
        """Append a put row (a no-op repeat of the identical active descriptor is allowed)."""
        return self._write(RegisterOperationRow.put(descriptor))

    def update_operation(self, descriptor: OperationDescriptor) -> AppendReceipt:
        return self._write(RegisterOperationRow.update(descriptor))

    def delete_operation(self, name: str) -> AppendReceipt:
        return self._write(RegisterOperationRow.delete(name), delete=True)

    def supersede_operation(
        self, superseded: str, descriptor: OperationDescriptor
    ) -> AppendReceipt:
        return self._write(RegisterOperationRow.supersede(superseded, descriptor))

    def persist_register(self, register: Register) -> list[AppendReceipt]:
        """Put every descriptor of a register, in name order."""
        return [self.persist_operation(descriptor) for descriptor in register]

    def _write(self, row: RegisterOperationRow, *, delete: bool = False) -> AppendReceipt:
        entries = self.entries()
        # A write must be a real transition: replays that the fold tolerates are refused here,
        # as in the reference (deleting twice, superseding twice).
        current = entries.get(row.name)
        if delete and isinstance(current, Deleted):
            raise CatalogConflict(row.name, row.action, "operation is already deleted")
        if row.supersedes is not None and isinstance(entries.get(row.supersedes), Superseded):
            replacement = entries[row.supersedes]
            assert isinstance(replacement, Superseded)
            reason = (
                "operation has already been superseded by that descriptor"
                if replacement.replacement == row.descriptor()
                else "supersession source was already tombstoned"
            )
            raise CatalogConflict(row.supersedes, row.action, reason)
        _apply(entries, row)
        try:
            return self.store.append_typed(self.coordinate, row.to_wire(), self.options)
        except StoreError as exc:
            raise CatalogStoreError(f"batpak register catalog operation failed: {exc}") from exc
