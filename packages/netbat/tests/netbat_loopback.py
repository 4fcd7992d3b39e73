"""Loopback helpers for the server tests: run a server, talk raw bytes to it."""

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol

import anyio
import pytest
from anyio.abc import TaskStatus


class Servable(Protocol):
    async def serve(
        self, host: str = ..., port: int = ..., *, task_status: TaskStatus[int] = ...
    ) -> None: ...


@asynccontextmanager
async def running(server: Servable) -> AsyncIterator[int]:
    """Serve on an ephemeral loopback port for the duration of the block; yield the port."""
    async with anyio.create_task_group() as tg:
        port: int = await tg.start(server.serve, "127.0.0.1", 0)
        try:
            yield port
        finally:
            tg.cancel_scope.cancel()


async def read_all(stream: anyio.abc.ByteStream) -> bytes:
    """Read until the peer closes (EOF or reset)."""
    chunks: list[bytes] = []
    while True:
        try:
            chunks.append(await stream.receive())
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            return b"".join(chunks)


async def exchange(
    port: int, data: bytes, *, half_close: bool = True, timeout: float = 5.0
) -> bytes:
    """Connect, send ``data`` (then EOF), and return everything the server wrote."""
    with anyio.fail_after(timeout):
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            if data:
                await stream.send(data)
            if half_close:
                await stream.send_eof()
            return await read_all(stream)


def make_cert(tmp: Path) -> tuple[Path, Path]:
    """Write a throwaway self-signed localhost certificate and key; skip without openssl."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    try:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("openssl is not available to make a test certificate")
    return cert, key
