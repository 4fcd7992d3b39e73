"""A tenant's journal over NETBAT/1, read-only (``batenbase serve --netbat-port/-tenant``)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import msgpack  # type: ignore[import-untyped]
import pytest
from batenbase_support import caller

import netbat
from batenbase.__main__ import main
from batenbase._events import BLOCK_KINDS, BLOCK_SCOPE
from batenbase._tenant import block_entity
from batenbase.netbat_front import COMMIT_REFUSED, NetbatFrontError, start
from batenbase.service import BatenBase

ROOT = Path(__file__).resolve().parents[2]
PYTHONPATH = os.pathsep.join(
    str(ROOT / p)
    for p in (
        "circuits/src",
        "packages/batpak/src",
        "packages/syncbat/src",
        "packages/netbat/src",
        "packages/hostbat/src",
    )
)
ENV = {**os.environ, "PYTHONPATH": PYTHONPATH}
REFUSED = (
    f"runtime error: handler for operation `bank.commit` failed with invalid_input: "
    f"{COMMIT_REFUSED}"
)


def _call(port: int, op: str, request: dict[str, Any]) -> dict[str, Any]:
    ack: dict[str, Any] = msgpack.unpackb(
        netbat.call("127.0.0.1", port, op, msgpack.packb(request))
    )
    return ack


def _block_events(port: int, key: str) -> list[dict[str, Any]]:
    ack = _call(
        port, "event.query", {"entity": block_entity(key), "scope": BLOCK_SCOPE, "limit": 16}
    )
    entries: list[dict[str, Any]] = ack["entries"]
    return entries


def _commit_request() -> dict[str, Any]:
    return {
        "entity": block_entity("user:mallory"),
        "scope": BLOCK_SCOPE,
        "kind_category": 0xF,
        "kind_type_id": 1,
        "payload_hex": msgpack.packb({"n": 1}).hex(),
    }


def _assert_commit_refused(port: int) -> None:
    with pytest.raises(netbat.HandlerFailed) as refused:
        _call(port, "bank.commit", _commit_request())
    assert str(refused.value) == REFUSED


def _admin(data: Path, *args: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-m", "batenbase", "admin", "--data", str(data), *args],
        env=ENV,
        capture_output=True,
        check=True,
        timeout=30,
    )
    return json.loads(out.stdout)


def test_serve_netbat_front_reads_the_tenant_journal(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _admin(data, "create-tenant", "acme")
    token = _admin(data, "issue-token", "acme", "alice", "--role", "writer")["token"]
    out = tmp_path / "stdout"
    cmd = [sys.executable, "-m", "batenbase", "serve", "--data", str(data), "--port", "0"]
    cmd += ["--netbat-port", "0", "--netbat-tenant", "acme"]
    with out.open("wb") as stdout:
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, env=ENV)
    try:
        deadline = time.monotonic() + 15
        text = ""
        while time.monotonic() < deadline and proc.poll() is None:
            text = out.read_text()
            if "NETBAT/1" in text:
                break
            time.sleep(0.05)
        url = re.search(r"listening on (http://\S+)", text)
        front = re.search(r"NETBAT/1 \(read-only\) for tenant acme on 127\.0\.0\.1:(\d+)", text)
        assert url is not None, text
        assert front is not None, text
        port = int(front.group(1))

        beat = _call(port, "system.heartbeat", {"nonce": "bb"})
        assert beat["nonce"] == "bb"
        assert beat["server_ts_ms"] > 0

        headers = {"Authorization": f"Bearer {token}"}
        put = httpx.put(
            url.group(1) + "/blocks/user:alice", json={"data": {"n": 1}}, headers=headers
        )
        assert put.status_code in (200, 201), put.text
        seq = put.json()["seq"]
        (entry,) = _block_events(port, "user:alice")
        assert entry["global_sequence"] == seq
        assert (entry["kind_category"] << 12) | entry["kind_type_id"] == BLOCK_KINDS[0]
        event = _call(port, "event.get", {"event_id_hex": entry["event_id_hex"]})
        assert msgpack.unpackb(bytes.fromhex(event["payload_hex"]))["key"] == "user:alice"

        _assert_commit_refused(port)
        assert len(_block_events(port, "user:mallory")) == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert out.read_text().rstrip().endswith("BatenBase stopped")


def test_front_follows_compaction_in_process(tmp_path: Path) -> None:
    with BatenBase.open(tmp_path / "data") as bb:
        bb.create_tenant("acme")
        writer = caller(bb, "alice")
        bb.put_block(writer, "k", 1)
        front = start(bb, "acme", "127.0.0.1", 0)
        try:
            assert len(_block_events(front.port, "k")) == 1
            last = bb.put_block(writer, "k", 2)
            assert len(_block_events(front.port, "k")) == 2
            bb.compact("acme", keep_revisions=1)
            (kept,) = _block_events(front.port, "k")
            assert kept["global_sequence"] == last.seq
            _assert_commit_refused(front.port)
        finally:
            front.stop()
            front.stop()  # idempotent


def test_front_refuses_unknown_tenant_and_remote_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    with BatenBase.open(data) as bb:
        with pytest.raises(NetbatFrontError, match="no tenant 'nope'"):
            start(bb, "nope", "127.0.0.1", 0)
        bb.create_tenant("acme")
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            with pytest.raises(NetbatFrontError, match="cannot listen for NETBAT/1"):
                start(bb, "acme", "127.0.0.1", taken.getsockname()[1])
    serve = ["serve", "--data", str(data), "--port", "0"]
    assert main([*serve, "--netbat-port", "0", "--netbat-tenant", "nope"]) == 2
    assert "no tenant 'nope'" in capsys.readouterr().err
    assert main([*serve, "--netbat-port", "0"]) == 2
    assert "go together" in capsys.readouterr().err
    remote = [*serve, "--host", "0.0.0.0", "--netbat-port", "0", "--netbat-tenant", "acme"]
    assert main(remote) == 2
    assert "loopback only" in capsys.readouterr().err
