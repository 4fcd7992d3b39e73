"""Operation descriptors, effect classes and effect rows.

A descriptor names an operation, its effect class, its input/output schema refs and its
receipt kind, and may carry an :class:`OperationEffectRow`: the fine-grained effects the
operation is allowed to perform. ``validate()`` checks the name, the refs, every row target,
then the class/row rule:

========  ====================================================================
class     rule
========  ====================================================================
inspect   no append, emit or host-control
compute   the row must be empty
persist   at least one append; no emit or host-control
emit      ``emits_receipts`` contains the descriptor's own receipt kind; no append
          or host-control
control   at least one host-control
========  ====================================================================
"""

from __future__ import annotations

import enum
from typing import ClassVar, Final

import msgspec

from syncbat.errors import DescriptorValidationError, OperationNameError
from syncbat.names import check_grammar, grammar_message, validate_ref

__all__ = (
    "AMBIENT_CAPABILITIES",
    "EffectClass",
    "ObservedEffectViolation",
    "OperationDescriptor",
    "OperationEffectRow",
    "append_target",
)

EVENT_READ: Final = "event.read"
EVENT_APPEND: Final = "event.append"
PROJECTION_QUERY: Final = "projection.query"
RECEIPT_EMIT: Final = "receipt.emit"
HOST_CONTROL: Final = "host.control"

AMBIENT_CAPABILITIES: Final = frozenset(
    {EVENT_READ, EVENT_APPEND, PROJECTION_QUERY, RECEIPT_EMIT, HOST_CONTROL}
)
"""Capability tokens the effect builders add; they never need a grant."""

ROW_AXES: Final = (
    "reads_events",
    "appends_events",
    "queries_projections",
    "emits_receipts",
    "uses_host_controls",
    "requires_capabilities",
)
"""The six row fields, in wire and check order."""


class EffectClass(enum.StrEnum):
    """The coarse effect class of an operation; the values are the catalog spelling."""

    INSPECT = "inspect"
    COMPUTE = "compute"
    PERSIST = "persist"
    EMIT = "emit"
    CONTROL = "control"


def append_target(kind: int) -> str:
    """The append target the runtime records for an event kind: ``evt.%04x``."""
    if not isinstance(kind, int) or not 0 <= kind <= 0xFFFF:
        raise ValueError(f"event kind {kind!r} is not a u16")
    return f"evt.{int(kind):04x}"


def _insert(targets: tuple[str, ...], target: str) -> tuple[str, ...]:
    if not isinstance(target, str):
        raise TypeError(f"an effect target must be a str, not {type(target).__name__}")
    return targets if target in targets else tuple(sorted((*targets, target)))


class ObservedEffectViolation(msgspec.Struct, frozen=True):
    """An observed effect the declared row did not authorize."""

    field: str
    target: str

    code: ClassVar[str] = "effect.violation"

    @property
    def message(self) -> str:
        return f"observed undeclared {self.field} target {rust_debug_str(self.target)}"


class OperationEffectRow(msgspec.Struct, frozen=True):
    """Six target lists: declared on a descriptor, or observed through ``Ctx`` handles.

    The builder methods return copies with the target inserted in sorted, deduplicated
    order, and add the matching ambient capability token.
    """

    reads_events: tuple[str, ...] = ()
    appends_events: tuple[str, ...] = ()
    queries_projections: tuple[str, ...] = ()
    emits_receipts: tuple[str, ...] = ()
    uses_host_controls: tuple[str, ...] = ()
    requires_capabilities: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not any(getattr(self, axis) for axis in ROW_AXES)

    def _with(self, axis: str, target: str, ambient: str | None) -> OperationEffectRow:
        changes = {axis: _insert(getattr(self, axis), target)}
        if ambient is not None:
            changes["requires_capabilities"] = _insert(
                changes.get("requires_capabilities", self.requires_capabilities), ambient
            )
        return msgspec.structs.replace(self, **changes)

    def reads_event(self, event_category: str) -> OperationEffectRow:
        return self._with("reads_events", event_category, EVENT_READ)

    def appends_event(self, event_target: str) -> OperationEffectRow:
        """Declare an append target; use :func:`append_target` for a real kind."""
        return self._with("appends_events", event_target, EVENT_APPEND)

    def queries_projection(self, projection_id: str) -> OperationEffectRow:
        return self._with("queries_projections", projection_id, PROJECTION_QUERY)

    def emits_receipt(self, receipt_kind: str) -> OperationEffectRow:
        return self._with("emits_receipts", receipt_kind, RECEIPT_EMIT)

    def uses_host_control(self, control: str) -> OperationEffectRow:
        return self._with("uses_host_controls", control, HOST_CONTROL)

    def requires_capability(self, capability: str) -> OperationEffectRow:
        return self._with("requires_capabilities", capability, None)

    def first_violation_against(
        self, declared: OperationEffectRow
    ) -> ObservedEffectViolation | None:
        """The first target of this (observed) row missing from ``declared``, axes in order."""
        for axis in ROW_AXES:
            allowed = getattr(declared, axis)
            for target in getattr(self, axis):
                if target not in allowed:
                    return ObservedEffectViolation(axis, target)
        return None

    def validate_for(self, effect: EffectClass, receipt_kind: str) -> None:
        """Check every target, then the class/row rule; raise DescriptorValidationError."""
        for axis in ROW_AXES:
            for target in getattr(self, axis):
                validate_ref(axis, target)
        message = _class_rule_violation(self, effect, receipt_kind)
        if message is not None:
            raise DescriptorValidationError("effect_row", effect.value, message)


def _class_rule_violation(row: OperationEffectRow, effect: EffectClass, kind: str) -> str | None:
    appends, emits, controls = row.appends_events, row.emits_receipts, row.uses_host_controls
    if effect is EffectClass.INSPECT:
        if appends or emits or controls:
            return "inspect operations cannot declare append, receipt emit, or host control effects"
    elif effect is EffectClass.COMPUTE:
        if not row.is_empty():
            return "compute operations cannot declare runtime effects"
    elif effect is EffectClass.PERSIST:
        if not appends:
            return "persist operations must declare event appends"
        if emits or controls:
            return "persist operations cannot declare receipt emit or host control effects"
    elif effect is EffectClass.EMIT:
        if kind not in emits:
            return "emit operations must declare their receipt kind"
        if appends or controls:
            return "emit operations cannot declare event append or host control effects"
    elif not controls:
        return "control operations must declare host control use"
    return None


EMPTY_ROW: Final = OperationEffectRow()


class OperationDescriptor(msgspec.Struct, frozen=True):
    """Stable metadata of a byte-oriented operation.

    ``OperationDescriptor(name, effect, input_schema_ref, output_schema_ref, receipt_kind,
    title=None, effect_row=OperationEffectRow())``; ``with_title`` and ``with_effect_row``
    return copies. Registration calls ``validate()``.
    """

    name: str
    effect: EffectClass
    input_schema_ref: str
    output_schema_ref: str
    receipt_kind: str
    title: str | None = None
    effect_row: OperationEffectRow = EMPTY_ROW

    def with_title(self, title: str | None) -> OperationDescriptor:
        return msgspec.structs.replace(self, title=title)

    def with_effect_row(self, effect_row: OperationEffectRow) -> OperationDescriptor:
        return msgspec.structs.replace(self, effect_row=effect_row)

    def validate(self) -> None:
        """Check name, the three refs, every row target, then the class/row rule."""
        try:
            check_grammar(self.name)
        except OperationNameError as exc:
            raise DescriptorValidationError("name", self.name, grammar_message(exc)) from None
        except TypeError:
            raise DescriptorValidationError("name", repr(self.name), "expected a str") from None
        if not isinstance(self.effect, EffectClass):
            raise DescriptorValidationError("effect", repr(self.effect), "unknown effect class")
        for field in ("input_schema_ref", "output_schema_ref", "receipt_kind"):
            value = getattr(self, field)
            if not isinstance(value, str):
                raise DescriptorValidationError(field, repr(value), "expected a str")
            validate_ref(field, value, f"{self.name}:{value}")
        self.effect_row.validate_for(self.effect, self.receipt_kind)


def rust_debug_str(value: str) -> str:
    """``value`` quoted as Rust's ``{:?}`` renders a ``&str`` (messages match the reference)."""
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\0":
            out.append("\\0")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\u{{{ord(ch):x}}}")
    out.append('"')
    return "".join(out)
