"""Workload 7's peer: a bare anyio TCP echo server with NETBAT/1's connection shape: read one
line, write it back, close. ``python -m bench.peer_echo`` prints ``ECHO_READY <port>``."""

from __future__ import annotations

import contextlib

import anyio
from anyio.abc import SocketStream


async def echo(stream: SocketStream) -> None:
    async with stream:
        buffer = b""
        while not buffer.endswith(b"\n"):
            try:
                buffer += await stream.receive()
            except anyio.EndOfStream:
                return
        await stream.send(buffer)


async def main() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    print(f"ECHO_READY {port}", flush=True)
    await listener.serve(echo)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(main)
