"""Coordinate (who and where an event is about) and Region (which events a read selects)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from batpak.errors import InvalidCoordinate
from batpak.kinds import EventKind

MAX_PART_BYTES = 1024
_FORBIDDEN_BYTES = re.compile(r"[\x00-\x1f\x7f]")


def _check_part(name: str, value: str) -> None:
    if not isinstance(value, str):
        raise InvalidCoordinate(f"{name} must be a str, not {type(value).__name__}")
    if not value:
        raise InvalidCoordinate(f"{name} must not be empty")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidCoordinate(f"{name} is not valid UTF-8 text") from exc
    if size > MAX_PART_BYTES:
        raise InvalidCoordinate(f"{name} is longer than {MAX_PART_BYTES} bytes")
    if _FORBIDDEN_BYTES.search(value):
        raise InvalidCoordinate(f"{name} contains a control character")
    if "/" in value or ".." in value:
        raise InvalidCoordinate(f"{name} must not contain '/' or '..'")
    if "|" in value or "=" in value:
        raise InvalidCoordinate(f"{name} must not contain '|' or '='")


@dataclass(frozen=True, slots=True)
class Coordinate:
    """An event's entity (its stream and hash-chain anchor) and scope (its isolation domain)."""

    entity: str
    scope: str

    def __post_init__(self) -> None:
        # Rules and their order follow format.md §2: emptiness of both parts comes first.
        if isinstance(self.entity, str) and not self.entity:
            raise InvalidCoordinate("entity must not be empty")
        if isinstance(self.scope, str) and not self.scope:
            raise InvalidCoordinate("scope must not be empty")
        _check_part("entity", self.entity)
        _check_part("scope", self.scope)

    def __str__(self) -> str:
        return f"{self.entity}@{self.scope}"

    def to_wire(self) -> dict[str, str]:
        """The canonical map form (``CoordinateWire``) hashed into receipt covers."""
        return {"entity": self.entity, "scope": self.scope}


def entity_matches_prefix(entity: str, prefix: str) -> bool:
    """True when ``entity`` is ``prefix`` itself or a name under ``prefix:``."""
    return entity == prefix or (entity.startswith(prefix) and entity[len(prefix)] == ":")


@dataclass(frozen=True, slots=True)
class KindFilter:
    """Which kinds a region admits: one exact kind, one category, or any."""

    exact: int | None = None
    category: int | None = None

    def admits(self, kind: int) -> bool:
        if self.exact is not None:
            return kind == self.exact
        if self.category is not None:
            return kind >> 12 == self.category
        return True


ANY_KIND = KindFilter()


@dataclass(frozen=True, slots=True)
class Region:
    """A selection of events: by entity prefix or scope, narrowed by a kind filter.

    Build one with ``Region.all()``, ``Region.entity(prefix)`` or ``Region.scope(name)``, then
    narrow it with ``with_kind`` or ``with_category``.
    """

    entity_prefix: str | None = None
    scope_name: str | None = None
    kinds: KindFilter = ANY_KIND

    @classmethod
    def all(cls) -> Region:
        return cls()

    @classmethod
    def entity(cls, prefix: str) -> Region:
        return cls(entity_prefix=prefix)

    @classmethod
    def scope(cls, name: str) -> Region:
        return cls(scope_name=name)

    def with_kind(self, kind: EventKind | int) -> Region:
        return Region(self.entity_prefix, self.scope_name, KindFilter(exact=int(kind)))

    def with_category(self, category: int) -> Region:
        if not 0 <= category <= 0xF:
            raise ValueError(f"category {category} is outside 0..15")
        return Region(self.entity_prefix, self.scope_name, KindFilter(category=category))

    def matches(self, entity: str, scope: str, kind: int) -> bool:
        if self.scope_name is not None and scope != self.scope_name:
            return False
        if self.entity_prefix is not None and not entity_matches_prefix(entity, self.entity_prefix):
            return False
        return self.kinds.admits(kind)
