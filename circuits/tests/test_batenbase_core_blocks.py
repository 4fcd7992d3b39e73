from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from batenbase_support import T0, Clock, caller
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batenbase.errors import (
    BadRequest,
    BatenBaseError,
    Forbidden,
    NotFound,
    PreconditionFailed,
    TooLarge,
    Unauthorized,
)
from batenbase.model import Caller
from batenbase.service import BatenBase


def test_seed_example(bb: BatenBase) -> None:
    alice = caller(bb, "alice")
    put = bb.put_block(alice, "user:alice@corp.com", {"name": "Alice", "role": "admin"})
    assert put.key == "user:alice@corp.com"
    got = bb.get_block(alice, "user:alice@corp.com")
    assert (got.f, got.l, got.v, got.h) == (1737900000, 1737900000, 1, 0)
    assert got.data == {"name": "Alice", "role": "admin"}
    assert (got.rev, got.seq, got.hash, got.etag) == (1, put.seq, put.hash, put.etag)


def test_f_immutable_across_put_delete_restore(bb: BatenBase, clock: Clock) -> None:
    w = caller(bb, "w")
    assert bb.put_block(w, "k", 1).f == int(T0)
    clock.now += 10
    updated = bb.put_block(w, "k", 2)
    assert (updated.f, updated.l, updated.rev) == (int(T0), int(T0) + 10, 2)
    clock.now += 10
    deleted = bb.delete_block(w, "k")
    assert (deleted.f, deleted.l, deleted.h, deleted.rev) == (int(T0), int(T0) + 20, 1, 3)
    with pytest.raises(NotFound):
        bb.get_block(w, "k")
    clock.now += 10
    restored = bb.put_block(w, "k", 4)
    assert (restored.f, restored.l, restored.h, restored.rev) == (int(T0), int(T0) + 30, 0, 4)
    assert bb.get_block(w, "k").data == 4


def test_v_is_kept_on_update_and_h_defaults_to_zero(bb: BatenBase) -> None:
    w = caller(bb, "w")
    bb.put_block(w, "k", 1, v=0)
    assert bb.put_block(w, "k", 2).v == 0
    assert bb.put_block(w, "k", 3, h=1).h == 1
    assert bb.put_block(w, "k", 4).h == 0


def test_if_match_by_rev_and_etag(bb: BatenBase) -> None:
    w = caller(bb, "w")
    first = bb.put_block(w, "k", 1)
    second = bb.put_block(w, "k", 2, if_match="1")
    with pytest.raises(PreconditionFailed):
        bb.put_block(w, "k", 3, if_match="1")
    with pytest.raises(PreconditionFailed):
        bb.put_block(w, "k", 3, if_match=first.etag)
    assert bb.put_block(w, "k", 3, if_match=second.etag).rev == 3
    assert bb.put_block(w, "k", 3, if_match=f'"{bb.get_block(w, "k").etag}"').rev == 4
    assert bb.put_block(w, "k", 3, if_match="*").rev == 5
    with pytest.raises(NotFound):
        bb.put_block(w, "other", 1, if_match="*")
    with pytest.raises(NotFound):
        bb.put_block(w, "missing", 1, if_match="1")
    with pytest.raises(PreconditionFailed):
        bb.delete_block(w, "k", if_match="1")
    assert bb.delete_block(w, "k", if_match="5").h == 1
    with pytest.raises(NotFound):
        bb.put_block(w, "k", 3, if_match="6")  # deleted is missing for conditions


def test_if_none_match_is_create_only(bb: BatenBase) -> None:
    w = caller(bb, "w")
    assert bb.put_block(w, "k", 1, if_none_match=True).rev == 1
    with pytest.raises(PreconditionFailed):
        bb.put_block(w, "k", 2, if_none_match=True)
    bb.delete_block(w, "k")
    assert bb.put_block(w, "k", 3, if_none_match=True).rev == 3  # a deleted key is missing


def test_roles(bb: BatenBase) -> None:
    reader = caller(bb, "r", "reader")
    writer = caller(bb, "w", "writer")
    bb.put_block(writer, "k", 1)
    assert bb.get_block(reader, "k").data == 1
    with pytest.raises(Forbidden):
        bb.put_block(reader, "k", 2)
    with pytest.raises(Forbidden):
        bb.delete_block(reader, "k")
    with pytest.raises(Forbidden):
        bb.append_event(reader, "note", {})
    with pytest.raises(Forbidden):
        bb.set_read_receipts(writer, True)
    operator = bb.authenticate(bb.issue_operator_token().token)
    with pytest.raises(Forbidden):
        bb.get_block(operator, "k")


def test_list_pages_and_prefix(bb: BatenBase) -> None:
    w = caller(bb, "w")
    for i in range(7):
        bb.put_block(w, f"a:{i}", i)
    bb.put_block(w, "b:0", 0)
    seen: list[str] = []
    cursor = None
    while True:
        page = bb.list_blocks(w, prefix="a:", limit=3, cursor=cursor)
        seen += [b.key for b in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"a:{i}" for i in range(7)]
    assert [b.key for b in bb.list_blocks(w).items][-1] == "b:0"


def test_bad_inputs_raise_typed_errors(bb: BatenBase) -> None:
    w = caller(bb, "w")
    for key in ["", "a" * 1025, "a\nb", "a b", "\x00", "\ud800"]:
        with pytest.raises(BadRequest):
            bb.put_block(w, key, 1)
    with pytest.raises(TooLarge):
        bb.put_block(w, "big", "x" * (1024 * 1024 + 1))
    with pytest.raises(BadRequest):
        bb.put_block(w, "k", object())
    for v, h in [(-1, None), (None, 2), ("1", None), (True, None)]:
        with pytest.raises(BadRequest):
            bb.put_block(w, "k", 1, v=v, h=h)  # type: ignore[arg-type]
    with pytest.raises(BadRequest):
        bb.append_event(w, "Bad Kind", {})
    with pytest.raises(BadRequest):
        bb.append_event(w, "bb.block.put", {})
    with pytest.raises(TooLarge):
        bb.append_event(w, "note", "x" * 70_000)
    for kwargs in [{"limit": 0}, {"limit": 1001}, {"since": "yesterday"}, {"cursor": "x"}]:
        with pytest.raises(BadRequest):
            bb.scan_events(w, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(BadRequest):
        bb.list_blocks(w, cursor="zz")
    with pytest.raises(Unauthorized):
        bb.authenticate("nonsense")
    with pytest.raises(Unauthorized):
        bb.authenticate(None)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    key=st.text(max_size=40) | st.binary(max_size=8) | st.integers(),
    data=JSON | st.binary(max_size=4) | st.sets(st.integers(), max_size=2),
    kind=st.text(max_size=20) | st.none(),
    v=st.integers(-3, 5) | st.none() | st.text(max_size=2),
    h=st.integers(-1, 2) | st.none(),
    match=st.text(max_size=6) | st.none(),
)
def test_fuzz_only_batenbase_errors(
    bb: BatenBase, key: object, data: object, kind: object, v: object, h: object, match: object
) -> None:
    w = caller_cached(bb)
    calls: list[Callable[[], object]] = [
        lambda: bb.put_block(w, key, data, v=v, h=h, if_match=match),  # type: ignore[arg-type]
        lambda: bb.get_block(w, key),  # type: ignore[arg-type]
        lambda: bb.delete_block(w, key, if_match=match),  # type: ignore[arg-type]
        lambda: bb.history(w, key, cursor=match),  # type: ignore[arg-type]
        lambda: bb.proof(w, key),  # type: ignore[arg-type]
        lambda: bb.append_event(w, kind, data),  # type: ignore[arg-type]
        lambda: bb.scan_events(w, kind=kind, since=match),  # type: ignore[arg-type]
        lambda: bb.list_blocks(w, prefix=key, cursor=match),  # type: ignore[arg-type]
    ]
    for call in calls:
        with contextlib.suppress(BatenBaseError):
            call()


_CALLERS: list[tuple[BatenBase, Caller]] = []


def caller_cached(bb: BatenBase) -> Caller:
    """One token per service across hypothesis examples (the fixture is shared by them)."""
    if not _CALLERS or _CALLERS[0][0] is not bb:
        _CALLERS[:] = [(bb, caller(bb, "fuzzer", "writer", (2, 3)))]
    return _CALLERS[0][1]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.text(max_size=12) | st.integers() | st.none(),
    observer=st.text(max_size=12) | st.integers(),
    role=st.sampled_from(["admin", "writer", "reader", "root", ""]) | st.none(),
    plan=st.sampled_from(["free", "unlimited", "gold"]) | st.integers(),
    scopes=st.lists(st.integers(-2, 5) | st.text(max_size=2), max_size=3) | st.integers(),
    keep=st.integers(-1, 3) | st.text(max_size=2),
)
def test_fuzz_operator_surface_only_batenbase_errors(
    bb: BatenBase,
    name: object,
    observer: object,
    role: object,
    plan: object,
    scopes: object,
    keep: object,
) -> None:
    calls: list[Callable[[], object]] = [
        lambda: bb.create_tenant(name, plan),  # type: ignore[arg-type]
        lambda: bb.set_plan(name, plan),  # type: ignore[arg-type]
        lambda: bb.issue_token(name, observer, role, scopes),  # type: ignore[arg-type]
        lambda: bb.issue_token("acme", observer, role, scopes),  # type: ignore[arg-type]
        lambda: bb.revoke_token(name),  # type: ignore[arg-type]
        lambda: bb.authenticate(name),  # type: ignore[arg-type]
        lambda: bb.compact(name, keep_revisions=keep),  # type: ignore[arg-type]
        lambda: bb.set_read_receipts(caller_cached(bb), observer),  # type: ignore[arg-type]
    ]
    for call in calls:
        with contextlib.suppress(BatenBaseError):
            call()


def test_forged_caller_is_refused(bb: BatenBase) -> None:
    reader = caller(bb, "r", "reader")
    forged = Caller(reader.tenant, reader.observer, "admin", reader.scopes, reader.token_id)
    with pytest.raises(Unauthorized):
        bb.put_block(forged, "k", 1)
    with pytest.raises(Unauthorized):
        bb.get_block("not a caller", "k")  # type: ignore[arg-type]
