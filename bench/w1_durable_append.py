"""Workload 1: durable single appends, one caller, one fsync each, against the disk's limit.

The peer is a raw loop that writes the very frames batpak wrote (read back from its segment)
to a fresh file opened the same way (``O_APPEND``), each followed by the same sync call
(``os.fsync`` for ``sync_all``, the default; ``os.fdatasync`` for ``sync_data``). The sides
alternate in short chunks so both see the same disk and load; the raw rate is the machine's
fsync rate.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from batpak import AppendOptions, Coordinate, DurabilityGate, Store, StoreConfig
from batpak.segment import segment_name
from bench.common import Check, Sizes, ratio_check, record

GATE = AppendOptions(gate=DurabilityGate(60.0))
CHUNK = 50


class RawLog:
    """A file opened like a segment, appended to with write + fsync per frame."""

    def __init__(self, path: Path, data_only: bool) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self.sync = os.fdatasync if data_only else os.fsync
        os.write(self.fd, b"\0" * 64)  # a header, as a segment has, outside the timing
        os.fsync(self.fd)

    def write(self, frames: list[bytes]) -> float:
        """Seconds to write and sync each frame in turn."""
        fd, sync = self.fd, self.sync
        started = time.perf_counter()
        for frame in frames:
            view = memoryview(frame)
            while view:
                view = view[os.write(fd, view) :]
            sync(fd)
        return time.perf_counter() - started

    def close(self) -> None:
        os.close(self.fd)


def durable_rate(path: Path, count: int) -> float:
    """Events per second of one caller's gated appends (workload 2 uses this as its peer)."""
    with Store.open(StoreConfig(path)) as store:
        started = time.perf_counter()
        for n in range(count):
            store.append_typed(Coordinate(f"order:{n % 50}", "bench"), record(n), GATE)
        return count / (time.perf_counter() - started)


def run(sizes: Sizes, workdir: Path) -> list[Check]:
    config = StoreConfig(workdir / "w1-store")
    data_only = config.sync_mode == "sync_data"
    raw = RawLog(workdir / "w1-raw", data_only)
    ours = theirs = 0.0
    frame_bytes = 0
    count = sizes.durable_appends * sizes.rounds
    try:
        with Store.open(config) as store:
            segment: int | None = None
            segment_id = -1
            try:
                for first in range(0, count, CHUNK):
                    values = [record(n) for n in range(first, min(first + CHUNK, count))]
                    coords = [Coordinate(f"order:{n % 50}", "bench") for n in range(len(values))]
                    started = time.perf_counter()
                    receipts = [
                        store.append_typed(c, v, GATE) for c, v in zip(coords, values, strict=True)
                    ]
                    ours += time.perf_counter() - started
                    if segment is None:
                        segment_id = receipts[0].disk_pos.segment_id
                        segment = os.open(config.path / segment_name(segment_id), os.O_RDONLY)
                    if any(r.disk_pos.segment_id != segment_id for r in receipts):
                        raise AssertionError("the store rotated its segment mid-benchmark")
                    frames = [
                        os.pread(segment, r.disk_pos.length, r.disk_pos.offset) for r in receipts
                    ]
                    frame_bytes += sum(map(len, frames))
                    theirs += raw.write(frames)
            finally:
                if segment is not None:
                    os.close(segment)
    finally:
        raw.close()
    details = {
        "appends": count,
        "chunk": CHUNK,
        "sync": "os.fdatasync" if data_only else "os.fsync (sync_mode='sync_all', the default)",
        "frame_bytes": frame_bytes // count,
        "batpak_seconds": ours,
        "raw_seconds": theirs,
    }
    return [
        ratio_check(
            1,
            "durable append vs raw write+fsync",
            "events/s",
            count / ours,
            count / theirs,
            0.9,
            details,
        )
    ]
