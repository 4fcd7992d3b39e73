"""BatenBase: the facade the HTTP layer, the CLI and the tests call.

Layout of ``data_dir``: ``operator/`` is the operator journal (tenants, plans, token records);
``tenants/<name>/`` is each tenant's own journal; ``checkpoints/<name>.bbproj`` is a
projection checkpoint written at clean close (a hint, validated before use). Every mutation
is durable (fsynced) before it returns.

Rules this module enforces (beyond the spec's wording):

1. Visibility. h=1 hides a block from everyone, except an admin passing include_redacted.
   Otherwise v=0 shows it to the observer that wrote its *current* revision and to admins,
   v=1 to every observer of the tenant, v>=2 to observers whose token carries scope v, and to
   admins. A non-admin cannot write a block with a scope v>=2 it does not carry (403).
2. Invisible == missing. get, list, delete, history, proof, readers and if_match answer 404
   for an invisible block exactly as for a missing one.
3. Writes to an invisible key. A put whose key holds a block the caller may not see (by its v
   rule) answers 404, with or without conditions, and stores nothing. No field of the hidden
   block (data, f, l, rev, v, h, writer) ever reaches the caller. The one fact a unique key
   space cannot hide is that the *name* is taken: an unconditional or create-only put of a
   free name succeeds where this one answers 404. Admins see every block, so for them 404
   means missing. Deleted blocks (h=1) the caller may see by v are missing for conditions
   (if_match -> 404, if_none_match succeeds) and a put restores them, keeping f.
4. Updates keep v unless the put gives one; a put without h sets h=0 (restores).
5. Quota. Live blocks (h=0) count. A put that would make a key live past the Free quota
   answers 429, stores nothing and records a ``bb.quota.refused`` audit event.
6. Audit. Service kinds start with ``bb.`` (callers may not use that prefix). Admins see the
   whole log; others see caller events, ``bb.block.*`` events of revisions they may see of
   blocks they may see now (a redacted or deleted block's events are unlisted, like the
   block), and service events about themselves. Requests with a bad token have no tenant and are not
   logged; role and scope refusals are (``bb.request.denied``).
7. Read receipts record (observer, key, rev, time) for each successful get_block while the
   tenant's switch is on; anyone who may see a block may list its readers.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import blake3
import msgspec

from batenbase import _validate as check
from batenbase._blocks import AuditRow, Revision, etag
from batenbase._events import (
    AUDIT_SCOPE,
    BLOCK_SCOPE,
    OPERATOR_SCOPE,
    AuditRecorded,
    BlockDeleted,
    BlockPut,
    PlanSet,
    ReadReceiptsSet,
    ReadRow,
    TenantCreated,
    TokenRevoked,
)
from batenbase._host import (
    APPEND_EVENT,
    DELETE,
    PUT,
    TENANT_CREATE,
    TENANT_PLAN,
    TENANT_READ_RECEIPTS,
    TOKEN_ISSUE,
    TOKEN_REVOKE,
    DeleteRequest,
    EventRequest,
    HostRuntime,
    PutRequest,
    ReadReceiptsRequest,
    RevokeRequest,
    TenantRequest,
    TokenRequest,
    WriteAck,
)
from batenbase._operator import OperatorState, new_token
from batenbase._proof import build_proof
from batenbase._receipts import DEFAULT_BATCH, DEFAULT_INTERVAL_S, ReceiptFlusher
from batenbase._tenant import Tenant, block_entity
from batenbase._visibility import by_scope, visible
from batenbase.errors import (
    BadRequest,
    BatenBaseError,
    Forbidden,
    NotFound,
    PreconditionFailed,
    QuotaExceeded,
    Unauthorized,
)
from batenbase.model import (
    PLANS,
    ROLES,
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
from batpak import Coordinate, canonical
from syncbat import Ctx

FREE_QUOTA = 10_000
MAX_LIST_LIMIT = 1000
_RESERVED_KIND_PREFIX = "bb."


def _json(value: Any) -> bytes:
    return msgspec.json.encode(value)


class BatenBase:
    """The multi-tenant causal key-value service over batpak journals."""

    def __init__(
        self,
        data_dir: Path,
        clock: Callable[[], float],
        free_quota: int,
        receipt_batch: int,
        receipt_interval: float,
    ) -> None:
        self._dir = Path(data_dir)
        self._clock = clock
        self._free_quota = free_quota
        self._tenants: dict[str, Tenant] = {}
        self._tenants_lock = threading.Lock()
        self._operator = OperatorState(self._dir / "operator", clock)
        self._fresh = not self._operator.has_operator_token()
        self._runtime = HostRuntime(
            {
                PUT: self._put,
                DELETE: self._delete,
                APPEND_EVENT: self._append_event,
                TENANT_CREATE: self._tenant_create,
                TENANT_PLAN: self._tenant_plan,
                TENANT_READ_RECEIPTS: self._tenant_read_receipts,
                TOKEN_ISSUE: self._token_issue,
                TOKEN_REVOKE: self._token_revoke,
            }
        )
        self._closed = False
        for name in self._operator.tenants:
            self._open_tenant(name)
        self._flusher = ReceiptFlusher(
            lambda: list(self._tenants.values()), batch=receipt_batch, interval=receipt_interval
        )

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
        free_quota: int = FREE_QUOTA,
        receipt_batch: int = DEFAULT_BATCH,
        receipt_interval: float = DEFAULT_INTERVAL_S,
    ) -> BatenBase:
        """Open (creating if needed) the service state under ``data_dir``.

        ``free_quota`` (live blocks on the Free plan) and the read-receipt batching knobs
        (flush every ``receipt_batch`` reads or ``receipt_interval`` seconds) are for tests
        and tuning; the defaults follow the spec.
        """
        return cls(Path(data_dir), clock, free_quota, receipt_batch, receipt_interval)

    def close(self) -> None:
        """Flush read receipts and close every journal cleanly."""
        if self._closed:
            return
        self._closed = True
        self._flusher.stop()
        for tenant in self._tenants.values():
            tenant.close()
        self._operator.close()

    def __enter__(self) -> BatenBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- operator surface ---------------------------------------------------------------

    def bootstrap_operator_token(self) -> IssuedToken | None:
        """On the very first start, issue and return the first operator token; else None."""
        if not self._fresh:
            return None
        self._fresh = False
        if self._operator.has_operator_token():
            return None
        return self._issue(None, "operator", "admin", [])

    def issue_operator_token(self) -> IssuedToken:
        self._fresh = False
        return self._issue(None, "operator", "admin", [])

    def create_tenant(self, name: str, plan: Plan = "free") -> TenantInfo:
        check.tenant_name(name)
        _check_plan(plan)
        with self._tenants_lock:
            self._operate(TENANT_CREATE, TenantRequest(name, plan, self._clock()))
            tenant = self._open_tenant(name)
        tenant.audit("bb.tenant.created", "operator", _json({"plan": plan}))
        return self._info(tenant)

    def set_plan(self, tenant: str, plan: Plan) -> TenantInfo:
        _check_plan(plan)
        t = self._tenant(tenant)
        with t.lock:  # a plan change and a quota check never interleave
            self._operate(TENANT_PLAN, TenantRequest(tenant, plan, self._clock()))
        t.audit("bb.tenant.plan", "operator", _json({"plan": plan}))
        return self._info(t)

    def issue_token(
        self, tenant: str, observer: str, role: Role, scopes: Iterable[int] = ()
    ) -> IssuedToken:
        t = self._tenant(tenant)
        check.observer(observer)
        if role not in ROLES:
            raise BadRequest(f"role must be one of {', '.join(ROLES)}", code="bad_role")
        scope_set = check.scopes(scopes)
        issued = self._issue(tenant, observer, role, sorted(scope_set))
        details = {
            "token_id": issued.token_id,
            "observer": observer,
            "role": role,
            "scopes": sorted(scope_set),
        }
        t.audit("bb.token.issued", "operator", _json(details))
        return issued

    def revoke_token(self, token_id: str) -> None:
        if not isinstance(token_id, str) or token_id not in self._operator.tokens:
            raise NotFound("no such token")
        self._operate(TOKEN_REVOKE, RevokeRequest(token_id, self._clock()))
        record = self._operator.tokens[token_id]
        if record.tenant is not None and record.tenant in self._tenants:
            details = {"token_id": token_id, "observer": record.observer}
            self._tenants[record.tenant].audit("bb.token.revoked", "operator", _json(details))

    def list_tenants(self) -> list[TenantInfo]:
        """Every tenant with its plan and usage (operator)."""
        return [self._info(t) for t in list(self._tenants.values())]

    def journal(self, tenant: str) -> Tenant:
        """A tenant's journal owner (its Store and gate), for fronts that serve the same
        store, such as NETBAT/1; ``NotFound`` if there is no such tenant."""
        return self._tenant(tenant)

    def host_contract(self) -> dict[str, Any]:
        """The hostbat module every write is dispatched through: its identities (module
        digest, host and interface fingerprints), operations and where receipts go."""
        return self._runtime.describe()

    def authenticate(self, bearer: str | None) -> Caller:
        """The caller a bearer token names; ``Unauthorized`` if missing, unknown or revoked."""
        return self._operator.authenticate(bearer)

    def compact(self, tenant: str, *, keep_revisions: int = 1) -> dict[str, Any]:
        """Drop all but the newest ``keep_revisions`` revisions of each key (audit events all
        stay; surviving events keep their bytes, hashes and sequences)."""
        if type(keep_revisions) is not int or keep_revisions < 1:
            raise BadRequest("keep_revisions must be an integer >= 1", code="bad_keep_revisions")
        t = self._tenant(tenant)
        result = t.compact(keep_revisions)
        t.audit("bb.tenant.compacted", "operator", _json(result))
        return result

    # -- tenant surface -----------------------------------------------------------------

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
        idempotency_key: str | None = None,
    ) -> Block:
        """Create, update or restore a block. A key whose current block the caller may not
        see (by its v rule) answers NotFound, whatever the conditions (see the docs).
        A retry carrying the same ``idempotency_key`` answers the original write again."""
        t = self._member(caller)
        self._require(t, caller, "writer", "put")
        check.key(key)
        raw = check.json_bytes(data, check.MAX_DATA_BYTES, "data")
        check.visibility(v, h)
        if if_match is not None and not isinstance(if_match, str):
            raise BadRequest("if_match must be a string", code="bad_if_match")
        cond = if_none_match is True
        idem = _idem(caller, idempotency_key, [PUT, key, raw, v, h, if_match, cond])
        request = PutRequest(caller, key, raw, v, h, if_match, cond, self._clock(), idem)
        return self._write(t, key, PUT, request).block()

    def _put(self, req: PutRequest, ctx: Ctx) -> WriteAck:
        """The ``batenbase.block.put`` handler (the caller holds the key's lock)."""
        t, caller, key = self._runtime.tenant(), req.caller, req.key
        latest = t.index.latest(key)
        if latest is not None and not by_scope(caller, latest.v, latest.observer):
            raise NotFound(f"no block {key!r}")
        current = latest if latest is not None and latest.h == 0 else None
        _preconditions(key, current, req.if_match, req.if_none_match)
        new_v = req.v if req.v is not None else (latest.v if latest is not None else 1)
        new_h = req.h if req.h is not None else 0
        if new_v >= 2 and caller.role != "admin" and new_v not in caller.scopes:
            self._audit_in_call(
                ctx,
                t,
                caller,
                "bb.request.denied",
                _denial(caller, "put", f"scope {new_v} not carried"),
            )
            raise Forbidden(f"your token does not carry scope {new_v}")
        becomes_live = new_h == 0 and current is None
        quota = self._quota(t)
        if becomes_live and not t.reserve(quota):
            details = _json({"key": key, "quota": quota})
            self._audit_in_call(ctx, t, caller, "bb.quota.refused", details)
            raise QuotaExceeded(f"the {quota} live blocks of the Free plan are in use")
        put = BlockPut(
            key,
            req.data,
            new_v,
            new_h,
            latest.rev + 1 if latest else 1,
            latest.f if latest else int(req.t),
            int(req.t),
            req.t,
            caller.observer,
            idem=req.idem,
        )
        return self._append_block(ctx, t, put, reserved=becomes_live)

    def get_block(
        self,
        caller: Caller,
        key: str,
        *,
        rev: int | None = None,
        at: float | None = None,
        include_redacted: bool = False,
    ) -> Block:
        """The current block, or the revision ``rev``, or the one current at Unix time ``at``."""
        t, chosen = self._chosen(caller, key, rev, at, include_redacted)
        if chosen.data is None:
            chosen = self._loaded(t, [chosen])[0]
        if self._operator.tenant(t.name).read_receipts:
            self._flusher.note(t, ReadRow(caller.observer, key, chosen.rev, self._clock()))
        return chosen.block()

    def get_block_nowait(
        self,
        caller: Caller,
        key: str,
        *,
        rev: int | None = None,
        at: float | None = None,
        include_redacted: bool = False,
    ) -> Block | None:
        """``get_block`` for a caller on an event loop: None, having done nothing, where
        the answer would wait on the disk (data no longer held in memory) or on a flush
        of read receipts; the caller then asks ``get_block`` from a worker thread."""
        t, chosen = self._chosen(caller, key, rev, at, include_redacted)
        if chosen.data is None:
            return None
        if self._operator.tenant(t.name).read_receipts:
            row = ReadRow(caller.observer, key, chosen.rev, self._clock())
            if not self._flusher.note(t, row, wait=False):
                return None
        return chosen.block()

    def _chosen(
        self, caller: Caller, key: str, rev: int | None, at: float | None, include_redacted: bool
    ) -> tuple[Tenant, Revision]:
        t = self._member(caller)
        check.key(key)
        if rev is not None and (type(rev) is not int or rev < 1):
            raise BadRequest("rev must be an integer >= 1", code="bad_rev")
        when = None if at is None else check.unix_time(at, "at")
        revs = t.index.durable(key, t.durable_seq())
        chosen: Revision | None = revs[-1] if revs else None
        if chosen is not None and (rev is not None or when is not None):
            # The past of a key follows history's rule: a non-admin needs the key visible now.
            if caller.role != "admin" and not visible(caller, chosen.v, chosen.h, chosen.observer):
                raise NotFound(f"no block {key!r}")
            if rev is not None:
                chosen = next((r for r in revs if r.rev == rev), None)
            else:
                chosen = next((r for r in reversed(revs) if when is not None and r.t <= when), None)
            if chosen is not None and caller.role != "admin" and chosen.seq < _sealed(revs):
                chosen = None  # hidden by a later h=1, and it stays hidden after a restore
        if chosen is None or not visible(
            caller, chosen.v, chosen.h, chosen.observer, include_redacted=include_redacted is True
        ):
            raise NotFound(f"no block {key!r}")
        return t, chosen

    def list_blocks(
        self,
        caller: Caller,
        *,
        prefix: str = "",
        limit: int = 100,
        cursor: str | None = None,
        include_redacted: bool = False,
    ) -> Page[Block]:
        """Visible blocks whose key starts with ``prefix``, in key order; an admin passing
        ``include_redacted`` also sees redacted (h=1) blocks."""
        t = self._member(caller)
        if not isinstance(prefix, str) or len(prefix.encode("utf-8", "replace")) > 1024:
            raise BadRequest("prefix must be a string of at most 1024 bytes", code="bad_prefix")
        check.limit(limit, MAX_LIST_LIMIT)
        after = _decode_key_cursor(cursor)
        upto = t.durable_seq()
        items: list[Block] = []
        last: str | None = None
        with t.lock:
            keys = list(t.index.keys_from(prefix, after))
        for key in keys:
            revs = t.index.durable(key, upto)
            if revs and visible(
                caller,
                revs[-1].v,
                revs[-1].h,
                revs[-1].observer,
                include_redacted=include_redacted is True,
            ):
                if len(items) == limit:
                    return Page(items, _encode_key_cursor(last))
                items.append(self._loaded(t, [revs[-1]])[0].block())
                last = key
        return Page(items, None)

    def delete_block(
        self,
        caller: Caller,
        key: str,
        *,
        if_match: str | None = None,
        idempotency_key: str | None = None,
    ) -> Block:
        """Soft-delete: a new revision with h=1 (data and history kept)."""
        t = self._member(caller)
        self._require(t, caller, "writer", "delete")
        check.key(key)
        if if_match is not None and not isinstance(if_match, str):
            raise BadRequest("if_match must be a string", code="bad_if_match")
        idem = _idem(caller, idempotency_key, [DELETE, key, if_match])
        request = DeleteRequest(caller, key, if_match, self._clock(), idem)
        return self._write(t, key, DELETE, request).block()

    def _delete(self, req: DeleteRequest, ctx: Ctx) -> WriteAck:
        """The ``batenbase.block.delete`` handler (the caller holds the key's lock)."""
        t, caller, key = self._runtime.tenant(), req.caller, req.key
        latest = t.index.latest(key)
        if latest is None or latest.h == 1 or not by_scope(caller, latest.v, latest.observer):
            raise NotFound(f"no block {key!r}")
        _preconditions(key, latest, req.if_match, False)
        data = t.with_data([latest])[0].data
        assert data is not None  # with_data fills it
        deleted = BlockDeleted(
            key,
            data,
            latest.v,
            1,
            latest.rev + 1,
            latest.f,
            int(req.t),
            req.t,
            caller.observer,
            idem=req.idem,
        )
        return self._append_block(ctx, t, deleted, reserved=False)

    def history(
        self, caller: Caller, key: str, *, limit: int = 100, cursor: str | None = None
    ) -> Page[Block]:
        """Every revision the caller may see, newest first; the cursor is a revision number."""
        t = self._member(caller)
        check.key(key)
        check.limit(limit, MAX_LIST_LIMIT)
        below = check.int_cursor(cursor)
        revs = self._history_revisions(t, caller, key)
        chosen = [r for r in reversed(revs) if below is None or r.rev < below]
        page = chosen[:limit]
        sealed = 0 if caller.role == "admin" else _sealed(t.index.durable(key, t.durable_seq()))
        items = [
            r.block(redact=caller.role != "admin" and (r.h == 1 or r.seq < sealed))
            for r in self._loaded(t, page)
        ]
        more = len(chosen) > limit
        return Page(items, str(page[-1].rev) if more else None)

    def proof(self, caller: Caller, key: str) -> Proof:
        """The key's revision events with chain links; payload bytes of revisions the caller
        may not see are withheld (their hashes still link the chain)."""
        t = self._member(caller)
        check.key(key)
        with t.gate.shared():  # compaction swaps the journal under the exclusive gate
            revs = self._history_revisions(t, caller, key)
            everything = t.index.durable(key, t.durable_seq())
            sealed = _sealed(everything)
            shown = {
                r.seq for r in revs if caller.role == "admin" or (r.h == 0 and r.seq >= sealed)
            }
            return build_proof(t, key, everything, shown)

    def readers(self, caller: Caller, key: str, *, limit: int = 100) -> list[ReadReceipt]:
        """Recorded reads of a key the caller may see, newest first."""
        t = self._member(caller)
        check.key(key)
        check.limit(limit, MAX_LIST_LIMIT)
        revs = t.index.durable(key, t.durable_seq())
        if not revs or not visible(caller, revs[-1].v, revs[-1].h, revs[-1].observer):
            raise NotFound(f"no block {key!r}")
        rows = sorted(t.reads_of(key), key=lambda r: r.t, reverse=True)[:limit]
        return [ReadReceipt(r.observer, r.key, r.rev, r.t) for r in rows]

    def append_event(
        self, caller: Caller, kind: str, details: Any, *, idempotency_key: str | None = None
    ) -> AuditEvent:
        """Append a caller event; the service adds observer, time and sequence."""
        t = self._member(caller)
        self._require(t, caller, "writer", "append_event")
        check.kind(kind)
        if kind.startswith(_RESERVED_KIND_PREFIX):
            raise BadRequest("kinds starting with 'bb.' are the service's own", code="bad_kind")
        raw = check.json_bytes(details, check.MAX_DETAILS_BYTES, "details")
        idem = _idem(caller, idempotency_key, [APPEND_EVENT, kind, raw])
        request = EventRequest(caller, kind, raw, self._clock(), idem)
        with self._once(t, idem) as seq:
            if seq is not None:
                replayed = t.index.audit_at(seq)
                if replayed is None:
                    raise _expired()
                return replayed.event()
            with t.gate.shared(), self._runtime.staging(t) as slot:
                self._runtime.invoke(APPEND_EVENT, request)
                row: AuditRow = slot.staged[0]
            return row.event()

    def _append_event(self, req: EventRequest, ctx: Ctx) -> WriteAck:
        """The ``batenbase.event.append`` handler."""
        t = self._runtime.tenant()
        row = self._audit_in_call(ctx, t, req.caller, req.kind, req.details, req.t, req.idem)
        self._runtime.current().staged.append(row)
        return WriteAck(row.seq, "", row.hash)

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
        """Audit events newest first; the cursor is the sequence to continue below."""
        t = self._member(caller)
        lower = check.since(since, self._clock())
        upper = None if until is None else check.unix_time(until, "until")
        if kind is not None:
            check.kind(kind)
        check.limit(limit, check.MAX_SCAN_LIMIT)
        below = check.int_cursor(cursor)
        upto = t.durable_seq()
        rows = t.index.audit_rows()
        items: list[AuditEvent] = []
        for row in reversed(rows):
            if row.seq > upto or (below is not None and row.seq >= below):
                continue
            if lower is not None and row.t < lower:
                continue
            if (upper is not None and row.t > upper) or (kind is not None and row.kind != kind):
                continue
            if not self._may_see_audit(t, caller, row):
                continue
            if len(items) == limit:
                return Page(items, str(items[-1].seq))
            items.append(row.event())
        return Page(items, None)

    def tenant_info(self, caller: Caller) -> TenantInfo:
        return self._info(self._member(caller))

    def set_read_receipts(self, caller: Caller, enabled: bool) -> TenantInfo:
        """Turn read receipts on or off for the caller's tenant (admin only)."""
        t = self._member(caller)
        self._require(t, caller, "admin", "set_read_receipts")
        if not isinstance(enabled, bool):
            raise BadRequest("enabled must be a boolean", code="bad_enabled")
        self._operate(TENANT_READ_RECEIPTS, ReadReceiptsRequest(t.name, enabled, self._clock()))
        t.audit("bb.tenant.read_receipts", caller.observer, _json({"enabled": enabled}))
        return self._info(t)

    def _loaded(self, t: Tenant, revisions: list[Revision]) -> list[Revision]:
        try:
            return t.with_data(revisions)
        except LookupError:
            raise NotFound("the revision was compacted away while it was read") from None

    # -- dispatched operator changes ----------------------------------------------------------

    def _operate(self, name: str, request: msgspec.Struct) -> list[Any]:
        """Dispatch an operator change to the operator journal, then apply what it staged."""
        with self._operator.lock, self._runtime.staging(self._operator) as slot:
            self._runtime.invoke(name, request)
            for item in slot.staged:
                if not isinstance(item, IssuedToken):
                    self._operator.apply(item)
            return slot.staged

    def _issue(
        self, tenant: str | None, observer: str, role: Role, scopes: list[int]
    ) -> IssuedToken:
        request = TokenRequest(tenant, observer, role, scopes, self._clock())
        return next(i for i in self._operate(TOKEN_ISSUE, request) if isinstance(i, IssuedToken))

    def _record(self, ctx: Ctx, entity: str, event: msgspec.Struct) -> WriteAck:
        coord = Coordinate(entity, OPERATOR_SCOPE)
        receipt = ctx.event_append_handle().append_typed(coord, event)
        self._runtime.current().staged.append(event)
        return WriteAck(receipt.global_sequence, str(receipt.event_id), receipt.content_hash)

    def _tenant_create(self, req: TenantRequest, ctx: Ctx) -> WriteAck:
        if req.name in self._operator.tenants:
            raise PreconditionFailed(f"tenant {req.name!r} already exists")
        return self._record(ctx, f"tenant:{req.name}", TenantCreated(req.name, req.plan, req.t))

    def _tenant_plan(self, req: TenantRequest, ctx: Ctx) -> WriteAck:
        self._operator.tenant(req.name)
        return self._record(ctx, f"tenant:{req.name}", PlanSet(req.name, req.plan, req.t))

    def _tenant_read_receipts(self, req: ReadReceiptsRequest, ctx: Ctx) -> WriteAck:
        self._operator.tenant(req.name)
        event = ReadReceiptsSet(req.name, req.enabled, req.t)
        return self._record(ctx, f"tenant:{req.name}", event)

    def _token_issue(self, req: TokenRequest, ctx: Ctx) -> WriteAck:
        role: Role = (
            "admin" if req.role == "admin" else "writer" if req.role == "writer" else "reader"
        )
        event, issued = new_token(req.tenant, req.observer, role, req.scopes, req.t)
        ack = self._record(ctx, f"token:{issued.token_id}", event)
        self._runtime.current().staged.append(issued)
        return ack

    def _token_revoke(self, req: RevokeRequest, ctx: Ctx) -> WriteAck:
        record = self._operator.tokens.get(req.token_id)
        if record is None:
            raise NotFound("no such token")
        if record.revoked:  # already revoked: nothing to write
            return WriteAck(0, "", bytes(32))
        return self._record(ctx, f"token:{req.token_id}", TokenRevoked(req.token_id, req.t))

    # -- dispatched writes ------------------------------------------------------------------

    def _write(
        self, t: Tenant, key: str, name: str, request: PutRequest | DeleteRequest
    ) -> Revision:
        """Dispatch a block write, then apply it: once ``invoke`` returns its receipt is
        durable, and so is the block event before it."""
        with self._once(t, request.idem) as seq:
            if seq is not None:
                replayed = t.index.revision_at(key, seq)
                if replayed is None:
                    raise _expired()
                return replayed
            with t.gate.shared(), t.key_lock(key), self._runtime.staging(t) as slot:
                try:
                    self._runtime.invoke(name, request)
                except BaseException:
                    for _, _, reserved in slot.staged:
                        if reserved:
                            t.release()
                    raise
                event, receipt, reserved = slot.staged[0]
                return t.apply_block(event, receipt, reserved=reserved)

    @contextlib.contextmanager
    def _once(self, t: Tenant, idem: bytes) -> Iterator[int | None]:
        """Hold an idempotency key's lock; yield the sequence of the write it already made
        (None if none). The same key with a different request is a 409."""
        if not idem:
            yield None
            return
        with t.idem_lock(idem):
            hit = t.index.idem.get(idem[:32])
            if hit is not None and hit[0] != idem[32:]:
                raise PreconditionFailed(
                    "this Idempotency-Key was used for a different request",
                    code="idempotency_key_reused",
                )
            yield None if hit is None else hit[1]

    def _append_block(
        self, ctx: Ctx, t: Tenant, event: BlockPut | BlockDeleted, *, reserved: bool
    ) -> WriteAck:
        coord = Coordinate(block_entity(event.key), BLOCK_SCOPE)
        try:
            receipt = ctx.event_append_handle().append_typed(coord, event)
        except BaseException:
            if reserved:
                t.release()
            raise
        self._runtime.current().staged.append((event, receipt, reserved))
        return WriteAck(receipt.global_sequence, str(receipt.event_id), receipt.content_hash)

    def _audit_in_call(
        self,
        ctx: Ctx,
        t: Tenant,
        caller: Caller,
        kind: str,
        details: bytes,
        when: float | None = None,
        idem: bytes = b"",
    ) -> AuditRow:
        event = AuditRecorded(
            kind, caller.observer, details, self._clock() if when is None else when, idem
        )
        receipt = ctx.event_append_handle().append_typed(Coordinate("bb.audit", AUDIT_SCOPE), event)
        return t.audit_row(event, receipt)

    # -- helpers --------------------------------------------------------------------------

    def _open_tenant(self, name: str) -> Tenant:
        checkpoint = self._dir / "checkpoints" / f"{name}.bbproj"
        tenant = Tenant(name, self._dir / "tenants" / name, checkpoint, self._clock)
        self._tenants[name] = tenant
        return tenant

    def _tenant(self, name: str) -> Tenant:
        tenant = self._tenants.get(name) if isinstance(name, str) else None
        if tenant is None:
            raise NotFound(f"no tenant {name!r}")
        return tenant

    def _member(self, caller: Caller) -> Tenant:
        if self._closed:
            raise BatenBaseError("the service is closed", code="closed")
        if not isinstance(caller, Caller):
            raise Unauthorized("not an authenticated caller")
        record = self._operator.tokens.get(caller.token_id)
        if record is None or record.revoked:
            raise Unauthorized("unknown or revoked token")
        held = (record.tenant or "", record.observer, record.role, record.scopes)
        if held != (caller.tenant, caller.observer, caller.role, caller.scopes) and not (
            record.tenant is None and caller.operator
        ):
            raise Unauthorized("the caller does not match its token")
        if caller.operator:
            raise Forbidden("operator tokens act on /admin, not on a tenant")
        return self._tenant(caller.tenant)

    def _require(self, t: Tenant, caller: Caller, role: Role, action: str) -> None:
        rank = {"reader": 0, "writer": 1, "admin": 2}
        if rank[caller.role] < rank[role]:
            self._deny(t, caller, action, f"role {caller.role} cannot {action}")
            raise Forbidden(f"role {caller.role!r} cannot {action}")

    def _deny(self, t: Tenant, caller: Caller, action: str, reason: str) -> None:
        # Not gated: a denial must not cost the caller an fsync (it rides the next one).
        t.audit(
            "bb.request.denied", caller.observer, _denial(caller, action, reason), durable=False
        )

    def _quota(self, t: Tenant) -> int | None:
        return self._free_quota if self._operator.tenant(t.name).plan == "free" else None

    def _info(self, t: Tenant) -> TenantInfo:
        record = self._operator.tenant(t.name)
        return TenantInfo(t.name, record.plan, self._quota(t), t.index.live, record.read_receipts)

    def _history_revisions(self, t: Tenant, caller: Caller, key: str) -> list[Revision]:
        revs = t.index.durable(key, t.durable_seq())
        if not revs:
            raise NotFound(f"no block {key!r}")
        latest = revs[-1]
        if caller.role != "admin" and not visible(caller, latest.v, latest.h, latest.observer):
            raise NotFound(f"no block {key!r}")
        return [r for r in revs if by_scope(caller, r.v, r.observer)]

    def _may_see_audit(self, t: Tenant, caller: Caller, row: AuditRow) -> bool:
        if caller.role == "admin" or not row.kind.startswith(_RESERVED_KIND_PREFIX):
            return True
        if row.key is not None:
            # A block's events follow the block: invisible now (h=1, or v) means unlisted.
            revs = t.index.revisions.get(row.key, [])
            match = next((r for r in revs if r.rev == row.rev), None)
            latest = revs[-1] if revs else None
            return (
                match is not None
                and latest is not None
                and visible(caller, latest.v, latest.h, latest.observer)
                and by_scope(caller, match.v, match.observer)
            )
        return row.observer == caller.observer


MAX_IDEMPOTENCY_KEY = 255


def _idem(caller: Caller, client_key: str | None, request: list[Any]) -> bytes:
    """The stored form of a client's idempotency key: BLAKE3 of (observer, key), then BLAKE3
    of the request it was used for (time excluded), 64 bytes; empty without a key."""
    if client_key is None:
        return b""
    if (
        not isinstance(client_key, str)
        or not 1 <= len(client_key) <= MAX_IDEMPOTENCY_KEY
        or not all(0x21 <= ord(c) <= 0x7E for c in client_key)
    ):
        raise BadRequest(
            f"an idempotency key is 1..{MAX_IDEMPOTENCY_KEY} visible ASCII characters",
            code="bad_idempotency_key",
        )
    who = blake3.blake3(f"{caller.observer}\x00{client_key}".encode()).digest()
    return who + blake3.blake3(canonical.encode(request)).digest()


def _expired() -> PreconditionFailed:
    return PreconditionFailed(
        "the write this Idempotency-Key made was compacted away", code="idempotency_key_expired"
    )


def _sealed(revisions: list[Revision]) -> int:
    """The sequence of the newest h=1 revision (0 if none): for non-admins, the data of every
    revision before it stays hidden, even once the block is restored."""
    return next((r.seq for r in reversed(revisions) if r.h == 1), 0)


def _denial(caller: Caller, action: str, reason: str) -> bytes:
    return _json({"action": action, "reason": reason, "token_id": caller.token_id})


def _check_plan(plan: object) -> None:
    if plan not in PLANS:
        raise BadRequest(f"plan must be one of {', '.join(PLANS)}", code="bad_plan")


def _preconditions(
    key: str, current: Revision | None, if_match: str | None, if_none_match: bool
) -> None:
    if if_match is not None:
        if current is None:
            raise NotFound(f"no block {key!r}")
        wanted = if_match.strip().strip('"')
        if wanted == "*":  # HTTP's "any current revision"
            matches = True
        elif wanted.isdecimal() and len(wanted) < 20:
            matches = int(wanted) == current.rev
        else:
            matches = wanted == etag(current.key, current.rev, current.hash.hex())
        if not matches:
            raise PreconditionFailed(f"block {key!r} is at rev {current.rev}")
    if if_none_match is True and current is not None:
        raise PreconditionFailed(f"block {key!r} exists")


def _encode_key_cursor(key: str | None) -> str | None:
    return None if key is None else key.encode("utf-8").hex()


def _decode_key_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        return bytes.fromhex(cursor).decode("utf-8")
    except (TypeError, ValueError):
        raise BadRequest("cursor is not valid", code="bad_cursor") from None
