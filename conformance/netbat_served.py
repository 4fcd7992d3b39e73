"""Run a netbat listener on a loopback port from blocking test code, and talk raw TCP to it.

``serving(server)`` starts ``server.serve`` in an anyio blocking portal (its own thread and
event loop) and yields the bound port; leaving the block cancels the listener. ``Raw`` is a
plain socket client for sending partial lines and holding connections open.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from anyio.from_thread import start_blocking_portal


@contextmanager
def serving(server: Any) -> Iterator[tuple[int, Any]]:
    """Yield ``(port, future)``; the future completes when ``serve`` returns on its own."""
    with start_blocking_portal() as portal:
        future, port = portal.start_task(server.serve, "127.0.0.1", 0)
        try:
            yield int(port), future
        finally:
            future.cancel()


class Raw:
    """A raw client connection."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_all(self) -> bytes:
        chunks = []
        while chunk := self.sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.sock.close()
