"""Projection caches: where ``Store.project`` keeps folded state between calls.

A cache is a plain byte map. The store keys each entry by the projection's name, the entity
and the projection's ``schema_version``, so a projection whose fold changed (a new
``schema_version``) never reads state folded by an older one, and no entity reads another's.
The value records the entity's newest folded sequence next to the state: a hit is used only
while the entity has nothing newer (or, for projections that declare
``supports_incremental_apply``, it is the starting point for the events after it).

A cache is a hint, never the truth: losing it only costs a replay, so writes are not synced.
``NoCache`` is the default; ``MemoryCache`` lives with the process; ``NativeCache`` keeps one
file per entry in a directory.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Protocol

__all__ = ["MemoryCache", "NativeCache", "NoCache", "ProjectionCache", "cache_key"]


class ProjectionCache(Protocol):
    """A byte map for folded projection state."""

    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes) -> None: ...

    def delete_prefix(self, prefix: bytes) -> None: ...


def cache_key(projection: str, entity: str, schema_version: int) -> bytes:
    """``projection NUL schema_version NUL entity``: one entry per (projection, version,
    entity), and every entry of a projection version under one prefix."""
    return f"{projection}\0{schema_version}\0{entity}".encode()


class NoCache:
    """Caches nothing: every ``project`` replays."""

    def get(self, key: bytes) -> bytes | None:
        return None

    def put(self, key: bytes, value: bytes) -> None:
        pass

    def delete_prefix(self, prefix: bytes) -> None:
        pass


class MemoryCache:
    """An in-process dict (thread-safe)."""

    def __init__(self) -> None:
        self._entries: dict[bytes, bytes] = {}
        self._lock = threading.Lock()

    def get(self, key: bytes) -> bytes | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        with self._lock:
            self._entries[key] = value

    def delete_prefix(self, prefix: bytes) -> None:
        with self._lock:
            for key in [k for k in self._entries if k.startswith(prefix)]:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)


class NativeCache:
    """One file per entry under ``directory`` (named by the key's BLAKE2b digest, with the key
    stored in front of the value); written by rename, never synced."""

    def __init__(self, directory: Path) -> None:
        self._dir = Path(directory)
        self._dir.mkdir(parents=True, exist_ok=True)

    def _path(self, key: bytes) -> Path:
        return self._dir / hashlib.blake2b(key, digest_size=20).hexdigest()

    def get(self, key: bytes) -> bytes | None:
        try:
            data = self._path(key).read_bytes()
        except OSError:
            return None
        size = int.from_bytes(data[:4], "big")
        return data[4 + size :] if data[4 : 4 + size] == key else None

    def put(self, key: bytes, value: bytes) -> None:
        path = self._path(key)
        temp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        temp.write_bytes(len(key).to_bytes(4, "big") + key + value)
        os.replace(temp, path)

    def delete_prefix(self, prefix: bytes) -> None:
        for path in self._dir.iterdir():
            try:
                data = path.read_bytes()
            except OSError:
                continue
            size = int.from_bytes(data[:4], "big")
            if data[4 : 4 + size].startswith(prefix):
                path.unlink(missing_ok=True)
