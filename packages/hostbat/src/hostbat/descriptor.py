"""Declarative descriptors of a module's guard, lifecycle hooks and supervised jobs."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class HookPhase(enum.IntEnum):
    """The lifecycle phase a hook runs in; startup sorts before shutdown."""

    STARTUP = 0
    SHUTDOWN = 1

    @property
    def wire(self) -> str:
        """The kebab-case spelling hashed into ``H_module``."""
        return "startup" if self is HookPhase.STARTUP else "shutdown"

    def __str__(self) -> str:
        return self.wire


@dataclass(frozen=True, slots=True)
class GuardDescriptor:
    """Attests that a module mounts an admission guard; ``code`` names the policy."""

    code: str

    def view(self) -> dict[str, object]:
        return {"code": self.code}


@dataclass(frozen=True, slots=True)
class HookDescriptor:
    """One lifecycle hook: its phase, stable name and module-local order."""

    phase: HookPhase
    name: str
    order: int

    @property
    def order_key(self) -> tuple[HookPhase, int, str]:
        return (self.phase, self.order, self.name)

    def view(self) -> dict[str, object]:
        return {"phase": self.phase.wire, "name": self.name, "order": self.order}


@dataclass(frozen=True, slots=True)
class JobDescriptor:
    """One supervised-job kind a module can spawn."""

    kind: str

    def view(self) -> dict[str, object]:
        return {"kind": self.kind}
