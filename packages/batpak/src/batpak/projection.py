"""Projections: state folded deterministically from an entity's typed events.

Subclass ``Projection``, give it plain attributes for its state, and mark methods with
``@handles(PayloadType)``. ``Store.project(MyProjection, entity)`` creates an instance and
applies the entity's events of the handled kinds in commit order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Self, TypeVar

import msgspec

from batpak.errors import ProjectionError
from batpak.payload import kind_of

P = TypeVar("P")
Handler = Callable[[Any, Any], None]
_HANDLES_ATTR = "__batpak_handles__"


def handles(
    payload_type: type[P],
) -> Callable[[Callable[[Any, P], None]], Callable[[Any, P], None]]:
    """Mark a projection method as the handler for one ``@event_payload`` type."""
    kind_of(payload_type)  # fail at class definition, not at first replay

    def mark(fn: Callable[[Any, P], None]) -> Callable[[Any, P], None]:
        setattr(fn, _HANDLES_ATTR, payload_type)
        return fn

    return mark


class Projection:
    """Base class for projections; the subclass's ``@handles`` methods define the fold.

    With a projection cache configured (``StoreConfig.with_projection_cache``), ``project``
    keeps the folded state per (projection, ``schema_version``, entity): bump
    ``schema_version`` whenever the fold or the state's shape changes, so state folded by the
    old code is never read back. ``supports_incremental_apply`` lets a cached state be carried
    forward over newer events instead of replaying them all. State is cached with
    :meth:`cache_state` / :meth:`from_cache` (the instance attributes as MessagePack by
    default; override both for state MessagePack cannot hold).
    """

    handlers: ClassVar[dict[int, tuple[type[Any], str]]] = {}
    schema_version: ClassVar[int] = 0
    supports_incremental_apply: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[int, tuple[type[Any], str]] = {}
        for klass in reversed(cls.__mro__):
            for name, member in vars(klass).items():
                payload_type = getattr(member, _HANDLES_ATTR, None)
                if payload_type is not None:
                    found[kind_of(payload_type)] = (payload_type, name)
        if not found:
            raise ProjectionError(f"{cls.__qualname__} has no @handles methods")
        cls.handlers = found

    @classmethod
    def relevant_kinds(cls) -> frozenset[int]:
        return frozenset(cls.handlers)

    def cache_state(self) -> bytes:
        """The state as bytes for the projection cache."""
        return msgspec.msgpack.encode(vars(self))

    @classmethod
    def from_cache(cls, data: bytes) -> Self:
        """A projection holding the state :meth:`cache_state` wrote."""
        state = cls.__new__(cls)
        vars(state).update(msgspec.msgpack.decode(data, type=dict[str, Any]))
        return state

    def apply(self, kind: int, payload: Any) -> None:
        """Apply one decoded payload of a handled kind."""
        _, name = self.handlers[kind]
        getattr(self, name)(payload)
