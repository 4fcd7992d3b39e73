from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path

import blake3
import msgspec
import pytest
from batenbase_support import T0, Clock, caller

from batenbase.errors import (
    BatenBaseError,
    Forbidden,
    NotFound,
    QuotaExceeded,
    Unauthorized,
)
from batenbase.model import Caller
from batenbase.service import BatenBase
from batpak import Store


def _store(bb: BatenBase) -> Store:
    return bb._tenants["acme"].store


def _state(bb: BatenBase, who: Caller) -> tuple[object, ...]:
    blocks = bb.list_blocks(who, limit=1000).items
    histories = [bb.history(who, b.key).items for b in blocks]
    return blocks, histories, bb.scan_events(who, limit=1000).items, bb.tenant_info(who)


def test_quota_is_exact_under_16_racing_threads(bb: BatenBase) -> None:
    writers = [caller(bb, f"w{n}") for n in range(16)]
    landed: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for i in range(4):
            key = f"k:{n}:{i}"
            try:
                bb.put_block(writers[n], key, i)
            except QuotaExceeded:
                with lock:
                    refused.append(key)
            else:
                with lock:
                    landed.append(key)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    admin = caller(bb, "root", "admin")
    assert len(landed) == 20
    assert len(refused) == 44
    assert bb.tenant_info(admin).usage == 20
    assert sorted(b.key for b in bb.list_blocks(admin, limit=1000).items) == sorted(landed)
    events = bb.scan_events(admin, kind="bb.quota.refused", limit=1000).items
    assert sorted(e.details["key"] for e in events) == sorted(refused)
    # updates of live keys and deletes stay possible at the cap; unlimited lifts it
    assert bb.put_block(admin, landed[0], "again").rev == 2
    bb.delete_block(admin, landed[0])
    bb.put_block(admin, "new", 1)
    with pytest.raises(QuotaExceeded):
        bb.put_block(admin, "newer", 1)
    assert bb.set_plan("acme", "unlimited").quota is None
    bb.put_block(admin, "newer", 1)


def test_writes_are_durable_and_share_fsyncs(
    bb: BatenBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    writers = [caller(bb, f"w{n}") for n in range(8)]
    bb.set_plan("acme", "unlimited")
    calls = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    store = _store(bb)

    def work(n: int) -> None:
        for i in range(10):
            block = bb.put_block(writers[n], f"k:{n}:{i}", i)
            assert store.frontier().durable.global_sequence >= block.seq

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Writers share fsyncs: fewer fsyncs than writes (about a third here on 2 cores).
    assert 0 < len(calls) < 80


def test_reopen_shows_identical_state(tmp_path: Path, clock: Clock) -> None:
    bb = BatenBase.open(tmp_path / "data", clock=clock)
    assert bb.bootstrap_operator_token() is not None
    bb.create_tenant("acme")
    token = bb.issue_token("acme", "root", "admin").token
    admin = bb.authenticate(token)
    for i in range(5):
        clock.now += 1
        bb.put_block(admin, f"k{i}", {"i": i}, v=i % 3)
    bb.delete_block(admin, "k1")
    bb.append_event(admin, "deploy", {"version": 3})
    before = _state(bb, admin)
    bb.close()
    again = BatenBase.open(tmp_path / "data", clock=clock)
    try:
        assert again.bootstrap_operator_token() is None
        assert _state(again, again.authenticate(token)) == before
    finally:
        again.close()


def _verify_chain(events: list[dict[str, object]]) -> None:
    previous: str | None = None
    for event in events:
        payload = event["payload_hex"]
        if isinstance(payload, str):
            assert blake3.blake3(bytes.fromhex(payload)).hexdigest() == event["content_hash"]
        if previous is not None:
            assert event["prev_hash"] == previous
        previous = str(event["content_hash"])


def test_history_as_of_and_proof_verify(bb: BatenBase, clock: Clock) -> None:
    w = caller(bb, "w")
    for i in range(5):
        clock.now = T0 + 100 * i
        bb.put_block(w, "k", {"n": i})
    page = bb.history(w, "k", limit=2)
    assert [b.rev for b in page.items] == [5, 4]
    revs = [b.rev for b in page.items]
    while page.next_cursor is not None:
        page = bb.history(w, "k", limit=2, cursor=page.next_cursor)
        revs += [b.rev for b in page.items]
    assert revs == [5, 4, 3, 2, 1]
    assert bb.get_block(w, "k", rev=2).data == {"n": 1}
    assert bb.get_block(w, "k", at=T0 + 250).data == {"n": 2}
    with pytest.raises(NotFound):
        bb.get_block(w, "k", at=T0 - 1)
    with pytest.raises(NotFound):
        bb.get_block(w, "k", rev=6)
    proof = bb.proof(w, "k")
    assert proof.rev == 5
    assert len(proof.events) == 5
    assert proof.events[0]["prev_hash"] == "00" * 32
    _verify_chain(proof.events)
    history = {b.rev: b.hash for b in bb.history(w, "k").items}
    assert {e["rev"]: e["content_hash"] for e in proof.events} == history
    payload = msgspec.msgpack.decode(bytes.fromhex(str(proof.events[-1]["payload_hex"])))
    assert payload["key"] == "k"
    assert payload["rev"] == 5


def test_compact_keeps_latest_revisions_and_all_audit(
    tmp_path: Path, bb: BatenBase, clock: Clock
) -> None:
    admin = caller(bb, "root", "admin")
    for i in range(4):
        bb.put_block(admin, "a", i)
    bb.put_block(admin, "b", 0)
    bb.append_event(admin, "note", {"x": 1})
    audit_before = [e for e in bb.scan_events(admin, limit=1000).items if e.kind != "bb.block.put"]
    keep = {b.rev: b.hash for b in bb.history(admin, "a").items if b.rev >= 3}
    result = bb.compact("acme", keep_revisions=2)
    assert result["events_dropped"] == 2
    assert {b.rev: b.hash for b in bb.history(admin, "a").items} == keep
    assert bb.get_block(admin, "a").data == 3
    assert bb.get_block(admin, "b").data == 0
    audit_after = [e for e in bb.scan_events(admin, limit=1000).items if e.kind.startswith("n")]
    assert [e for e in audit_before if e.kind == "note"] == audit_after
    _verify_chain(bb.proof(admin, "a").events)
    state = _state(bb, admin)
    bb.close()
    again = BatenBase.open(tmp_path / "data", clock=clock, free_quota=20)
    try:
        assert _state(again, admin) == state
    finally:
        again.close()


def test_service_records_its_own_audit_events(bb: BatenBase) -> None:
    admin = caller(bb, "root", "admin")
    reader = caller(bb, "r", "reader")
    bb.put_block(admin, "k", 1)
    bb.delete_block(admin, "k")
    with pytest.raises(Forbidden):
        bb.put_block(reader, "k", 1)
    bb.revoke_token(reader.token_id)
    bb.set_read_receipts(admin, True)
    bb.set_plan("acme", "unlimited")
    bb.append_event(admin, "deploy.done", {"ok": True})
    kinds = [e.kind for e in bb.scan_events(admin, limit=1000).items]
    assert kinds == [
        "deploy.done",
        "bb.tenant.plan",
        "bb.tenant.read_receipts",
        "bb.token.revoked",
        "bb.request.denied",
        "bb.block.delete",
        "bb.block.put",
        "bb.token.issued",
        "bb.token.issued",
        "bb.tenant.created",
    ]
    event = bb.scan_events(admin, limit=1).items[0]
    assert (event.observer, event.details) == ("root", {"ok": True})


def test_scan_events_filters_and_pages(bb: BatenBase, clock: Clock) -> None:
    w = caller(bb, "w")
    for i in range(30):
        clock.now = T0 + 60 * i
        bb.append_event(w, "even" if i % 2 == 0 else "odd", {"i": i})
    clock.now = T0 + 60 * 29
    recent = bb.scan_events(w, since="15m", kind="odd").items
    assert [e.details["i"] for e in recent] == [29, 27, 25, 23, 21, 19, 17, 15]
    assert [
        e.details["i"] for e in bb.scan_events(w, since="1h", until=T0 + 60 * 20, kind="even").items
    ] == [20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0]
    assert len(bb.scan_events(w, since=str(T0 + 60 * 25), kind="even").items) == 2
    got: list[int] = []
    cursor = None
    while True:
        page = bb.scan_events(w, kind="even", limit=4, cursor=cursor)
        got += [e.details["i"] for e in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert got == list(range(28, -1, -2))
    seqs = [e.seq for e in bb.scan_events(w, limit=1000).items]
    assert seqs == sorted(seqs, reverse=True)


def test_read_receipts_are_batched(tmp_path: Path, clock: Clock) -> None:
    bb = BatenBase.open(tmp_path / "d", clock=clock, receipt_batch=50, receipt_interval=60.0)
    try:
        bb.create_tenant("acme")
        admin = caller(bb, "root", "admin")
        reader = caller(bb, "r", "reader")
        bb.put_block(admin, "k", 1)
        bb.get_block(reader, "k")
        assert bb.readers(admin, "k") == []  # off by default
        bb.set_read_receipts(admin, True)
        tenant = bb._tenants["acme"]
        appends = tenant.appends
        for _ in range(100):
            bb.get_block(reader, "k")
        deadline = time.monotonic() + 5
        while tenant.pending_reads and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        # 100 reads: at most one batch append per 50 (the flusher may take more at once)
        assert 1 <= tenant.appends - appends <= 2
        receipts = bb.readers(admin, "k", limit=1000)
        assert len(receipts) == 100
        assert {(r.observer, r.rev) for r in receipts} == {("r", 1)}
        bb.get_block(reader, "k")
    finally:
        bb.close()
    again = BatenBase.open(tmp_path / "d", clock=clock)
    try:
        root = again.authenticate(again.issue_token("acme", "root2", "admin").token)
        assert len(again.readers(root, "k", limit=1000)) == 101
    finally:
        again.close()


def test_token_revocation(bb: BatenBase) -> None:
    issued = bb.issue_token("acme", "w", "writer")
    w = bb.authenticate(issued.token)
    bb.put_block(w, "k", 1)
    bb.revoke_token(issued.token_id)
    with pytest.raises(Unauthorized):
        bb.authenticate(issued.token)
    with pytest.raises(Unauthorized):
        bb.get_block(w, "k")  # a Caller minted before the revocation is refused too
    with pytest.raises(NotFound):
        bb.revoke_token("no-such-token")
    with pytest.raises(Unauthorized):
        bb.authenticate(issued.token[:-1] + ("A" if issued.token[-1] != "A" else "B"))


def test_projection_checkpoint_is_a_hint_never_the_truth(tmp_path: Path, clock: Clock) -> None:
    data = tmp_path / "data"
    bb = BatenBase.open(data, clock=clock)
    bb.create_tenant("acme")
    token = bb.issue_token("acme", "root", "admin").token
    admin = bb.authenticate(token)
    bb.put_block(admin, "a", 1)
    bb.close()
    checkpoint = data / "checkpoints" / "acme.bbproj"
    old = checkpoint.read_bytes()
    bb = BatenBase.open(data, clock=clock)
    bb.put_block(admin, "a", 2)
    bb.put_block(admin, "b", 1)
    expected = _state(bb, admin)
    bb.close()
    for content in (old, b"garbage", b""):  # an older checkpoint, a damaged one, an empty one
        checkpoint.write_bytes(content)
        again = BatenBase.open(data, clock=clock)
        try:
            assert _state(again, again.authenticate(token)) == expected
        finally:
            again.close()


def test_crash_without_close_keeps_every_acknowledged_write(tmp_path: Path, clock: Clock) -> None:
    bb = BatenBase.open(tmp_path / "data", clock=clock)
    bb.create_tenant("acme")
    token = bb.issue_token("acme", "root", "admin").token
    admin = bb.authenticate(token)
    for i in range(10):
        bb.put_block(admin, f"k{i}", i)
    bb.delete_block(admin, "k3")
    expected = _state(bb, admin)
    bb._flusher.stop()
    for tenant in bb._tenants.values():
        tenant.store._abandon()  # as kill -9 would: no close event, no checkpoint
    bb._operator._store._abandon()
    again = BatenBase.open(tmp_path / "data", clock=clock)
    try:
        assert _state(again, again.authenticate(token)) == expected
    finally:
        again.close()


def test_read_receipts_flush_on_a_timer(tmp_path: Path, clock: Clock) -> None:
    bb = BatenBase.open(tmp_path / "d", clock=clock, receipt_batch=1000, receipt_interval=0.05)
    try:
        bb.create_tenant("acme")
        admin = caller(bb, "root", "admin")
        bb.put_block(admin, "k", 1)
        bb.set_read_receipts(admin, True)
        tenant = bb._tenants["acme"]
        appends = tenant.appends
        for _ in range(3):
            bb.get_block(admin, "k")
        deadline = time.monotonic() + 5
        while tenant.appends == appends and time.monotonic() < deadline:
            time.sleep(0.01)
        assert tenant.appends - appends == 1
        assert len(tenant.index.reads["k"]) == 3  # journaled, not just buffered
    finally:
        bb.close()


def test_mixed_load_with_compaction_stays_consistent(tmp_path: Path) -> None:
    bb = BatenBase.open(tmp_path / "d", free_quota=30, receipt_batch=20, receipt_interval=0.01)
    bb.create_tenant("acme")
    admin = caller(bb, "root", "admin")
    bb.set_read_receipts(admin, True)
    writers = [caller(bb, f"w{n}", "writer", (2,)) for n in range(6)]
    unexpected: list[str] = []
    stop = time.monotonic() + 1.0

    def work(n: int) -> None:
        rng = random.Random(n)
        who = writers[n]
        while time.monotonic() < stop:
            key = f"k{rng.randrange(40)}"
            op = rng.randrange(6)
            try:
                if op == 0:
                    bb.put_block(who, key, {"n": n}, v=rng.choice([0, 1, 2]))
                elif op == 1:
                    bb.get_block(who, key)
                elif op == 2:
                    bb.delete_block(who, key)
                elif op == 3:
                    bb.list_blocks(who, limit=10)
                elif op == 4:
                    bb.history(who, key)
                    bb.proof(who, key)
                else:
                    bb.append_event(who, "tick", {"n": n})
            except BatenBaseError:
                pass
            except Exception as exc:  # the point: catch anything else
                unexpected.append(repr(exc))

    def compactor() -> None:
        while time.monotonic() < stop:
            bb.compact("acme", keep_revisions=2)
            time.sleep(0.2)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    threads.append(threading.Thread(target=compactor))
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert unexpected == []
    assert bb.tenant_info(admin).usage <= 30
    state = _state(bb, admin)
    bb.close()
    again = BatenBase.open(tmp_path / "d", free_quota=30)
    try:
        assert _state(again, admin) == state
        report = again._tenants["acme"].store.verify_chain()
        assert report.content_hash_mismatches == ()  # dropped revisions only leave old links
    finally:
        again.close()
