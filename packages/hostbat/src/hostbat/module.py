"""Host modules: the registered parts plus the manifest sealed from exactly those parts.

:class:`HostModuleBuilder` collects ``(descriptor, handler)`` pairs, at most one guard, receipt
namespaces, schemas, subscriptions, event-payload bindings, hooks and jobs; :meth:`build` checks
the module is coherent and derives its :class:`~hostbat.manifest.HostModuleManifest`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from hostbat.binding import EventPayloadBinding
from hostbat.descriptor import GuardDescriptor, HookDescriptor, HookPhase, JobDescriptor
from hostbat.errors import (
    DuplicateEventPayloadBinding,
    DuplicateSubscriptionId,
    EventPayloadBindingConflict,
    ModuleCoherence,
    SchemaInvalid,
)
from hostbat.manifest import HostModuleManifest
from hostbat.schema import SchemaDescriptor, SchemaRole
from hostbat.subscription import SubscriptionDescriptor
from syncbat.admission import AdmissionGuard
from syncbat.errors import DescriptorValidationError
from syncbat.handler import Handler
from syncbat.operation import OperationDescriptor

MAX_MODULE_ID_BYTES: Final = 128
_MODULE_ID_BYTES: Final = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789._-")


class LifecycleHook(Protocol):
    """A startup or shutdown hook; raising any exception reports failure."""

    def __call__(self) -> None: ...


class JobBody(Protocol):
    """A supervised-job factory: each call returns one fresh body to spawn."""

    def __call__(self) -> Callable[[], None]: ...


def validate_module_id(module_id: str) -> str:
    """Return ``module_id`` if it is ``[a-z0-9._-]``, ≤128 bytes, no edge or doubled dot."""

    def reject(detail: str) -> ModuleCoherence:
        return ModuleCoherence(module_id, f"invalid module id: {detail}")

    if not module_id:
        raise reject("empty")
    raw = module_id.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_MODULE_ID_BYTES:
        raise reject(f"longer than {MAX_MODULE_ID_BYTES} bytes")
    if module_id.startswith(".") or module_id.endswith("."):
        raise reject("leading or trailing '.'")
    if ".." in module_id:
        raise reject("doubled '.'")
    if not all(b in _MODULE_ID_BYTES for b in raw):
        raise reject("characters outside [a-z0-9._-]")
    return module_id


@dataclass(frozen=True, slots=True)
class RegisteredHook:
    """A hook descriptor with the callable it attests."""

    descriptor: HookDescriptor
    run: LifecycleHook


class HostModule:
    """A built module: a sealed manifest plus the implementations it attests."""

    __slots__ = ("_guard", "_handlers", "_hooks", "_jobs", "_manifest")

    def __init__(
        self,
        manifest: HostModuleManifest,
        handlers: dict[str, Handler],
        guard: AdmissionGuard | None,
        hooks: tuple[RegisteredHook, ...],
        jobs: dict[str, JobBody],
    ) -> None:
        self._manifest = manifest
        self._handlers = handlers
        self._guard = guard
        self._hooks = hooks
        self._jobs = jobs

    @staticmethod
    def builder(module_id: str, version: int) -> HostModuleBuilder:
        return HostModuleBuilder(module_id, version)

    @property
    def manifest(self) -> HostModuleManifest:
        return self._manifest

    @property
    def id(self) -> str:
        return self._manifest.id

    @property
    def handlers(self) -> dict[str, Handler]:
        return dict(self._handlers)

    @property
    def guard(self) -> AdmissionGuard | None:
        return self._guard

    @property
    def hooks(self) -> tuple[RegisteredHook, ...]:
        """Hooks in ``(phase, order, name)`` order."""
        return self._hooks

    @property
    def jobs(self) -> dict[str, JobBody]:
        return dict(self._jobs)

    def __repr__(self) -> str:
        return f"HostModule({self._manifest!r})"


class HostModuleBuilder:
    """Validates one module part by part; :meth:`build` seals its manifest."""

    def __init__(self, module_id: str, version: int) -> None:
        if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version < 2**32:
            raise ModuleCoherence(module_id, f"module version {version!r} is not a u32")
        self._id = module_id
        self._version = version
        self._operations: dict[str, tuple[OperationDescriptor, Handler]] = {}
        self._receipt_namespaces: list[str] = []
        self._guard: tuple[GuardDescriptor, AdmissionGuard] | None = None
        self._hooks: list[RegisteredHook] = []
        self._jobs: dict[str, JobBody] = {}
        self._schemas: dict[tuple[str, int, SchemaRole], SchemaDescriptor] = {}
        self._subscriptions: dict[str, SubscriptionDescriptor] = {}
        self._bindings: dict[int, EventPayloadBinding] = {}

    def operation(self, descriptor: OperationDescriptor, handler: Handler) -> HostModuleBuilder:
        """Register a descriptor and its handler; reject an invalid or duplicate one."""
        try:
            descriptor.validate()
        except DescriptorValidationError as exc:
            raise ModuleCoherence(self._id, str(exc)) from exc
        name = descriptor.name
        if name in self._operations:
            raise ModuleCoherence(self._id, f"operation {name!r} is declared twice")
        self._operations[name] = (descriptor, handler)
        return self

    def guard(self, descriptor: GuardDescriptor, guard: AdmissionGuard) -> HostModuleBuilder:
        """Mount the module's single admission guard, attested by ``descriptor``."""
        if self._guard is not None:
            raise ModuleCoherence(self._id, "a module mounts at most one guard")
        self._guard = (descriptor, guard)
        return self

    def receipt_namespace(self, namespace: str) -> HostModuleBuilder:
        """Declare a receipt-extension namespace this module owns."""
        if namespace in self._receipt_namespaces:
            raise ModuleCoherence(self._id, f"receipt namespace {namespace!r} is declared twice")
        self._receipt_namespaces.append(namespace)
        return self

    def schema(self, descriptor: SchemaDescriptor) -> HostModuleBuilder:
        """Declare a wire schema; reject a second one with the same (id, version, role)."""
        key = descriptor.identity_key
        if key in self._schemas:
            raise SchemaInvalid(
                descriptor.id,
                f"schema {descriptor.id!r} {descriptor.version} ({descriptor.role.wire}) "
                f"is declared twice in module {self._id!r}",
            )
        self._schemas[key] = descriptor
        return self

    def subscription(self, descriptor: SubscriptionDescriptor) -> HostModuleBuilder:
        """Declare an exported subscription; reject a duplicate id."""
        if descriptor.id in self._subscriptions:
            raise DuplicateSubscriptionId(descriptor.id, self._id)
        self._subscriptions[descriptor.id] = descriptor
        return self

    def bind_event_payload(self, kind: int, payload_schema_ref: str) -> HostModuleBuilder:
        """Bind an event kind to an event-payload schema ref; reject empty refs and repeats."""
        binding = EventPayloadBinding(int(kind), payload_schema_ref)
        existing = self._bindings.get(binding.kind)
        if existing is not None:
            if existing.payload_schema_ref == payload_schema_ref:
                raise DuplicateEventPayloadBinding(binding.kind, self._id)
            raise EventPayloadBindingConflict(
                binding.kind, self._id, existing.payload_schema_ref, self._id, payload_schema_ref
            )
        self._bindings[binding.kind] = binding
        return self

    def hook(
        self, phase: HookPhase, name: str, order: int, hook: LifecycleHook
    ) -> HostModuleBuilder:
        """Register a lifecycle hook with a module-local order within its phase."""
        self._hooks.append(RegisteredHook(HookDescriptor(HookPhase(phase), name, order), hook))
        return self

    def job(self, kind: str, body: JobBody) -> HostModuleBuilder:
        """Register a supervised-job factory; reject a duplicate kind."""
        if kind in self._jobs:
            raise ModuleCoherence(self._id, f"supervised-job kind {kind!r} is declared twice")
        self._jobs[kind] = body
        return self

    def build(self) -> HostModule:
        """Check the module and seal its manifest from exactly the registered parts."""
        validate_module_id(self._id)
        if not (
            self._operations
            or self._hooks
            or self._jobs
            or self._guard
            or self._schemas
            or self._subscriptions
            or self._bindings
        ):
            raise ModuleCoherence(
                self._id,
                "module declares no operations, hooks, jobs, guard, schemas, "
                "subscriptions or event-payload bindings",
            )
        hooks = sorted(self._hooks, key=lambda h: h.descriptor.order_key)
        for a, b in itertools.pairwise(hooks):
            if (
                a.descriptor.phase == b.descriptor.phase
                and a.descriptor.order == b.descriptor.order
            ):
                raise ModuleCoherence(
                    self._id,
                    f"two {a.descriptor.phase.wire} hooks share order {a.descriptor.order} "
                    "(ambiguous ordering)",
                )
        guard_descriptor, guard_impl = self._guard if self._guard is not None else (None, None)
        manifest = HostModuleManifest(
            module_id=self._id,
            version=self._version,
            operations=[d for d, _ in self._operations.values()],
            receipt_namespaces=self._receipt_namespaces,
            guard=guard_descriptor,
            hooks=[h.descriptor for h in hooks],
            jobs=[JobDescriptor(k) for k in self._jobs],
            schemas=list(self._schemas.values()),
            subscriptions=list(self._subscriptions.values()),
            event_payload_bindings=list(self._bindings.values()),
        )
        return HostModule(
            manifest,
            {name: h for name, (_, h) in self._operations.items()},
            guard_impl,
            tuple(hooks),
            dict(sorted(self._jobs.items())),
        )
