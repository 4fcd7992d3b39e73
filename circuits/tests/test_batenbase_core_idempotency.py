"""Idempotency-Key: a retried write answers the original, across restarts and compaction."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from batenbase_support import Clock, caller

from batenbase.errors import BadRequest, PreconditionFailed
from batenbase.service import BatenBase


def test_a_retried_put_answers_the_original_and_writes_once(bb: BatenBase, clock: Clock) -> None:
    alice = caller(bb, "alice")
    first = bb.put_block(alice, "k", {"n": 1}, idempotency_key="req-1")
    clock.now += 5
    again = bb.put_block(alice, "k", {"n": 1}, idempotency_key="req-1")
    assert again == first
    assert [b.rev for b in bb.history(alice, "k").items] == [1]
    # Without a key, the same body is a second revision.
    assert bb.put_block(alice, "k", {"n": 1}).rev == 2


def test_a_key_reused_for_another_request_is_refused(bb: BatenBase) -> None:
    alice = caller(bb, "alice")
    bb.put_block(alice, "k", 1, idempotency_key="req-1")
    with pytest.raises(PreconditionFailed) as err:
        bb.put_block(alice, "k", 2, idempotency_key="req-1")
    assert err.value.code == "idempotency_key_reused"
    assert bb.get_block(alice, "k").data == 1


def test_keys_belong_to_their_observer(bb: BatenBase) -> None:
    alice, bob = caller(bb, "alice"), caller(bb, "bob")
    bb.put_block(alice, "a", 1, idempotency_key="same")
    assert bb.put_block(bob, "b", 1, idempotency_key="same").key == "b"


def test_a_retried_delete_and_event_answer_the_original(bb: BatenBase) -> None:
    alice = caller(bb, "alice")
    bb.put_block(alice, "k", 1)
    gone = bb.delete_block(alice, "k", idempotency_key="d")
    assert bb.delete_block(alice, "k", idempotency_key="d") == gone
    event = bb.append_event(alice, "deploy", {"v": 1}, idempotency_key="e")
    assert bb.append_event(alice, "deploy", {"v": 1}, idempotency_key="e") == event
    kinds = [e.kind for e in bb.scan_events(caller(bb, "root", "admin"), limit=100).items]
    assert kinds.count("deploy") == 1


def test_bad_keys_are_refused(bb: BatenBase) -> None:
    alice = caller(bb, "alice")
    for bad in ["", "x" * 256, "has space", "é"]:
        with pytest.raises(BadRequest):
            bb.put_block(alice, "k", 1, idempotency_key=bad)
    assert bb.tenant_info(alice).usage == 0


def test_racing_retries_write_once(bb: BatenBase) -> None:
    alice = caller(bb, "alice")
    results = []
    barrier = threading.Barrier(8)

    def go() -> None:
        barrier.wait()
        results.append(bb.put_block(alice, "race", {"n": 1}, idempotency_key="once"))

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    assert len({r.seq for r in results}) == 1
    assert len(bb.history(alice, "race").items) == 1


@pytest.mark.parametrize("checkpoint", [True, False])
def test_retries_are_recognised_after_a_restart(
    tmp_path: Path, clock: Clock, checkpoint: bool
) -> None:
    with BatenBase.open(tmp_path / "d", clock=clock) as bb:
        bb.create_tenant("acme")
        first = bb.put_block(caller(bb, "alice"), "k", 1, idempotency_key="r")
    if not checkpoint:
        for f in (tmp_path / "d" / "checkpoints").iterdir():
            f.unlink()
    with BatenBase.open(tmp_path / "d", clock=clock) as bb:
        assert bb.put_block(caller(bb, "alice"), "k", 1, idempotency_key="r") == first


def test_a_compacted_original_is_reported_not_rewritten(tmp_path: Path, clock: Clock) -> None:
    def retry(bb: BatenBase) -> None:
        alice = caller(bb, "alice")
        with pytest.raises(PreconditionFailed) as err:
            bb.put_block(alice, "k", 1, idempotency_key="old")
        assert err.value.code == "idempotency_key_expired"
        assert bb.get_block(alice, "k").data == 2

    with BatenBase.open(tmp_path / "d", clock=clock) as bb:
        bb.create_tenant("acme")
        alice = caller(bb, "alice")
        bb.put_block(alice, "k", 1, idempotency_key="old")
        bb.put_block(alice, "k", 2)
        bb.compact("acme")
        retry(bb)
    with BatenBase.open(tmp_path / "d", clock=clock) as bb:  # from the checkpoint
        retry(bb)
    for f in (tmp_path / "d" / "checkpoints").iterdir():
        f.unlink()
    with BatenBase.open(tmp_path / "d", clock=clock) as bb:  # from the journal
        retry(bb)
