"""What every command shares: errors, opening a store, segment files, JSON output."""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, cast

from zlib_ng.zlib_ng import crc32

from batpak import (
    Store,
    StoreConfig,
    StoreLocked,
)
from batpak.errors import CorruptSegment
from batpak.frame import FRAME_HEADER, MAX_FRAME_BYTES
from batpak.segment import (
    parse_segment_id,
    read_footer,
    read_header,
)

EXIT_OK = 0
EXIT_DAMAGE = 1
EXIT_USAGE = 2
BATCH_ENTITY = "_batch"  # batch markers' raw entity string (format.md §7.1)
LIFECYCLE_ENTITY = "batpak:store"  # OPEN_COMPLETED / CLOSE_COMPLETED (format.md §7.2)
PAGE = 1024
META_NAME = "store.meta"


class CliError(Exception):
    """An expected failure: printed as one ``batpak: ...`` line, exits with ``code``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


# -- opening ----------------------------------------------------------------------------------


def segment_files(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for name in os.listdir(directory):
        segment_id = parse_segment_id(name)
        if segment_id is not None:
            found.append((segment_id, directory / name))
    found.sort()
    return found


def require_store(text: str, *, allow_empty: bool = False) -> Path:
    """The store directory named on the command line, refusing anything that is not one."""
    path = Path(text)
    if not path.exists():
        raise CliError(EXIT_USAGE, f"{text}: no such directory")
    if not path.is_dir():
        raise CliError(EXIT_USAGE, f"{text} is not a directory")
    try:
        empty = not segment_files(path) and not (path / META_NAME).exists()
    except OSError as exc:
        raise CliError(EXIT_USAGE, f"{text}: cannot list directory: {exc.strerror}") from None
    if empty and not allow_empty:
        raise CliError(EXIT_USAGE, f"{text} is not a batpak store (no segment files)")
    return path


@contextmanager
def open_store(text: str, *, writable: bool) -> Iterator[Store]:
    path = require_store(text)
    config = StoreConfig(path)
    try:
        store = Store.open(config) if writable else Store.open_read_only(config)
    except StoreLocked:
        raise CliError(EXIT_USAGE, f"{text} is locked by another process") from None
    with store:
        yield store


def write_json(out: TextIO, value: Any, *, indent: int | None = None) -> None:
    separators = (",", ":") if indent is None else (",", ": ")
    out.write(json.dumps(value, allow_nan=False, indent=indent, separators=separators))
    out.write("\n")


# -- segment files ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """One segment file as found on disk."""

    segment_id: int
    name: str
    size: int
    footer: str | None  # "SDX3" / "SDX2" when sealed, else None
    frames_end: int  # where the whole, CRC-valid frames end
    torn_bytes: int  # bytes after the last whole frame of an unsealed segment

    @property
    def sealed(self) -> bool:
        return self.footer is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.segment_id,
            "file": self.name,
            "bytes": self.size,
            "sealed": self.sealed,
            "footer": self.footer,
            "torn_bytes": self.torn_bytes,
        }


def segment_infos(directory: Path) -> list[SegmentInfo]:
    """Describe every segment file: size, footer and (for unsealed ones) any torn tail.

    Files are memory-mapped, so a sealed segment costs its header and footer pages only.
    """
    infos = []
    for segment_id, path in segment_files(directory):
        try:
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size == 0:
                    infos.append(SegmentInfo(segment_id, path.name, 0, None, 0, 0))
                    continue
                with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                    # slices of an mmap are bytes copies: read_header / read_footer only
                    # slice and unpack, so no buffer outlives the mapping
                    infos.append(_segment_info(segment_id, path.name, cast(bytes, mapped)))
        except FileNotFoundError:
            continue
    return infos


def _segment_info(segment_id: int, name: str, data: bytes) -> SegmentInfo:
    size = len(data)
    try:
        start = read_header(segment_id, data)
    except CorruptSegment:
        return SegmentInfo(segment_id, name, size, None, 0, size)
    footer = read_footer(segment_id, data, start)
    if footer is not None:
        magic = bytes(data[size - 4 :]).decode("ascii")
        return SegmentInfo(segment_id, name, size, magic, footer.string_table_offset, 0)
    end = start
    for _offset, length in whole_frames(data, start, size):
        end += length
    return SegmentInfo(segment_id, name, size, None, end, size - end)


def whole_frames(data: bytes, start: int, end: int) -> Iterator[tuple[int, int]]:
    """``(offset, size)`` of each whole, CRC-valid frame from ``start`` up to the first that
    is not (a torn tail, a footer, or damage), without decoding them."""
    pos = start
    while end - pos >= FRAME_HEADER.size:
        length, crc = FRAME_HEADER.unpack_from(data, pos)
        if length == 0 or length > MAX_FRAME_BYTES or pos + 8 + length > end:
            return
        if crc32(data[pos + 8 : pos + 8 + length]) != crc:
            return
        yield pos, 8 + length
        pos += 8 + length


def describe(exc: BaseException) -> str:
    """``ErrorName: message [segment N, offset M]`` for a typed store error."""
    where = []
    segment_id = getattr(exc, "segment_id", None)
    offset = getattr(exc, "offset", None)
    if isinstance(segment_id, int):
        where.append(f"segment {segment_id}")
    if isinstance(offset, int):
        where.append(f"offset {offset}")
    suffix = f" [{', '.join(where)}]" if where else ""
    return f"{type(exc).__name__}: {exc}{suffix}"
