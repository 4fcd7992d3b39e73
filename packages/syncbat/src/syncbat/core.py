"""CoreBuilder and Core: registration, then dispatch from bytes to handler to receipt.

``Core.invoke(name, input)`` runs these steps, in this order, and stops at the first that
ends the call (the Core's own registered descriptor always wins):

1. Unknown name: :class:`UnknownOperation`; no receipt, no status fact.
2. Capability gate: the first declared token that is neither ambient nor granted gives a
   Denied status fact, then a Denied receipt (``capability.denied``, empty metadata), then
   :class:`OperationDenied`. The guard has not run and nothing is Started.
3. Guard (one ``Ctx`` is built and shared with the handler): a ``Deny`` gives a Denied status
   fact, then a Denied receipt with the guard's metadata, then :class:`OperationDenied`.
4. Started status fact.
5. No handler: Failed status fact (``missing_handler``), no receipt, :class:`MissingHandler`.
6. The handler runs; the observed effect row must be a subset of the declared one (axes in
   row order). A violation gives a Denied status fact and a Denied receipt
   (``effect.violation``) even if the handler succeeded; its output is dropped.
7. Handler error: Failed status fact, Failed receipt, :class:`OperationFailed`. An uncaught
   :class:`EffectError` or other exception from the handler is a failure of class
   ``failed``, not a denial.
8. Success: Completed receipt first, then the Completed status fact; a
   :class:`CheckoutResult`.

A failing receipt or status sink ends the call at once with :class:`ReceiptSinkFailed` or
:class:`StatusSinkFailed`: nothing after it runs. There is at most one receipt per call.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import msgspec

from syncbat.admission import AdmissionGuard, Deny
from syncbat.ctx import Ctx, ReceiptMetadata
from syncbat.effects import EffectBackend
from syncbat.errors import (
    DescriptorValidationError,
    DescriptorWithoutHandler,
    DuplicateHandler,
    DuplicateOperation,
    EffectError,
    HandlerWithoutDescriptor,
    InvalidHandler,
    InvalidModule,
    InvalidOperation,
    MissingHandler,
    MissingReceiptSink,
    OperationDenied,
    OperationFailed,
    OperationNameError,
    ReceiptSinkFailed,
    RegisterValidationError,
    StatusSinkFailed,
    UnknownOperation,
)
from syncbat.handler import Handler, HandlerError, OperationItem
from syncbat.names import check_grammar, grammar_message
from syncbat.operation import AMBIENT_CAPABILITIES, OperationDescriptor, rust_debug_str
from syncbat.receipt import (
    COMPLETED,
    Denied,
    Failed,
    ReceiptEnvelope,
    ReceiptHashPolicy,
    ReceiptOutcome,
    ReceiptSink,
    RecordedReceipt,
)
from syncbat.register import Module
from syncbat.status import OperationStatusFact, OperationStatusLifecycle, StatusSink

__all__ = (
    "Checkout",
    "CheckoutFrame",
    "CheckoutResult",
    "Core",
    "CoreBuilder",
    "CoreFactory",
    "Dispatcher",
)

CAPABILITY_DENIED = "capability.denied"
MISSING_HANDLER_MESSAGE = "operation descriptor has no registered handler"


class CheckoutFrame(msgspec.Struct, frozen=True):
    """An unresolved request: an operation name and its input bytes."""

    name: str
    input: bytes


class Checkout(msgspec.Struct, frozen=True):
    """A request resolved to a descriptor (for example by a ``Register``)."""

    descriptor: OperationDescriptor
    input: bytes


class CheckoutResult(msgspec.Struct, frozen=True):
    """A completed call: the descriptor used, the output, and the receipt if recorded."""

    descriptor: OperationDescriptor
    output: bytes
    recorded_receipt: RecordedReceipt | None


class Dispatcher(Protocol):
    """Anything that dispatches ``(name, bytes)``: a Core, or a host built over one."""

    def invoke(self, name: str, input: bytes) -> CheckoutResult: ...


class CoreFactory(Protocol):
    """Opens a fresh Core (for example one per connection)."""

    def __call__(self) -> Core: ...


class CoreBuilder:
    """Collects descriptors, handlers and runtime configuration; ``build()`` makes a Core.

    Every method returns the builder. Registration validates descriptors and rejects
    duplicates at once; ``build()`` checks that descriptors and handlers pair up and that a
    receipt sink is set or ``without_receipts()`` was called.
    """

    def __init__(self) -> None:
        self._descriptors: dict[str, OperationDescriptor] = {}
        self._handlers: dict[str, Handler] = {}
        self._guard: AdmissionGuard | None = None
        self._receipt_sink: ReceiptSink | None = None
        self._receipts_opted_out = False
        self._status_sink: StatusSink | None = None
        self._hash_policy = ReceiptHashPolicy.BLAKE3
        self._backend: EffectBackend | None = None
        self._grants: set[str] = set()

    # -- registration ----------------------------------------------------------------------

    def register_operation(self, descriptor: OperationDescriptor) -> CoreBuilder:
        """Register a descriptor alone (its handler comes with ``register_handler``)."""
        self._check_descriptor(descriptor)
        self._descriptors[descriptor.name] = descriptor
        return self

    def register_handler(self, name: str, handler: Handler) -> CoreBuilder:
        """Register a handler for a name registered (or to be registered) separately."""
        try:
            check_grammar(name)
        except OperationNameError as exc:
            raise InvalidHandler(str(name), grammar_message(exc)) from None
        except TypeError as exc:
            raise InvalidHandler(repr(name), str(exc)) from None
        _check_callable(name, handler)
        if name in self._handlers:
            raise DuplicateHandler(name)
        self._handlers[name] = handler
        return self

    def register(self, descriptor: OperationDescriptor, handler: Handler) -> CoreBuilder:
        """Register a descriptor and its handler together."""
        self._check_descriptor(descriptor)
        _check_callable(descriptor.name, handler)
        if descriptor.name in self._handlers:
            raise DuplicateHandler(descriptor.name)
        self._descriptors[descriptor.name] = descriptor
        self._handlers[descriptor.name] = handler
        return self

    register_boxed = register

    def register_item(self, item: OperationItem) -> CoreBuilder:
        """Register an ``@operation``-decorated handler."""
        return self.register(item.descriptor, item.handler)

    def mount(self, module: Module) -> CoreBuilder:
        """Register every descriptor of a module (handlers are registered separately)."""
        try:
            register = module.into_register()
        except RegisterValidationError as exc:
            raise InvalidModule(module.name, str(exc)) from None
        for descriptor in register:
            self.register_operation(descriptor)
        return self

    def _check_descriptor(self, descriptor: OperationDescriptor) -> None:
        if not isinstance(descriptor, OperationDescriptor):
            raise TypeError(f"expected an OperationDescriptor, not {type(descriptor).__name__}")
        try:
            descriptor.validate()
        except DescriptorValidationError as exc:
            raise InvalidOperation(str(descriptor.name), str(exc)) from None
        if descriptor.name in self._descriptors:
            raise DuplicateOperation(descriptor.name)

    # -- configuration ---------------------------------------------------------------------

    def admission_guard(self, guard: AdmissionGuard) -> CoreBuilder:
        """Set the one pre-handler guard (replacing any earlier one)."""
        self._guard = guard
        return self

    def clear_admission_guard(self) -> CoreBuilder:
        self._guard = None
        return self

    def receipt_sink(self, sink: ReceiptSink) -> CoreBuilder:
        self._receipt_sink = sink
        return self

    def without_receipts(self) -> CoreBuilder:
        """Build a Core that records no receipts, on purpose (a set sink still wins)."""
        self._receipts_opted_out = True
        return self

    def status_sink(self, sink: StatusSink) -> CoreBuilder:
        self._status_sink = sink
        return self

    def clear_status_sink(self) -> CoreBuilder:
        self._status_sink = None
        return self

    def receipt_hash_policy(self, policy: ReceiptHashPolicy) -> CoreBuilder:
        self._hash_policy = policy
        return self

    def effect_backend(self, backend: EffectBackend) -> CoreBuilder:
        """Set the backend that ``Ctx`` handles perform effects through."""
        self._backend = backend
        return self

    def grant_capability(self, capability: str) -> CoreBuilder:
        """Grant one capability token; ambient effect tokens never need a grant."""
        self._grants.add(capability)
        return self

    def grant_capabilities(self, capabilities: Iterable[str]) -> CoreBuilder:
        self._grants.update(capabilities)
        return self

    def build(self) -> Core:
        """A Core; raises a :class:`BuildError` on a descriptor/handler mismatch or when no
        receipt sink is set without ``without_receipts()``."""
        for name in sorted(self._descriptors):
            if name not in self._handlers:
                raise DescriptorWithoutHandler(name)
        for name in sorted(self._handlers):
            if name not in self._descriptors:
                raise HandlerWithoutDescriptor(name)
        if self._receipt_sink is None and not self._receipts_opted_out:
            raise MissingReceiptSink()
        return Core(self)


def _check_callable(name: str, handler: object) -> None:
    if not callable(handler):
        raise InvalidHandler(name, "a handler must be callable as handler(input, ctx)")


class Core:
    """A built runtime: dispatches synchronously on the caller's thread.

    A Core is not thread-safe (the reference's dispatch takes ``&mut self``): use one per
    thread or connection (see :class:`CoreFactory`), or serialize calls.
    """

    def __init__(self, builder: CoreBuilder) -> None:
        self._descriptors = dict(builder._descriptors)
        self._handlers = dict(builder._handlers)
        self._guard = builder._guard
        self._receipt_sink = builder._receipt_sink
        self._status_sink = builder._status_sink
        self._hash_policy = builder._hash_policy
        self._backend = builder._backend
        self._grants = frozenset(builder._grants)

    @staticmethod
    def builder() -> CoreBuilder:
        return CoreBuilder()

    def contains_operation(self, name: str) -> bool:
        return name in self._descriptors

    def descriptor(self, name: str) -> OperationDescriptor | None:
        return self._descriptors.get(name)

    def operation_names(self) -> list[str]:
        return sorted(self._descriptors)

    def invoke(self, name: str, input: bytes) -> CheckoutResult:
        """Dispatch ``input`` to the operation ``name`` (see the module docstring)."""
        return self.checkout_frame(CheckoutFrame(name, _as_bytes(input)))

    def checkout_frame(self, frame: CheckoutFrame) -> CheckoutResult:
        descriptor = self._descriptors.get(frame.name)
        if descriptor is None:
            raise UnknownOperation(frame.name)
        return self.checkout(Checkout(descriptor, frame.input))

    def checkout(self, checkout: Checkout) -> CheckoutResult:
        """Run a resolved checkout; the Core's own descriptor for the name is used."""
        descriptor = self._descriptors.get(checkout.descriptor.name)
        if descriptor is None:
            raise UnknownOperation(checkout.descriptor.name)
        name, data = descriptor.name, _as_bytes(checkout.input)

        missing = next(
            (
                token
                for token in descriptor.effect_row.requires_capabilities
                if token not in AMBIENT_CAPABILITIES and token not in self._grants
            ),
            None,
        )
        if missing is not None:
            message = f"operation requires ungranted capability {rust_debug_str(missing)}"
            self._deny(descriptor, data, CAPABILITY_DENIED, message, ReceiptMetadata())

        ctx = Ctx(descriptor, self._backend)
        if self._guard is not None:
            decision = self._guard(descriptor, data, ctx)
            if isinstance(decision, Deny):
                self._deny(descriptor, data, decision.code, decision.message, ctx.metadata)

        self._status(descriptor, OperationStatusLifecycle.STARTED, data)
        handler = self._handlers.get(name)
        if handler is None:
            self._status(
                descriptor,
                OperationStatusLifecycle.FAILED,
                data,
                code="missing_handler",
                message=MISSING_HANDLER_MESSAGE,
            )
            raise MissingHandler(name)

        output: bytes | None = None
        failure: tuple[str, str] | None = None
        raised: BaseException | None = None
        try:
            output = _handler_output(handler(data, ctx))
        except HandlerError as exc:
            failure, raised = (exc.code, exc.message), exc
        except EffectError as exc:
            failure, raised = ("failed", exc.message), exc
        except Exception as exc:
            failure, raised = ("failed", f"unexpected {type(exc).__name__}: {exc}"), exc

        violation = ctx.observed_effects.first_violation_against(descriptor.effect_row)
        if violation is not None:
            self._deny(descriptor, data, violation.code, violation.message, ctx.metadata)

        if failure is not None:
            code, message = failure
            self._status(
                descriptor,
                OperationStatusLifecycle.FAILED,
                data,
                code=code,
                message=message,
                cause=failure,
            )
            self._receipt(descriptor, data, None, Failed(code, message), ctx.metadata, failure)
            raise OperationFailed(name, code, message) from raised

        assert output is not None
        recorded = self._receipt(descriptor, data, output, COMPLETED, ctx.metadata, None)
        self._status(descriptor, OperationStatusLifecycle.COMPLETED, data, output)
        return CheckoutResult(descriptor, output, recorded)

    # -- recording -------------------------------------------------------------------------

    def _deny(
        self,
        descriptor: OperationDescriptor,
        data: bytes,
        code: str,
        message: str,
        metadata: ReceiptMetadata,
    ) -> None:
        self._status(descriptor, OperationStatusLifecycle.DENIED, data, code=code, message=message)
        self._receipt(descriptor, data, None, Denied(code, message), metadata, None)
        raise OperationDenied(descriptor.name, code, message)

    def _status(
        self,
        descriptor: OperationDescriptor,
        lifecycle: OperationStatusLifecycle,
        data: bytes,
        output: bytes | None = None,
        *,
        code: str | None = None,
        message: str | None = None,
        cause: tuple[str, str] | None = None,
    ) -> None:
        sink = self._status_sink
        if sink is None:
            return
        if lifecycle is OperationStatusLifecycle.STARTED:
            fact = OperationStatusFact(
                operation=descriptor.name, lifecycle=lifecycle, receipt_kind=descriptor.receipt_kind
            )
        else:
            fact = OperationStatusFact(
                operation=descriptor.name,
                lifecycle=lifecycle,
                receipt_kind=descriptor.receipt_kind,
                code=code,
                message=message,
                input_hash=self._hash_policy.hash(data),
                output_hash=None if output is None else self._hash_policy.hash(output),
            )
        try:
            sink.record_fact(fact)
        except Exception as exc:
            raise StatusSinkFailed(descriptor.name, str(exc), cause) from exc

    def _receipt(
        self,
        descriptor: OperationDescriptor,
        data: bytes,
        output: bytes | None,
        outcome: ReceiptOutcome,
        metadata: ReceiptMetadata,
        cause: tuple[str, str] | None,
    ) -> RecordedReceipt | None:
        sink = self._receipt_sink
        if sink is None:
            return None
        envelope = ReceiptEnvelope(
            descriptor_name=descriptor.name,
            receipt_kind=descriptor.receipt_kind,
            input_hash=self._hash_policy.hash(data),
            output_hash=None if output is None else self._hash_policy.hash(output),
            outcome=outcome,
            signed_extensions=dict(metadata.signed),
            local_extensions=dict(metadata.local),
        )
        try:
            return sink.record_receipt(envelope)
        except Exception as exc:
            raise ReceiptSinkFailed(descriptor.name, str(exc), cause) from exc


def _as_bytes(data: object) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"operation input must be bytes, not {type(data).__name__}")


def _handler_output(output: object) -> bytes:
    if isinstance(output, bytes | bytearray | memoryview):
        return bytes(output)
    raise _NotBytes(type(output).__name__)


class _NotBytes(HandlerError):
    # A handler returned something other than bytes: recorded as class ``failed``.

    code = "failed"

    def __init__(self, type_name: str) -> None:
        super().__init__(f"handler returned {type_name}, not bytes")
