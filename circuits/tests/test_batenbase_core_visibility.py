from __future__ import annotations

import pytest
from batenbase_support import T0, Clock, caller

from batenbase.errors import (
    Forbidden,
    NotFound,
)
from batenbase.model import Caller
from batenbase.service import BatenBase


@pytest.fixture
def people(bb: BatenBase) -> dict[str, Caller]:
    return {
        "alice": caller(bb, "alice", "writer", (2,)),
        "bob": caller(bb, "bob", "writer"),
        "carol": caller(bb, "carol", "reader", (2, 3)),
        "admin": caller(bb, "root", "admin"),
    }


def sees(bb: BatenBase, who: Caller, key: str) -> bool:
    try:
        bb.get_block(who, key)
    except NotFound:
        return False
    return True


@pytest.mark.parametrize(
    ("v", "h", "expected"),
    [
        (0, 0, {"alice", "admin"}),
        (1, 0, {"alice", "bob", "carol", "admin"}),
        (2, 0, {"alice", "carol", "admin"}),
        (0, 1, set()),
        (1, 1, set()),
        (2, 1, set()),
    ],
)
def test_visibility_rules(
    bb: BatenBase, people: dict[str, Caller], v: int, h: int, expected: set[str]
) -> None:
    bb.put_block(people["alice"], "k", {"secret": True}, v=v, h=h)
    assert {name for name, who in people.items() if sees(bb, who, "k")} == expected
    listed = {
        name for name, who in people.items() if [b.key for b in bb.list_blocks(who).items] == ["k"]
    }
    assert listed == expected
    # h=1 shows only to an admin asking explicitly
    redacted = bb.get_block(people["admin"], "k", include_redacted=True)
    assert redacted.h == h
    assert sees(bb, people["bob"], "k") == (h == 0 and v == 1)  # include_redacted needs admin


def test_writer_cannot_write_a_scope_it_cannot_read(
    bb: BatenBase, people: dict[str, Caller]
) -> None:
    with pytest.raises(Forbidden):
        bb.put_block(people["bob"], "k", 1, v=2)
    assert bb.put_block(people["admin"], "k", 1, v=7).v == 7


def test_invisible_equals_missing_everywhere(bb: BatenBase, people: dict[str, Caller]) -> None:
    alice, bob = people["alice"], people["bob"]
    bb.put_block(alice, "private", {"x": 1}, v=0)
    missing = "never-written"
    for key in ("private", missing):
        with pytest.raises(NotFound):
            bb.get_block(bob, key)
        with pytest.raises(NotFound):
            bb.get_block(bob, key, rev=1)
        with pytest.raises(NotFound):
            bb.history(bob, key)
        with pytest.raises(NotFound):
            bb.proof(bob, key)
        with pytest.raises(NotFound):
            bb.readers(bob, key)
        with pytest.raises(NotFound):
            bb.delete_block(bob, key)
        with pytest.raises(NotFound):
            bb.put_block(bob, key, 2, if_match="1")
    assert bb.list_blocks(bob).items == []
    # The documented rule: any write to a key whose current block the caller cannot see
    # answers 404 and changes nothing; its content, rev, f and writer never leak.
    with pytest.raises(NotFound):
        bb.put_block(bob, "private", 2)
    with pytest.raises(NotFound):
        bb.put_block(bob, "private", 2, if_none_match=True)
    assert bb.get_block(alice, "private").data == {"x": 1}
    assert bb.get_block(alice, "private").rev == 1


def test_deleted_block_hidden_but_admin_sees_history(
    bb: BatenBase, people: dict[str, Caller]
) -> None:
    alice, carol, admin = people["alice"], people["carol"], people["admin"]
    bb.put_block(alice, "k", 1)
    bb.delete_block(alice, "k")
    for who in (alice, carol):
        with pytest.raises(NotFound):
            bb.history(who, "k")
        with pytest.raises(NotFound):
            bb.proof(who, "k")
    assert [b.rev for b in bb.history(admin, "k").items] == [2, 1]
    with pytest.raises(NotFound):
        bb.get_block(carol, "k", rev=1)  # the past of a deleted key is hidden too
    with pytest.raises(NotFound):
        bb.get_block(carol, "k", at=T0 + 1)
    assert bb.get_block(admin, "k", rev=1).data == 1


def test_listing_shows_redacted_blocks_only_to_an_admin_who_asks(
    bb: BatenBase, people: dict[str, Caller]
) -> None:
    alice, admin = people["alice"], people["admin"]
    bb.put_block(alice, "gone", 1)
    bb.put_block(alice, "kept", 2)
    bb.delete_block(alice, "gone")
    assert [b.key for b in bb.list_blocks(alice).items] == ["kept"]
    assert [b.key for b in bb.list_blocks(admin).items] == ["kept"]
    assert [b.key for b in bb.list_blocks(alice, include_redacted=True).items] == ["kept"]
    listed = bb.list_blocks(admin, include_redacted=True).items
    assert [(b.key, b.h) for b in listed] == [("gone", 1), ("kept", 0)]


def test_history_hides_revisions_the_caller_may_not_see(
    bb: BatenBase, people: dict[str, Caller]
) -> None:
    alice, bob = people["alice"], people["bob"]
    bb.put_block(alice, "k", "private", v=0)
    bb.put_block(alice, "k", "public", v=1)
    assert [b.data for b in bb.history(bob, "k").items] == ["public"]
    proof = bb.proof(bob, "k")
    assert [e["payload_hex"] is None for e in proof.events] == [True, False]
    with pytest.raises(NotFound):
        bb.get_block(bob, "k", rev=1)
    assert bb.get_block(alice, "k", rev=1).data == "private"


def test_scan_events_hides_block_events_of_invisible_blocks(
    bb: BatenBase, people: dict[str, Caller]
) -> None:
    bb.put_block(people["alice"], "private", 1, v=0)
    bb.put_block(people["alice"], "public", 1)
    bob_view = [e.details["key"] for e in bb.scan_events(people["bob"], kind="bb.block.put").items]
    assert bob_view == ["public"]
    admin_view = bb.scan_events(people["admin"], kind="bb.block.put").items
    assert [e.details["key"] for e in admin_view] == ["public", "private"]


def test_scan_events_hides_the_events_of_redacted_blocks(
    bb: BatenBase, people: dict[str, Caller]
) -> None:
    bb.put_block(people["alice"], "secret", 1, h=1)
    bb.put_block(people["alice"], "gone", 1)
    bb.delete_block(people["alice"], "gone")
    bb.put_block(people["alice"], "open", 1)
    for who in ("alice", "bob"):
        keys = {
            e.details["key"]
            for e in bb.scan_events(people[who]).items
            if e.kind.startswith("bb.block.")
        }
        assert keys == {"open"}
    admin_keys = {
        e.details["key"]
        for e in bb.scan_events(people["admin"]).items
        if e.kind.startswith("bb.block.")
    }
    assert admin_keys == {"secret", "gone", "open"}


def test_what_h1_hid_stays_hidden_after_a_restore(
    bb: BatenBase, people: dict[str, Caller], clock: Clock
) -> None:
    alice, bob, admin = people["alice"], people["bob"], people["admin"]
    bb.put_block(alice, "k", "before")
    clock.now += 10
    bb.put_block(admin, "k", "redacted", h=1)
    clock.now += 10
    bb.put_block(bob, "k", "after")
    history = bb.history(bob, "k").items
    assert [(b.rev, b.data) for b in history] == [(3, "after"), (2, None), (1, None)]
    with pytest.raises(NotFound):
        bb.get_block(bob, "k", rev=1)
    with pytest.raises(NotFound):
        bb.get_block(bob, "k", at=clock.now - 15)
    shown = [e["payload_hex"] is not None for e in bb.proof(bob, "k").events]
    assert shown == [False, False, True]
    assert [b.data for b in bb.history(admin, "k").items] == ["after", "redacted", "before"]
    assert all(e["payload_hex"] is not None for e in bb.proof(admin, "k").events)
