"""The real process: ``python -m refhost serve`` over TCP, then SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import msgpack  # type: ignore[import-untyped]
import pytest
from refhost.__main__ import main
from refhost.server import NonLoopbackRefused, check_bind_host

from netbat.frames import encode_request


def call(port: int, line: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(line)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_serve_heartbeat_and_commit(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "refhost", "serve", "--store", str(tmp_path / "s"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline().decode()
        assert ready.startswith("REFHOST_READY "), ready
        info = json.loads(ready.removeprefix("REFHOST_READY "))
        assert info["addr"] == "127.0.0.1"
        assert info["protocol"] == "NETBAT/1"
        port = int(info["port"])
        beat = msgpack.packb({"nonce": "tcp"})
        reply = call(port, encode_request("system.heartbeat", beat))
        assert reply.startswith(b"OK ")
        assert reply.endswith(b"\n")
        assert msgpack.unpackb(bytes.fromhex(reply[3:-1].decode()))["nonce"] == "tcp"
        request = {
            "entity": "acct:tcp",
            "scope": "bank",
            "kind_category": 0xF,
            "kind_type_id": 1,
            "payload_hex": msgpack.packb({"n": 1}).hex(),
            "idempotency_key_hex": "11" * 16,
        }
        reply = call(port, encode_request("bank.commit", msgpack.packb(request)))
        ack = msgpack.unpackb(bytes.fromhex(reply[3:-1].decode()))
        assert ack["event_id_hex"] == "11" * 16
        bad = call(port, encode_request("bank.commit", msgpack.packb({**request, "entity": ""})))
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
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert b"shut down" in err


def test_non_loopback_bind_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(NonLoopbackRefused):
        check_bind_host("0.0.0.0", allow_remote=False)
    check_bind_host("0.0.0.0", allow_remote=True)
    check_bind_host("::1", allow_remote=False)
    assert main(["serve", "--store", str(tmp_path / "s"), "--host", "10.0.0.1"]) == 2
    assert "--allow-remote" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
