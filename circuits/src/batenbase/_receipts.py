"""The read-receipt flusher: one background thread that appends each tenant's buffered
receipts as one batch every ``interval`` seconds, or as soon as a buffer reaches ``batch``."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from batenbase._events import ReadRow
from batenbase._tenant import Tenant
from batpak import StoreError

DEFAULT_BATCH = 256
DEFAULT_INTERVAL_S = 0.2


class ReceiptFlusher:
    def __init__(self, tenants: Callable[[], list[Tenant]], *, batch: int, interval: float) -> None:
        self._tenants = tenants
        self.batch = batch
        self._interval = interval
        self._wake = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="batenbase-receipts", daemon=True)
        self._thread.start()

    def note(self, tenant: Tenant, row: ReadRow, *, wait: bool = True) -> bool:
        """Buffer ``row``; False (nothing buffered) when ``wait`` is False and a flush is
        running."""
        size = tenant.note_read(row, wait=wait)
        if size is None:
            return False
        if size >= self.batch:
            self._wake.set()
        return True

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self._interval)
            self._wake.clear()
            self.flush_all()

    def flush_all(self) -> None:
        for tenant in self._tenants():
            # A closing or crashed journal: close() flushes what it can.
            with contextlib.suppress(StoreError):
                tenant.flush_reads()

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        self._thread.join()
