"""kill -9 a real `batenbase serve` process under concurrent writes, restart, read everything back.

Eight threads write through HTTP: fresh PUTs, overwrites, DELETEs of their own acknowledged
blocks and POST /events. Each 2xx is recorded with what it acknowledged. The server is killed
with SIGKILL mid-stream, twice, at seeded moments; after each restart on the same directory
everything acknowledged so far is checked.

PROVES: INV-DURABLE-ACKS (after SIGKILL and restart: every acknowledged PUT reads back with
its data and at least its acknowledged revision, every acknowledged DELETE reads 404 and shows
h=1 with its data to an admin asking, every acknowledged POST /events is in the scan with its
sequence and details; nothing half-written: every block that reads back carries data some
writer sent for that key).
CATCHES: acknowledging before the fsync, an in-memory projection acknowledged ahead of the
journal, a restart that rebuilds the projection from a stale checkpoint, torn writes visible
after recovery.
SEEDED: the kill moments come from random.Random(6).
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from bbserver import BBServer

from batenbase.client import ApiError, Client

WRITERS = 8


class Acks:
    """What the server acknowledged, per kind, and everything ever sent per key."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.puts: dict[str, tuple[int, Any]] = {}  # key -> (acked rev, data)
        self.deletes: dict[str, int] = {}  # key -> acked rev of the delete
        self.events: dict[int, Any] = {}  # seq -> details
        self.sent: dict[str, list[Any]] = {}
        self.deleting: set[str] = set()  # deletes sent, maybe applied, never acknowledged
        self.refused: list[str] = []  # error answers to requests a correct server accepts


def _writer(url: str, token: str, n: int, round_no: int, acks: Acks, stop: threading.Event) -> None:
    rng = random.Random(n * 1000 + round_no)
    own: list[str] = []
    with Client(url, token, timeout=10) as c:
        i = 0
        while not stop.is_set():
            i += 1
            roll = rng.random()
            try:
                if roll < 0.55 or not own:
                    key = f"r{round_no}w{n}:{i}"
                    data = {"n": n, "i": i, "pad": "x" * rng.randrange(0, 200)}
                    with acks.lock:
                        acks.sent.setdefault(key, []).append(data)
                    rev = c.put_block(key, data)["rev"]
                    with acks.lock:
                        acks.puts[key] = (rev, data)
                    own.append(key)
                elif roll < 0.75:
                    key = rng.choice(own)
                    data = {"n": n, "i": i, "over": True}
                    with acks.lock:
                        acks.sent[key].append(data)
                    rev = c.put_block(key, data)["rev"]
                    with acks.lock:
                        acks.puts[key] = (rev, data)
                elif roll < 0.85:
                    key = own.pop(rng.randrange(len(own)))
                    with acks.lock:
                        acks.deleting.add(key)
                    rev = c.delete_block(key)["rev"]
                    with acks.lock:
                        acks.deleting.discard(key)
                        acks.deletes[key] = rev
                        del acks.puts[key]
                else:
                    details = {"n": n, "i": i, "round": round_no}
                    seq = c.append_event("kill.probe", details).seq
                    with acks.lock:
                        acks.events[seq] = details
            except ApiError as err:
                with acks.lock:
                    acks.refused.append(f"writer {n} step {i}: {err}")
            except httpx.HTTPError:
                return  # the server is gone


def _check(srv: BBServer, admin: str, acks: Acks) -> None:
    problems: list[str] = []
    with srv.client(admin) as c:
        for key, (rev, data) in sorted(acks.puts.items()):
            try:
                block = c.get_block(key, include_redacted=key in acks.deleting)
            except ApiError as err:
                problems.append(f"acked put {key} rev {rev}: {err}")
                continue
            if block.rev < rev or block.data not in acks.sent[key]:
                problems.append(f"{key}: acked rev {rev} {data}, read rev {block.rev} {block.data}")
            elif block.rev == rev and block.data != data:
                problems.append(f"{key}: rev {rev} reads {block.data}, acked {data}")
        for key, rev in sorted(acks.deletes.items()):
            gone = srv.request("GET", f"/blocks/{key}", admin)
            asked = srv.request("GET", f"/blocks/{key}?include_redacted=true", admin)
            if gone.status_code != 404 or asked.status_code != 200:
                problems.append(f"acked delete {key}: {gone.status_code} / {asked.text}")
            elif asked.json()["h"] != 1 or asked.json()["rev"] < rev:
                problems.append(f"acked delete {key} rev {rev}: {asked.text}")
        found: dict[int, Any] = {}
        cursor = None
        while True:
            page = c.scan_events(since="1h", kind="kill.probe", limit=1000, cursor=cursor)
            found.update({e.seq: e.details for e in page.items})
            cursor = page.next_cursor
            if cursor is None:
                break
        for seq, details in sorted(acks.events.items()):
            if found.get(seq) != details:
                problems.append(f"acked event seq {seq} {details}: read {found.get(seq)}")
        for block in c.list_blocks(limit=1000).items:
            if block.key in acks.sent and block.data not in acks.sent[block.key]:
                problems.append(f"{block.key} holds data nobody sent: {block.data}")
    problems += acks.refused  # after the losses, which say more
    assert not problems, "\n".join(problems[:20])


@pytest.mark.invariant("INV-DURABLE-ACKS")
def test_kill_9_under_concurrent_writes_loses_no_acknowledged_write(tmp_path: Path) -> None:
    rng = random.Random(6)
    srv = BBServer(tmp_path).start()
    try:
        tokens = srv.tenant("crash", "unlimited")
        acks = Acks()
        for round_no in range(2):
            stop = threading.Event()
            threads = [
                threading.Thread(
                    target=_writer, args=(srv.url, tokens["writer"], n, round_no, acks, stop)
                )
                for n in range(WRITERS)
            ]
            for t in threads:
                t.start()
            wanted = rng.randrange(100, 180)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with acks.lock:
                    if len(acks.puts) + len(acks.deletes) + len(acks.events) >= wanted * (
                        round_no + 1
                    ):
                        break
                time.sleep(0.01)
            time.sleep(rng.random() * 0.05)
            srv.kill()
            stop.set()
            for t in threads:
                t.join(15)
            assert len(acks.puts) > 50, "too few writes were acknowledged to test anything"
            assert acks.deletes, "no delete was acknowledged"
            assert acks.events, "no event was acknowledged"
            srv.start()
            _check(srv, tokens["admin"], acks)
    finally:
        srv.close()
