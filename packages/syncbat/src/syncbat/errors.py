"""The syncbat error tree.

::

    SyncbatError
    ├── OperationNameError         a name breaks the grammar (one subclass per rule)
    ├── DescriptorValidationError  a descriptor field or effect row breaks its rule
    ├── EffectError                an effect backend refused or cannot perform an effect
    ├── WireDecodeError            bytes are not a valid syncbat wire value
    ├── ReceiptSinkError           a receipt sink could not record an envelope
    ├── StatusSinkError            a status sink could not record a fact
    ├── BuildError                 CoreBuilder.build / registration refused
    ├── DispatchError              Core.invoke failed; ``wire_code`` is the netbat ERR code
    └── CatalogError               the store-backed register catalog refused or is corrupt

Handler errors (``InvalidInput``, ``HandlerFailed``) live in :mod:`syncbat.handler`: handlers
raise them, the runtime never does.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = (
    "BuildError",
    "CatalogConflict",
    "CatalogDecodeError",
    "CatalogError",
    "CatalogStoreError",
    "ConsecutiveDots",
    "DescriptorValidationError",
    "DescriptorWithoutHandler",
    "DispatchError",
    "DuplicateHandler",
    "DuplicateOperation",
    "EffectError",
    "EmptyName",
    "HandlerWithoutDescriptor",
    "IllegalCharacter",
    "InvalidAction",
    "InvalidCatalogDescriptor",
    "InvalidEffect",
    "InvalidHandler",
    "InvalidLifecycleRow",
    "InvalidModule",
    "InvalidOperation",
    "InvalidSchemaVersion",
    "LeadingOrTrailingDot",
    "MissingHandler",
    "MissingReceiptSink",
    "NameTooLong",
    "OperationDenied",
    "OperationFailed",
    "OperationNameError",
    "ReceiptSinkError",
    "ReceiptSinkFailed",
    "RegisterValidationError",
    "StatusSinkError",
    "StatusSinkFailed",
    "SyncbatError",
    "UnknownOperation",
    "WireDecodeError",
)


class SyncbatError(Exception):
    """Base of every error syncbat raises."""


# -- names ----------------------------------------------------------------------------------


class OperationNameError(SyncbatError, ValueError):
    """An operation name breaks the grammar; the subclass names the first broken rule."""

    message: ClassVar[str] = "invalid operation name"


class EmptyName(OperationNameError):
    """The name is empty."""

    message = "operation name is empty"

    def __init__(self) -> None:
        super().__init__(self.message)


class NameTooLong(OperationNameError):
    """The name is longer than the byte limit."""

    def __init__(self, length: int, maximum: int) -> None:
        self.length = length
        self.maximum = maximum
        super().__init__(f"operation name is {length} bytes (max {maximum})")


class IllegalCharacter(OperationNameError):
    """The name holds a byte outside ``[A-Za-z0-9._-]`` (``byte`` is the first such byte)."""

    def __init__(self, byte: int) -> None:
        self.byte = byte
        super().__init__(
            f"operation name contains illegal byte 0x{byte:02x} (allowed: [A-Za-z0-9._-])"
        )


class LeadingOrTrailingDot(OperationNameError):
    """The name starts or ends with ``.``."""

    message = "operation name must not start or end with '.'"

    def __init__(self) -> None:
        super().__init__(self.message)


class ConsecutiveDots(OperationNameError):
    """The name contains ``..``."""

    message = "operation name must not contain '..'"

    def __init__(self) -> None:
        super().__init__(self.message)


# -- descriptors, effects, wire -------------------------------------------------------------


class DescriptorValidationError(SyncbatError, ValueError):
    """A descriptor field (name, a ref, an effect target or the class/row rule) is invalid."""

    def __init__(self, field: str, value: str, message: str) -> None:
        self.field = field
        self.value = value
        self.message = message
        super().__init__(f"{field} `{value}` is invalid: {message}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DescriptorValidationError):
            return NotImplemented
        return (self.field, self.value, self.message) == (other.field, other.value, other.message)

    def __hash__(self) -> int:
        return hash((self.field, self.value, self.message))


class EffectError(SyncbatError):
    """An effect backend is not bound, does not support the effect, or failed to perform it."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(f"effect backend failure: {message}")


class WireDecodeError(SyncbatError, ValueError):
    """Bytes are not a valid syncbat wire value (receipt envelope, status fact, catalog row)."""


class ReceiptSinkError(SyncbatError):
    """A receipt sink could not record an envelope."""


class StatusSinkError(SyncbatError):
    """An operation-status sink could not record a fact."""


class RegisterValidationError(SyncbatError, ValueError):
    """A register (or module) rejected a descriptor: invalid, duplicated, or a bad module name."""


# -- build ----------------------------------------------------------------------------------


class BuildError(SyncbatError):
    """Registration or ``CoreBuilder.build`` refused; ``name`` is the operation concerned."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(message)


class DuplicateOperation(BuildError):
    """A descriptor with this name is already registered."""

    def __init__(self, name: str) -> None:
        super().__init__(name, f"operation `{name}` is already registered")


class DuplicateHandler(BuildError):
    """A handler for this name is already registered."""

    def __init__(self, name: str) -> None:
        super().__init__(name, f"handler for operation `{name}` is already registered")


class HandlerWithoutDescriptor(BuildError):
    """``build`` found a handler with no matching descriptor."""

    def __init__(self, name: str) -> None:
        super().__init__(name, f"handler `{name}` has no matching operation descriptor")


class DescriptorWithoutHandler(BuildError):
    """``build`` found a descriptor with no matching handler."""

    def __init__(self, name: str) -> None:
        super().__init__(name, f"operation `{name}` has no registered handler")


class InvalidOperation(BuildError):
    """A descriptor failed ``validate()`` at registration."""

    def __init__(self, name: str, message: str) -> None:
        self.detail = message
        super().__init__(name, f"operation `{name}` is invalid: {message}")


class InvalidHandler(BuildError):
    """A handler was registered under a name that breaks the grammar."""

    def __init__(self, name: str, message: str) -> None:
        self.detail = message
        super().__init__(name, f"handler `{name}` is invalid: {message}")


class InvalidModule(BuildError):
    """A mounted module is invalid (bad name, invalid or duplicated descriptor)."""

    def __init__(self, name: str, message: str) -> None:
        self.detail = message
        super().__init__(name, f"module `{name}` is invalid: {message}")


class MissingReceiptSink(BuildError):
    """``build`` without a receipt sink and without ``without_receipts()``."""

    def __init__(self) -> None:
        super().__init__(
            "",
            "no receipt sink is configured; set one with receipt_sink() or opt out "
            "explicitly with without_receipts()",
        )


# -- dispatch -------------------------------------------------------------------------------


class DispatchError(SyncbatError):
    """``Core.invoke`` failed. ``name`` is the operation; ``wire_code`` its netbat ERR code."""

    wire_code: ClassVar[str] = "runtime"

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(message)


class UnknownOperation(DispatchError):
    """No descriptor is registered under the name (no receipt, no status fact)."""

    wire_code = "unknown_operation"

    def __init__(self, name: str) -> None:
        super().__init__(name, f"unknown operation `{name}`")


class MissingHandler(DispatchError):
    """The descriptor is known but no handler is (a Failed status fact, no receipt)."""

    wire_code = "missing_handler"

    def __init__(self, name: str) -> None:
        super().__init__(name, f"operation `{name}` has no registered handler")


class OperationFailed(DispatchError):
    """The handler raised; ``code`` is its class (``invalid_input`` or ``failed``)."""

    wire_code = "handler"

    def __init__(self, name: str, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(name, f"handler for operation `{name}` failed with {code}: {message}")


class OperationDenied(DispatchError):
    """A capability gate, the admission guard or the effect-row check denied the call."""

    def __init__(self, name: str, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(name, f"operation `{name}` was denied with {code}: {message}")


class _SinkFailed(DispatchError):
    sink: ClassVar[str] = ""

    def __init__(
        self, name: str, message: str, caused_by_handler: tuple[str, str] | None = None
    ) -> None:
        self.message = message
        self.caused_by_handler = caused_by_handler
        if caused_by_handler is None:
            text = f"{self.sink} sink for operation `{name}` failed: {message}"
        else:
            code, detail = caused_by_handler
            text = (
                f"{self.sink} sink for operation `{name}` failed after handler error "
                f"{code}: {detail}: {message}"
            )
        super().__init__(name, text)


class ReceiptSinkFailed(_SinkFailed):
    """The receipt sink failed; the call fails closed. ``caused_by_handler`` is
    ``(code, message)`` when a handler failure was being recorded."""

    wire_code = "receipt_sink"
    sink = "receipt"


class StatusSinkFailed(_SinkFailed):
    """The status sink failed; the call fails closed (nothing after it runs)."""

    sink = "status"


# -- catalog --------------------------------------------------------------------------------


class CatalogError(SyncbatError):
    """The store-backed register catalog refused a change or holds an invalid row."""


class CatalogStoreError(CatalogError):
    """The batpak store failed underneath the catalog."""


class CatalogDecodeError(CatalogError):
    """A stored catalog row does not decode as ``RegisterOperationRowV1``."""


class InvalidSchemaVersion(CatalogError):
    """A catalog row has a schema_version other than 1."""

    def __init__(self, version: int) -> None:
        self.version = version
        super().__init__(f"unsupported register catalog schema version {version}")


class InvalidAction(CatalogError):
    """A catalog row has an action other than put/update/delete/supersede."""

    def __init__(self, action: str) -> None:
        self.action = action
        super().__init__(f"unsupported register catalog action `{action}`")


class InvalidEffect(CatalogError):
    """A catalog row has an unknown effect class spelling."""

    def __init__(self, effect: str) -> None:
        self.effect = effect
        super().__init__(f"unsupported register catalog effect `{effect}`")


class InvalidCatalogDescriptor(CatalogError):
    """A catalog row decodes but its descriptor does not validate."""

    def __init__(self, error: DescriptorValidationError) -> None:
        self.error = error
        super().__init__(f"invalid register catalog descriptor: {error}")


class InvalidLifecycleRow(CatalogError):
    """A catalog row is malformed for its action (for example a delete row with fields)."""

    def __init__(self, name: str, action: str, reason: str) -> None:
        self.name, self.action, self.reason = name, action, reason
        super().__init__(f"invalid register catalog `{action}` row for `{name}`: {reason}")


class CatalogConflict(CatalogError):
    """A lifecycle transition is not allowed from the operation's current state."""

    def __init__(self, name: str, action: str, reason: str) -> None:
        self.name, self.action, self.reason = name, action, reason
        super().__init__(
            f"conflicting register catalog `{action}` transition for `{name}`: {reason}"
        )
