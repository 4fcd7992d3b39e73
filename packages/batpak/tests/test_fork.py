"""Fork (store-api §1.11): an independent copy sharing sealed segments by hard link.

Kinds used here are 0xEExx.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from batpak import AppendOptions, Coordinate, Region, Store, StoreConfig, canonical
from batpak.errors import Configuration, Io
from batpak.segment import segment_name
from batpak.store import _fork

KIND = 0xEE01


def _two_sessions(path: Path) -> None:
    with Store.open(StoreConfig(path)) as store:  # the first session's segment gets sealed
        for i in range(3):
            store.append(Coordinate(f"f:{i}", "s"), KIND, {"first": i})


def test_fork_shares_sealed_segments_and_copies_the_rest(tmp_path: Path) -> None:
    source, dest = tmp_path / "src", tmp_path / "fork"
    _two_sessions(source)
    with Store.open(StoreConfig(source)) as store:
        keyed = store.append(
            Coordinate("f:0", "s"), KIND, "keyed", AppendOptions(idempotency_key=7)
        )
        with store.begin_visibility_fence() as fence:
            hidden = store.append(Coordinate("f:1", "s"), KIND, "hidden")
            fence.cancel()
        taken = store.query(Region.all())
        report = store.fork_with_evidence(dest)
        assert report.path == dest
        sealed = segment_name(1)
        assert os.stat(source / sealed).st_ino == os.stat(dest / sealed).st_ino
        assert report.shared_segment_ids == (1,)
        assert report.deep_copied_segment_ids == (2,)
        active = dest / segment_name(2)
        assert os.stat(active).st_ino != os.stat(source / segment_name(2)).st_ino
        assert active.read_bytes() == (source / segment_name(2)).read_bytes()
        assert not (dest / ".batpak.lock").exists()  # never opened
        for name in ("store.meta", "index.idemp", "visibility_ranges.fbv"):
            assert (dest / name).read_bytes() == (source / name).read_bytes()

        body = report.body
        assert report.body_hash == canonical.digest(canonical.encode(body))
        assert body["copied_idempotency_store_present"] is True
        assert body["copied_visibility_ranges_present"] is True
        assert body["copied_pending_compaction_marker_present"] is False
        assert body["source_watermark"] == {"segment_id": 2, "offset": active.stat().st_size}
        assert body["strategy_counts"]["hardlink"] == 1
        assert body["findings"][0] == "FenceTokenCancelled"
        assert {"FileCopied": {"file_name": sealed, "strategy": "Hardlink"}} in body["findings"]

        with Store.open(StoreConfig(dest)) as fork:
            assert fork.identity() == store.identity()
            assert fork.query(Region.all())[: len(taken)] == taken
            with pytest.raises(Exception, match="not found"):
                fork.get(hidden.event_id)
            retry = fork.append(
                Coordinate("f:0", "s"), KIND, "again", AppendOptions(idempotency_key=7)
            )
            assert retry == keyed
            assert fork.verify_chain().is_intact()
            mine = fork.append(Coordinate("fork:only", "s"), KIND, "fork")
            theirs = store.append(Coordinate("source:only", "s"), KIND, "source")
            assert fork.by_entity("source:only") == []
            assert store.by_entity("fork:only") == []
            fresh = fork.append(Coordinate("f:2", "s"), KIND, "k", AppendOptions(idempotency_key=8))
        other = store.append(Coordinate("f:2", "s"), KIND, "k2", AppendOptions(idempotency_key=8))
        assert other.event_id == fresh.event_id  # the same key, but not shared: a new write
        assert store.read_raw(other.event_id) == canonical.encode("k2")
        assert store.get(theirs.event_id).global_sequence == theirs.global_sequence
    with Store.open(StoreConfig(dest)) as fork:
        assert fork.get(mine.event_id).global_sequence == mine.global_sequence
        assert fork.by_entity("source:only") == []


def test_fork_refusals_publish_nothing(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("occupied")
    (tmp_path / "empty").mkdir()
    os.symlink(tmp_path / "empty", tmp_path / "link")
    with Store.open(StoreConfig(source)) as store:
        store.append(Coordinate("f:0", "s"), KIND, 0)
        for dest in (source, tmp_path / "src" / ".." / "src", tmp_path / "full", tmp_path / "link"):
            with pytest.raises(Configuration):
                store.fork(dest)
        assert os.listdir(tmp_path / "empty") == []
        assert store.fork(tmp_path / "empty") == tmp_path / "empty"  # an empty directory is fine
        assert (tmp_path / "empty" / "store.meta").exists()


def test_a_failed_copy_publishes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "src"
    _two_sessions(source)
    calls = []

    def full_disk(*args: object) -> None:
        calls.append(args)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_fork, "copy_prefix", full_disk)
    with Store.open(StoreConfig(source)) as store:
        with pytest.raises(Io, match="nothing was published"):
            store.fork(tmp_path / "fork")
        assert calls
        assert sorted(os.listdir(tmp_path)) == ["src"]  # no destination, no staging left over
        store.append(Coordinate("f:0", "s"), KIND, "the source carries on")


def test_a_refused_hard_link_falls_back_to_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "src"
    _two_sessions(source)

    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    with Store.open(StoreConfig(source)) as store:
        report = store.fork_with_evidence(tmp_path / "fork")
    assert report.shared_segment_ids == ()
    assert report.deep_copied_segment_ids == (1, 2)
    assert report.body["strategy_counts"]["hardlink"] == 0
    sealed = segment_name(1)
    assert (tmp_path / "fork" / sealed).read_bytes() == (source / sealed).read_bytes()
    assert os.stat(tmp_path / "fork" / sealed).st_ino != os.stat(source / sealed).st_ino
