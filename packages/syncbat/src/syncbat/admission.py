"""The admission guard: one optional pre-handler check per Core.

A guard sees the resolved descriptor, the input bytes and the invocation ``Ctx`` (it may
attach receipt metadata), and returns :data:`ADMIT` or a :class:`Deny`. A denial stops the
call before the Started status fact: the handler never runs, and the runtime records a Denied
status fact and a Denied receipt carrying the guard's metadata.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol, TypeAlias

import msgspec

from syncbat.operation import OperationDescriptor

if TYPE_CHECKING:
    from syncbat.ctx import Ctx

__all__ = ("ADMIT", "AdmissionDecision", "AdmissionGuard", "Admit", "Deny")


class Admit(msgspec.Struct, frozen=True):
    """Let the call through to the handler."""


class Deny(msgspec.Struct, frozen=True):
    """Refuse the call before the handler; ``code`` is the stable denial class."""

    code: str
    message: str


ADMIT: Final = Admit()
"""The one admit decision."""

AdmissionDecision: TypeAlias = Admit | Deny


class AdmissionGuard(Protocol):
    """``guard(descriptor, input, ctx) -> ADMIT | Deny(code, message)``."""

    def __call__(
        self, descriptor: OperationDescriptor, input: bytes, ctx: Ctx, /
    ) -> AdmissionDecision: ...
