"""Untrusted bytes behind a valid CRC: every decoder refuses them with a typed StoreError.

A CRC only proves bytes are as written. Invalid UTF-8 (msgspec raises UnicodeDecodeError),
values nested 100,000 deep (RecursionError), and a checkpoint whose row numbers, string ids or
frame offsets point outside what it covers must still end in the store's own errors, never in
a raw Python exception (found by the conformance fuzz targets, conformance/regressions/).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from batpak import (
    AppendOptions,
    Coordinate,
    IdempotencyKey,
    Region,
    Store,
    StoreConfig,
    StoreError,
    canonical,
)
from batpak.errors import CorruptFrame, FailClosedError, StoreMetadataCorrupt
from batpak.sidefile import wrap
from batpak.store._authority import IdempotencyAuthorityError
from batpak.store._cursor import CursorCheckpointCorrupt

DEEP = b"\x91" * 100_000 + b"\x90"
COORD = Coordinate("acct:a", "untrusted")


def _store(path: Path) -> Path:
    with Store.open(StoreConfig(path)) as store:
        store.append(COORD, 0x1000, {"n": 1})
        key = IdempotencyKey.for_operation("t", ["1"])
        store.append(COORD, 0x1000, {"n": 2}, AppendOptions(idempotency_key=key))
    return path


def _opens(path: Path) -> list[type[Exception]]:
    """The outcome of a read-only and a writable open: [] when both open."""
    failures: list[type[Exception]] = []
    for opener in (Store.open_read_only, Store.open):
        try:
            opener(StoreConfig(path)).close()
        except StoreError as exc:
            failures.append(type(exc))
    return failures


def _frame(body: bytes) -> bytes:
    return struct.pack(">II", len(body), zlib.crc32(body)) + body


def _newest_with_frame(path: Path, body: bytes) -> None:
    newest = sorted(path.glob("*.fbat"))[-1]
    data = newest.read_bytes()
    start = 8 + int.from_bytes(data[4:8], "big")
    first = int.from_bytes(data[start : start + 4], "big")
    tree = canonical.decode(data[start + 8 : start + 8 + first])
    newest.write_bytes(data[:start] + _frame(body(tree) if callable(body) else body))


def test_frame_entity_of_invalid_utf8_is_a_corrupt_frame(tmp_path: Path) -> None:
    path = _store(tmp_path / "s")

    def body(tree: dict[str, object]) -> bytes:
        tree["entity"] = "PLACEHOLDER"
        out: bytes = canonical.encode(tree)
        return out.replace(canonical.encode("PLACEHOLDER"), b"\xa2\xff\xfe")

    _newest_with_frame(path, body)  # type: ignore[arg-type]
    assert _opens(path) == [CorruptFrame, CorruptFrame]


def test_frame_payload_nested_too_deep_is_a_corrupt_frame(tmp_path: Path) -> None:
    path = _store(tmp_path / "s")

    def body(tree: dict[str, dict[str, object]]) -> bytes:
        tree["event"]["payload"] = "PLACEHOLDER"
        out: bytes = canonical.encode(tree)
        return out.replace(canonical.encode("PLACEHOLDER"), DEEP)

    _newest_with_frame(path, body)  # type: ignore[arg-type]
    assert _opens(path) == [CorruptFrame, CorruptFrame]


def _with_deep_unknown_key(body: bytes) -> bytes:
    assert 0x80 <= body[0] < 0x8F
    return bytes([body[0] + 1]) + body[1:] + b"\xa2zz" + DEEP


def test_store_meta_nested_too_deep_is_corrupt_metadata(tmp_path: Path) -> None:
    path = _store(tmp_path / "s")
    meta = (path / "store.meta").read_bytes()
    (path / "store.meta").write_bytes(wrap(b"FBATSM", 1, _with_deep_unknown_key(meta[12:])))
    assert _opens(path) == [StoreMetadataCorrupt, StoreMetadataCorrupt]


@pytest.mark.parametrize(
    "change",
    [_with_deep_unknown_key, lambda body: body.replace(b"acct:a", b"acct:\xff")],
    ids=["nested-too-deep", "entity-not-utf8"],
)
def test_idempotency_image_that_does_not_decode_is_refused(
    tmp_path: Path, change: Callable[[bytes], bytes]
) -> None:
    path = _store(tmp_path / "s")
    body = (path / "index.idemp").read_bytes()[12:]
    (path / "index.idemp").write_bytes(wrap(b"FBATID", 2, change(body)))
    assert _opens(path) == [IdempotencyAuthorityError, IdempotencyAuthorityError]


@pytest.mark.parametrize("identity", [b"\xa2\xff\xfe", DEEP])
def test_cursor_checkpoint_that_does_not_decode_is_refused(tmp_path: Path, identity: bytes) -> None:
    path = _store(tmp_path / "s")
    (path / "cursors").mkdir()
    head = canonical.encode({"position": 1, "started": True})
    (path / "cursors" / "c.ckpt").write_bytes(
        b"\x83" + head[1:] + b"\xafregion_identity" + identity
    )
    with Store.open(StoreConfig(path)) as store, pytest.raises(CursorCheckpointCorrupt):
        store.cursor(Region.all(), "c")
    assert issubclass(CursorCheckpointCorrupt, FailClosedError)


def _cols_column(path: Path, column: int, value: bytes) -> None:
    """Overwrite the first value of one numeric column of index.cols, keeping its CRC valid."""
    data = bytearray((path / "index.cols").read_bytes())
    size = int.from_bytes(data[12:20], "little")
    count = msgspec.msgpack.decode(data[20 : 20 + size])["count"]
    widths = (4, 4, 2, 8, 4, 4, 4, 8, 8, 8, 4, 4)  # entity scope kind wall ... off length order
    at = 20 + size + 8 + count * sum(widths[:column])
    data[at : at + len(value)] = value
    (path / "index.cols").write_bytes(wrap(b"FBATPC", 1, bytes(data[12:])))


@pytest.mark.parametrize(
    ("column", "value"),
    [(0, b"\xff\xff\xff\xff"), (9, b"\xff" * 8), (11, b"\xff\xff\x00\x00")],
    ids=["string-id", "frame-offset", "order-row"],
)
def test_checkpoint_pointing_outside_is_ignored(tmp_path: Path, column: int, value: bytes) -> None:
    path = _store(tmp_path / "s")
    with Store.open_read_only(StoreConfig(path)) as store:
        expected = [store.get(e.event_id).event.payload for e in store.query(Region.all())]
    _cols_column(path, column, value)
    with Store.open_read_only(StoreConfig(path)) as store:
        got = [store.get(e.event_id).event.payload for e in store.query(Region.all())]
    assert got == expected
