"""The data types of the BatenBase facade (msgspec Structs, encodable as JSON as they are)."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

import msgspec

Role = Literal["admin", "writer", "reader"]
Plan = Literal["free", "unlimited"]
ROLES: tuple[Role, ...] = ("admin", "writer", "reader")
PLANS: tuple[Plan, ...] = ("free", "unlimited")

T = TypeVar("T")


class Caller(msgspec.Struct, frozen=True):
    """An authenticated token holder: its tenant, observer name, role and readable scopes."""

    tenant: str
    observer: str
    role: Role
    scopes: frozenset[int]
    token_id: str
    operator: bool = False


class Block(msgspec.Struct, frozen=True):
    """One revision of a key as the caller sees it, with its causal fields."""

    key: str
    f: int
    l: int  # noqa: E741 - the spec names the field
    v: int
    h: int
    data: Any
    rev: int
    seq: int
    hash: str
    etag: str


class Page(msgspec.Struct, Generic[T], frozen=True):
    """One page of results and the cursor of the next (None on the last page)."""

    items: list[T]
    next_cursor: str | None


class AuditEvent(msgspec.Struct, frozen=True):
    """One entry of a tenant's audit log (service events and caller events alike)."""

    seq: int
    time: float
    kind: str
    observer: str
    details: Any
    hash: str


class ReadReceipt(msgspec.Struct, frozen=True):
    """Who read which revision of a key, and when."""

    observer: str
    key: str
    rev: int
    time: float


class TenantInfo(msgspec.Struct, frozen=True):
    """A tenant's plan, quota (None = no cap), live-block usage and read-receipt switch."""

    name: str
    plan: Plan
    quota: int | None
    usage: int
    read_receipts: bool


class IssuedToken(msgspec.Struct, frozen=True):
    """A freshly issued token: ``token`` is shown once and stored only as a hash."""

    token: str
    token_id: str
    tenant: str | None
    observer: str
    role: Role


class Proof(msgspec.Struct, frozen=True):
    """A key's revision events with their chain links and payload bytes, for offline checks."""

    key: str
    rev: int
    events: list[dict[str, Any]]
