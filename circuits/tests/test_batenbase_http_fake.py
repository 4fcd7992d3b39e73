"""An in-memory BatenBase honouring the facade contract, for in-process HTTP tests."""

from __future__ import annotations

import functools
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

import uvicorn

from batenbase.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    PreconditionFailed,
    QuotaExceeded,
    TooLarge,
    Unauthorized,
)
from batenbase.model import (
    AuditEvent,
    Block,
    Caller,
    IssuedToken,
    Page,
    Plan,
    Proof,
    ReadReceipt,
    Role,
    TenantInfo,
)

F = TypeVar("F", bound=Callable[..., Any])


def _tenant_op(func: F) -> F:
    @functools.wraps(func)
    def wrapper(self: Any, caller: Caller, *args: Any, **kwargs: Any) -> Any:
        if caller.operator:
            raise Forbidden("operator tokens act on /admin, not on a tenant")
        return func(self, caller, *args, **kwargs)

    return cast(F, wrapper)


QUOTAS: dict[str, int | None] = {"free": 10_000, "unlimited": None}


class FakeBatenBase:
    """Dict-backed, single lock; quotas can be shrunk per test via `quotas`."""

    def __init__(self, quotas: dict[str, int | None] | None = None) -> None:
        self.quotas = dict(quotas or QUOTAS)
        self.lock = threading.Lock()
        self.tokens: dict[str, Caller] = {}
        self.plans: dict[str, Plan] = {}
        self.receipts_on: dict[str, bool] = {}
        self.revs: dict[tuple[str, str], list[Block]] = {}
        self.writers: dict[tuple[str, str], str] = {}
        self.events: dict[str, list[AuditEvent]] = {}
        self.receipts: dict[str, list[ReadReceipt]] = {}
        self.seq = 0
        self.bootstrapped = False
        self.closed = False

    # operator surface
    def close(self) -> None:
        self.closed = True

    def _issue(self, caller: Caller) -> IssuedToken:
        token = "bbt_" + secrets.token_hex(16)
        self.tokens[token] = caller
        tenant = None if caller.operator else caller.tenant
        return IssuedToken(token, caller.token_id, tenant, caller.observer, caller.role)

    def bootstrap_operator_token(self) -> IssuedToken | None:
        if self.bootstrapped:
            return None
        self.bootstrapped = True
        return self.issue_operator_token()

    def issue_operator_token(self) -> IssuedToken:
        tid = secrets.token_hex(4)
        return self._issue(Caller("", "operator", "admin", frozenset(), tid, operator=True))

    def create_tenant(self, name: str, plan: Plan = "free") -> TenantInfo:
        if not name.isidentifier():
            raise BadRequest("bad tenant name")
        if name in self.plans:
            raise PreconditionFailed("tenant exists")
        self.plans[name] = plan
        self.events[name] = []
        self.receipts[name] = []
        return self._info(name)

    def set_plan(self, tenant: str, plan: Plan) -> TenantInfo:
        if tenant not in self.plans:
            raise NotFound("no such tenant")
        self.plans[tenant] = plan
        return self._info(tenant)

    def issue_token(
        self, tenant: str, observer: str, role: Role, scopes: Iterable[int] = ()
    ) -> IssuedToken:
        if tenant not in self.plans:
            raise NotFound("no such tenant")
        tid = secrets.token_hex(4)
        return self._issue(Caller(tenant, observer, role, frozenset(scopes), tid))

    def revoke_token(self, token_id: str) -> None:
        for token, caller in list(self.tokens.items()):
            if caller.token_id == token_id:
                del self.tokens[token]
                return
        raise NotFound("no such token")

    def authenticate(self, bearer: str | None) -> Caller:
        caller = self.tokens.get(bearer or "")
        if caller is None:
            raise Unauthorized("missing or bad token")
        return caller

    # tenant surface
    def list_tenants(self) -> list[TenantInfo]:
        with self.lock:
            return [self._info(name) for name in self.plans]

    def host_contract(self) -> dict[str, Any]:
        return {"module": {"id": "fake", "version": 1, "digest": "00" * 32}, "operations": []}

    def _info(self, tenant: str) -> TenantInfo:
        usage = sum(1 for (t, _), r in self.revs.items() if t == tenant and r[-1].h == 0)
        plan = self.plans[tenant]
        return TenantInfo(
            tenant, plan, self.quotas[plan], usage, self.receipts_on.get(tenant, False)
        )

    def _visible(self, caller: Caller, block: Block, redacted: bool = False) -> bool:
        if block.h == 1:
            return redacted and caller.role == "admin"
        if caller.role == "admin" or block.v == 1:
            return True
        if block.v == 0:
            return self.writers.get((caller.tenant, block.key)) == caller.observer
        return block.v in caller.scopes

    def _log(self, tenant: str, observer: str, kind: str, details: Any) -> AuditEvent:
        self.seq += 1
        event = AuditEvent(self.seq, time.time(), kind, observer, details, f"{self.seq:064x}")
        self.events[tenant].append(event)
        return event

    def _current(self, caller: Caller, key: str) -> Block | None:
        revs = self.revs.get((caller.tenant, key))
        if revs and self._visible(caller, revs[-1]):
            return revs[-1]
        return None

    def _write(
        self, caller: Caller, key: str, data: Any, v: int, h: int, if_match: str | None
    ) -> Block:
        if caller.role == "reader":
            raise Forbidden("readers cannot write")
        if len(repr(data)) > 64_000:
            raise TooLarge("data too large")
        if not key or len(key) > 512:
            raise BadRequest("bad key")
        revs = self.revs.get((caller.tenant, key), [])
        cur = self._current(caller, key)
        if if_match is not None and (cur is None or if_match not in (str(cur.rev), cur.etag)):
            raise PreconditionFailed("If-Match does not hold")
        live = bool(revs) and revs[-1].h == 0
        info = self._info(caller.tenant)
        if h == 0 and not live and info.quota is not None and info.usage >= info.quota:
            raise QuotaExceeded("quota exceeded")
        now = int(time.time())
        self.seq += 1
        rev = len(revs) + 1
        f = revs[0].f if revs else now
        block = Block(key, f, now, v, h, data, rev, self.seq, f"{self.seq:064x}", f"{key}-{rev}")
        self.revs.setdefault((caller.tenant, key), []).append(block)
        self.writers.setdefault((caller.tenant, key), caller.observer)
        self._log(
            caller.tenant, caller.observer, "block.delete" if h else "block.put", {"key": key}
        )
        return block

    @_tenant_op
    def put_block(
        self,
        caller: Caller,
        key: str,
        data: Any,
        *,
        v: int | None = None,
        h: int | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
        idempotency_key: str | None = None,  # the fake does not deduplicate
    ) -> Block:
        with self.lock:
            if if_none_match and self._current(caller, key) is not None:
                raise PreconditionFailed("exists")
            return self._write(caller, key, data, 1 if v is None else v, h or 0, if_match)

    @_tenant_op
    def get_block(
        self,
        caller: Caller,
        key: str,
        *,
        rev: int | None = None,
        at: float | None = None,
        include_redacted: bool = False,
    ) -> Block:
        with self.lock:
            revs = self.revs.get((caller.tenant, key), [])
            if not revs or not self._visible(caller, revs[-1], include_redacted):
                raise NotFound("no such block")
            block = revs[-1]
            if rev is not None:
                if rev > len(revs):
                    raise NotFound("no such revision")
                block = revs[rev - 1]
            elif at is not None:
                older = [b for b in revs if b.l <= at]
                if not older:
                    raise NotFound("no revision at that time")
                block = older[-1]
            if self.receipts_on.get(caller.tenant):
                receipt = ReadReceipt(caller.observer, key, block.rev, time.time())
                self.receipts[caller.tenant].append(receipt)
            return block

    def get_block_nowait(
        self,
        caller: Caller,
        key: str,
        *,
        rev: int | None = None,
        at: float | None = None,
        include_redacted: bool = False,
    ) -> Block | None:
        return None  # this fake always answers from the worker thread

    @_tenant_op
    def list_blocks(
        self, caller: Caller, *, prefix: str = "", limit: int = 100, cursor: str | None = None
    ) -> Page[Block]:
        with self.lock:
            keys = sorted(
                k
                for (t, k), r in self.revs.items()
                if t == caller.tenant and k.startswith(prefix) and self._visible(caller, r[-1])
                if cursor is None or k > cursor
            )
            page = [self.revs[(caller.tenant, k)][-1] for k in keys[:limit]]
            nxt = keys[limit - 1] if len(keys) > limit else None
            return Page(page, nxt)

    @_tenant_op
    def delete_block(
        self,
        caller: Caller,
        key: str,
        *,
        if_match: str | None = None,
        idempotency_key: str | None = None,
    ) -> Block:
        with self.lock:
            cur = self._current(caller, key)
            if cur is None:
                raise NotFound("no such block")
            return self._write(caller, key, cur.data, cur.v, 1, if_match)

    @_tenant_op
    def history(
        self, caller: Caller, key: str, *, limit: int = 100, cursor: str | None = None
    ) -> Page[Block]:
        with self.lock:
            if self._current(caller, key) is None:
                raise NotFound("no such block")
            revs = list(reversed(self.revs[(caller.tenant, key)]))
            start = int(cursor) if cursor and cursor.isdigit() else 0
            items = revs[start : start + limit]
            nxt = str(start + limit) if start + limit < len(revs) else None
            return Page(items, nxt)

    @_tenant_op
    def proof(self, caller: Caller, key: str) -> Proof:
        with self.lock:
            cur = self._current(caller, key)
            if cur is None:
                raise NotFound("no such block")
            return Proof(key, cur.rev, [{"seq": cur.seq, "content_hash": cur.hash}])

    @_tenant_op
    def readers(self, caller: Caller, key: str, *, limit: int = 100) -> list[ReadReceipt]:
        with self.lock:
            if caller.role != "admin":
                raise Forbidden("admins only")
            if self._current(caller, key) is None:
                raise NotFound("no such block")
            return [r for r in self.receipts[caller.tenant] if r.key == key][-limit:]

    @_tenant_op
    def append_event(
        self, caller: Caller, kind: str, details: Any, *, idempotency_key: str | None = None
    ) -> AuditEvent:
        with self.lock:
            ok_chars = set("abcdefghijklmnopqrstuvwxyz0123456789._-")
            if not kind or len(kind) > 128 or not set(kind) <= ok_chars:
                raise BadRequest("bad kind", code="bad_kind")
            return self._log(caller.tenant, caller.observer, kind, details)

    @_tenant_op
    def scan_events(
        self,
        caller: Caller,
        *,
        since: str | None = None,
        until: float | None = None,
        kind: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[AuditEvent]:
        with self.lock:
            if since is not None and not since.rstrip("smhd").isdigit():
                raise BadRequest("bad since")
            items = [e for e in reversed(self.events[caller.tenant]) if kind in (None, e.kind)]
            return Page(items[:limit], None)

    @_tenant_op
    def tenant_info(self, caller: Caller) -> TenantInfo:
        with self.lock:
            if caller.tenant not in self.plans:
                raise NotFound("no such tenant")
            return self._info(caller.tenant)

    @_tenant_op
    def set_read_receipts(self, caller: Caller, enabled: bool) -> TenantInfo:
        with self.lock:
            if caller.role != "admin":
                raise Forbidden("admins only")
            if caller.tenant not in self.plans:
                raise NotFound("no such tenant")
            self.receipts_on[caller.tenant] = enabled
            return self._info(caller.tenant)

    def compact(self, tenant: str, *, keep_revisions: int = 1) -> dict[str, Any]:
        if tenant not in self.plans:
            raise NotFound("no such tenant")
        return {"tenant": tenant, "kept": keep_revisions}


class ThreadServer:
    """uvicorn serving an app on a free loopback port in a background thread."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
