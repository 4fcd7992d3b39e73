"""hostbat: a generic deterministic module host over syncbat.

Build modules with ``HostModule.builder(id, version)``: operations (descriptor + handler), at
most one guard, receipt namespaces, schemas, subscriptions, event-payload bindings, hooks and
jobs. Each module seals a content-identified manifest (``H_module``). ``HostBuilder().mount(m)``
checks modules against each other; ``build()`` seals ``H_host``, the composition digest and
``H_interface`` and lowers everything into one syncbat Core behind a :class:`Host`.
"""

import contextlib as _contextlib

from hostbat.backends import HostControlEffectBackend, HostController, ValidatingEffectBackend
from hostbat.binding import EventPayloadBinding
from hostbat.builder import CompositeGuard, HostBuilder, SchemaValidatingHandler
from hostbat.composition import CompositionSchema, HostCompositionManifest
from hostbat.descriptor import GuardDescriptor, HookDescriptor, HookPhase, JobDescriptor
from hostbat.errors import HookFailure, HostError, HostRuntimeError
from hostbat.host import Host, HostContract
from hostbat.identity import (
    CanonicalEncoding,
    Digest,
    HostFingerprint,
    InterfaceFingerprint,
    ModuleDigest,
)
from hostbat.manifest import HostModuleManifest
from hostbat.module import HostModule, HostModuleBuilder, JobBody, LifecycleHook
from hostbat.schema import GoldenVector, SchemaDescriptor, SchemaRegistry, SchemaRole
from hostbat.subscription import (
    BoundedQueue,
    EntityStreamSource,
    EventCategorySource,
    OperationStatusSource,
    ProjectionSource,
    ReceiptStreamSource,
    SubscriptionDelivery,
    SubscriptionDescriptor,
    SubscriptionSource,
)
from hostbat.supervisor import Spawn, Supervisor, ThreadSpawn

__version__ = "0.1.0"

__all__ = (
    "BoundedQueue",
    "CanonicalEncoding",
    "CompositeGuard",
    "CompositionSchema",
    "Digest",
    "EntityStreamSource",
    "EventCategorySource",
    "EventPayloadBinding",
    "GoldenVector",
    "GuardDescriptor",
    "HookDescriptor",
    "HookFailure",
    "HookPhase",
    "Host",
    "HostBuilder",
    "HostCompositionManifest",
    "HostContract",
    "HostControlEffectBackend",
    "HostController",
    "HostError",
    "HostFingerprint",
    "HostModule",
    "HostModuleBuilder",
    "HostModuleManifest",
    "HostRuntimeError",
    "InterfaceFingerprint",
    "JobBody",
    "JobDescriptor",
    "LifecycleHook",
    "ModuleDigest",
    "OperationStatusSource",
    "ProjectionSource",
    "ReceiptStreamSource",
    "SchemaDescriptor",
    "SchemaRegistry",
    "SchemaRole",
    "SchemaValidatingHandler",
    "Spawn",
    "SubscriptionDelivery",
    "SubscriptionDescriptor",
    "SubscriptionSource",
    "Supervisor",
    "ThreadSpawn",
    "ValidatingEffectBackend",
)

for _name in __all__:
    with _contextlib.suppress(AttributeError, TypeError):
        globals()[_name].__module__ = "hostbat"
