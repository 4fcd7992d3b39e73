"""Only each key's newest revision keeps its data in memory; older data comes from the journal."""

from __future__ import annotations

from pathlib import Path

from batenbase_support import T0, Clock, caller

from batenbase.service import BatenBase


def held(bb: BatenBase, key: str) -> list[bool]:
    return [r.data is not None for r in bb.journal("acme").index.revisions[key]]


def test_old_revisions_are_read_back_from_the_journal(bb: BatenBase, clock: Clock) -> None:
    alice = caller(bb, "alice")
    for i in range(5):
        clock.now = T0 + i
        bb.put_block(alice, "k", {"n": i})
    assert held(bb, "k") == [False, False, False, False, True]
    assert [b.data for b in bb.history(alice, "k").items] == [{"n": i} for i in range(4, -1, -1)]
    assert bb.get_block(alice, "k", rev=2).data == {"n": 1}
    assert bb.get_block(alice, "k", at=T0 + 3.5).data == {"n": 3}
    gone = bb.delete_block(alice, "k")
    assert gone.data == {"n": 4}
    assert held(bb, "k") == [False] * 5 + [True]


def test_a_restart_keeps_only_the_newest_data(tmp_path: Path, clock: Clock) -> None:
    with BatenBase.open(tmp_path / "d", clock=clock) as bb:
        bb.create_tenant("acme")
        alice = caller(bb, "alice")
        for i in range(3):
            bb.put_block(alice, "k", i)
    for use_checkpoint in (True, False):
        if not use_checkpoint:
            for f in (tmp_path / "d" / "checkpoints").iterdir():
                f.unlink()
        with BatenBase.open(tmp_path / "d", clock=clock) as bb:
            assert held(bb, "k") == [False, False, True]
            alice = caller(bb, "alice")
            assert [b.data for b in bb.history(alice, "k").items] == [2, 1, 0]


def test_get_block_nowait_answers_in_memory_reads_and_declines_the_rest(
    bb: BatenBase, clock: Clock
) -> None:
    alice = caller(bb, "alice")
    for i in range(3):
        clock.now = T0 + i
        bb.put_block(alice, "k", {"n": i})
    now = bb.get_block_nowait(alice, "k")
    assert now is not None
    assert (now.rev, now.data) == (3, {"n": 2})
    assert bb.get_block_nowait(alice, "k", rev=1) is None  # its data is on disk only
    assert bb.get_block(alice, "k", rev=1).data == {"n": 0}
    # A flush holding the read-receipt buffer: decline, and buffer nothing.
    bb.set_read_receipts(caller(bb, "root", "admin"), True)
    tenant = bb.journal("acme")
    with tenant.reads_lock:
        assert bb.get_block_nowait(alice, "k") is None
        assert tenant.pending_reads == []
    assert bb.get_block_nowait(alice, "k") is not None
    assert [r.observer for r in tenant.pending_reads] == ["alice"]
