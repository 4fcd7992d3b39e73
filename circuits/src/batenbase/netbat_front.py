"""One tenant's journal over NETBAT/1, read-only: ``batenbase serve --netbat-port P
--netbat-tenant NAME``.

The spec (batenbase.md §7) wants the same store reachable over NETBAT/1 for clients that
speak the batteries' wire. This front mounts the reference host's ten ops (``refhost``: a
hostbat ``Host`` over a ``BatpakView``) on the tenant's batpak Store and serves them with
netbat's ``RequestServer`` on a background event loop in the server process.

Why read-only, and why loopback only: NETBAT/1 has no authentication. Anyone who can open
the port can call every op. So the front binds loopback only (a non-loopback ``--host`` is
refused, with ``refhost.server.check_bind_host``). Writes are refused because a NETBAT/1
write would skip the REST API's tokens, roles, scopes, quota and audit trail, and would
append events the tenant's projection does not know about. ``bank.commit`` therefore fails
with the handler error class ``invalid_input`` and :data:`COMMIT_REFUSED` before it reaches
the host, and the view's ``commit`` raises too, as a second guard. The nine read ops answer
from the whole journal (blocks, audit and read-receipt events), with no scope filtering.

Reads take the tenant's gate shared, as appends do, so a compaction (which reopens the
Store) never runs under a read. The view reads ``tenant.store`` on every call, so reads
reach the reopened Store afterwards.
"""

from __future__ import annotations

from concurrent.futures import Future
from contextlib import ExitStack
from typing import Final

import anyio.from_thread

import netbat
from batenbase._tenant import Tenant
from batenbase.errors import NotFound
from batenbase.service import BatenBase
from batpak import Coordinate, Store
from hostbat import Host
from netbat import RequestServer
from refhost.batpak_view import BatpakView
from refhost.dispatch import ReferenceDispatcher
from refhost.errors import ViewError
from refhost.host import build_host
from refhost.server import NonLoopbackRefused, check_bind_host, server_config
from refhost.view import CommitReceipt

COMMIT_REFUSED: Final = (
    "this NETBAT/1 front is read-only; writes go through the REST API (NETBAT/1 has no "
    "authentication)"
)
"""The ``bank.commit`` refusal text, after ``failed with invalid_input: ``."""


class NetbatFrontError(Exception):
    """The front cannot start: unknown tenant, non-loopback host, or the port is taken."""


class _TenantView(BatpakView):
    """A ``BatpakView`` over the tenant's current Store (compaction swaps it) that never
    commits."""

    def __init__(self, tenant: Tenant) -> None:
        self._tenant = tenant
        super().__init__(tenant.store)

    @property
    def _store(self) -> Store:
        return self._tenant.store

    @_store.setter
    def _store(self, value: Store) -> None:
        pass  # BatpakView.__init__ assigns it; the tenant's attribute is the truth

    def commit(
        self, coord: Coordinate, kind: int, payload: bytes, idempotency_key: int | None
    ) -> CommitReceipt:
        raise ViewError(COMMIT_REFUSED)


class ReadOnlyDispatcher:
    """The netbat ``Dispatcher``: refuses ``bank.commit``, runs every other op on the
    reference host under the tenant's shared gate."""

    def __init__(self, tenant: Tenant, host: Host) -> None:
        self._tenant = tenant
        self._inner = ReferenceDispatcher(host)

    def call(self, op: str, input: bytes) -> bytes:
        if op == "bank.commit":
            raise netbat.HandlerFailed(op, "invalid_input", COMMIT_REFUSED)
        with self._tenant.gate.shared():
            return self._inner.call(op, input)


class NetbatFront:
    """The running front: its own event loop thread; :meth:`stop` ends it (idempotent)."""

    def __init__(self, tenant: Tenant, host: str, port: int) -> None:
        self.tenant = tenant
        self.host = host
        self.port = 0
        self._refhost = build_host(_TenantView(tenant))
        self._server = RequestServer(ReadOnlyDispatcher(tenant, self._refhost), server_config())
        self._stack = ExitStack()
        self._task: Future[None] | None = None
        self._refhost.start()
        try:
            portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())
            self._task, bound = portal.start_task(self._server.serve, host, port)
        except BaseException:
            self.stop()
            raise
        self.port = int(bound)

    @property
    def address(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"{shown}:{self.port}"

    def stop(self) -> None:
        """Stop listening, wait for calls in flight, then shut the host down."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._stack.close()  # joins the loop thread once every connection task has ended
        self._refhost.shutdown()


def check_host(host: str) -> None:
    """Refuse a non-loopback bind address (raise :class:`NetbatFrontError`)."""
    try:
        check_bind_host(host, False)
    except NonLoopbackRefused:
        raise NetbatFrontError(
            "the NETBAT/1 front binds loopback only (NETBAT/1 has no authentication); "
            f"--host {host} is not a loopback address"
        ) from None


def start(service: BatenBase, tenant: str, host: str, port: int) -> NetbatFront:
    """Serve ``tenant``'s journal read-only over NETBAT/1 on ``host:port`` (0 picks a port).

    Raises :class:`NetbatFrontError` when the tenant does not exist (it is never created
    here), ``host`` is not loopback, or the port cannot be bound.
    """
    check_host(host)
    try:
        found = service.journal(tenant)
    except NotFound:
        raise NetbatFrontError(
            f"no tenant {tenant!r} for --netbat-tenant; create it first "
            f"(batenbase admin --data DIR create-tenant {tenant}, server stopped), then restart"
        ) from None
    try:
        return NetbatFront(found, host, port)
    except OSError as exc:
        raise NetbatFrontError(f"cannot listen for NETBAT/1 on {host}:{port}: {exc}") from None
