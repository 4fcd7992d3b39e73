"""The real process: ``python -m refhost serve`` (netbat's RequestServer) over TCP, then SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import msgpack  # type: ignore[import-untyped]
import pytest

from netbat import SubEvent, Subscription
from netbat.frames import encode_request
from refhost.__main__ import main
from refhost.server import NonLoopbackRefused, check_bind_host


def call(port: int, line: bytes, *, half_close: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(line)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def err(code: str, message: str) -> bytes:
    return f"ERR {code} {message.encode().hex()}\n".encode()


def ok_ack(reply: bytes) -> dict[str, object]:
    assert reply.startswith(b"OK "), reply
    assert reply.endswith(b"\n")
    ack: dict[str, object] = msgpack.unpackb(bytes.fromhex(reply[3:-1].decode()))
    return ack


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    port: int
    subscribe_port: int = 0
    stderr: bytes = b""


@contextmanager
def served(store: Path, *extra: str) -> Iterator[Served]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "refhost", "serve", "--store", str(store), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    server = Served(proc, 0)
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline().decode()
        assert ready.startswith("REFHOST_READY "), ready
        info = json.loads(ready.removeprefix("REFHOST_READY "))
        assert info["addr"] == "127.0.0.1"
        assert info["protocol"] == "NETBAT/1"
        server.port = int(info["port"])
        assert info["subscribe_protocol"] == "NETBAT/2"
        server.subscribe_port = int(info["subscribe_port"])
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        _, server.stderr = proc.communicate(timeout=20)


def commit_request(entity: str, kind_type_id: int = 1, key: str | None = None) -> bytes:
    request = {
        "entity": entity,
        "scope": "bank",
        "kind_category": 0xF,
        "kind_type_id": kind_type_id,
        "payload_hex": msgpack.packb({"n": 1}).hex(),
        "idempotency_key_hex": key,
    }
    packed: bytes = msgpack.packb(request)
    return packed


def test_serve_heartbeat_and_commit(tmp_path: Path) -> None:
    with served(tmp_path / "s") as server:
        port = server.port
        beat = msgpack.packb({"nonce": "tcp"})
        assert ok_ack(call(port, encode_request("system.heartbeat", beat)))["nonce"] == "tcp"
        request = commit_request("acct:tcp", key="11" * 16)
        ack = ok_ack(call(port, encode_request("bank.commit", request)))
        assert ack["event_id_hex"] == "11" * 16
        bad_request = msgpack.packb({**msgpack.unpackb(request), "entity": ""})
        bad = call(port, encode_request("bank.commit", bad_request))
        code, message = bad.rstrip(b"\n").split(b" ")[1:]
        assert code == b"handler"
        assert (
            bytes.fromhex(message.decode())
            .decode()
            .startswith(
                "runtime error: handler for operation `bank.commit` failed with invalid_input: "
                "coordinate: "
            )
        )
        undeclared = call(port, encode_request("bank.commit", commit_request("acct:tcp", 0x101)))
        assert undeclared == err(
            "handler",
            "runtime error: handler for operation `bank.commit` failed with invalid_input: "
            "event kind: 0xf101 is not a committable kind of this host",
        )
    assert server.proc.returncode == 0, server.stderr
    assert b"shut down" in server.stderr


def test_commit_kind_option_replaces_the_default_set(tmp_path: Path) -> None:
    with served(tmp_path / "s", "--commit-kind", "F:101") as server:
        port = server.port
        assert ok_ack(call(port, encode_request("bank.commit", commit_request("a:1", 0x101))))
        refused = call(port, encode_request("bank.commit", commit_request("a:1", 0x001)))
        assert b"6e6f74206120636f6d6d69747461626c65" in refused  # "not a committable"


HANDLER_PREFIX = "runtime error: handler for operation `system.heartbeat` failed with "

MALFORMED: list[tuple[bytes, bytes]] = [
    (b"hello\n", err("malformed_request", "malformed request: missing NETBAT/1 protocol prefix")),
    (
        b"CALL ping 00\n",
        err("malformed_request", "malformed request: missing NETBAT/1 protocol prefix"),
    ),
    (
        b"\xff\xfe\n",
        err("malformed_request", "malformed request: missing NETBAT/1 protocol prefix"),
    ),
    (b"\n", err("malformed_request", "malformed request: empty line")),
    (
        b"NETBAT/2 CALL system.heartbeat 80\n",
        err("unsupported_protocol_version", "unsupported protocol version: NETBAT/2"),
    ),
    (
        b"NETBAT/1 CALL system.heartbeat 8\n",
        err("malformed_request", "malformed request: hex input has odd length"),
    ),
    (
        b"NETBAT/1 CALL bad..name 80\n",
        err("malformed_request", "malformed request: operation dot segments must be non-empty"),
    ),
    (
        b"NETBAT/1 CALL system.heartbeat 80 extra\n",
        err("malformed_request", "malformed request: too many fields"),
    ),
    (
        b"NETBAT/1 CALL no.such.op 80\n",
        err("unknown_operation", "runtime error: unknown operation `no.such.op`"),
    ),
    (
        b"NETBAT/1 CALL system.heartbeat 80\n",
        err(
            "handler",
            HANDLER_PREFIX + "invalid_input: decode request: Object missing required field `nonce`",
        ),
    ),
]


def test_storm(tmp_path: Path) -> None:
    """Malformed lines, an oversized line, a silent client and 30 concurrent valid calls."""
    read_timeout = 3.0
    with served(tmp_path / "s", "--read-timeout", str(read_timeout)) as server:
        proc, port = server.proc, server.port
        silent = socket.create_connection(("127.0.0.1", port), timeout=read_timeout + 10)
        try:
            started = time.monotonic()
            for line, expected in MALFORMED:
                assert call(port, line) == expected, line
            # EOF mid-line counts the partial line as a frame; EOF before any byte: no reply.
            assert call(port, b"NETBAT/1 CALL", half_close=True) == err(
                "malformed_request", "malformed request: missing operation"
            )
            assert call(port, b"", half_close=True) == b""
            oversized = b"NETBAT/1 CALL system.heartbeat " + b"80" * 40_000 + b"\n"
            assert len(oversized) > 65536
            assert call(port, oversized) == err(
                "line_too_long", "request line exceeded 65536 bytes"
            )

            def valid(i: int) -> dict[str, object]:
                if i % 2:
                    return ok_ack(
                        call(port, encode_request("bank.commit", commit_request(f"acct:{i}")))
                    )
                beat = msgpack.packb({"nonce": f"n{i}"})
                return ok_ack(call(port, encode_request("system.heartbeat", beat)))

            with ThreadPoolExecutor(30) as pool:
                acks = list(pool.map(valid, range(30)))
            assert [a["nonce"] for a in acks[::2]] == [f"n{i}" for i in range(0, 30, 2)]
            assert len({a["event_id_hex"] for a in acks[1::2]}) == 15
            # Everything above was served while the silent client held its connection.
            assert time.monotonic() - started < read_timeout
            assert proc.poll() is None
            # The silent client is answered with refbat's read-timeout frame, then closed.
            chunks = []
            while chunk := silent.recv(65536):
                chunks.append(chunk)
            assert b"".join(chunks) == err("io", "io error: WouldBlock")
        finally:
            silent.close()
        beat = msgpack.packb({"nonce": "after"})
        assert ok_ack(call(port, encode_request("system.heartbeat", beat)))["nonce"] == "after"
        assert proc.poll() is None
    assert server.proc.returncode == 0, server.stderr


def test_non_loopback_bind_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(NonLoopbackRefused):
        check_bind_host("0.0.0.0", allow_remote=False)
    check_bind_host("0.0.0.0", allow_remote=True)
    check_bind_host("::1", allow_remote=False)
    assert main(["serve", "--store", str(tmp_path / "s"), "--host", "10.0.0.1"]) == 2
    assert "--allow-remote" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_served_commits_reach_a_netbat2_subscriber(tmp_path: Path) -> None:
    with served(tmp_path / "s") as server:
        ack = ok_ack(call(server.port, encode_request("bank.commit", commit_request("acct:sub"))))
        with Subscription(
            "127.0.0.1", server.subscribe_port, "events.category.15.v1", read_timeout=5.0
        ) as sub:
            frame = next(iter(sub))
            assert isinstance(frame, SubEvent)
            summary = msgpack.unpackb(frame.payload)
            assert summary["event_id_hex"] == ack["event_id_hex"]
            assert (summary["entity"], summary["scope"]) == ("acct:sub", "bank")
            sub.cancel()
    assert server.proc.returncode == 0, server.stderr
