"""Workload 6: BatenBase GET and durable PUT under 64 concurrent keep-alive clients.

BatenBase (``python -m batenbase serve``) and the peer app (``bench.peer_http``: a bare
starlette JSON GET and a minimal sqlite3 PUT, on uvicorn with the same settings) run as
child processes at the same time; the phases alternate, so each pair sees the same machine.
Every side gets the same request bytes: a ``{"data": <record>}`` body for PUT.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batenbase.client import Client
from bench import load, servers
from bench.common import Check, Sizes, ratio_check, record_dict

HOST = "127.0.0.1"
GET_KEY = "bench:get"


def _get(token: str) -> bytes:
    return (
        f"GET /blocks/{GET_KEY} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()


def _put(token: str, client: int, n: int) -> bytes:
    body = json.dumps({"data": record_dict(client * 1_000_000 + n)}).encode()
    head = (
        f"PUT /blocks/bench:c{client} HTTP/1.1\r\nHost: {HOST}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


def _batenbase_token(lines: list[str]) -> tuple[int, str]:
    port = servers.port_of(lines, r"listening on http://[^:]+:(\d+)")
    operator = next(m.group(1) for line in lines if (m := re.search(r"(bbt_\S+)", line)))
    with Client(f"http://{HOST}:{port}", operator) as admin:
        admin.admin_create_tenant("bench", "unlimited")
        token = admin.admin_issue_token("bench", "bench", "admin").token
    with Client(f"http://{HOST}:{port}", token) as client:
        client.put_block(GET_KEY, record_dict(0))
    return port, token


def run(sizes: Sizes, workdir: Path) -> list[Check]:
    clients, seconds = sizes.http_clients, sizes.server_seconds
    bb_argv = ["-m", "batenbase", "serve", "--data", str(workdir / "w6-bb"), "--port", "0"]
    peer_argv = ["-m", "bench.peer_http", "--db", str(workdir / "w6-peer.sqlite")]
    with (
        servers.child(bb_argv, r"(bbt_\S+)", workdir / "w6-batenbase.log") as (bb_pid, bb_lines),
        servers.child(peer_argv, r"PEER_READY (\d+)", workdir / "w6-peer.log") as (
            peer_pid,
            peer_lines,
        ),
    ):
        bb_port, token = _batenbase_token(bb_lines)
        peer_port = servers.port_of(peer_lines, r"PEER_READY (\d+)")
        get = _get(token)

        def put(client: int, n: int) -> bytes:
            return _put(token, client, n)

        def phase(pid: int, port: int, make: Callable[[int, int], bytes]) -> Any:
            return servers.measured(pid, lambda: load.http(HOST, port, make, clients, seconds))

        bb_get, bb_get_figures = phase(bb_pid, bb_port, lambda c, n: get)
        peer_get, peer_get_figures = phase(peer_pid, peer_port, lambda c, n: get)
        bb_put, bb_put_figures = phase(bb_pid, bb_port, put)
        peer_put, peer_put_figures = phase(peer_pid, peer_port, put)
    tallies: dict[str, Any] = {
        "batenbase_get": bb_get_figures,
        "bare_get": peer_get_figures,
        "batenbase_put": bb_put_figures,
        "sqlite_put": peer_put_figures,
    }
    for name, tally in tallies.items():
        if tally["failed"]:
            raise AssertionError(f"{name}: {tally['failed']} failed, e.g. {tally['first_failure']}")
    details = {"clients": clients, "seconds": seconds, **tallies}
    return [
        ratio_check(
            6, "BatenBase GET vs bare starlette", "req/s", bb_get.rate, peer_get.rate, 0.5, details
        ),
        ratio_check(
            6, "BatenBase PUT vs sqlite3 PUT", "req/s", bb_put.rate, peer_put.rate, 2.0, details
        ),
    ]
