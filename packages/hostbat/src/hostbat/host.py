"""The composed, runnable host.

A :class:`Host` is one syncbat ``Core`` (operations, composite guard, sinks, backend), the
sealed :class:`HostContract`, a deterministic startup/shutdown hook schedule and a
:class:`~hostbat.supervisor.Supervisor`. Dispatch is the Core's; the host owns only lifecycle
and identity. ``Host.invoke`` makes it a syncbat ``Dispatcher``.
"""

from __future__ import annotations

from dataclasses import dataclass

from hostbat.composition import HostCompositionManifest
from hostbat.descriptor import HookDescriptor
from hostbat.errors import (
    HookFailure,
    ShutdownHookFailed,
    SpawnFailed,
    StartupHookFailed,
    UnknownJobKind,
)
from hostbat.identity import HostFingerprint, InterfaceFingerprint
from hostbat.manifest import HostModuleManifest
from hostbat.module import JobBody, LifecycleHook
from hostbat.schema import SchemaRegistry
from hostbat.supervisor import JoinOutcome, Supervisor
from syncbat.core import CheckoutResult, Core


@dataclass(frozen=True, slots=True)
class HostContract:
    """The sealed identities of a composition, computed before anything is lowered."""

    fingerprint: HostFingerprint
    composition: HostCompositionManifest
    interface_fingerprint: InterfaceFingerprint
    manifests: tuple[HostModuleManifest, ...]

    @property
    def composition_digest(self) -> HostFingerprint:
        return self.composition.digest


@dataclass(frozen=True, slots=True)
class HostHook:
    """A lifecycle hook bound to its owning module."""

    module: str
    descriptor: HookDescriptor
    run: LifecycleHook

    @property
    def order_key(self) -> tuple[int, str, str]:
        """``(order, module, name)``: a total order across modules (module ids are unique)."""
        return (self.descriptor.order, self.module, self.descriptor.name)

    def call(self) -> HookFailure | None:
        try:
            self.run()
        except Exception as exc:
            return HookFailure(
                self.descriptor.phase.wire, self.module, self.descriptor.name, str(exc)
            )
        return None


class Host:
    """A composed module host over one syncbat Core."""

    def __init__(
        self,
        *,
        core: Core,
        contract: HostContract,
        registry: SchemaRegistry,
        startup: list[HostHook],
        shutdown: list[HostHook],
        jobs: dict[str, JobBody],
        supervisor: Supervisor,
    ) -> None:
        self._core = core
        self._contract = contract
        self._registry = registry
        self._startup = tuple(startup)
        self._shutdown = tuple(shutdown)
        self._jobs = jobs
        self._supervisor = supervisor
        self._started = False

    def fingerprint(self) -> HostFingerprint:
        """``H_host``."""
        return self._contract.fingerprint

    def interface_fingerprint(self) -> InterfaceFingerprint:
        """``H_interface``."""
        return self._contract.interface_fingerprint

    @property
    def contract(self) -> HostContract:
        return self._contract

    @property
    def composition(self) -> HostCompositionManifest:
        return self._contract.composition

    @property
    def schema_registry(self) -> SchemaRegistry:
        return self._registry

    @property
    def core(self) -> Core:
        return self._core

    @property
    def supervisor(self) -> Supervisor:
        return self._supervisor

    @property
    def is_started(self) -> bool:
        return self._started

    @property
    def startup_hooks(self) -> tuple[HostHook, ...]:
        return self._startup

    @property
    def shutdown_hooks(self) -> tuple[HostHook, ...]:
        return self._shutdown

    def start(self) -> None:
        """Run startup hooks by ``(order, module, name)``; the first failure aborts start."""
        for hook in self._startup:
            failure = hook.call()
            if failure is not None:
                raise StartupHookFailed(failure)
        self._started = True

    def invoke(self, name: str, input: bytes) -> CheckoutResult:
        """Dispatch through the composed Core (guard, schema checks, receipts)."""
        return self._core.invoke(name, input)

    def spawn_job(self, kind: str) -> None:
        """Spawn a fresh body from the job factory of ``kind`` under the supervisor."""
        factory = self._jobs.get(kind)
        if factory is None:
            raise UnknownJobKind(kind)
        body = factory()
        try:
            self._supervisor.spawn(kind, body)
        except Exception as exc:
            raise SpawnFailed(f"supervisor could not spawn job {kind!r}: {exc}") from exc

    def shutdown(self) -> list[JoinOutcome]:
        """Run every shutdown hook, join every job, then raise the first hook failure.

        Returns the join outcomes in spawn order; a job that raised is reported there.
        """
        first: HookFailure | None = None
        for hook in self._shutdown:
            failure = hook.call()
            if failure is not None and first is None:
                first = failure
        outcomes = self._supervisor.join_all()
        self._started = False
        if first is not None:
            raise ShutdownHookFailed(first)
        return outcomes
