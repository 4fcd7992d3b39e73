"""The HLC frontier (store-api §1.9, facts3 §6): watermarks only move forward, waits, gates.

Kinds used here are 0xEBxx.
"""

import itertools
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from batpak import (
    AppendOptions,
    Coordinate,
    DurabilityGate,
    Frontier,
    HlcPoint,
    Region,
    RetryableError,
    Store,
    StoreConfig,
    WaitTimeout,
)
from batpak import fs as store_fs
from batpak.kinds import EventKind

SEGMENT_OS: ModuleType = vars(store_fs)["os"]  # what segment syncs call (batpak.fs)
KIND = EventKind.custom(0xE, 0xB20)
MARKS = ("accepted", "written", "durable", "visible")


def check_invariants(f: Frontier) -> None:
    assert f.accepted.global_sequence >= f.written.global_sequence >= f.durable.global_sequence
    assert f.accepted.global_sequence >= f.visible.global_sequence
    assert f.accepted >= f.written >= f.durable
    assert f.accepted >= f.visible


def test_watermarks_never_move_back(tmp_path: Path) -> None:
    samples: list[Frontier] = []
    stop = threading.Event()
    with Store.open(StoreConfig(tmp_path, sync_every_n_events=16)) as store:

        def sampler() -> None:
            while not stop.is_set():
                samples.append(store.frontier())

        reader = threading.Thread(target=sampler)
        reader.start()
        try:
            last = None
            for i in range(400):
                gate = DurabilityGate(10) if i % 97 == 0 else None
                last = store.append(
                    Coordinate(f"e:{i % 5}", "f"), KIND, i, AppendOptions(gate=gate)
                )
                if i % 50 == 49:
                    store.sync()
        finally:
            stop.set()
            reader.join()
        final = store.frontier()
        samples.append(final)
    assert last is not None
    assert len(samples) > 10
    for sample in samples:
        check_invariants(sample)
    for mark in MARKS:
        points: list[HlcPoint] = [getattr(s, mark) for s in samples]
        assert all(a <= b for a, b in itertools.pairwise(points)), mark
        seqs = [p.global_sequence for p in points]
        assert seqs == sorted(seqs), mark
    assert final.visible.global_sequence == final.accepted.global_sequence == last.global_sequence
    assert final.durable.global_sequence == last.global_sequence  # the last sync covered it


def test_wait_for_visible_returns_at_once_for_a_visible_sequence(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        receipt = store.append(Coordinate("a", "f"), KIND, 1)
        started = time.monotonic()
        point = store.wait_for_visible(receipt.global_sequence, timeout=0)
        assert point.global_sequence >= receipt.global_sequence
        assert store.wait_for_visible(0, timeout=5).global_sequence >= receipt.global_sequence
        assert time.monotonic() - started < 0.5
        with pytest.raises(WaitTimeout) as caught:
            store.wait_for_visible(receipt.global_sequence + 1, timeout=0.02)
        assert (caught.value.watermark, caught.value.target) == (
            "visible",
            receipt.global_sequence + 1,
        )


def test_wait_for_durable_times_out_then_succeeds_after_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store.open(StoreConfig(tmp_path, sync_every_n_events=100_000)) as store:
        receipt = store.append(Coordinate("a", "f"), KIND, 1)
        assert store.frontier().durable.global_sequence < receipt.global_sequence
        calls = [0]

        def counted(real: Callable[[int], None]) -> Callable[[int], None]:
            def call(fd: int) -> None:
                calls[0] += 1
                real(fd)

            return call

        monkeypatch.setattr(SEGMENT_OS, "fsync", counted(os.fsync))
        monkeypatch.setattr(SEGMENT_OS, "fdatasync", counted(os.fdatasync))
        started = time.monotonic()
        with pytest.raises(WaitTimeout) as caught:
            store.wait_for_durable(receipt.global_sequence, timeout=0.1)
        waited = time.monotonic() - started
        error = caught.value
        assert isinstance(error, RetryableError)
        assert error.watermark == "durable"
        assert error.target == receipt.global_sequence
        assert error.waited_ms >= 100
        assert waited >= 0.09
        assert calls[0] == 0  # a durable wait never fsyncs by itself
        assert store.frontier().durable.global_sequence < receipt.global_sequence

        store.sync()
        assert calls[0] >= 1
        point = store.wait_for_durable(receipt.global_sequence, timeout=0)
        assert point.global_sequence >= receipt.global_sequence
        frontier = store.frontier()
        assert frontier.durable == frontier.accepted


def slow_fsync(monkeypatch: pytest.MonkeyPatch, delay: float) -> None:
    def slow(real: Callable[[int], None]) -> Callable[[int], None]:
        def call(fd: int) -> None:
            time.sleep(delay)
            real(fd)

        return call

    monkeypatch.setattr(SEGMENT_OS, "fsync", slow(os.fsync))
    monkeypatch.setattr(SEGMENT_OS, "fdatasync", slow(os.fdatasync))


def test_a_gate_timeout_does_not_roll_the_append_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = StoreConfig(tmp_path)
    coord = Coordinate("gated", "f")
    with Store.open(config) as store:
        slow_fsync(monkeypatch, 0.3)
        with pytest.raises(WaitTimeout) as caught:
            store.append(coord, KIND, "kept", AppendOptions(gate=DurabilityGate(timeout=0.01)))
        assert caught.value.watermark == "durable"
        [entry] = store.by_entity("gated")  # committed and visible despite the timeout
        assert store.get(entry.event_id).value() == "kept"
        store.wait_for_durable(entry.global_sequence, timeout=5)  # it does become durable
        monkeypatch.undo()
    with Store.open_read_only(config) as reopened:
        assert [e.event_id for e in reopened.by_entity("gated")] == [entry.event_id]


def test_a_gate_timeout_names_the_appended_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WaitTimeout{watermark, target, waited_ms}: a gate waits for its own event's point, so
    its timeout should say which global sequence it was waiting for."""
    with Store.open(StoreConfig(tmp_path)) as store:
        slow_fsync(monkeypatch, 0.2)
        with pytest.raises(WaitTimeout) as caught:
            store.append(Coordinate("g", "f"), KIND, 1, AppendOptions(gate=DurabilityGate(0.01)))
        sequence = store.frontier().accepted.global_sequence
        assert caught.value.target == sequence
        assert caught.value.waited_ms >= 10
        store.sync()
        monkeypatch.undo()


def test_watermarks_cover_new_events_when_the_clock_steps_back(tmp_path: Path) -> None:
    """Waits compare global sequences only (facts3 §6 ``covers_sequence``): an event on another
    entity whose wall clock is earlier (an NTP step back) must still become visible/durable."""
    now = [2_000_000_000_000_000]
    config = StoreConfig(tmp_path, sync_every_n_events=100_000).with_clock(lambda: now[0])
    with Store.open(config) as store:
        store.append(Coordinate("early", "f"), KIND, 1)
        now[0] -= 3_600_000_000  # one hour back
        later = store.append(Coordinate("other", "f"), KIND, 2)
        assert store.get(later.event_id).global_sequence == later.global_sequence
        assert store.frontier().visible.global_sequence == later.global_sequence
        store.wait_for_visible(later.global_sequence, timeout=0.2)
        store.sync()
        store.wait_for_durable(later.global_sequence, timeout=0.2)


def test_the_frontier_starts_at_the_recovered_history(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path)
    with Store.open(config) as store:
        for i in range(5):
            store.append(Coordinate("a", "f"), KIND, i)
        before = store.frontier()
    with Store.open(config) as store:
        after = store.frontier()
        check_invariants(after)
        open_event = store.query(Region.all())[-1]
        assert after.durable.global_sequence == open_event.global_sequence
        assert after.visible.global_sequence == open_event.global_sequence
        assert after.durable > before.durable
