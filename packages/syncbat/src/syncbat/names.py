"""The operation-name grammar: the single validator every layer (netbat too) uses.

A name is non-empty, at most 128 bytes, made of ``[A-Za-z0-9._-]``, with no leading or
trailing ``.`` and no ``..``. Checks run in that order, and the first broken rule decides the
error. Schema refs, receipt kinds and effect targets use the same grammar with a 256-byte cap.
"""

from __future__ import annotations

from typing import Final

from syncbat.errors import (
    ConsecutiveDots,
    DescriptorValidationError,
    EmptyName,
    IllegalCharacter,
    LeadingOrTrailingDot,
    NameTooLong,
    OperationNameError,
)

__all__ = (
    "MAX_DESCRIPTOR_REF_BYTES",
    "MAX_OPERATION_NAME_BYTES",
    "OperationName",
    "check_grammar",
    "validate_ref",
)

MAX_OPERATION_NAME_BYTES: Final = 128
"""Largest operation name, in bytes."""
MAX_DESCRIPTOR_REF_BYTES: Final = 256
"""Largest schema ref, receipt kind or effect target, in bytes."""

_ALLOWED: Final = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")

# The stable DescriptorValidationError message for each broken rule.
_MESSAGES: Final[dict[type[OperationNameError], str]] = {
    EmptyName: "empty",
    NameTooLong: "too long",
    IllegalCharacter: "expected ASCII letters, digits, '.', '_' or '-'",
    LeadingOrTrailingDot: "dot-separated tokens must be non-empty",
    ConsecutiveDots: "dot-separated tokens must be non-empty",
}


def check_grammar(value: str, max_bytes: int = MAX_OPERATION_NAME_BYTES) -> None:
    """Raise the :class:`OperationNameError` subclass for the first rule ``value`` breaks."""
    if not isinstance(value, str):
        raise TypeError(f"a name must be a str, not {type(value).__name__}")
    data = value.encode("utf-8", "surrogatepass")
    if not data:
        raise EmptyName()
    if len(data) > max_bytes:
        raise NameTooLong(len(data), max_bytes)
    for byte in data:
        if byte not in _ALLOWED:
            raise IllegalCharacter(byte)
    if value.startswith(".") or value.endswith("."):
        raise LeadingOrTrailingDot()
    if ".." in value:
        raise ConsecutiveDots()


def grammar_message(error: OperationNameError) -> str:
    """The stable descriptor-validation message for a grammar error."""
    return _MESSAGES[type(error)]


def validate_ref(field: str, value: str, reported: str | None = None) -> None:
    """Check a schema ref, receipt kind or effect target (256-byte grammar).

    Raises :class:`DescriptorValidationError` with ``field`` and ``reported`` (default
    ``value``) as the value.
    """
    try:
        check_grammar(value, MAX_DESCRIPTOR_REF_BYTES)
    except OperationNameError as exc:
        shown = value if reported is None else reported
        raise DescriptorValidationError(field, shown, grammar_message(exc)) from None


class OperationName(str):
    """A validated operation name; constructing one checks the grammar once."""

    __slots__ = ()

    MAX_BYTES: Final = MAX_OPERATION_NAME_BYTES

    def __new__(cls, value: str) -> OperationName:
        check_grammar(value, MAX_OPERATION_NAME_BYTES)
        return super().__new__(cls, value)

    def __repr__(self) -> str:
        return f"OperationName({str.__repr__(self)})"
