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
