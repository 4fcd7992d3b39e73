"""Workload 7: NETBAT/1 ``system.heartbeat`` and ``bank.commit`` on the reference host,
against a bare anyio echo server with the same connection shape (one line in, one line out,
close) fed the very same request lines.

``refhost serve`` and ``bench.peer_echo`` run as child processes at once; each refhost
phase is followed by an echo phase of the same lines.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from bench import load, servers
from bench.common import Check, Sizes, ratio_check, record
from netbat import encode_request

HOST = "127.0.0.1"


def heartbeat(client: int, n: int) -> bytes:
    return encode_request("system.heartbeat", msgspec.msgpack.encode({"nonce": f"c{client}n{n}"}))


def commit(client: int, n: int) -> bytes:
    request = {
        "entity": f"order:{client}",
        "scope": "bench",
        "kind_category": 0xF,
        "kind_type_id": 0x001,
        "payload_hex": msgspec.msgpack.encode(record(client * 1_000_000 + n)).hex(),
    }
    return encode_request("bank.commit", msgspec.msgpack.encode(request))


def run(sizes: Sizes, workdir: Path) -> list[Check]:
    clients, seconds = sizes.line_clients, sizes.server_seconds
    ready = r"REFHOST_READY .*\"port\": (\d+)"
    refhost_argv = ["-m", "refhost", "serve", "--store", str(workdir / "w7-store")]
    with (
        servers.child(refhost_argv, ready, workdir / "w7-refhost.log") as (ref_pid, ref_lines),
        servers.child(["-m", "bench.peer_echo"], r"ECHO_READY (\d+)", workdir / "w7-echo.log") as (
            echo_pid,
            echo_lines,
        ),
    ):
        ref_port = servers.port_of(ref_lines, ready)
        echo_port = servers.port_of(echo_lines, r"ECHO_READY (\d+)")

        def phase(pid: int, port: int, make: Callable[[int, int], bytes]) -> Any:
            return servers.measured(pid, lambda: load.lines(HOST, port, make, clients, seconds))

        ref_beat, beat_figures = phase(ref_pid, ref_port, heartbeat)
        echo_beat, echo_beat_figures = phase(echo_pid, echo_port, heartbeat)
        ref_commit, commit_figures = phase(ref_pid, ref_port, commit)
        echo_commit, echo_commit_figures = phase(echo_pid, echo_port, commit)
    tallies = {
        "heartbeat": beat_figures,
        "echo_heartbeat_lines": echo_beat_figures,
        "commit": commit_figures,
        "echo_commit_lines": echo_commit_figures,
    }
    failed = sum(t.failed for t in (ref_beat, echo_beat, ref_commit, echo_commit))
    done = sum(t.ok for t in (ref_beat, echo_beat, ref_commit, echo_commit))
    if failed > done // 100:
        raise AssertionError(f"{failed} calls failed: {tallies}")
    details = {"clients": clients, "seconds": seconds, **tallies}
    return [
        ratio_check(
            7,
            "NETBAT/1 heartbeat vs anyio echo",
            "calls/s",
            ref_beat.rate,
            echo_beat.rate,
            0.5,
            details,
        ),
        ratio_check(
            7,
            "NETBAT/1 bank.commit vs anyio echo",
            "calls/s",
            ref_commit.rate,
            echo_commit.rate,
            0.5,
            details,
        ),
    ]
