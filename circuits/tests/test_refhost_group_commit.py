"""bank.commit under group commit: concurrent commits leave the host lock while their one-item
batch waits for the disk, share fsyncs, and keep every receipt, key and payload exact, in
refbat's on-disk shape (each commit between batch BEGIN and COMMIT markers)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack  # type: ignore[import-untyped]
import pytest

from batpak import Store, StoreConfig
from batpak.kinds import SYSTEM_BATCH_BEGIN, SYSTEM_BATCH_COMMIT
from batpak.segment import parse_segment_id, read_header, scan_frames
from refhost.batpak_view import BatpakView
from refhost.dispatch import INLINE_OPS, ReferenceDispatcher
from refhost.host import build_host
from refhost.hostlock import HostLock

COMMITS = 16


def commit_request(entity: str, payload: bytes, key_hex: str | None = None) -> bytes:
    request = {
        "entity": entity,
        "scope": "test",
        "kind_category": 0xF,
        "kind_type_id": 0x001,
        "payload_hex": payload.hex(),
    }
    if key_hex is not None:
        request["idempotency_key_hex"] = key_hex
    packed: bytes = msgpack.packb(request)
    return packed


@pytest.fixture
def grouped(tmp_path: Path) -> Iterator[Store]:
    with Store.open(StoreConfig(tmp_path / "store").with_group_commit(0)) as opened:
        yield opened


@pytest.fixture
def slow_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every fsync takes 20 ms (so commits pile up behind one) and is counted."""
    calls: list[float] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        calls.append(time.monotonic())
        time.sleep(0.02)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def commit_together(dispatcher: ReferenceDispatcher, requests: list[bytes]) -> list[bytes]:
    acks: list[bytes] = [b""] * len(requests)
    start = threading.Barrier(len(requests))

    def one(index: int) -> None:
        start.wait()
        acks[index] = dispatcher.call("bank.commit", requests[index])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return acks


def frame_kinds(directory: Path) -> list[int]:
    """The event kind of every frame in the store's segments, in file order."""
    kinds: list[int] = []
    for path in sorted(directory.iterdir()):
        segment_id = parse_segment_id(path.name)
        if segment_id is None:
            continue
        data = path.read_bytes()
        frames, _ = scan_frames(
            segment_id, data, read_header(segment_id, data), len(data), "recover_torn_tail"
        )
        kinds += [f.frame.event.header.event_kind for f in frames]
    return kinds


def test_concurrent_commits_share_fsyncs_and_stay_exact(
    grouped: Store, slow_fsyncs: list[float], tmp_path: Path
) -> None:
    lock = HostLock()
    dispatcher = ReferenceDispatcher(build_host(BatpakView(grouped), lock=lock), lock)
    payloads = [msgpack.packb({"n": i}) for i in range(COMMITS)]
    keys = [f"{i + 1:032x}" if i % 2 else None for i in range(COMMITS)]
    requests = [
        commit_request(f"acct:{i % 3}", payload, key)
        for i, (payload, key) in enumerate(zip(payloads, keys, strict=True))
    ]
    acks = [msgpack.unpackb(ack) for ack in commit_together(dispatcher, requests)]
    fsyncs = len(slow_fsyncs)
    assert fsyncs <= COMMITS // 2  # one fsync per commit would be 16
    ids = [ack["event_id_hex"] for ack in acks]
    assert len(set(ids)) == COMMITS
    assert len({ack["sequence"] for ack in acks}) == COMMITS
    for ack, payload, key in zip(acks, payloads, keys, strict=True):
        if key is not None:
            assert ack["event_id_hex"] == key
        got = msgpack.unpackb(
            dispatcher.call("event.get", msgpack.packb({"event_id_hex": ack["event_id_hex"]}))
        )
        assert got["payload_hex"] == payload.hex()
        verdict = msgpack.unpackb(dispatcher.call("receipt.verify", msgpack.packb(ack)))
        assert verdict["valid"] is True
    assert grouped.frontier().durable.global_sequence >= max(ack["sequence"] for ack in acks)
    # refbat's shape on disk: every commit is a batch of one, between BEGIN and COMMIT.
    kinds = [k for k in frame_kinds(tmp_path / "store") if k >= 0x100 or k in BATCH_MARKERS]
    assert kinds == [SYSTEM_BATCH_BEGIN, 0xF001, SYSTEM_BATCH_COMMIT] * COMMITS


BATCH_MARKERS = (SYSTEM_BATCH_BEGIN, SYSTEM_BATCH_COMMIT)


def test_a_replayed_key_answers_the_first_ack_under_group_commit(grouped: Store) -> None:
    lock = HostLock()
    dispatcher = ReferenceDispatcher(build_host(BatpakView(grouped), lock=lock), lock)
    first = dispatcher.call("bank.commit", commit_request("acct:1", msgpack.packb(1), "0e" * 16))
    again = dispatcher.call("bank.commit", commit_request("acct:1", msgpack.packb(2), "0e" * 16))
    assert again == first
    assert len(grouped.by_entity("acct:1")) == 1
    unkeyed = [
        msgpack.unpackb(dispatcher.call("bank.commit", commit_request("acct:1", msgpack.packb(3))))
        for _ in range(2)
    ]
    assert unkeyed[0]["event_id_hex"] != unkeyed[1]["event_id_hex"]  # never deduplicated
    assert len(grouped.by_entity("acct:1")) == 3


def test_without_the_shared_lock_commits_hold_the_host_lock_throughout(
    grouped: Store, slow_fsyncs: list[float]
) -> None:
    dispatcher = ReferenceDispatcher(build_host(BatpakView(grouped)))  # a lock of its own
    requests = [commit_request("acct:1", msgpack.packb(i), f"{i + 1:032x}") for i in range(4)]
    commit_together(dispatcher, requests)
    assert len(slow_fsyncs) == 4  # serialised: each commit waited for its own fsync


def test_host_lock_steps_out_only_for_its_holder() -> None:
    lock = HostLock()
    with lock.released():  # not held: nothing to let go of
        pass
    entered = threading.Event()

    def other() -> None:
        with lock.held():
            entered.set()

    with lock.held():
        thread = threading.Thread(target=other)
        thread.start()
        assert not entered.wait(0.05)
        with lock.released():
            assert entered.wait(2)
            thread.join()
    with lock.held():  # given back after the block, and free after the call
        pass


def test_only_the_heartbeat_runs_on_the_event_loop(grouped: Store) -> None:
    dispatcher = ReferenceDispatcher(build_host(BatpakView(grouped)))
    assert frozenset({"system.heartbeat"}) == INLINE_OPS
    assert dispatcher.inline("system.heartbeat")
    assert not dispatcher.inline("bank.commit")
    assert not dispatcher.inline("event.get")
