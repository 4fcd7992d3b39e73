"""Typed host failures.

Composition time (``mount``/``build`` and the module builders)::

    HostError
    ├── DuplicateModuleId, DuplicateOperation, EffectConflict, DuplicateReceiptNamespace,
    │   DuplicateJobKind, DuplicateSubscriptionId, DuplicateEventPayloadBinding,
    │   EventPayloadBindingConflict                      (cross-module collisions)
    ├── ModuleHashMismatch                               (tampered manifest)
    ├── ModuleCoherence                                  (a module is internally incoherent)
    ├── SchemaInvalid, SchemaCollision, SchemaValidation,
    │   SchemaReferenceMissing, SchemaReferenceAmbiguous (schema identity and refs)
    ├── SubscriptionInvalidId, SubscriptionReservedCategory,
    │   SubscriptionInvalidProjectionId, SubscriptionPayloadSchemaMissing
    ├── EventPayloadBindingInvalid, EventPayloadBindingSchemaMissing
    ├── CanonicalEncodingFailed, EmptyHost
    └── HostBuildFailed                                  (the lowered syncbat build failed)

Run time (``start``/``shutdown``/``spawn_job``)::

    HostRuntimeError → StartupHookFailed, ShutdownHookFailed, UnknownJobKind, SpawnFailed
"""

from __future__ import annotations

from dataclasses import dataclass


class HostError(Exception):
    """Base of every composition-time refusal; the host fails closed on any of them."""


class DuplicateModuleId(HostError):
    """Raised when two mounted modules share a module id."""

    def __init__(self, module_id: str) -> None:
        super().__init__(f"module id {module_id!r} is already mounted")
        self.module_id = module_id


class DuplicateOperation(HostError):
    """Raised when a mounted module re-declares an operation name (same effect row)."""

    def __init__(self, operation: str, module: str) -> None:
        super().__init__(
            f"operation {operation!r} re-declared by module {module!r} is already mounted"
        )
        self.operation = operation
        self.module = module


class EffectConflict(HostError):
    """Raised when a mounted module re-declares an operation with a different effect row."""

    def __init__(self, operation: str, module: str) -> None:
        super().__init__(
            f"operation {operation!r} re-declared by module {module!r} with a different effect row"
        )
        self.operation = operation
        self.module = module


class DuplicateReceiptNamespace(HostError):
    """Raised when two mounted modules claim one receipt-extension namespace."""

    def __init__(self, namespace: str, module: str) -> None:
        super().__init__(
            f"receipt namespace {namespace!r} re-claimed by module {module!r} is already mounted"
        )
        self.namespace = namespace
        self.module = module


class DuplicateJobKind(HostError):
    """Raised when two mounted modules declare one supervised-job kind."""

    def __init__(self, kind: str, module: str) -> None:
        super().__init__(
            f"supervised-job kind {kind!r} re-declared by module {module!r} is already mounted"
        )
        self.kind = kind
        self.module = module


class DuplicateSubscriptionId(HostError):
    """Raised when a subscription id is declared twice, in one module or across modules."""

    def __init__(self, subscription_id: str, module: str) -> None:
        super().__init__(f"subscription {subscription_id!r} re-declared by module {module!r}")
        self.subscription_id = subscription_id
        self.module = module


class DuplicateEventPayloadBinding(HostError):
    """Raised when an event kind is bound twice to the same schema ref."""

    def __init__(self, kind: int, module: str) -> None:
        super().__init__(f"event kind 0x{kind:04x} is bound twice (module {module!r})")
        self.kind = kind
        self.module = module


class EventPayloadBindingConflict(HostError):
    """Raised when two modules bind one event kind to different schema refs."""

    def __init__(
        self,
        kind: int,
        first_module: str,
        first_schema_ref: str,
        second_module: str,
        second_schema_ref: str,
    ) -> None:
        super().__init__(
            f"event kind 0x{kind:04x} bound to {first_schema_ref!r} by {first_module!r} "
            f"and to {second_schema_ref!r} by {second_module!r}"
        )
        self.kind = kind
        self.first_module = first_module
        self.first_schema_ref = first_schema_ref
        self.second_module = second_module
        self.second_schema_ref = second_schema_ref


class EventPayloadBindingInvalid(HostError):
    """Raised when an event-payload binding is malformed (an empty schema ref)."""

    def __init__(self, kind: int, detail: str) -> None:
        super().__init__(f"event payload binding for kind 0x{kind:04x} is invalid: {detail}")
        self.kind = kind
        self.detail = detail


class EventPayloadBindingSchemaMissing(HostError):
    """Raised when a binding's ref resolves to no single event-payload schema."""

    def __init__(self, module: str, kind: int, reference: str) -> None:
        super().__init__(
            f"module {module!r} binds kind 0x{kind:04x} to {reference!r}, "
            "which is not exactly one event-payload schema"
        )
        self.module = module
        self.kind = kind
        self.reference = reference


class ModuleHashMismatch(HostError):
    """Raised at mount when a manifest's digest does not match its declared parts."""

    def __init__(self, module: str) -> None:
        super().__init__(f"module {module!r} manifest hash does not match its declared parts")
        self.module = module


class ModuleCoherence(HostError):
    """Raised when a module is internally incoherent (bad id, empty, duplicate part...)."""

    def __init__(self, module: str, detail: str) -> None:
        super().__init__(f"module {module!r} is incoherent: {detail}")
        self.module = module
        self.detail = detail


class CanonicalEncodingFailed(HostError):
    """Raised when a view has no canonical encoding (unreachable for the frozen shapes)."""


class SchemaInvalid(HostError):
    """Raised when a schema declaration is malformed (id grammar, duplicate case or key)."""

    def __init__(self, schema: str, detail: str) -> None:
        super().__init__(f"schema {schema!r} is invalid: {detail}")
        self.schema = schema
        self.detail = detail


class SchemaCollision(HostError):
    """Raised when one (id, version, role) is declared with two different encodings."""

    def __init__(
        self,
        schema: str,
        version: int,
        role: str,
        first_module: str,
        first_encoding: str,
        second_module: str,
        second_encoding: str,
    ) -> None:
        super().__init__(
            f"schema {schema!r} v{version} ({role}) declared with conflicting encodings: "
            f"module {first_module!r} => {first_encoding}, "
            f"module {second_module!r} => {second_encoding}"
        )
        self.schema = schema
        self.version = version
        self.role = role
        self.first_module = first_module
        self.first_encoding = first_encoding
        self.second_module = second_module
        self.second_encoding = second_encoding


class SchemaValidation(HostError):
    """Raised when bytes fail the runtime schema contract (unresolved ref, not msgpack)."""

    def __init__(self, schema: str, role: str, detail: str) -> None:
        super().__init__(f"schema {schema!r} ({role}) validation failed: {detail}")
        self.schema = schema
        self.role = role
        self.detail = detail


class SchemaReferenceMissing(HostError):
    """Raised when a ref matches no schema of the required role in the composition."""

    def __init__(self, module: str, operation: str | None, reference: str, role: str) -> None:
        where = f" operation {operation!r}" if operation is not None else ""
        super().__init__(f"module {module!r}{where} references missing {role} schema {reference!r}")
        self.module = module
        self.operation = operation
        self.reference = reference
        self.role = role


class SchemaReferenceAmbiguous(HostError):
    """Raised when a ref matches several versions of one (id, role)."""

    def __init__(
        self,
        module: str,
        operation: str | None,
        reference: str,
        role: str,
        versions: list[int],
    ) -> None:
        where = f" operation {operation!r}" if operation is not None else ""
        super().__init__(
            f"module {module!r}{where} references {role} schema {reference!r}, "
            f"ambiguous across versions {versions}"
        )
        self.module = module
        self.operation = operation
        self.reference = reference
        self.role = role
        self.versions = versions


class SubscriptionInvalidId(HostError):
    """Raised when a subscription id breaks the ``name.vN`` grammar."""

    def __init__(self, subscription_id: str, detail: str) -> None:
        super().__init__(f"subscription id {subscription_id!r} is invalid: {detail}")
        self.subscription_id = subscription_id
        self.detail = detail


class SubscriptionReservedCategory(HostError):
    """Raised when a subscription names category 0, 0xD or one outside 1..15."""

    def __init__(self, category: int) -> None:
        super().__init__(f"event category {category} is reserved or out of range")
        self.category = category


class SubscriptionInvalidProjectionId(HostError):
    """Raised when a projection id breaks the ``[a-z0-9._-]`` grammar or is too long."""

    def __init__(self, projection_id: str, detail: str) -> None:
        super().__init__(f"projection id {projection_id!r} is invalid: {detail}")
        self.projection_id = projection_id
        self.detail = detail


class SubscriptionPayloadSchemaMissing(HostError):
    """Raised when a subscription's payload ref is not exactly one schema of its role."""

    def __init__(self, module: str, subscription: str, reference: str, role: str) -> None:
        super().__init__(
            f"module {module!r} subscription {subscription!r} references {reference!r}, "
            f"which is not exactly one {role} schema"
        )
        self.module = module
        self.subscription = subscription
        self.reference = reference
        self.role = role


class EmptyHost(HostError):
    """Raised by ``build()`` when no module is mounted."""

    def __init__(self) -> None:
        super().__init__("cannot build a host with no mounted modules")


class HostBuildFailed(HostError):
    """Raised when lowering the modules into one syncbat runtime fails."""


@dataclass(frozen=True, slots=True)
class HookFailure:
    """A lifecycle hook that reported failure, stamped with its module and name."""

    phase: str
    module: str
    hook: str
    detail: str

    def __str__(self) -> str:
        return f"{self.phase} hook {self.hook!r} of module {self.module!r} failed: {self.detail}"


class HostRuntimeError(Exception):
    """Base of run-time failures: hooks, unknown job kinds and spawn errors."""


class StartupHookFailed(HostRuntimeError):
    """Raised by ``start()`` at the first failing startup hook; the host stays stopped."""

    def __init__(self, failure: HookFailure) -> None:
        super().__init__(f"host startup failed: {failure}")
        self.failure = failure


class ShutdownHookFailed(HostRuntimeError):
    """Raised by ``shutdown()`` with the first failing shutdown hook, after all ran."""

    def __init__(self, failure: HookFailure) -> None:
        super().__init__(f"host shutdown failed: {failure}")
        self.failure = failure


class UnknownJobKind(HostRuntimeError):
    """Raised by ``spawn_job()`` for a kind no mounted module declares."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"no mounted module declares supervised-job kind {kind!r}")
        self.kind = kind


class SpawnFailed(HostRuntimeError):
    """Raised when the supervisor's spawn backend could not start a job body."""
