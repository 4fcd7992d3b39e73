"""The netbat ``Dispatcher`` of the reference host: a thin adapter over a hostbat ``Host``.

netbat calls ``call(op, input) -> bytes`` from worker threads (and, for ``INLINE_OPS``, on its
event loop); a syncbat ``Core`` (and so a ``Host``) is not thread-safe, so calls are
serialized behind one ``HostLock`` (one shared Host, as refbat shared one Core), which a
``bank.commit`` leaves while its append waits for the disk (``refhost.hostlock``).
syncbat's ``DispatchError``s become netbat's typed errors, whose ERR frames carry the
reference texts (``runtime error: handler for operation `<op>` failed with <class>:
<message>``, ``runtime error: unknown operation `<op>```).
"""

from __future__ import annotations

from typing import Final

import netbat
import syncbat
from hostbat import Host
from refhost.hostlock import HostLock


def to_netbat_error(error: syncbat.DispatchError) -> netbat.NetbatError:
    """The netbat error (and so the ERR frame) of a failed ``Core.invoke``."""
    if isinstance(error, syncbat.UnknownOperation):
        return netbat.UnknownOperation(error.name)
    if isinstance(error, syncbat.MissingHandler):
        return netbat.MissingHandler(error.name)
    if isinstance(error, syncbat.OperationFailed):
        return netbat.HandlerFailed(error.name, error.code, error.message)
    if isinstance(error, syncbat.OperationDenied):
        return netbat.RuntimeFailure.denied(error.name, error.code, error.message)
    if isinstance(error, syncbat.ReceiptSinkFailed):
        return netbat.ReceiptSinkFailed(
            error.name, error.message, handler_error=error.caused_by_handler
        )
    return netbat.RuntimeFailure(str(error))


INLINE_OPS: Final = frozenset({"system.heartbeat"})
"""Ops netbat may call on its event loop: they read only memory (the heartbeat reads the store
clock), so a worker-thread hop would cost more than the op."""


class ReferenceDispatcher:
    """Serves a ``Host`` to netbat: ``call(op, input)`` is ``host.invoke(op, input).output``."""

    def __init__(self, host: Host, lock: HostLock | None = None) -> None:
        """``lock`` is the one given to ``build_host``, so a commit can leave it while its
        append waits for the disk; without one the dispatcher makes its own, which a commit
        then holds throughout."""
        self.host = host
        self._lock = lock if lock is not None else HostLock()

    def inline(self, op: str) -> bool:
        """netbat's ``InlineDispatcher`` hook: the ops in ``INLINE_OPS``."""
        return op in INLINE_OPS

    def call(self, op: str, input: bytes) -> bytes:
        with self._lock.held():
            try:
                return self.host.invoke(op, input).output
            except syncbat.DispatchError as exc:
                raise to_netbat_error(exc) from None
