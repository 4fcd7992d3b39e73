"""Register: a validated, name-ordered map of descriptors; Module: a named descriptor set.

A register is the durable-facing catalog (it can be persisted with
:class:`~syncbat.register_store.StoreRegisterCatalog` and rebuilt from the store). Inserting
validates the descriptor and rejects a duplicate name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from syncbat.errors import (
    DescriptorValidationError,
    OperationNameError,
    RegisterValidationError,
)
from syncbat.names import check_grammar, grammar_message
from syncbat.operation import OperationDescriptor

__all__ = ("Module", "Register")


class Register:
    """Descriptors keyed by operation name, iterated in name order."""

    __slots__ = ("_operations",)

    def __init__(self, operations: Iterable[OperationDescriptor] = ()) -> None:
        self._operations: dict[str, OperationDescriptor] = {}
        for descriptor in operations:
            self.insert(descriptor)

    def insert(self, descriptor: OperationDescriptor) -> None:
        """Add a descriptor; raises :class:`RegisterValidationError` if invalid or duplicated."""
        try:
            descriptor.validate()
        except DescriptorValidationError as exc:
            raise RegisterValidationError(
                f"operation `{descriptor.name}` has invalid descriptor: {exc}"
            ) from exc
        if descriptor.name in self._operations:
            raise RegisterValidationError(f"duplicate operation name `{descriptor.name}`")
        self._operations[descriptor.name] = descriptor

    def get(self, name: str) -> OperationDescriptor | None:
        return self._operations.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._operations

    def __len__(self) -> int:
        return len(self._operations)

    def __iter__(self) -> Iterator[OperationDescriptor]:
        return (self._operations[name] for name in sorted(self._operations))

    def names(self) -> list[str]:
        return sorted(self._operations)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Register):
            return NotImplemented
        return self._operations == other._operations

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Register({self.names()!r})"


class Module:
    """A named set of descriptors that ``CoreBuilder.mount`` registers together."""

    __slots__ = ("descriptors", "name")

    def __init__(self, name: str, descriptors: Iterable[OperationDescriptor] = ()) -> None:
        self.name = name
        self.descriptors = tuple(descriptors)

    def into_register(self) -> Register:
        """Validate the module name (operation grammar) and build its register."""
        try:
            check_grammar(self.name)
        except OperationNameError as exc:
            raise RegisterValidationError(
                f"module name `{self.name}` is invalid: {grammar_message(exc)}"
            ) from None
        return Register(self.descriptors)
