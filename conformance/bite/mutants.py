"""The planted bugs: one function per variant, each monkeypatching the implementation.

``plant(name)`` raises ``NotPlanted`` when the code it patches is not there (the variant
would silently test nothing); ``plant(name, strict=False)`` (child processes) skips what a
child cannot import.
"""

from __future__ import annotations

import contextlib
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


def _patch_reads(cls: Any, get_block: Any) -> None:
    """Plant a read-path bug: ``get_block`` replaced, and the event-loop fast path
    (``get_block_nowait``) always declining, so every read reaches the planted code."""
    cls.get_block = get_block
    cls.get_block_nowait = lambda self, *args, **kwargs: None


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
                other = _tenant_admin(self, info.name, foreign)
                try:
                    return original(self, other, key, **kwargs)
                except NotFound:
                    continue
            raise

    _patch_reads(BatenBase, get_block)


def _tenant_admin(service: Any, tenant: str, cache: dict[tuple[int, str], Any]) -> Any:
    """A caller with the admin role in `tenant`, minted through the facade (cached)."""
    caller = cache.get((id(service), tenant))
    if caller is None:
        issued = service.issue_token(tenant, "bite", "admin")
        caller = cache[(id(service), tenant)] = service.authenticate(issued.token)
    return caller


def invisible_forbidden() -> None:
    from batenbase.errors import Forbidden, NotFound  # noqa: PLC0415
    from batenbase.service import BatenBase  # noqa: PLC0415

    original = BatenBase.get_block
    admins: dict[tuple[int, str], Any] = {}

    def get_block(self: Any, caller: Any, key: str, **kwargs: Any) -> Any:
        try:
            return original(self, caller, key, **kwargs)
        except NotFound:
            admin = _tenant_admin(self, caller.tenant, admins)
            try:
                original(self, admin, key)
            except NotFound:
                raise
            raise Forbidden("you may not see this block") from None

    _patch_reads(BatenBase, get_block)


def redaction_ignored() -> None:
    from batenbase.errors import NotFound  # noqa: PLC0415
    from batenbase.service import BatenBase  # noqa: PLC0415

    original = BatenBase.get_block
    admins: dict[tuple[int, str], Any] = {}

    def get_block(self: Any, caller: Any, key: str, **kwargs: Any) -> Any:
        try:
            return original(self, caller, key, **kwargs)
        except NotFound:
            admin = _tenant_admin(self, caller.tenant, admins)
            block = original(self, admin, key, include_redacted=True)
            if block.h == 1 and (block.v == 1 or block.v in caller.scopes):
                return block
            raise

    _patch_reads(BatenBase, get_block)


def quota_ignored() -> None:
    from batenbase.errors import QuotaExceeded  # noqa: PLC0415
    from batenbase.service import BatenBase  # noqa: PLC0415

    original = BatenBase.put_block

    def put_block(self: Any, caller: Any, key: str, data: Any, **kwargs: Any) -> Any:
        try:
            return original(self, caller, key, data, **kwargs)
        except QuotaExceeded:
            self.set_plan(caller.tenant, "unlimited")
            try:
                return original(self, caller, key, data, **kwargs)
            finally:
                self.set_plan(caller.tenant, "free")

    BatenBase.put_block = put_block  # type: ignore[method-assign]


def ack_before_durable() -> None:
    import threading  # noqa: PLC0415
    import time  # noqa: PLC0415

    from batenbase.model import Block  # noqa: PLC0415
    from batenbase.service import BatenBase  # noqa: PLC0415

    original = BatenBase.put_block

    def put_block(self: Any, caller: Any, key: str, data: Any, **kwargs: Any) -> Any:
        def later() -> None:
            time.sleep(0.2)
            with contextlib.suppress(Exception):  # the answer has already gone out
                original(self, caller, key, data, **kwargs)

        threading.Thread(target=later, daemon=True).start()
        now = int(time.time())
        v = kwargs.get("v")
        return Block(key, now, now, 1 if v is None else v, 0, data, 1, 0, "", "")

    BatenBase.put_block = put_block  # type: ignore[method-assign]


PLANTERS: dict[str, Callable[[], None]] = {
    "lying-fsync": lying_fsync,
    "no-chain-check": no_chain_check,
    "duplicate-idempotency-key": duplicate_idempotency_key,
    "cross-tenant-read": cross_tenant_read,
    "invisible-forbidden": invisible_forbidden,
    "redaction-ignored": redaction_ignored,
    "quota-ignored": quota_ignored,
    "ack-before-durable": ack_before_durable,
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
