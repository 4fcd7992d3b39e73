"""Cold start under damage (format.md §7.2): torn tails, mid-stream corruption, sealed segments.

A "crash image" is the directory's bytes captured after ``sync()`` while the store is still
open: no CLOSE_COMPLETED and no footer, exactly what a crash leaves behind.
"""

import random
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import msgpack  # type: ignore[import-untyped]
import pytest

from batpak import Coordinate, FailClosedError, IndexEntry, Region, Store, StoreConfig
from batpak.errors import CorruptFrame, CorruptSegment, CrcMismatch
from batpak.kinds import SYSTEM_CLOSE_COMPLETED, SYSTEM_OPEN_COMPLETED, EventKind

KIND = EventKind.custom(0xE, 0x8C0)
SEG1, SEG2 = "000001.fbat", "000002.fbat"


@dataclass(frozen=True)
class Image:
    files: dict[str, bytes]
    entries: list[IndexEntry]


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def materialize(directory: Path, files: dict[str, bytes]) -> Path:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return directory


def append_some(store: Store, n: int = 4) -> None:
    for i in range(n):
        store.append(Coordinate(f"c:{i % 2}", "s"), KIND, {"i": i})


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> Image:
    directory = tmp_path_factory.mktemp("crashed")
    with Store.open(StoreConfig(directory)) as store:
        append_some(store)
        store.sync()
        image = Image(snapshot(directory), store.query(Region.all()))
    assert set(image.files) == {".batpak.lock", SEG1, "store.meta"}
    return image


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Image:
    """Two clean sessions: segments 1 and 2 both closed with SDX3 footers."""
    directory = tmp_path_factory.mktemp("sealed")
    for _ in range(2):
        with Store.open(StoreConfig(directory)) as store:
            append_some(store, 3)
    with Store.open_read_only(StoreConfig(directory)) as store:
        entries = store.query(Region.all())
    files = snapshot(directory)
    # Without the checkpoint, open scans every segment: these tests prove that scan refuses
    # damage. With it, damage surfaces on read (test_checkpoint_defers_damage_to_the_read).
    del files["index.cols"]
    return Image(files, entries)


def test_checkpoint_defers_damage_to_the_read(tmp_path: Path) -> None:
    for _ in range(2):
        with Store.open(StoreConfig(tmp_path)) as store:
            append_some(store, 3)
    with Store.open_read_only(StoreConfig(tmp_path)) as store:
        user = [e for e in store.query(Region.all()) if e.segment_id == 1][1]
    segment = tmp_path / SEG1
    damaged = bytearray(segment.read_bytes())
    damaged[user.offset + user.length - 2] ^= 0x01  # same size: the checkpoint still matches
    segment.write_bytes(bytes(damaged))
    with Store.open_read_only(StoreConfig(tmp_path)) as store, pytest.raises(CrcMismatch):
        store.get(user.event_id)
    (tmp_path / "index.cols").unlink()
    with pytest.raises(FailClosedError):
        Store.open_read_only(StoreConfig(tmp_path))


def test_a_stale_checkpoint_is_never_trusted(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        append_some(store, 3)
    stale = (tmp_path / "index.cols").read_bytes()
    with Store.open(StoreConfig(tmp_path)) as store:
        append_some(store, 2)
    with Store.open_read_only(StoreConfig(tmp_path)) as store:
        expected = store.query(Region.all())
    (tmp_path / "index.cols").write_bytes(stale)  # describes fewer segments than exist
    with Store.open_read_only(StoreConfig(tmp_path)) as store:
        assert store.query(Region.all()) == expected
    (tmp_path / "index.cols").write_bytes(stale[:-1] + bytes([stale[-1] ^ 1]))  # bad CRC
    with Store.open_read_only(StoreConfig(tmp_path)) as store:
        assert store.query(Region.all()) == expected


def kinds(entries: list[IndexEntry]) -> list[int]:
    return [e.event_kind for e in entries]


def assert_refused_without_changes(directory: Path) -> None:
    before = snapshot(directory)
    with pytest.raises(FailClosedError):
        Store.open(StoreConfig(directory))
    with pytest.raises(FailClosedError):
        Store.open_read_only(StoreConfig(directory))
    assert snapshot(directory) == before


# --- torn tails ---------------------------------------------------------------------------


@pytest.mark.parametrize("garbage", [False, True], ids=["cut", "cut+garbage"])
def test_torn_last_frame_recovers_the_prefix_at_every_cut(
    crashed: Image, tmp_path: Path, garbage: bool
) -> None:
    seg = crashed.files[SEG1]
    last = crashed.entries[-1]
    assert last.offset + last.length == len(seg)
    kept = crashed.entries[:-1]
    rng = random.Random(7)
    for cut in range(last.offset, last.offset + last.length):
        damaged = seg[:cut] + (rng.randbytes(rng.randint(1, 64)) if garbage else b"")
        target = materialize(tmp_path / "store", {**crashed.files, SEG1: damaged})
        with Store.open(StoreConfig(target)) as store:
            entries = store.query(Region.all())
        assert entries[:-1] == kept, cut
        assert entries[-1].event_kind == SYSTEM_OPEN_COMPLETED
        assert (entries[-1].global_sequence, entries[-1].segment_id) == (len(kept), 2)
        torn = target / "000001.torn"
        if len(damaged) > last.offset:  # torn bytes were kept as evidence, not truncated away
            assert torn.read_bytes() == damaged
            assert (target / SEG1).read_bytes()[: last.offset] == seg[: last.offset]
        else:
            assert not torn.exists()
        with Store.open_read_only(StoreConfig(target)) as store:
            again = store.query(Region.all())
        assert again[: len(kept)] == kept, cut
        assert kinds(again[len(kept) :]) == [SYSTEM_OPEN_COMPLETED, SYSTEM_CLOSE_COMPLETED]


def test_torn_tail_read_only_open_changes_nothing(crashed: Image, tmp_path: Path) -> None:
    last = crashed.entries[-1]
    seg = crashed.files[SEG1]
    target = materialize(tmp_path / "store", {**crashed.files, SEG1: seg[: last.offset + 11]})
    before = snapshot(target)
    with Store.open_read_only(StoreConfig(target)) as store:
        assert store.query(Region.all()) == crashed.entries[:-1]
    assert snapshot(target) == before


def test_writes_continue_the_chain_after_a_torn_tail(crashed: Image, tmp_path: Path) -> None:
    last = crashed.entries[-1]
    seg = crashed.files[SEG1]
    target = materialize(tmp_path / "store", {**crashed.files, SEG1: seg[: last.offset + 20]})
    with Store.open(StoreConfig(target)) as store:
        receipt = store.append(Coordinate(last.entity, "s"), KIND, "after")
        chain = store.by_entity(last.entity)
    assert chain[-1].event_id == receipt.event_id
    assert chain[-1].prev_hash == chain[-2].event_hash
    assert chain[-2] == crashed.entries[-3]  # the torn event is gone; its parent is the head
    assert [e.clock for e in chain] == list(range(len(chain)))


# --- corruption that must refuse ----------------------------------------------------------


def test_mid_stream_corruption_refuses_and_changes_no_file(crashed: Image, tmp_path: Path) -> None:
    seg = crashed.files[SEG1]
    victim = crashed.entries[1]  # valid frames follow it
    rng = random.Random(11)
    positions = list(range(victim.offset, victim.offset + victim.length))
    positions += rng.sample(range(crashed.entries[0].offset, victim.offset), 16)
    for index in positions:
        damaged = bytearray(seg)
        damaged[index] ^= 0x5A
        target = materialize(tmp_path / "store", {**crashed.files, SEG1: bytes(damaged)})
        assert_refused_without_changes(target)


def test_refusal_surfaces_as_the_store_error_not_a_buffer_error(
    crashed: Image, tmp_path: Path
) -> None:
    # Regression guard: the refusal must not be masked by the mmap cleanup (BufferError).
    seg = bytearray(crashed.files[SEG1])
    seg[crashed.entries[1].offset + 20] ^= 0x01
    target = materialize(tmp_path / "store", {**crashed.files, SEG1: bytes(seg)})
    with pytest.raises(CorruptSegment, match="followed by a valid frame"):
        Store.open_read_only(StoreConfig(target))


def test_corrupt_header_length_in_newest_segment_with_frames_refuses(
    crashed: Image, tmp_path: Path
) -> None:
    # A damaged header length that points past EOF must not pass for a half-written header
    # when CRC-valid frames follow it: that would silently drop acknowledged events.
    seg = crashed.files[SEG1]
    for index in (4, 5, 6):
        damaged = bytearray(seg)
        damaged[index] ^= 0x5A
        target = materialize(tmp_path / "store", {**crashed.files, SEG1: bytes(damaged)})
        assert_refused_without_changes(target)


def test_partial_header_of_a_newest_segment_recovers_and_stays_openable(
    sealed: Image, tmp_path: Path
) -> None:
    header = sealed.files[SEG1][:57]
    for cut in (0, 3, 8, 30, 56):
        target = materialize(tmp_path / "store", {**sealed.files, "000003.fbat": header[:cut]})
        with Store.open(StoreConfig(target)) as store:
            entries = store.query(Region.all())
        assert entries[: len(sealed.entries)] == sealed.entries
        assert entries[-1].segment_id == 4
        # Like a sealed torn tail, the store must stay openable once segment 3 is no longer
        # the newest segment.
        with Store.open_read_only(StoreConfig(target)) as store:
            again = store.query(Region.all())
        assert again[: len(entries)] == entries, cut


def frame(body: bytes) -> bytes:
    return struct.pack(">II", len(body), zlib.crc32(body)) + body


def bad_bodies(crashed: Image) -> list[bytes]:
    seg = crashed.files[SEG1]
    good = crashed.entries[1]
    decoded = msgpack.unpackb(seg[good.offset + 8 : good.offset + good.length], raw=False)
    decoded["event"]["header"]["event_id"] = b"\x01" * 15
    return [b"\xc1", msgpack.packb({"hello": 1}), msgpack.packb(decoded, use_bin_type=True)]


@pytest.mark.parametrize("where", ["end", "middle"])
def test_crc_valid_undecodable_frame_is_corrupt_frame(
    crashed: Image, tmp_path: Path, where: str
) -> None:
    seg = crashed.files[SEG1]
    split = len(seg) if where == "end" else crashed.entries[2].offset
    for body in bad_bodies(crashed):
        damaged = seg[:split] + frame(body) + seg[split:]
        target = materialize(tmp_path / "store", {**crashed.files, SEG1: damaged})
        before = snapshot(target)
        with pytest.raises(CorruptFrame):
            Store.open(StoreConfig(target))
        assert snapshot(target) == before


def test_damaged_frames_in_a_sealed_segment_refuse(sealed: Image, tmp_path: Path) -> None:
    seg = sealed.files[SEG1]
    first_segment = [e for e in sealed.entries if e.segment_id == 1]
    user, close = first_segment[1], first_segment[-1]
    assert close.event_kind == SYSTEM_CLOSE_COMPLETED
    for index in (user.offset + 3, user.offset + user.length // 2, close.offset + 40):
        damaged = bytearray(seg)
        damaged[index] ^= 0x01
        target = materialize(tmp_path / "store", {**sealed.files, SEG1: bytes(damaged)})
        assert_refused_without_changes(target)
    cut = seg[: close.offset + close.length // 2]  # footer and half the CLOSE frame gone
    assert_refused_without_changes(materialize(tmp_path / "store", {**sealed.files, SEG1: cut}))


def test_sealed_segment_without_footer_but_whole_frames_opens(
    sealed: Image, tmp_path: Path
) -> None:
    seg = sealed.files[SEG1]
    close = [e for e in sealed.entries if e.segment_id == 1][-1]
    target = materialize(
        tmp_path / "store", {**sealed.files, SEG1: seg[: close.offset + close.length]}
    )
    with Store.open_read_only(StoreConfig(target)) as store:
        assert store.query(Region.all()) == sealed.entries


# --- damaged SIDX footers -----------------------------------------------------------------

FOOTER_SPOTS = ("crc", "entry_count", "magic", "row", "string_table", "table_offset")


def footer_spot(spot: str, data: bytearray) -> int:
    """The index of one byte inside a named part of the segment's SDX3 footer."""
    size = len(data)
    table_offset: int = struct.unpack_from("<Q", data, size - 16)[0]
    return {
        "string_table": table_offset,
        "row": size - 20 - 100,
        "crc": size - 19,
        "table_offset": size - 16,
        "entry_count": size - 8,
        "magic": size - 4,
    }[spot]


@pytest.mark.parametrize("spot", FOOTER_SPOTS)
def test_damaged_footer_of_a_non_last_segment_refuses(
    sealed: Image, tmp_path: Path, spot: str
) -> None:
    damaged = bytearray(sealed.files[SEG1])
    damaged[footer_spot(spot, damaged)] ^= 0xFF
    target = materialize(tmp_path / "store", {**sealed.files, SEG1: bytes(damaged)})
    assert_refused_without_changes(target)


@pytest.mark.parametrize("spot", FOOTER_SPOTS)
def test_damaged_footer_of_the_last_segment_recovers_and_stays_openable(
    sealed: Image, tmp_path: Path, spot: str
) -> None:
    files = {k: v for k, v in sealed.files.items() if k != SEG1}
    damaged = bytearray(files[SEG2])
    damaged[footer_spot(spot, damaged)] ^= 0xFF
    target = materialize(tmp_path / "store", {**files, SEG2: bytes(damaged)})
    segment2 = [e for e in sealed.entries if e.segment_id == 2]
    for _ in range(2):  # the second open sees segment 2 as sealed, no longer the last
        with Store.open(StoreConfig(target)) as store:
            entries = store.query(Region.all())
        assert [(e.event_id, e.offset, e.length) for e in entries[: len(segment2)]] == [
            (e.event_id, e.offset, e.length) for e in segment2
        ]
    assert (target / "000002.torn").read_bytes() == bytes(damaged)
    assert kinds(entries[len(segment2) :]) == [
        SYSTEM_OPEN_COMPLETED,
        SYSTEM_CLOSE_COMPLETED,
        SYSTEM_OPEN_COMPLETED,
    ]
