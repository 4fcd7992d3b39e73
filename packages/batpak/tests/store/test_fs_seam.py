"""The filesystem and clock seam (docs/batpak-test-seam.md): every file operation goes through
``StoreConfig.fs``, every recorded time comes from an injected clock, and I/O failures during
open and close are typed.

The store is opened at a path that does not exist; a ``StoreFs`` maps it to a real directory.
Any operation that bypassed the seam would touch the unmapped path.
"""

from __future__ import annotations

import errno
from pathlib import Path

import msgspec
import pytest

from batpak import BatchAppendItem, Coordinate, Region, Store, StoreConfig
from batpak.errors import Io
from batpak.fs import Lock, OsFs, ReadFile, WriteFile
from batpak.kinds import SYSTEM_OPEN_COMPLETED, EventKind
from batpak.segment import SegmentHeader

KIND = EventKind.custom(0xE, 0x5EA)
FROZEN_US = 978_307_200_000_000


class Logged:
    """A WriteFile that logs its fsyncs."""

    def __init__(self, inner: WriteFile, name: str, log: list[tuple[str, str]]) -> None:
        self.inner, self.name, self.log = inner, name, log

    def write(self, data: bytes) -> None:
        self.inner.write(data)

    def sync(self, data_only: bool = False) -> None:
        self.inner.sync(data_only)
        self.log.append(("sync", self.name))

    def close(self) -> None:
        self.inner.close()


class MappedFs(OsFs):
    """The real filesystem with ``virtual`` mapped onto ``real``; can fail one kind of op."""

    def __init__(self, virtual: Path, real: Path) -> None:
        self.virtual, self.real = virtual, real
        self.fail: tuple[str, str] | None = None  # (method, path suffix)
        self.log: list[tuple[str, str]] = []  # (create | sync, file name), in order

    def _m(self, path: Path, op: str) -> Path:
        if self.fail is not None and op == self.fail[0] and str(path).endswith(self.fail[1]):
            raise OSError(errno.EIO, "injected", str(path))
        return self.real / path.relative_to(self.virtual)

    def mkdir(self, path: Path) -> None:
        super().mkdir(self._m(path, "mkdir"))

    def is_dir(self, path: Path) -> bool:
        return super().is_dir(self._m(path, "is_dir"))

    def exists(self, path: Path) -> bool:
        return super().exists(self._m(path, "exists"))

    def listdir(self, path: Path) -> list[str]:
        return super().listdir(self._m(path, "listdir"))

    def size(self, path: Path) -> int:
        return super().size(self._m(path, "size"))

    def read(self, path: Path, offset: int = 0, length: int | None = None) -> bytes:
        return super().read(self._m(path, "read"), offset, length)

    def open_read(self, path: Path) -> ReadFile:
        return super().open_read(self._m(path, "open_read"))

    def create(self, path: Path, *, exclusive: bool) -> WriteFile:
        inner = super().create(self._m(path, "create"), exclusive=exclusive)
        self.log.append(("create", path.name))
        return Logged(inner, path.name, self.log)

    def replace(self, source: Path, target: Path) -> None:
        super().replace(self._m(source, "replace"), self._m(target, "replace"))

    def link(self, source: Path, target: Path) -> None:
        super().link(self._m(source, "link"), self._m(target, "link"))

    def remove(self, path: Path) -> None:
        super().remove(self._m(path, "remove"))

    def sync_dir(self, path: Path) -> None:
        super().sync_dir(self._m(path, "sync_dir"))

    def lock(self, path: Path) -> Lock:
        return super().lock(self._m(path, "lock"))


def mapped(tmp_path: Path) -> tuple[MappedFs, StoreConfig]:
    fs = MappedFs(tmp_path / "virtual", tmp_path / "real")
    config = StoreConfig(tmp_path / "virtual" / "store", segment_max_bytes=4096)
    return fs, config.with_fs(fs).with_clock(lambda: FROZEN_US)


def test_every_file_operation_goes_through_the_seam(tmp_path: Path) -> None:
    _, config = mapped(tmp_path)
    coord = Coordinate("seam:1", "s")
    with Store.open(config) as store:
        for i in range(12):
            store.append(coord, KIND, {"i": i, "pad": "x" * 500})
        store.append_batch([BatchAppendItem.new(coord, KIND, {"b": j}) for j in range(3)])
        cursor = store.cursor(Region.all(), checkpoint_id="seam")
        cursor.poll_batch(5)
        cursor.commit()
        cursor.close()
        assert store.compact().outcome == "performed"
        store.snapshot(tmp_path / "virtual" / "copy")
        before = [store.get(e.event_id).event.payload for e in store.query(Region.all())]
    with Store.open_read_only(config) as store:
        after = [store.get(e.event_id).event.payload for e in store.query(Region.all())]
    assert after[: len(before)] == before
    assert not (tmp_path / "virtual").exists(), "an operation bypassed the seam"
    names = {p.name for p in (tmp_path / "real" / "store").iterdir()}
    assert {"store.meta", "index.cols", ".batpak.lock", "000001.fbat"} <= names
    assert (tmp_path / "real" / "store" / "cursors" / "seam.ckpt").exists()
    assert (tmp_path / "real" / "copy" / "store.meta").exists()


def test_rotation_and_open_stamp_segments_with_the_injected_clock(tmp_path: Path) -> None:
    _, config = mapped(tmp_path)
    with Store.open(config) as store:
        for i in range(12):
            store.append(Coordinate("seam:1", "s"), KIND, {"i": i, "pad": "x" * 500})
    segments = sorted((tmp_path / "real" / "store").glob("*.fbat"))
    assert len(segments) >= 3
    for path in segments:
        data = path.read_bytes()
        length = int.from_bytes(data[4:8], "big")
        header = msgspec.msgpack.decode(data[8 : 8 + length], type=SegmentHeader)
        assert header.created_ns == FROZEN_US * 1000, path.name


def test_rotation_seals_the_full_segment_before_the_next_one_exists(tmp_path: Path) -> None:
    """A newer segment after a torn one refuses the open, so the old one (frames and footer)
    is fsynced before the next is created; a crash in between leaves it the newest."""
    fs, config = mapped(tmp_path)
    with Store.open(config) as store:
        for i in range(12):
            store.append(Coordinate("seam:1", "s"), KIND, {"i": i, "pad": "x" * 500})
    creates = [i for i, (op, name) in enumerate(fs.log) if op == "create" and name[0].isdigit()]
    assert len(creates) >= 3
    for at in creates[1:]:
        previous = f"{int(fs.log[at][1][:6]) - 1:06d}.fbat"
        last_sync = max(i for i, entry in enumerate(fs.log) if entry == ("sync", previous))
        assert last_sync < at, f"{fs.log[at][1]} was created before {previous} was whole"
    for path in sorted((tmp_path / "real" / "store").glob("*.fbat")):
        assert path.read_bytes().endswith(b"SDX3"), f"{path.name} is not sealed"


def test_open_report_timings_come_from_the_injected_clock(tmp_path: Path) -> None:
    _, config = mapped(tmp_path)
    with Store.open(config) as store:
        opened = store.by_fact(SYSTEM_OPEN_COMPLETED)[-1]
        report = msgspec.msgpack.decode(store.read_raw(opened.event_id))
    timings = {key: value for key, value in report.items() if key.endswith("_us")}
    assert timings
    assert set(timings.values()) == {0}  # a frozen clock: no time passed


@pytest.mark.parametrize(
    ("op", "suffix"),
    [("read", "store.meta"), ("listdir", "store"), ("create", ".fbat"), ("sync_dir", "store")],
)
def test_an_io_error_during_open_is_typed_and_releases_the_lock(
    tmp_path: Path, op: str, suffix: str
) -> None:
    fs, config = mapped(tmp_path)
    with Store.open(config) as store:
        store.append(Coordinate("seam:1", "s"), KIND, {"n": 1})
    fs.fail = (op, suffix)
    with pytest.raises(Io):
        Store.open(config)
    fs.fail = None
    with Store.open(config) as store:  # the failed open released the lock
        assert store.query(Region.all())


def test_an_io_error_during_close_is_typed(tmp_path: Path) -> None:
    fs, config = mapped(tmp_path)
    store = Store.open(config)
    store.append(Coordinate("seam:1", "s"), KIND, {"n": 1})
    fs.fail = ("create", "index.cols.tmp")
    with pytest.raises(Io):
        store.close()
    fs.fail = None
    with Store.open(config) as again:  # the lock was released
        assert len(again.query(Region.all())) >= 3
