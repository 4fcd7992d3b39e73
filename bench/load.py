"""Closed-loop load generators on asyncio: each client sends its next request as soon as the
previous answer is in. Requests are prepared bytes and answers are parsed minimally, so the
generator costs the same for this project and for its peers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

WARMUP_S = 0.5


@dataclass(slots=True)
class Tally:
    ok: int = 0
    failed: int = 0
    seconds: float = 0.0
    first_failure: str = ""
    client_cpu: float = 0.0  # CPU seconds the load generator used while counting
    all_ok: int = 0  # answers including the warm-up (to divide a server's CPU time by)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def summary(self, server_cpu: float) -> dict[str, float | int | str]:
        """The figures behind a rate, with the server's CPU microseconds per answer."""
        return {
            "ok": self.ok,
            "failed": self.failed,
            "seconds": self.seconds,
            "rate": self.rate,
            "client_cpu_share": self.client_cpu / self.seconds if self.seconds else 0.0,
            "server_cpu_us_per_answer": 1e6 * server_cpu / self.all_ok if self.all_ok else 0.0,
            "first_failure": self.first_failure,
        }


async def _read_http(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length) if length else b""
    return status, body


Client = Callable[[int, "Tally", Callable[[], bool]], Coroutine[Any, Any, None]]


async def _run(clients: int, seconds: float, client: Client) -> Tally:
    """Run the clients for a warm-up plus ``seconds``; count only what ends after warm-up."""
    tally = Tally()
    stop_at = time.perf_counter() + WARMUP_S + seconds

    def running() -> bool:
        return time.perf_counter() < stop_at

    tasks = [asyncio.ensure_future(client(n, tally, running)) for n in range(clients)]
    await asyncio.sleep(WARMUP_S)
    before_ok, before_failed = tally.ok, tally.failed
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*tasks)
    tally.seconds = time.perf_counter() - started
    tally.client_cpu = time.process_time() - cpu
    tally.all_ok = tally.ok
    tally.ok -= before_ok
    tally.failed -= before_failed
    return tally


def http(
    host: str, port: int, requests: Callable[[int, int], bytes], clients: int, seconds: float
) -> Tally:
    """``clients`` keep-alive HTTP/1.1 connections; ``requests(client, n)`` is the n-th request
    of a client. A 2xx answer counts as done."""

    async def client(index: int, tally: Tally, running: Callable[[], bool]) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        n = 0
        try:
            while running():
                writer.write(requests(index, n))
                status, body = await _read_http(reader)
                if 200 <= status < 300:
                    tally.ok += 1
                else:
                    tally.failed += 1
                    tally.first_failure = tally.first_failure or f"{status} {body[:200]!r}"
                n += 1
        finally:
            writer.close()

    return asyncio.run(_run(clients, seconds, client))


def lines(
    host: str, port: int, requests: Callable[[int, int], bytes], clients: int, seconds: float
) -> Tally:
    """One connection per request, as NETBAT/1 servers close after one round: connect, send one
    line, read one line, close. An answer starting ``OK`` (or echoing the request) counts."""

    async def client(index: int, tally: Tally, running: Callable[[], bool]) -> None:
        n = 0
        while running():
            request = requests(index, n)
            try:
                reader, writer = await asyncio.open_connection(host, port)
                try:
                    writer.write(request)
                    answer = await reader.readline()
                finally:
                    writer.close()
            except OSError as exc:  # e.g. no ephemeral port left: count it, go on
                answer = repr(exc).encode()
                await asyncio.sleep(0.01)
            if answer.startswith(b"OK") or answer == request:
                tally.ok += 1
            else:
                tally.failed += 1
                tally.first_failure = tally.first_failure or repr(answer[:200])
            n += 1

    return asyncio.run(_run(clients, seconds, client))
