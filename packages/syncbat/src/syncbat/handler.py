"""Handlers: ``(input: bytes, ctx: Ctx) -> bytes``, their errors, and ``@operation``.

A handler signals failure by raising :class:`InvalidInput` (class ``invalid_input``) or
:class:`HandlerFailed` (class ``failed``). The runtime records either as a Failed receipt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, ClassVar, Protocol

from syncbat.operation import EffectClass, OperationDescriptor, OperationEffectRow

if TYPE_CHECKING:
    from syncbat.ctx import Ctx

__all__ = (
    "Handler",
    "HandlerError",
    "HandlerFailed",
    "InvalidInput",
    "OperationItem",
    "operation",
)


class Handler(Protocol):
    """A synchronous byte handler: input bytes and the invocation context in, output out."""

    def __call__(self, input: bytes, ctx: Ctx, /) -> bytes: ...


class HandlerError(Exception):
    """Raised by a handler; ``code`` is its stable class, ``message`` its detail."""

    code: ClassVar[str] = "failed"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidInput(HandlerError):
    """The input bytes could not be decoded or validated."""

    code = "invalid_input"


class HandlerFailed(HandlerError):
    """The handler failed while executing the operation."""

    code = "failed"


class OperationItem:
    """A descriptor bound to its handler, made by ``@operation``; calling it calls the handler."""

    __slots__ = ("descriptor", "handler")

    def __init__(self, descriptor: OperationDescriptor, handler: Handler) -> None:
        self.descriptor = descriptor
        self.handler = handler

    def __call__(self, input: bytes, ctx: Ctx, /) -> bytes:
        return self.handler(input, ctx)

    def __repr__(self) -> str:
        return f"OperationItem({self.descriptor.name!r})"


def operation(
    name: str,
    effect: EffectClass | str,
    *,
    input_schema_ref: str,
    output_schema_ref: str,
    receipt_kind: str,
    title: str | None = None,
    reads_events: Iterable[str] = (),
    appends_events: Iterable[str] = (),
    queries_projections: Iterable[str] = (),
    emits_receipts: Iterable[str] = (),
    uses_host_controls: Iterable[str] = (),
    requires_capabilities: Iterable[str] = (),
) -> Callable[[Handler], OperationItem]:
    """Declare an operation: the decorated handler becomes an :class:`OperationItem`.

    The effect row is built with the row builders (so ambient capability tokens are added),
    and the descriptor is validated at decoration time (``DescriptorValidationError``).
    """
    row = OperationEffectRow()
    for target in reads_events:
        row = row.reads_event(target)
    for target in appends_events:
        row = row.appends_event(target)
    for target in queries_projections:
        row = row.queries_projection(target)
    for target in emits_receipts:
        row = row.emits_receipt(target)
    for target in uses_host_controls:
        row = row.uses_host_control(target)
    for token in requires_capabilities:
        row = row.requires_capability(token)
    descriptor = OperationDescriptor(
        name,
        EffectClass(effect),
        input_schema_ref,
        output_schema_ref,
        receipt_kind,
        title=title,
        effect_row=row,
    )
    descriptor.validate()

    def bind(handler: Handler) -> OperationItem:
        return OperationItem(descriptor, handler)

    return bind
