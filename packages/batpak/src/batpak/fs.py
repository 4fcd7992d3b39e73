"""The filesystem seam: every file batpak reads, writes, renames, syncs or locks goes through a
``StoreFs``.

``OS_FS`` is the default and calls ``os`` directly. Tests install another implementation with
``StoreConfig.with_fs`` to simulate power loss, lying fsyncs and I/O faults; the contract an
implementation must keep is in ``docs/batpak-test-seam.md``.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Protocol


class WriteFile(Protocol):
    """A file open for writing at its end."""

    def write(self, data: bytes) -> None:
        """Write all of ``data`` (no short writes)."""

    def sync(self, data_only: bool = False) -> None:
        """``fsync`` (or ``fdatasync`` when ``data_only``): the bytes written are durable."""

    def close(self) -> None: ...


class ReadFile(Protocol):
    """A file open for positional reads."""

    def pread(self, length: int, offset: int) -> bytes:
        """Up to ``length`` bytes at ``offset`` (fewer only at the end of the file)."""

    def close(self) -> None: ...


class Lock(Protocol):
    """A held directory lock."""

    def release(self) -> None: ...


class StoreFs(Protocol):
    """What batpak needs from a filesystem. Paths are absolute or relative ``Path`` objects.

    Missing files raise ``FileNotFoundError``; other failures raise ``OSError``. Names become
    durable only at ``sync_dir`` of their directory; bytes only at ``WriteFile.sync``.
    """

    def mkdir(self, path: Path) -> None:
        """Create the directory and its parents; an existing directory is fine."""

    def is_dir(self, path: Path) -> bool: ...

    def exists(self, path: Path) -> bool: ...

    def listdir(self, path: Path) -> list[str]: ...

    def size(self, path: Path) -> int: ...

    def read(self, path: Path, offset: int = 0, length: int | None = None) -> bytes:
        """The file's bytes from ``offset``: ``length`` of them, or all the rest."""

    def open_read(self, path: Path) -> ReadFile: ...

    def create(self, path: Path, *, exclusive: bool) -> WriteFile:
        """A new file: ``exclusive`` fails if the name exists, otherwise it is truncated."""

    def replace(self, source: Path, target: Path) -> None:
        """Rename ``source`` over ``target`` atomically."""

    def link(self, source: Path, target: Path) -> None:
        """A second name (hard link) for ``source``."""

    def remove(self, path: Path) -> None:
        """Unlink the name; a missing name is fine."""

    def sync_dir(self, path: Path) -> None:
        """Make the directory's names (creates, renames, removes) durable."""

    def lock(self, path: Path) -> Lock:
        """Take an exclusive lock on the file (created if missing) without blocking;
        ``BlockingIOError`` when another owner holds it."""


class _OsWriteFile:
    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def sync(self, data_only: bool = False) -> None:
        (os.fdatasync if data_only else os.fsync)(self.fd)

    def close(self) -> None:
        os.close(self.fd)


class _OsReadFile:
    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def pread(self, length: int, offset: int) -> bytes:
        return os.pread(self.fd, length, offset)

    def close(self) -> None:
        os.close(self.fd)


class _OsLock:
    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def release(self) -> None:
        os.close(self.fd)  # closing the descriptor drops the flock


class OsFs:
    """The real filesystem, through ``os`` (the default)."""

    def mkdir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)

    def is_dir(self, path: Path) -> bool:
        return path.is_dir()

    def exists(self, path: Path) -> bool:
        return path.exists()

    def listdir(self, path: Path) -> list[str]:
        return os.listdir(path)

    def size(self, path: Path) -> int:
        return os.stat(path).st_size

    def read(self, path: Path, offset: int = 0, length: int | None = None) -> bytes:
        if offset == 0 and length is None:
            return path.read_bytes()
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read() if length is None else handle.read(length)

    def open_read(self, path: Path) -> ReadFile:
        return _OsReadFile(os.open(path, os.O_RDONLY))

    def create(self, path: Path, *, exclusive: bool) -> WriteFile:
        mode = os.O_EXCL | os.O_APPEND if exclusive else os.O_TRUNC
        return _OsWriteFile(os.open(path, os.O_WRONLY | os.O_CREAT | mode, 0o644))

    def replace(self, source: Path, target: Path) -> None:
        os.replace(source, target)

    def link(self, source: Path, target: Path) -> None:
        os.link(source, target)

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def sync_dir(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def lock(self, path: Path) -> Lock:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            os.close(fd)
            raise
        return _OsLock(fd)


OS_FS: StoreFs = OsFs()
"""The process-wide real filesystem every store uses unless its config names another."""
