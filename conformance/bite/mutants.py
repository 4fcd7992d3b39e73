"""The planted bugs: one function per variant, each monkeypatching the implementation.

``plant(name)`` raises ``NotPlanted`` when the code it patches is not there (the variant
would silently test nothing); ``plant(name, strict=False)`` (child processes) skips what a
child cannot import.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

_planted: set[str] = set()


class NotPlanted(RuntimeError):
    """The variant's target is missing: the mutant cannot be planted."""


def _no_sync(*args: Any, **kwargs: Any) -> None:
    return None


class _LyingFile:
    """A WriteFile whose sync does nothing."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def sync(self, data_only: bool = False) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _LyingFs:
    """A StoreFs that forwards everything except durability: syncs are dropped."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def create(self, path: Any, *, exclusive: bool) -> _LyingFile:
        return _LyingFile(self._inner.create(path, exclusive=exclusive))

    def sync_dir(self, path: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def lying_fsync() -> None:
    os.fsync = _no_sync
    os.fdatasync = _no_sync
    from batpak import StoreConfig  # noqa: PLC0415

    if not hasattr(StoreConfig, "with_fs"):
        return  # no fs seam: the os-level lie is all there is
    original: Callable[..., None] | None = getattr(StoreConfig, "__post_init__", None)

    def post_init(self: Any) -> None:
        if original is not None:
            original(self)
        if not isinstance(self.fs, _LyingFs):
            object.__setattr__(self, "fs", _LyingFs(self.fs))

    StoreConfig.__post_init__ = post_init  # type: ignore[method-assign]


def no_chain_check() -> None:
    from batpak import Store  # noqa: PLC0415

    original = Store.verify_chain

    def verify_chain(self: Any) -> Any:
        report = original(self)
        return type(report)(report.events_checked, (), ())

    Store.verify_chain = verify_chain  # type: ignore[method-assign]


def duplicate_idempotency_key() -> None:
    from batpak.store import _writer  # noqa: PLC0415 - a mutant reaches inside on purpose

    writer = getattr(_writer, "Writer", None)
    if writer is None or not hasattr(writer, "_replay"):
        raise NotPlanted("batpak.store._writer.Writer._replay is gone")

    def _replay(self: Any, key: int) -> None:
        return None  # never recognise a retry: append again

    writer._replay = _replay


def cross_tenant_read() -> None:
    from batenbase.errors import NotFound  # noqa: PLC0415
    from batenbase.service import BatenBase  # noqa: PLC0415

    original = BatenBase.get_block
    foreign: dict[tuple[int, str], Any] = {}

    def get_block(self: Any, caller: Any, key: str, **kwargs: Any) -> Any:
        try:
            return original(self, caller, key, **kwargs)
        except NotFound:
            for info in self.list_tenants():
                if info.name == caller.tenant:
                    continue
                other = foreign.get((id(self), info.name))
                if other is None:
                    issued = self.issue_token(info.name, "bite", "admin")
                    other = foreign[(id(self), info.name)] = self.authenticate(issued.token)
                try:
                    return original(self, other, key, **kwargs)
                except NotFound:
                    continue
            raise

    BatenBase.get_block = get_block  # type: ignore[method-assign]


PLANTERS: dict[str, Callable[[], None]] = {
    "lying-fsync": lying_fsync,
    "no-chain-check": no_chain_check,
    "duplicate-idempotency-key": duplicate_idempotency_key,
    "cross-tenant-read": cross_tenant_read,
}


def plant(name: str, *, strict: bool = True) -> None:
    """Plant the named variant's bug in this process (once)."""
    if name in _planted:
        return
    try:
        PLANTERS[name]()
    except ImportError:
        if strict:
            raise
        return
    _planted.add(name)
