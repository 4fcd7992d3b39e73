"""The dispatcher the NETBAT front end calls: op name + input bytes -> output bytes.

``ReferenceDispatcher`` is the plain-``Core`` wiring of the historical refbat host (ten
handlers, no receipts, no effect rows), raising netbat's typed errors so a front end can
render ``ERR <code> <hex(message)>`` directly. It satisfies the ``Dispatcher`` protocol that
syncbat's ``Core`` and hostbat's ``Host`` are meant to satisfy too (syncbat-hostbat.md §0.3).
"""

from __future__ import annotations

import threading
from typing import Protocol

from netbat.errors import HandlerFailed, UnknownOperation
from refhost.errors import OpError
from refhost.ops import BY_NAME
from refhost.view import StoreView


class Dispatcher(Protocol):
    """Anything that invokes an operation by name (syncbat Core, hostbat Host, this host)."""

    def invoke(self, name: str, data: bytes) -> bytes: ...


class ReferenceDispatcher:
    """The ten ops over one view. Calls are serialized, like one shared Core behind a lock."""

    def __init__(self, view: StoreView) -> None:
        self._view = view
        self._lock = threading.Lock()

    def invoke(self, name: str, data: bytes) -> bytes:
        operation = BY_NAME.get(name)
        if operation is None:
            raise UnknownOperation(name)
        with self._lock:
            try:
                return operation.handler(data, self._view)
            except OpError as exc:
                raise HandlerFailed(name, exc.error_class, exc.message) from None
