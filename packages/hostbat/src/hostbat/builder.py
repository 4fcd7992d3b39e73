"""The host builder: mount sealed modules, check them against each other, then lower the whole
set into one syncbat ``CoreBuilder``.

``mount`` re-verifies each manifest hash and rejects cross-module collisions. ``build`` seals
the contract (``H_host``, the composition, ``H_interface``) and lowers every operation, wrapped
in a :class:`SchemaValidatingHandler`, into a single runtime; it never re-implements dispatch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from hostbat.backends import HostControlEffectBackend, HostController, ValidatingEffectBackend
from hostbat.composition import CompositionSchemaBuilder, HostCompositionManifest
from hostbat.descriptor import HookPhase
from hostbat.errors import (
    DuplicateEventPayloadBinding,
    DuplicateJobKind,
    DuplicateModuleId,
    DuplicateOperation,
    DuplicateReceiptNamespace,
    DuplicateSubscriptionId,
    EffectConflict,
    EmptyHost,
    EventPayloadBindingConflict,
    EventPayloadBindingSchemaMissing,
    HostBuildFailed,
    ModuleCoherence,
    ModuleHashMismatch,
    SchemaValidation,
    SubscriptionPayloadSchemaMissing,
)
from hostbat.host import Host, HostContract, HostHook
from hostbat.identity import HostFingerprint, canonical_digest
from hostbat.interface import compute_interface_fingerprint
from hostbat.manifest import HostModuleManifest
from hostbat.module import HostModule, JobBody
from hostbat.schema import SchemaRegistry, SchemaRole
from hostbat.supervisor import Spawn, Supervisor
from syncbat.admission import ADMIT, AdmissionDecision, AdmissionGuard
from syncbat.core import CoreBuilder
from syncbat.ctx import Ctx
from syncbat.effects import EffectBackend
from syncbat.errors import BuildError
from syncbat.handler import Handler, HandlerFailed, InvalidInput
from syncbat.operation import OperationDescriptor, OperationEffectRow
from syncbat.receipt import ReceiptSink
from syncbat.status import StatusSink

HOST_FINGERPRINT_DOMAIN: Final = "hostbat.host.v1"


def host_view(manifests: Iterable[HostModuleManifest]) -> dict[str, object]:
    """The exact ``H_host`` input: modules sorted by id, so mount order does not matter."""
    entries = sorted(((m.id, m.digest) for m in manifests), key=lambda e: e[0])
    return {
        "domain": HOST_FINGERPRINT_DOMAIN,
        "modules": [{"module_id": i, "module_digest": d.wire()} for i, d in entries],
    }


def compute_host_fingerprint(manifests: Iterable[HostModuleManifest]) -> HostFingerprint:
    """``H_host`` over a set of sealed module manifests."""
    return HostFingerprint(canonical_digest(host_view(manifests)))


class SchemaValidatingHandler:
    """Checks input before and output after the inner handler against the registry.

    Bad input raises ``InvalidInput`` (class ``invalid_input``); bad output raises
    ``HandlerFailed`` (class ``failed``) and the output is dropped.
    """

    __slots__ = ("_inner", "_input_ref", "_operation", "_output_ref", "_registry")

    def __init__(
        self, descriptor: OperationDescriptor, registry: SchemaRegistry, inner: Handler
    ) -> None:
        self._operation = descriptor.name
        self._input_ref = descriptor.input_schema_ref
        self._output_ref = descriptor.output_schema_ref
        self._registry = registry
        self._inner = inner

    def __call__(self, input: bytes, ctx: Ctx, /) -> bytes:
        try:
            self._registry.validate(self._input_ref, SchemaRole.OPERATION_INPUT, input)
        except SchemaValidation as exc:
            raise InvalidInput(
                f"operation {self._operation} input schema validation failed: {exc}"
            ) from exc
        output = self._inner(input, ctx)
        try:
            self._registry.validate(self._output_ref, SchemaRole.OPERATION_OUTPUT, output)
        except SchemaValidation as exc:
            raise HandlerFailed(
                f"operation {self._operation} output schema validation failed: {exc}"
            ) from exc
        return output


class HostBuilder:
    """Mounts modules and lowers them into a runnable :class:`~hostbat.host.Host`.

    Keyword configuration: ``spawn`` (the supervisor seam, ``ThreadSpawn`` by default),
    ``receipt_sink`` (``without_receipts`` when absent), ``status_sink``, ``effect_backend``
    (wrapped in a ``ValidatingEffectBackend``), ``host_control`` (a ``HostController``) and
    ``grant_capabilities``.
    """

    def __init__(
        self,
        *,
        spawn: Spawn | None = None,
        receipt_sink: ReceiptSink | None = None,
        status_sink: StatusSink | None = None,
        effect_backend: EffectBackend | None = None,
        host_control: HostController | None = None,
        grant_capabilities: Iterable[str] = (),
    ) -> None:
        self._modules: list[HostModule] = []
        self._operation_rows: dict[str, OperationEffectRow] = {}
        self._namespaces: dict[str, str] = {}
        self._job_owners: dict[str, str] = {}
        self._subscription_owners: dict[str, str] = {}
        self._bindings: dict[int, tuple[str, str]] = {}
        self._schemas = CompositionSchemaBuilder()
        self._spawn = spawn
        self._receipt_sink = receipt_sink
        self._status_sink = status_sink
        self._effect_backend = effect_backend
        self._host_control = host_control
        self._grants = tuple(grant_capabilities)

    def mount(self, module: HostModule) -> HostBuilder:
        """Verify the module hash, reject cross-module collisions, add its schemas.

        Checks run before anything is recorded, so a rejected mount leaves the builder as
        it was.
        """
        manifest = module.manifest
        if not manifest.verify_hash():
            raise ModuleHashMismatch(manifest.id)
        mid = manifest.id
        if any(m.id == mid for m in self._modules):
            raise DuplicateModuleId(mid)
        for d in manifest.operations:
            existing = self._operation_rows.get(d.name)
            if d.name in self._operation_rows:
                if existing != d.effect_row:
                    raise EffectConflict(d.name, mid)
                raise DuplicateOperation(d.name, mid)
        for ns in manifest.receipt_namespaces:
            if ns in self._namespaces:
                raise DuplicateReceiptNamespace(ns, mid)
        for j in manifest.jobs:
            if j.kind in self._job_owners:
                raise DuplicateJobKind(j.kind, mid)
        for s in manifest.subscriptions:
            if s.id in self._subscription_owners:
                raise DuplicateSubscriptionId(s.id, mid)
        for b in manifest.event_payload_bindings:
            first = self._bindings.get(b.kind)
            if first is not None:
                first_module, first_ref = first
                if first_ref == b.payload_schema_ref:
                    raise DuplicateEventPayloadBinding(b.kind, mid)
                raise EventPayloadBindingConflict(
                    b.kind, first_module, first_ref, mid, b.payload_schema_ref
                )
        for schema in manifest.schemas:
            self._schemas.check(mid, schema)

        for d in manifest.operations:
            self._operation_rows[d.name] = d.effect_row
        self._namespaces.update((ns, mid) for ns in manifest.receipt_namespaces)
        self._job_owners.update((j.kind, mid) for j in manifest.jobs)
        self._subscription_owners.update((s.id, mid) for s in manifest.subscriptions)
        self._bindings.update(
            (b.kind, (mid, b.payload_schema_ref)) for b in manifest.event_payload_bindings
        )
        for schema in manifest.schemas:
            self._schemas.add(mid, schema)
        self._modules.append(module)
        return self

    def contract(self) -> HostContract:
        """Seal ``H_host``, the composition and ``H_interface`` (build step 1) without lowering."""
        if not self._modules:
            raise EmptyHost()
        manifests = tuple(m.manifest for m in self._modules)
        fingerprint = compute_host_fingerprint(manifests)
        composition = self._schemas.seal()
        _check_subscription_refs(manifests, composition)
        _check_binding_refs(manifests, composition)
        interface = compute_interface_fingerprint(manifests, composition)
        return HostContract(fingerprint, composition, interface, manifests)

    def build(self) -> Host:
        """Seal the contract, then lower every module into one syncbat ``CoreBuilder``."""
        contract = self.contract()
        registry = SchemaRegistry(e.descriptor for e in contract.composition.schemas)
        core_builder = CoreBuilder()
        guard = CompositeGuard()
        startup: list[HostHook] = []
        shutdown: list[HostHook] = []
        jobs: dict[str, JobBody] = {}
        bindings: dict[int, str] = {}
        for module in self._modules:
            manifest = module.manifest
            handlers = module.handlers
            for d in manifest.operations:
                handler = handlers.get(d.name)
                if handler is None:
                    raise ModuleCoherence(manifest.id, f"operation {d.name!r} has no handler")
                wrapped = SchemaValidatingHandler(d, registry, handler)
                try:
                    core_builder.register(d, wrapped)
                except BuildError as exc:
                    raise HostBuildFailed(str(exc)) from exc
            if module.guard is not None:
                guard.add([d.name for d in manifest.operations], module.guard)
            for hook in module.hooks:
                entry = HostHook(manifest.id, hook.descriptor, hook.run)
                (startup if hook.descriptor.phase is HookPhase.STARTUP else shutdown).append(entry)
            jobs.update(module.jobs)
            bindings.update((b.kind, b.payload_schema_ref) for b in manifest.event_payload_bindings)

        if guard:
            core_builder.admission_guard(guard)
        if self._receipt_sink is not None:
            core_builder.receipt_sink(self._receipt_sink)
        else:
            # The core fails closed without a sink; a host built without one says so.
            core_builder.without_receipts()
        if self._status_sink is not None:
            core_builder.status_sink(self._status_sink)
        core_builder.grant_capabilities(self._grants)
        inner: EffectBackend | None = None
        if self._effect_backend is not None:
            inner = ValidatingEffectBackend(self._effect_backend, bindings, registry)
        if self._host_control is not None:
            core_builder.effect_backend(HostControlEffectBackend(inner, self._host_control))
        elif inner is not None:
            core_builder.effect_backend(inner)
        try:
            core = core_builder.build()
        except BuildError as exc:
            raise HostBuildFailed(str(exc)) from exc
        return Host(
            core=core,
            contract=contract,
            registry=registry,
            startup=sorted(startup, key=lambda h: h.order_key),
            shutdown=sorted(shutdown, key=lambda h: h.order_key),
            jobs=dict(sorted(jobs.items())),
            supervisor=Supervisor(self._spawn),
        )


class CompositeGuard:
    """Routes each operation to the guard of the module that declared it; others are admitted."""

    __slots__ = ("_guards", "_route")

    def __init__(self) -> None:
        self._route: dict[str, int] = {}
        self._guards: list[AdmissionGuard] = []

    def add(self, operations: Iterable[str], guard: AdmissionGuard) -> None:
        index = len(self._guards)
        self._guards.append(guard)
        self._route.update((name, index) for name in operations)

    def __bool__(self) -> bool:
        return bool(self._guards)

    def __call__(
        self, descriptor: OperationDescriptor, input: bytes, ctx: Ctx, /
    ) -> AdmissionDecision:
        index = self._route.get(descriptor.name)
        if index is None:
            return ADMIT
        return self._guards[index](descriptor, input, ctx)


def _check_subscription_refs(
    manifests: Sequence[HostModuleManifest], composition: HostCompositionManifest
) -> None:
    for m in manifests:
        for s in m.subscriptions:
            role = s.required_payload_role
            if len(composition.matching(s.payload_schema_ref, role)) != 1:
                raise SubscriptionPayloadSchemaMissing(m.id, s.id, s.payload_schema_ref, role.wire)


def _check_binding_refs(
    manifests: Sequence[HostModuleManifest], composition: HostCompositionManifest
) -> None:
    for m in manifests:
        for b in m.event_payload_bindings:
            matches = composition.matching(b.payload_schema_ref, SchemaRole.EVENT_PAYLOAD)
            if len(matches) != 1:
                raise EventPayloadBindingSchemaMissing(m.id, b.kind, b.payload_schema_ref)
