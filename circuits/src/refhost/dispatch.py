"""The netbat ``Dispatcher`` of the reference host: a thin adapter over a hostbat ``Host``.

netbat calls ``call(op, input) -> bytes`` from worker threads; a syncbat ``Core`` (and so a
``Host``) is not thread-safe, so calls are serialized behind one lock (one shared Host, as
refbat shared one Core). syncbat's ``DispatchError``s become netbat's typed errors, whose ERR
frames carry the reference texts (``runtime error: handler for operation `<op>` failed with
<class>: <message>``, ``runtime error: unknown operation `<op>```).
"""

from __future__ import annotations

import threading

import netbat
import syncbat
from hostbat import Host


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


class ReferenceDispatcher:
    """Serves a ``Host`` to netbat: ``call(op, input)`` is ``host.invoke(op, input).output``."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._lock = threading.Lock()

    def call(self, op: str, input: bytes) -> bytes:
        with self._lock:
            try:
                return self.host.invoke(op, input).output
            except syncbat.DispatchError as exc:
                raise to_netbat_error(exc) from None
