"""SimFs: an in-memory filesystem for batpak's documented ``StoreFs`` seam that knows exactly
what a power cut keeps.

Install it with ``StoreConfig(path).with_fs(fs)``; every file batpak touches then lives here.

- **Byte truth** (the reference's SimFs): each file remembers its durable bytes, those present
  at its last honoured fsync. ``crash()`` drops everything else.
- **Namespace truth** (the reference's ShadowFs): each directory remembers its durable names,
  those present at its last ``sync_dir``. ``crash()`` reverts creates, renames and removes that
  were never dir-synced (removed names come back, renamed names go back, new names vanish).
- **Torn crashes**: ``crash(torn=random.Random(seed))`` keeps a random prefix of each file's
  unsynced tail and, per name, randomly keeps or reverts an un-dir-synced change, as a disk
  that wrote part of its cache before the power went.
- **Lying fsync**: ``SimFs(lying_fsync=1.0)`` (or ``fs.lie_about_fsync(p, seed)`` at any time)
  makes a seeded fraction ``p`` of file fsyncs return success while keeping nothing durable, as
  a disk with a volatile write cache. Directory syncs stay honest. Switching it on is all a
  "broken adapter" test needs: the crash oracle must then still see a legal prefix, but it may
  lose acknowledged commits. The environment variable ``SIMFS_LYING_FSYNC=p`` makes it the
  default of every SimFs built without an explicit ``lying_fsync`` (so a whole crash suite can
  be run against a lying disk, and its honest-disk tests must go red).
- **Faults**: ``fs.arm("write", nth=3, err=errno.EIO)`` makes the third ``write`` from now raise
  ``OSError(EIO)`` (``sticky=True``: that op and every later one of its kind fail;
  ``match="index.idemp"``: count only ops on paths containing it). Op kinds are the method
  names below plus ``read`` (any read), ``write`` and ``sync`` (a file fsync).
- **Op log**: ``fs.ops`` lists every state-changing op in order; callbacks in ``fs.on_op`` run
  after each one (under the fs lock), which is how a test takes a crash image at every op
  prefix with ``fs.crash_image()``.

A crash also ends the "process": locks are released and handles opened before it fail with
``EIO``, so the abandoned store cannot write into the recovered image.
"""

from __future__ import annotations

import errno
import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Op:
    """One state-changing filesystem operation."""

    index: int
    kind: str
    path: str
    size: int = 0
    lied: bool = False


@dataclass(slots=True)
class _Armed:
    kind: str
    match: str
    nth: int
    err: int
    sticky: bool
    seen: int = 0


class _Node:
    """A file's contents (an inode): what is visible and what is durable."""

    __slots__ = ("data", "durable")

    def __init__(self, data: bytes = b"", durable: bytes = b"") -> None:
        self.data = bytearray(data)
        self.durable = durable


def _key(path: Path | str) -> str:
    return os.path.normpath(os.fspath(path))


def _parent(key: str) -> str:
    return os.path.dirname(key)


def _missing(key: str) -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), key)


class _Handle:
    def __init__(self, fs: SimFs, key: str, node: _Node) -> None:
        self._fs = fs
        self._key = key
        self._node = node
        self._generation = fs.generation
        self._closed = False

    def _check(self) -> None:
        if self._closed or self._generation != self._fs.generation:
            raise OSError(errno.EIO, "handle from before a crash, or closed", self._key)

    def close(self) -> None:
        self._closed = True


class _SimWrite(_Handle):
    def write(self, data: bytes) -> None:
        with self._fs.lock_:
            self._check()
            self._fs.fault("write", self._key)
            self._node.data += data
            self._fs.log("write", self._key, len(data))

    def sync(self, data_only: bool = False) -> None:
        with self._fs.lock_:
            self._check()
            self._fs.fault("sync", self._key)
            lied = self._fs.lies()
            if not lied:
                self._node.durable = bytes(self._node.data)
            self._fs.log("sync", self._key, len(self._node.data), lied)


class _SimRead(_Handle):
    def pread(self, length: int, offset: int) -> bytes:
        with self._fs.lock_:
            self._check()
            self._fs.fault("read", self._key)
            return bytes(self._node.data[offset : offset + length])


class _SimLock:
    def __init__(self, fs: SimFs, key: str) -> None:
        self._fs = fs
        self._key = key
        self._generation = fs.generation

    def release(self) -> None:
        with self._fs.lock_:
            if self._generation == self._fs.generation:
                self._fs.locks.discard(self._key)


class SimFs:
    """An in-memory ``StoreFs`` with durable-byte and durable-name tracking (see module doc)."""

    def __init__(self, *, lying_fsync: float | None = None, seed: int = 0) -> None:
        if lying_fsync is None:
            lying_fsync = float(os.environ.get("SIMFS_LYING_FSYNC", "0"))
        self.lock_ = threading.RLock()
        self.names: dict[str, _Node] = {}
        self.durable_names: dict[str, _Node] = {}
        self.dirs: set[str] = {"/"}
        self.locks: set[str] = set()
        self.generation = 0
        self.ops: list[Op] = []
        self.on_op: list[Callable[[SimFs], None]] = []
        self.counts: dict[str, int] = {}
        self._armed: list[_Armed] = []
        self._lying = lying_fsync
        self._rng = random.Random(seed)

    # -- test controls ----------------------------------------------------------------------

    def lie_about_fsync(self, probability: float = 1.0, seed: int = 0) -> None:
        """From now on a seeded ``probability`` of file fsyncs keep nothing (and say OK)."""
        with self.lock_:
            self._lying = probability
            self._rng = random.Random(seed)

    def arm(
        self,
        kind: str,
        nth: int = 1,
        err: int = errno.EIO,
        *,
        sticky: bool = False,
        match: str = "",
    ) -> None:
        """Fail the ``nth`` op of ``kind`` (on a path containing ``match``) counted from now
        with ``OSError(err)``; ``sticky`` keeps failing every later one too."""
        with self.lock_:
            self._armed.append(_Armed(kind, match, nth, err, sticky))

    def disarm(self) -> None:
        with self.lock_:
            self._armed.clear()

    def crash(self, torn: random.Random | None = None) -> None:
        """Power loss: keep only durable names and durable bytes (or, with ``torn``, a random
        part of what was not yet durable). Locks and open handles die with the process."""
        with self.lock_:
            if torn is None:
                names = dict(self.durable_names)
            else:
                names = {}
                for key in sorted(self.names.keys() | self.durable_names.keys()):
                    visible, durable = self.names.get(key), self.durable_names.get(key)
                    chosen = visible if torn.random() < 0.5 else durable
                    if chosen is not None:
                        names[key] = chosen
            for node in {id(n): n for n in names.values()}.values():
                keep = node.durable
                tail = bytes(node.data[len(keep) :])
                if torn is not None and bytes(node.data[: len(keep)]) == keep and tail:
                    keep += tail[: torn.randint(0, len(tail))]
                node.data = bytearray(keep)
                node.durable = keep
            self.names = names
            self.durable_names = dict(names)
            self.locks.clear()
            self.generation += 1

    def crash_image(self, torn: random.Random | None = None) -> SimFs:
        """A copy of this filesystem as a crash right now would leave it (self is unchanged)."""
        with self.lock_:
            image = SimFs()
            copies: dict[int, _Node] = {}

            def copy(node: _Node) -> _Node:
                found = copies.get(id(node))
                if found is None:
                    found = copies[id(node)] = _Node(bytes(node.data), node.durable)
                return found

            image.names = {k: copy(n) for k, n in self.names.items()}
            image.durable_names = {k: copy(n) for k, n in self.durable_names.items()}
            image.dirs = set(self.dirs)
        image.crash(torn)
        return image

    def files(self, directory: Path | str) -> dict[str, bytes]:
        """The visible files directly in ``directory``: name -> bytes."""
        with self.lock_:
            where = _key(directory)
            return {
                os.path.basename(k): bytes(n.data)
                for k, n in self.names.items()
                if _parent(k) == where
            }

    def put(self, path: Path | str, data: bytes) -> None:
        """Write a whole file durably (name and bytes), as a test's tampering does."""
        with self.lock_:
            key = _key(path)
            self._mkdirs(_parent(key))
            node = _Node(data, bytes(data))
            self.names[key] = node
            self.durable_names[key] = node

    def materialize(self, directory: Path | str, target: Path) -> None:
        """Copy the visible files of ``directory`` into a real directory ``target``."""
        target.mkdir(parents=True, exist_ok=True)
        for name, data in self.files(directory).items():
            (target / name).write_bytes(data)

    # -- bookkeeping used by handles --------------------------------------------------------

    def fault(self, kind: str, key: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        for armed in self._armed:
            if armed.kind == kind and armed.match in key:
                armed.seen += 1
                if armed.seen == armed.nth or (armed.sticky and armed.seen > armed.nth):
                    raise OSError(armed.err, os.strerror(armed.err), key)

    def lies(self) -> bool:
        return self._lying > 0 and self._rng.random() < self._lying

    def log(self, kind: str, key: str, size: int = 0, lied: bool = False) -> None:
        self.ops.append(Op(len(self.ops), kind, key, size, lied))
        for callback in self.on_op:
            callback(self)

    def _mkdirs(self, key: str) -> None:
        while key not in self.dirs:
            self.dirs.add(key)
            key = _parent(key)

    def _node(self, path: Path | str) -> tuple[str, _Node]:
        key = _key(path)
        node = self.names.get(key)
        if node is None:
            raise _missing(key)
        return key, node

    # -- the StoreFs protocol ---------------------------------------------------------------

    def mkdir(self, path: Path) -> None:
        with self.lock_:
            key = _key(path)
            self.fault("mkdir", key)
            if key not in self.dirs:
                self._mkdirs(key)
                self.log("mkdir", key)

    def is_dir(self, path: Path) -> bool:
        with self.lock_:
            return _key(path) in self.dirs

    def exists(self, path: Path) -> bool:
        with self.lock_:
            key = _key(path)
            return key in self.names or key in self.dirs

    def listdir(self, path: Path) -> list[str]:
        with self.lock_:
            key = _key(path)
            self.fault("listdir", key)
            if key not in self.dirs:
                raise _missing(key)
            found = {os.path.basename(k) for k in self.names if _parent(k) == key}
            found |= {os.path.basename(d) for d in self.dirs if d != key and _parent(d) == key}
            return sorted(found)

    def size(self, path: Path) -> int:
        with self.lock_:
            self.fault("size", _key(path))
            return len(self._node(path)[1].data)

    def read(self, path: Path, offset: int = 0, length: int | None = None) -> bytes:
        with self.lock_:
            key, node = self._node(path)
            self.fault("read", key)
            end = len(node.data) if length is None else offset + length
            return bytes(node.data[offset:end])

    def open_read(self, path: Path) -> _SimRead:
        with self.lock_:
            key, node = self._node(path)
            self.fault("open_read", key)
            return _SimRead(self, key, node)

    def create(self, path: Path, *, exclusive: bool) -> _SimWrite:
        with self.lock_:
            key = _key(path)
            self.fault("create", key)
            if _parent(key) not in self.dirs:
                raise _missing(key)
            node = self.names.get(key)
            if node is not None and exclusive:
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), key)
            if node is None:
                node = self.names[key] = _Node()
            else:
                node.data = bytearray()  # O_TRUNC: same inode, old bytes may still be durable
            self.log("create", key)
            return _SimWrite(self, key, node)

    def replace(self, source: Path, target: Path) -> None:
        with self.lock_:
            if _key(source) in self.dirs:
                self._rename_dir(_key(source), _key(target))
                return
            key, node = self._node(source)
            self.fault("replace", key)
            del self.names[key]
            self.names[_key(target)] = node
            self.log("replace", f"{key} -> {_key(target)}")

    def _rename_dir(self, source: str, target: str) -> None:
        """Rename a directory over a missing or empty one. Directories are durable at once in
        this model, so the names inside move in both the visible and the durable tree."""
        self.fault("replace", source)
        if target in self.dirs and self.listdir(Path(target)):
            raise OSError(errno.ENOTEMPTY, os.strerror(errno.ENOTEMPTY), target)

        def moved(key: str) -> str:
            return target + key[len(source) :] if key.startswith(source + os.sep) else key

        self.names = {moved(k): n for k, n in self.names.items()}
        self.durable_names = {moved(k): n for k, n in self.durable_names.items()}
        self.dirs = {moved(d) for d in self.dirs if d != source} | {target}
        self.log("replace", f"{source} -> {target}")

    def link(self, source: Path, target: Path) -> None:
        with self.lock_:
            key, node = self._node(source)
            self.fault("link", key)
            dest = _key(target)
            if dest in self.names:
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dest)
            self.names[dest] = node
            self.log("link", f"{key} -> {dest}")

    def remove(self, path: Path) -> None:
        with self.lock_:
            key = _key(path)
            self.fault("remove", key)
            if self.names.pop(key, None) is not None:
                self.log("remove", key)

    def sync_dir(self, path: Path) -> None:
        with self.lock_:
            key = _key(path)
            self.fault("sync_dir", key)
            if key not in self.dirs:
                raise _missing(key)
            for name in [k for k in self.durable_names if _parent(k) == key]:
                del self.durable_names[name]
            for name, node in self.names.items():
                if _parent(name) == key:
                    self.durable_names[name] = node
            self.log("sync_dir", key)

    def lock(self, path: Path) -> _SimLock:
        with self.lock_:
            key = _key(path)
            self.fault("lock", key)
            if key in self.locks:
                raise BlockingIOError(errno.EWOULDBLOCK, os.strerror(errno.EWOULDBLOCK), key)
            if key not in self.names:
                if _parent(key) not in self.dirs:
                    raise _missing(key)
                self.names[key] = _Node()
                self.log("create", key)
            self.locks.add(key)
            return _SimLock(self, key)
