"""Side files: the 12-byte prefix (magic, version u16 LE, crc32 LE) and atomic replacement.

Every side file is ``magic (6 ASCII) ‖ version ‖ crc32 of the body ‖ body`` (format.md §7).
Writes go to a temporary file that is fsynced, renamed over the target, and followed by a
directory fsync, so a crash leaves either the old file or the new one.
"""

from __future__ import annotations

import struct
from pathlib import Path

from zlib_ng.zlib_ng import crc32

from batpak.errors import FutureVersion, SideFileCorrupt
from batpak.fs import OS_FS, StoreFs

PREFIX = struct.Struct("<6sHI")


def wrap(magic: bytes, version: int, body: bytes) -> bytes:
    return PREFIX.pack(magic, version, crc32(body)) + body


def unwrap(path: Path, data: bytes, magic: bytes, max_version: int) -> tuple[int, bytes]:
    """Check the prefix; return ``(version, body)``. Damage raises ``SideFileCorrupt``."""
    if len(data) < PREFIX.size:
        raise SideFileCorrupt(f"{path.name} is shorter than its prefix")
    got_magic, version, crc = PREFIX.unpack_from(data)
    if got_magic != magic:
        raise SideFileCorrupt(f"{path.name} has magic {got_magic!r}, expected {magic!r}")
    if version > max_version:
        raise FutureVersion(f"{path.name} has version {version}; this reader knows {max_version}")
    body = data[PREFIX.size :]
    if crc32(body) != crc:
        raise SideFileCorrupt(f"{path.name} fails its CRC check")
    return version, body


def fsync_dir(directory: Path, fs: StoreFs = OS_FS) -> None:
    fs.sync_dir(directory)


def write_atomic(path: Path, data: bytes, fs: StoreFs = OS_FS) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new contents."""
    tmp = path.with_name(path.name + ".tmp")
    handle = fs.create(tmp, exclusive=False)
    try:
        handle.write(data)
        handle.sync()
    finally:
        handle.close()
    fs.replace(tmp, path)
    fs.sync_dir(path.parent)
