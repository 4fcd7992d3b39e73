"""Typed payloads: msgspec Structs bound to an event kind and a payload version.

``@event_payload(category=C, type_id=T, version=N)`` binds a Struct to kind ``(C << 12) | T``
and registers it; ``@upcaster(Cls, from_version=N)`` registers a ``dict -> dict`` step that
lifts version N to N+1. Decoding dispatches on the stored ``payload_version`` (format.md §4):
0 and current decode as they are, older versions run the upcast chain in memory, newer ones
fail closed with ``PayloadFutureVersion``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from batpak import canonical
from batpak.errors import (
    DecodeFailure,
    EventPayloadRegistryError,
    KindMismatch,
    PayloadFutureVersion,
    UpcastMissing,
)
from batpak.kinds import EventKind

T = TypeVar("T")
S = TypeVar("S", bound=type[msgspec.Struct])
Upcast = Callable[[dict[str, Any]], dict[str, Any]]

_registry: dict[int, type[Any]] = {}
_upcasters: dict[tuple[int, int], Upcast] = {}
_lock = threading.Lock()


def event_payload(*, category: int, type_id: int, version: int = 1) -> Callable[[S], S]:
    """Bind a msgspec Struct to an event kind and version, and register it.

    Raises ``EventPayloadRegistryError`` when another type already claims the kind.
    """
    kind = EventKind.custom(category, type_id)
    if not 1 <= version <= 0xFFFF:
        raise EventPayloadRegistryError(f"payload version {version} must be in 1..65535")

    def bind(cls: S) -> S:
        if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)):
            raise EventPayloadRegistryError(f"{cls!r} is not a msgspec.Struct subclass")
        if cls.__struct_config__.array_like:
            raise EventPayloadRegistryError(f"{cls.__qualname__} must encode as a map")
        with _lock:
            held = _registry.get(kind)
            if held is not None and _qualified(held) != _qualified(cls):
                raise EventPayloadRegistryError(
                    f"kind {kind!r} is already bound to {_qualified(held)}; "
                    f"cannot bind {_qualified(cls)}"
                )
            _registry[kind] = cls
        cls.KIND = kind  # type: ignore[attr-defined]
        cls.PAYLOAD_VERSION = version  # type: ignore[attr-defined]
        return cls

    return bind


def upcaster(cls: type[Any], *, from_version: int) -> Callable[[Upcast], Upcast]:
    """Register ``fn(dict) -> dict`` lifting ``cls``'s stored version ``from_version`` by one."""
    kind, current = kind_of(cls), version_of(cls)
    if not 1 <= from_version < current:
        raise EventPayloadRegistryError(
            f"upcaster from version {from_version} is outside 1..{current - 1} "
            f"for {_qualified(cls)}"
        )

    def register(fn: Upcast) -> Upcast:
        with _lock:
            if (kind, from_version) in _upcasters:
                raise EventPayloadRegistryError(
                    f"{_qualified(cls)} already has an upcaster from version {from_version}"
                )
            _upcasters[(kind, from_version)] = fn
        return fn

    return register


def kind_of(cls: type[Any]) -> EventKind:
    """The kind bound to a payload type by ``@event_payload``."""
    kind = getattr(cls, "KIND", None)
    if not isinstance(kind, EventKind):
        raise EventPayloadRegistryError(f"{cls!r} is not decorated with @event_payload")
    return kind


def version_of(cls: type[Any]) -> int:
    kind_of(cls)
    version: int = cls.PAYLOAD_VERSION
    return version


def verify_registry() -> None:
    """Check every registered type has a complete upcast chain from version 1."""
    with _lock:
        items = list(_registry.items())
        ups = set(_upcasters)
    for kind, cls in items:
        missing = [v for v in range(1, version_of(cls)) if (kind, v) not in ups]
        if missing:
            raise EventPayloadRegistryError(
                f"{_qualified(cls)} (version {version_of(cls)}) has no upcaster from "
                f"version(s) {missing}"
            )


def registered(kind: int) -> type[Any] | None:
    return _registry.get(kind)


def encode_payload(value: msgspec.Struct) -> bytes:
    return canonical.encode(value)


def decode_payload(cls: type[T], kind: int, payload_version: int, data: bytes) -> T:
    """Decode stored payload bytes as ``cls``, upcasting older versions in memory."""
    expected = kind_of(cls)
    if kind != expected:
        raise KindMismatch(f"stored kind 0x{kind:04X} is not {expected!r} ({_qualified(cls)})")
    current = version_of(cls)
    if payload_version > current:
        raise PayloadFutureVersion(
            f"{_qualified(cls)} payload version {payload_version} is newer than {current}"
        )
    try:
        if payload_version in (0, current):
            return msgspec.msgpack.decode(data, type=cls)
        value = msgspec.msgpack.decode(data)
    except msgspec.DecodeError as exc:
        raise DecodeFailure(f"{_qualified(cls)}: {exc}") from exc
    for step in range(payload_version, current):
        fn = _upcasters.get((expected, step))
        if fn is None:
            raise UpcastMissing(f"{_qualified(cls)} has no upcaster from version {step}")
        if not isinstance(value, dict):
            raise DecodeFailure(f"{_qualified(cls)} v{step} payload is not a map")
        value = fn(value)
    try:
        return msgspec.convert(value, type=cls)
    except msgspec.ValidationError as exc:
        raise DecodeFailure(f"{_qualified(cls)}: {exc}") from exc


def _qualified(cls: type[Any]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
