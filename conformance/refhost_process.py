"""The reference host as a real process, and a msgpack client for its ten NETBAT/1 operations.

``served(store)`` starts ``python -m refhost serve`` on a free loopback port, waits for its
ready line and stops it with SIGTERM (a clean close of the store). ``RefhostClient.op`` sends
one call with ``netbat.call`` and decodes the ack; requests and acks are plain dicts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]

import netbat

TEN_OPS = (
    "system.heartbeat",
    "bank.commit",
    "event.get",
    "event.query",
    "receipt.verify",
    "event.walk",
    "evidence.chain_walk",
    "evidence.store_resource",
    "evidence.read_walk",
    "evidence.projection_run",
)
SUMMARY_FIELDS = [
    "event_id_hex",
    "global_sequence",
    "wall_ms",
    "clock",
    "correlation_id_hex",
    "causation_id_hex",
    "kind_category",
    "kind_type_id",
    "entity",
    "scope",
    "content_hash_hex",
]


@dataclass
class RefhostClient:
    port: int

    def raw(self, op: str, request: bytes) -> bytes:
        return netbat.call("127.0.0.1", self.port, op, request, timeout=10)

    def op(self, op: str, request: dict[str, Any]) -> dict[str, Any]:
        ack: dict[str, Any] = msgpack.unpackb(self.raw(op, msgpack.packb(request)))
        return ack

    def commit(self, entity: str, type_id: int, value: object, key: bytes | None = None) -> Any:
        return self.op(
            "bank.commit",
            {
                "entity": entity,
                "scope": "scope:conformance",
                "kind_category": 0xF,
                "kind_type_id": type_id,
                "payload_hex": msgpack.packb(value).hex(),
                "idempotency_key_hex": None if key is None else key.hex(),
            },
        )


@contextmanager
def served(store: Path) -> Iterator[RefhostClient]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "refhost", "serve", "--store", str(store), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline().decode()
        if not ready.startswith("REFHOST_READY "):
            _, err = proc.communicate(timeout=10)
            raise AssertionError(f"refhost did not start: {ready!r} {err.decode()}")
        info = json.loads(ready.removeprefix("REFHOST_READY "))
        assert info["protocol"] == "NETBAT/1"
        yield RefhostClient(int(info["port"]))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        assert code == 0, proc.stderr.read().decode() if proc.stderr else code
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
