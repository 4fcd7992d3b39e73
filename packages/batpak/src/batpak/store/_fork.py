"""Fork: an independent, openable copy of a live store, cheap where the bytes cannot change.

Sealed segments are never written again, so the fork shares them by hard link (a deep copy
when linking is impossible). The active segment (up to the last written byte), the
idempotency image, the cancelled-fence ranges, a pending compaction marker and ``store.meta``
are copied, so the fork keeps the source's lineage and its own copy of every idempotency key.
Caches (checkpoints, the mmap index) are left out; the fork rebuilds them. The copy is
assembled in a hidden sibling directory and renamed into place, so a failure publishes
nothing. The fork is not opened. The evidence report follows the reference's
``ForkReportBody`` (store-api §1.11): a canonical body and its BLAKE3 ``body_hash``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batpak import canonical
from batpak.errors import Configuration, Io
from batpak.fs import StoreFs
from batpak.segment import parse_segment_id
from batpak.store._authority import IDEMP_NAME, META_NAME
from batpak.store._compact import PENDING_NAME
from batpak.store._lifecycle import HIDDEN_NAME, copy_prefix

SCHEMA_VERSION = 1
_COPIED = {
    IDEMP_NAME: "copied_idempotency_store_present",
    HIDDEN_NAME: "copied_visibility_ranges_present",
    PENDING_NAME: "copied_pending_compaction_marker_present",
    META_NAME: None,  # copied (the fork keeps the lineage) but, as in the reference, unreported
}
_CACHES = ("index.ckpt", "index.fbati", "index.cols")
_STRATEGY_ORDER = {"Reflink": 0, "Hardlink": 1, "DeepCopy": 2}
_FINDING_ORDER = {
    "DestinationCleared": 0,
    "FenceTokenCancelled": 1,
    "CacheRegenerableExcluded": 2,
    "FileExcluded": 3,
    "FileCopied": 4,
}


@dataclass(frozen=True, slots=True)
class ForkReport:
    """What ``fork_with_evidence`` copied and how: ``body`` is the reference's
    ``ForkReportBody`` as plain values (canonically encodable), ``body_hash`` its BLAKE3."""

    path: Path
    body: dict[str, Any]
    body_hash: bytes

    @property
    def shared_segment_ids(self) -> tuple[int, ...]:
        return tuple(self.body["shared_segment_ids_sorted"])

    @property
    def deep_copied_segment_ids(self) -> tuple[int, ...]:
        return tuple(self.body["deep_copied_segment_ids_sorted"])

    def body_bytes(self) -> bytes:
        return canonical.encode(self.body)


def check_destination(source: Path, dest: Path, fs: StoreFs) -> None:
    """Refuse a symlink leaf, the source itself, or a destination that is not new or empty."""
    if os.path.islink(dest):
        raise Configuration(f"fork destination {dest} is a symbolic link")
    if fs.exists(dest):
        if not fs.is_dir(dest):
            raise Configuration(f"fork destination {dest} is not a directory")
        if dest.resolve() == source.resolve():
            raise Configuration(f"fork destination {dest} is the source store")
        if fs.listdir(dest):
            raise Configuration(f"fork destination {dest} is not empty")


def fork_directory(
    source: Path, dest: Path, active_id: int, active_size: int, token: int, fs: StoreFs
) -> ForkReport:
    """Copy the store files (between appends, on the writer thread) and publish ``dest``."""
    check_destination(source, dest, fs)
    names = sorted(fs.listdir(source))
    staging = dest.parent / f".{dest.name}.fork-{secrets.token_hex(6)}"
    try:
        fs.mkdir(staging)
        acc = _Copier(staging, fs)
        for name in names:
            acc.take(source / name, active_id, active_size)
        fs.sync_dir(staging)
        fs.replace(staging, dest)  # over an empty destination directory, atomically
        fs.sync_dir(dest.parent)
    except BaseException as exc:
        _discard(staging, fs)
        if isinstance(exc, OSError):
            raise Io(f"fork into {dest} failed, nothing was published: {exc}") from exc
        raise
    return acc.report(dest, token, active_id, active_size)


def _discard(staging: Path, fs: StoreFs) -> None:
    try:
        for name in fs.listdir(staging):
            fs.remove(staging / name)
        os.rmdir(staging)
    except OSError:
        pass  # best effort: the hidden staging name is never a store


class _Copier:
    def __init__(self, staging: Path, fs: StoreFs) -> None:
        self.staging = staging
        self.fs = fs
        self.shared: list[int] = []
        self.deep: list[int] = []
        self.counts = dict.fromkeys(
            ("reflink", "hardlink", "deep_copy", "cache_regenerable", "excluded"), 0
        )
        self.present = {flag: False for flag in _COPIED.values() if flag is not None}
        self.findings: list[Any] = ["FenceTokenCancelled"]

    def _copied(self, name: str, strategy: str) -> None:
        self.counts["hardlink" if strategy == "Hardlink" else "deep_copy"] += 1
        self.findings.append({"FileCopied": {"file_name": name, "strategy": strategy}})

    def take(self, path: Path, active_id: int, active_size: int) -> None:
        name = path.name
        target = self.staging / name
        segment_id = parse_segment_id(name)
        fs = self.fs
        if segment_id is not None and not fs.is_dir(path):
            if segment_id == active_id:
                copy_prefix(path, target, active_size, fs)
                self.deep.append(segment_id)
                self._copied(name, "DeepCopy")
                return
            try:
                fs.link(path, target)
            except OSError:
                copy_prefix(path, target, None, fs)
                self.deep.append(segment_id)
                self._copied(name, "DeepCopy")
            else:
                self.shared.append(segment_id)
                self._copied(name, "Hardlink")
            return
        if name in _COPIED and not fs.is_dir(path):
            copy_prefix(path, target, None, fs)
            flag = _COPIED[name]
            if flag is not None:
                self.present[flag] = True
            self._copied(name, "DeepCopy")
        elif name in _CACHES:
            self.counts["cache_regenerable"] += 1
            self.findings.append({"CacheRegenerableExcluded": {"file_name": name}})
        else:
            self.counts["excluded"] += 1
            reason = "not part of the share-safe fork substrate"
            self.findings.append({"FileExcluded": {"file_name": name, "reason": reason}})

    def report(self, dest: Path, token: int, active_id: int, active_size: int) -> ForkReport:
        core: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "fence_token": {"token": token},
            "source_watermark": {"segment_id": active_id, "offset": active_size},
            "active_segment_id": active_id,
            "shared_segment_ids_sorted": sorted(self.shared),
            "deep_copied_segment_ids_sorted": sorted(self.deep),
            "strategy_counts": self.counts,
            "copied_visibility_ranges_present": self.present["copied_visibility_ranges_present"],
            "copied_pending_compaction_marker_present": self.present[
                "copied_pending_compaction_marker_present"
            ],
            "copied_idempotency_store_present": self.present["copied_idempotency_store_present"],
            "destination_path_digest": canonical.byte_array(canonical.digest(os.fsencode(dest))),
        }
        fork_id = canonical.byte_array(canonical.digest(canonical.encode(core)))
        body = {"schema_version": SCHEMA_VERSION, "fork_id": fork_id}
        body.update({k: v for k, v in core.items() if k != "schema_version"})
        body["findings"] = sorted(self.findings, key=_finding_key)
        return ForkReport(dest, body, canonical.digest(canonical.encode(body)))


def _finding_key(finding: Any) -> tuple[Any, ...]:
    """The reference's derived ``Ord`` on ``ForkFinding``: variant order, then fields."""
    if isinstance(finding, str):
        return (_FINDING_ORDER[finding],)
    (variant, fields), *_ = finding.items()
    values = [
        _STRATEGY_ORDER[value] if key == "strategy" else value for key, value in fields.items()
    ]
    return (_FINDING_ORDER[variant], *values)
