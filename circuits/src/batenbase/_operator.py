"""Operator state: tenants, plans, read-receipt switches and token records.

It lives in its own journal (``<data_dir>/operator/``) and is rebuilt from it on open. Changes
are dispatched by the service as host operations that append to this journal; once durable,
the service applies them here with :meth:`OperatorState.apply`. Tokens
are ``bbt_<token_id>_<secret>`` with a 256-bit secret; only the BLAKE3 digest of the whole token
is stored, and a presented token is checked with ``hmac.compare_digest``.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

import blake3
import msgspec

from batenbase import _journal
from batenbase._events import (
    OPERATOR_SCOPE,
    PlanSet,
    ReadReceiptsSet,
    TenantCreated,
    TokenIssued,
    TokenRevoked,
)
from batenbase.errors import NotFound, Unauthorized
from batenbase.model import Caller, IssuedToken, Plan, Role
from batpak import Region, Store

_TOKEN_PREFIX = "bbt_"


class TenantRecord(msgspec.Struct):
    name: str
    plan: Plan
    read_receipts: bool = False


class TokenRecord(msgspec.Struct):
    token_id: str
    tenant: str | None
    observer: str
    role: Role
    scopes: frozenset[int]
    digest: bytes
    revoked: bool = False


def _digest(token: str) -> bytes:
    return blake3.blake3(token.encode("utf-8")).digest()


class OperatorState:
    """The operator journal and its in-memory projection."""

    def __init__(self, path: Path, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.lock = threading.RLock()  # held across a dispatched change and its apply
        self.tenants: dict[str, TenantRecord] = {}
        self.tokens: dict[str, TokenRecord] = {}
        self._store = _journal.open_store(path, clock)
        self._replay()

    @property
    def store(self) -> Store:
        return self._store

    def close(self) -> None:
        self._store.close()

    def _replay(self) -> None:
        for stored in self._store.events(self._store.query(Region.scope(OPERATOR_SCOPE))):
            self._apply(stored.decode(_type_of(stored.event.header.event_kind)))

    def apply(self, event: msgspec.Struct) -> None:
        """Apply a durable operator event (the caller holds :attr:`lock`)."""
        self._apply(event)

    def _apply(self, event: msgspec.Struct) -> None:
        if isinstance(event, TenantCreated):
            self.tenants[event.name] = TenantRecord(event.name, _plan(event.plan))
        elif isinstance(event, PlanSet):
            self.tenants[event.name].plan = _plan(event.plan)
        elif isinstance(event, ReadReceiptsSet):
            self.tenants[event.name].read_receipts = event.enabled
        elif isinstance(event, TokenIssued):
            role: Role = (
                "admin"
                if event.role == "admin"
                else ("writer" if event.role == "writer" else "reader")
            )
            self.tokens[event.token_id] = TokenRecord(
                event.token_id,
                event.tenant,
                event.observer,
                role,
                frozenset(event.scopes),
                event.digest,
            )
        elif isinstance(event, TokenRevoked):
            self.tokens[event.token_id].revoked = True

    # -- reads ---------------------------------------------------------------------------

    def _tenant(self, name: str) -> TenantRecord:
        record = self.tenants.get(name)
        if record is None:
            raise NotFound(f"no tenant {name!r}")
        return record

    def tenant(self, name: str) -> TenantRecord:
        return self._tenant(name)

    def has_operator_token(self) -> bool:
        return any(t.tenant is None for t in self.tokens.values())

    def authenticate(self, bearer: str | None) -> Caller:
        if not isinstance(bearer, str) or not bearer.startswith(_TOKEN_PREFIX):
            raise Unauthorized("missing or malformed bearer token")
        token_id, _, _secret = bearer[len(_TOKEN_PREFIX) :].partition("_")
        record = self.tokens.get(token_id)
        presented = _digest(bearer) if bearer.isascii() else b""
        expected = record.digest if record is not None else bytes(32)
        if not hmac.compare_digest(presented, expected) or record is None or record.revoked:
            raise Unauthorized("unknown or revoked token")
        if record.tenant is None:
            return Caller("", record.observer, "admin", frozenset(), token_id, operator=True)
        return Caller(record.tenant, record.observer, record.role, record.scopes, token_id)


def new_token(
    tenant: str | None, observer: str, role: Role, scopes: list[int], t: float
) -> tuple[TokenIssued, IssuedToken]:
    """A fresh token and the event that records its digest (never the token itself)."""
    token_id = secrets.token_hex(8)
    token = f"{_TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    event = TokenIssued(token_id, tenant, observer, role, scopes, _digest(token), t)
    return event, IssuedToken(token, token_id, tenant, observer, role)


def _plan(value: str) -> Plan:
    return "unlimited" if value == "unlimited" else "free"


_TYPES: dict[int, type[msgspec.Struct]] = {
    0xB101: TenantCreated,
    0xB102: PlanSet,
    0xB103: TokenIssued,
    0xB104: TokenRevoked,
    0xB105: ReadReceiptsSet,
}


def _type_of(kind: int) -> type[msgspec.Struct]:
    return _TYPES[kind]
