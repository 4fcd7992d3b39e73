"""Visibility fences: fenced writes are durable at once and visible only on commit.

Kinds used here are 0xEFxx.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import msgspec
import pytest

from batpak import (
    AppendOptions,
    BatchAppendItem,
    Coordinate,
    Projection,
    Region,
    Store,
    StoreConfig,
    VisibilityFenceActive,
    VisibilityFenceNotActive,
    canonical,
    event_payload,
    handles,
)
from batpak.errors import StoreClosed
from batpak.sidefile import unwrap

KIND = 0xEF01
TICK = 0xEF02
COORD = Coordinate("fence:a", "scope:fence")


@event_payload(category=0xE, type_id=0xF02, version=1)
class Tick(msgspec.Struct):
    n: int


class TickCount(Projection):
    def __init__(self) -> None:
        self.count = 0

    @handles(Tick)
    def on_tick(self, tick: Tick) -> None:
        self.count += 1


def _sequences(store: Store) -> list[int]:
    return [e.global_sequence for e in store.query(Region.scope("scope:fence"))]


def _prev(store: Store, event_id: int) -> bytes:
    chain = store.get(event_id).event.hash_chain
    assert chain is not None
    return chain.prev_hash


def _ranges(path: Path) -> list[tuple[int, int]]:
    file = path / "visibility_ranges.fbv"
    _, body = unwrap(file, file.read_bytes(), b"FBATVR", 2)
    decoded = canonical.decode(body)
    assert decoded["lane_ranges"] == []
    return [(r["start"], r["end"]) for r in decoded["ranges"]]


def test_fenced_writes_are_hidden_from_every_read_until_commit(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        before = store.append_typed(COORD, Tick(0))
        cursor = store.cursor(Region.scope("scope:fence"))
        assert [e.event_id for e in cursor.poll_batch()] == [before.event_id]
        subscription = store.subscribe_lossy(Region.scope("scope:fence"))
        visible = store.frontier().visible
        fence = store.begin_visibility_fence()
        inside = [store.append_typed(COORD, Tick(n)) for n in (1, 2)]
        inside += store.append_batch([BatchAppendItem.typed(COORD, Tick(3))])
        for receipt in inside:
            with pytest.raises(Exception, match="not found"):
                store.get(receipt.event_id)
        assert _sequences(store) == [before.global_sequence]
        assert store.by_entity("fence:a") == store.query(Region.all().with_kind(TICK))
        assert len(store.by_fact(TICK)) == 1
        assert store.query_entries_after(Region.all(), before.global_sequence) == []
        assert store.entity_generation("fence:a") == before.global_sequence
        assert store.project(TickCount, "fence:a").count == 1
        assert cursor.poll_batch() == []
        assert subscription.recv(timeout=0.05) is None
        assert store.frontier().visible == visible
        assert store.frontier().written.global_sequence == inside[-1].global_sequence

        fence.commit()
        assert _sequences(store) == [before.global_sequence] + [r.global_sequence for r in inside]
        assert [e.event_id for e in cursor.poll_batch()] == [r.event_id for r in inside]
        notes = [subscription.recv(timeout=1) for _ in inside]
        assert [n.event_id for n in notes if n] == [r.event_id for r in inside]
        assert store.project(TickCount, "fence:a").count == 4
        assert store.frontier().visible.global_sequence == inside[-1].global_sequence
        assert store.verify_chain().is_intact()
        assert not (tmp_path / "visibility_ranges.fbv").exists()


def test_cancel_hides_for_good_and_the_chain_resumes_from_the_visible_head(
    tmp_path: Path,
) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        first = store.append(COORD, KIND, {"n": 0})
        fence = store.begin_visibility_fence()
        hidden = [store.append(COORD, KIND, {"n": n}) for n in (1, 2)]
        fence.cancel()
        assert store.frontier().durable.global_sequence >= hidden[-1].global_sequence
        assert _ranges(tmp_path) == [(hidden[0].global_sequence, hidden[-1].global_sequence + 1)]
        after = store.append(COORD, KIND, {"n": 3})
        assert _sequences(store) == [first.global_sequence, after.global_sequence]
        assert _prev(store, after.event_id) == first.content_hash
        assert store.get(after.event_id).event.header.position.sequence == 1
        assert store.verify_chain().is_intact()
    expected = [first.global_sequence, after.global_sequence]
    with Store.open(StoreConfig(tmp_path)) as store:  # fast start: the checkpoint
        assert _sequences(store) == expected
        assert store.verify_chain().is_intact()
    (tmp_path / "index.cols").unlink()
    with Store.open_read_only(StoreConfig(tmp_path)) as store:  # rebuild from the segments
        assert _sequences(store) == expected
        for receipt in hidden:
            with pytest.raises(Exception, match="not found"):
                store.get(receipt.event_id)


def test_cancelled_ranges_accumulate_merged_and_sorted(tmp_path: Path) -> None:
    def cancelled() -> int:
        fence = store.begin_visibility_fence()
        sequence = store.append(COORD, KIND, "hidden").global_sequence
        fence.cancel()
        return sequence

    with Store.open(StoreConfig(tmp_path)) as store:
        a, b = cancelled(), cancelled()  # adjacent: one merged range
        store.append(COORD, KIND, "visible")
        c = cancelled()
        store.begin_visibility_fence().cancel()  # an empty fence adds nothing
        assert _ranges(tmp_path) == [(a, b + 1), (c, c + 1)]


def test_one_fence_at_a_time_and_each_finishes_once(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        fence = store.begin_visibility_fence()
        with pytest.raises(VisibilityFenceActive):
            store.begin_visibility_fence()
        for refused in (
            lambda: store.snapshot(tmp_path / "snap"),
            lambda: store.fork(tmp_path / "fork"),
            lambda: store.compact(min_segments=1),
        ):
            with pytest.raises(VisibilityFenceActive):
                refused()
        assert not (tmp_path / "snap").exists() or not any((tmp_path / "snap").iterdir())
        assert not (tmp_path / "fork").exists()
        fence.commit()
        with pytest.raises(VisibilityFenceNotActive):
            fence.commit()
        with pytest.raises(VisibilityFenceNotActive):
            fence.cancel()
        store.begin_visibility_fence().cancel()  # the next one opens


def test_context_manager_commits_on_success_and_cancels_on_error(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        with store.begin_visibility_fence() as fence:
            kept = store.append(COORD, KIND, "kept")
            opened = fence.open
        assert opened
        assert not fence.open
        assert store.get(kept.event_id).global_sequence == kept.global_sequence
        dropped = []
        with contextlib.suppress(RuntimeError), store.begin_visibility_fence():
            dropped.append(store.append(COORD, KIND, "dropped"))
            raise RuntimeError("abort")
        assert len(dropped) == 1
        with pytest.raises(Exception, match="not found"):
            store.get(dropped[0].event_id)


def test_fenced_chain_and_cas_follow_the_held_head(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        with store.begin_visibility_fence():
            one = store.append(COORD, KIND, 1)
            two = store.append(COORD, KIND, 2, AppendOptions(expected_sequence=0))
            keyed = store.append(COORD, KIND, 3, AppendOptions(idempotency_key=99))
            again = store.append(COORD, KIND, 3, AppendOptions(idempotency_key=99))
            assert again == keyed
        assert _prev(store, two.event_id) == one.content_hash
        assert [e.clock for e in store.by_entity("fence:a")] == [0, 1, 2]
        assert store.verify_chain().is_intact()


def test_close_cancels_an_open_fence(tmp_path: Path) -> None:
    store = Store.open(StoreConfig(tmp_path))
    fence = store.begin_visibility_fence()
    hidden = store.append(COORD, KIND, "left open")
    store.close()
    with pytest.raises(StoreClosed):
        fence.commit()
    assert _ranges(tmp_path) == [(hidden.global_sequence, hidden.global_sequence + 1)]
    with Store.open(StoreConfig(tmp_path)) as store:
        with pytest.raises(Exception, match="not found"):
            store.get(hidden.event_id)
        assert [e.global_sequence for e in store.query(Region.all())][-1] > hidden.global_sequence
