"""syncbat: operation descriptors, handler registration, dispatch and runtime receipts.

Declare an operation with ``@operation`` (or an ``OperationDescriptor`` plus a handler),
register it on a ``CoreBuilder`` with a receipt sink, and ``Core.invoke(name, input)``.
Dispatch is synchronous and fail-closed: ungranted capabilities and undeclared effects are
denied, every resolved call leaves at most one receipt, and a failing sink fails the call.
Receipts, status facts and catalog rows are byte-compatible with the Rust reference.
"""

import contextlib as _contextlib

import msgspec as _msgspec

from syncbat._wire import (
    SYNCBAT_OPERATION_STATUS_EVENT_KIND,
    SYNCBAT_RECEIPT_EVENT_KIND,
    SYNCBAT_REGISTER_EVENT_KIND,
)
from syncbat.admission import ADMIT, AdmissionDecision, AdmissionGuard, Admit, Deny
from syncbat.core import (
    Checkout,
    CheckoutFrame,
    CheckoutResult,
    Core,
    CoreBuilder,
    CoreFactory,
    Dispatcher,
)
from syncbat.ctx import (
    Ctx,
    EventAppendHandle,
    EventReadHandle,
    HostControlHandle,
    ProjectionReadHandle,
    ReceiptEmitHandle,
    ReceiptMetadata,
)
from syncbat.effects import EffectBackend, FailClosedBackend, StoreEffectBackend
from syncbat.errors import (
    BuildError,
    CatalogConflict,
    CatalogError,
    DescriptorValidationError,
    DispatchError,
    EffectError,
    MissingHandler,
    OperationDenied,
    OperationFailed,
    OperationNameError,
    ReceiptSinkError,
    ReceiptSinkFailed,
    RegisterValidationError,
    StatusSinkError,
    StatusSinkFailed,
    SyncbatError,
    UnknownOperation,
    WireDecodeError,
)
from syncbat.handler import (
    Handler,
    HandlerError,
    HandlerFailed,
    InvalidInput,
    OperationItem,
    operation,
)
from syncbat.names import MAX_DESCRIPTOR_REF_BYTES, MAX_OPERATION_NAME_BYTES, OperationName
from syncbat.operation import (
    EffectClass,
    OperationDescriptor,
    OperationEffectRow,
    append_target,
)
from syncbat.receipt import (
    COMPLETED,
    Completed,
    Denied,
    Failed,
    ReceiptEnvelope,
    ReceiptHashPolicy,
    ReceiptOutcome,
    ReceiptSink,
    RecordedReceipt,
)
from syncbat.register import Module, Register
from syncbat.register_store import (
    RegisterOperationAction,
    RegisterOperationRow,
    StoreRegisterCatalog,
    rebuild_register_from_store,
)
from syncbat.status import (
    OperationStatusFact,
    OperationStatusLifecycle,
    OperationStatusView,
    StatusSink,
    StoreStatusSink,
    operation_status_coordinate,
    read_operation_status,
)
from syncbat.store_sink import StoreReceiptSink, encode_drawer

__version__ = "0.1.0"

__all__ = (
    "ADMIT",
    "COMPLETED",
    "MAX_DESCRIPTOR_REF_BYTES",
    "MAX_OPERATION_NAME_BYTES",
    "SYNCBAT_OPERATION_STATUS_EVENT_KIND",
    "SYNCBAT_RECEIPT_EVENT_KIND",
    "SYNCBAT_REGISTER_EVENT_KIND",
    "AdmissionDecision",
    "AdmissionGuard",
    "Admit",
    "BuildError",
    "CatalogConflict",
    "CatalogError",
    "Checkout",
    "CheckoutFrame",
    "CheckoutResult",
    "Completed",
    "Core",
    "CoreBuilder",
    "CoreFactory",
    "Ctx",
    "Denied",
    "Deny",
    "DescriptorValidationError",
    "DispatchError",
    "Dispatcher",
    "EffectBackend",
    "EffectClass",
    "EffectError",
    "EventAppendHandle",
    "EventReadHandle",
    "FailClosedBackend",
    "Failed",
    "Handler",
    "HandlerError",
    "HandlerFailed",
    "HostControlHandle",
    "InvalidInput",
    "MissingHandler",
    "Module",
    "OperationDenied",
    "OperationDescriptor",
    "OperationEffectRow",
    "OperationFailed",
    "OperationItem",
    "OperationName",
    "OperationNameError",
    "OperationStatusFact",
    "OperationStatusLifecycle",
    "OperationStatusView",
    "ProjectionReadHandle",
    "ReceiptEmitHandle",
    "ReceiptEnvelope",
    "ReceiptHashPolicy",
    "ReceiptMetadata",
    "ReceiptOutcome",
    "ReceiptSink",
    "ReceiptSinkError",
    "ReceiptSinkFailed",
    "RecordedReceipt",
    "Register",
    "RegisterOperationAction",
    "RegisterOperationRow",
    "RegisterValidationError",
    "StatusSink",
    "StatusSinkError",
    "StatusSinkFailed",
    "StoreEffectBackend",
    "StoreReceiptSink",
    "StoreRegisterCatalog",
    "StoreStatusSink",
    "SyncbatError",
    "UnknownOperation",
    "WireDecodeError",
    "append_target",
    "encode_drawer",
    "operation",
    "operation_status_coordinate",
    "read_operation_status",
    "rebuild_register_from_store",
)

# msgspec resolves a Struct's (postponed) annotations in its __module__, so Structs keep theirs.
for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type) and issubclass(_value, _msgspec.Struct):
        continue
    with _contextlib.suppress(AttributeError, TypeError):
        _value.__module__ = "syncbat"
