"""Authority side files: ``store.meta`` (lineage, idempotency and compaction commits) and the
durable idempotency image ``index.idemp`` (format.md §7.5).

``store.meta`` is minted at the first writable open and never re-minted. The idempotency image
is published at close and by compaction in three atomic steps (meta names a pending image,
the image is written, meta promotes it), so a crash leaves either image admissible.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TypeAlias, cast

import msgspec

from batpak import canonical
from batpak.errors import FailClosedError, FutureVersion, SideFileCorrupt, StoreMetadataCorrupt
from batpak.fs import OS_FS, StoreFs
from batpak.ids import uuid7
from batpak.kinds import is_reserved
from batpak.sidefile import unwrap, wrap, write_atomic
from batpak.store._entry import IndexEntry

META_NAME = "store.meta"
META_MAGIC = b"FBATSM"
META_VERSION = 1
IDEMP_NAME = "index.idemp"
IDEMP_MAGIC = b"FBATID"
IDEMP_VERSION = 2


class IdempotencyAuthorityError(FailClosedError):
    """``index.idemp`` is missing, corrupt, stale or foreign relative to ``store.meta``."""


class Anchor(msgspec.Struct):
    covered_global_sequence: int
    event_id_at: bytes
    chain_commitment: list[int]


class IdempAuthority(msgspec.Struct):
    current_image_id: bytes | None
    pending_image_id: bytes | None
    anchor: Anchor


class CompactionCommit(msgspec.Struct):
    compaction_id: bytes
    authority_image_id: bytes
    merged_segment_id: int
    source_segment_ids: list[int]


class StoreMeta(msgspec.Struct):
    lineage: bytes
    idemp_authority: IdempAuthority | None
    last_compaction_commit: CompactionCommit | None

    @property
    def lineage_id(self) -> int:
        return int.from_bytes(self.lineage, "big")


class IdempEntry(msgspec.Struct):
    """One recorded idempotency key and enough of its event to rebuild the receipt."""

    key: bytes
    event_id: bytes
    global_sequence: int
    disk_pos_segment: int
    disk_pos_offset: int
    disk_pos_length: int
    content_hash: list[int]
    prev_hash: list[int]
    entity: str
    scope: str
    kind: int
    recorded_global_sequence: int
    event_evicted: bool = False
    receipt_extensions: dict[str, list[int]] = msgspec.field(default_factory=dict)


KeyRecords: TypeAlias = dict[int, "IdempEntry | IndexEntry"]
"""Idempotency keys and their events. Keys written since the store opened hold the event's
``IndexEntry`` (cheap on the append path) until an image is published or compaction needs
the records: :func:`settled` turns them into ``IdempEntry`` then, in place."""


def settled(keys: KeyRecords) -> dict[int, IdempEntry]:
    """``keys`` with every value an ``IdempEntry`` (converted in place; writer thread only)."""
    for key, record in keys.items():
        if isinstance(record, IndexEntry):
            keys[key] = idemp_entry(record)
    return cast(dict[int, IdempEntry], keys)


def sorted_keys(extensions: Mapping[str, bytes]) -> list[str]:
    """Extension keys in Rust ``BTreeMap<String, _>`` order: bytewise."""
    return sorted(extensions, key=str.encode) if extensions else []


def idemp_entry(entry: IndexEntry) -> IdempEntry:
    """The durable idempotency record of a keyed event."""
    extensions = entry.receipt_extensions or {}
    return IdempEntry(
        key=entry.event_id.to_bytes(16, "big"),
        event_id=entry.event_id.to_bytes(16, "big"),
        global_sequence=entry.global_sequence,
        disk_pos_segment=entry.segment_id,
        disk_pos_offset=entry.offset,
        disk_pos_length=entry.length,
        content_hash=list(entry.event_hash),
        prev_hash=list(entry.prev_hash),
        entity=entry.entity,
        scope=entry.scope,
        kind=entry.event_kind,
        recorded_global_sequence=entry.global_sequence,
        receipt_extensions={k: list(extensions[k]) for k in sorted_keys(extensions)},
    )


class IdempImage(msgspec.Struct):
    """The v2 image. Older v2 writers omitted the id fields; decoding accepts every shape."""

    lineage: bytes
    image_id: bytes | None = None
    previous_image_id: bytes | None = None
    compaction_id: bytes | None = None
    anchor: Anchor | None = None
    entries: list[IdempEntry] = msgspec.field(default_factory=list)


def read_meta(directory: Path, fs: StoreFs = OS_FS) -> StoreMeta | None:
    path = directory / META_NAME
    try:
        data = fs.read(path)
    except FileNotFoundError:
        return None
    _, body = unwrap(path, data, META_MAGIC, META_VERSION)
    try:
        meta = msgspec.msgpack.decode(body, type=StoreMeta)
    except (ValueError, RecursionError) as exc:  # msgspec.DecodeError, bad UTF-8
        raise StoreMetadataCorrupt(f"store.meta does not decode: {exc}") from exc
    if len(meta.lineage) != 16:
        raise StoreMetadataCorrupt("store.meta lineage is not 16 bytes")
    return meta


def write_meta(directory: Path, meta: StoreMeta, fs: StoreFs = OS_FS) -> None:
    data = wrap(META_MAGIC, META_VERSION, canonical.encode(meta))
    write_atomic(directory / META_NAME, data, fs)


def load_or_mint_meta(
    directory: Path, writable: bool, clock_us: int, fs: StoreFs = OS_FS
) -> StoreMeta | None:
    """The store's metadata; a writable open of a store without any mints it."""
    meta = read_meta(directory, fs)
    if meta is not None:
        return meta
    if _idemp_version(directory, fs) >= 2:
        raise StoreMetadataCorrupt(
            "store.meta is missing but index.idemp v2 needs it; refusing to re-mint"
        )
    if not writable:
        return None
    meta = StoreMeta(uuid7(clock_us).to_bytes(16, "big"), None, None)
    write_meta(directory, meta, fs)
    return meta


def _idemp_version(directory: Path, fs: StoreFs) -> int:
    try:
        head = fs.read(directory / IDEMP_NAME, 0, 8)
    except FileNotFoundError:
        return 0
    return int.from_bytes(head[6:8], "little") if len(head) == 8 else 0


def load_idempotency(directory: Path, meta: StoreMeta | None, fs: StoreFs = OS_FS) -> KeyRecords:
    """Admit ``index.idemp`` against ``store.meta``'s expectation, or refuse with a typed error."""
    path = directory / IDEMP_NAME
    expected = meta.idemp_authority if meta is not None else None
    try:
        data = fs.read(path)
    except FileNotFoundError:
        if expected is not None and expected.current_image_id is not None:
            raise IdempotencyAuthorityError(
                "index.idemp is missing but store.meta expects it"
            ) from None
        return {}
    try:
        version, body = unwrap(path, data, IDEMP_MAGIC, IDEMP_VERSION)
    except SideFileCorrupt as exc:
        raise IdempotencyAuthorityError(f"index.idemp is corrupt: {exc}") from exc
    except FutureVersion:
        raise
    try:
        if version == 1:
            if expected is not None:
                raise IdempotencyAuthorityError("index.idemp v1 is stale against store.meta")
            entries = msgspec.msgpack.decode(body, type=list[IdempEntry])
        elif version == IDEMP_VERSION:
            image = msgspec.msgpack.decode(body, type=IdempImage)
            if meta is not None and image.lineage != meta.lineage:
                raise IdempotencyAuthorityError("index.idemp belongs to another store lineage")
            if expected is None:
                return {}  # no expectation: an unauthorized image is ignored, as the reference
            if image.image_id not in (expected.current_image_id, expected.pending_image_id):
                covered = image.anchor.covered_global_sequence if image.anchor else 0
                state = "stale" if covered < expected.anchor.covered_global_sequence else "foreign"
                raise IdempotencyAuthorityError(f"index.idemp is {state} against store.meta")
            entries = image.entries
        else:
            raise IdempotencyAuthorityError(f"index.idemp has unknown version {version}")
    except (ValueError, RecursionError) as exc:  # msgspec.DecodeError, bad UTF-8
        raise IdempotencyAuthorityError(f"index.idemp does not decode: {exc}") from exc
    return {int.from_bytes(e.key, "big"): e for e in entries}


def publish_idempotency(
    directory: Path,
    meta: StoreMeta,
    records: KeyRecords,
    clock_us: int,
    commit: CompactionCommit | None = None,
    fs: StoreFs = OS_FS,
) -> StoreMeta:
    """Publish the image (and a compaction commit) atomically; return the new store.meta."""
    entries = settled(records)
    user = [e for e in entries.values() if not is_reserved(e.kind)]
    path = directory / IDEMP_NAME
    if not user:
        if commit is not None or meta.idemp_authority is not None:
            if commit is not None:
                commit.authority_image_id = uuid7(clock_us).to_bytes(16, "big")
            meta = StoreMeta(meta.lineage, None, commit or meta.last_compaction_commit)
            write_meta(directory, meta, fs)
        fs.remove(path)
        return meta
    top = max(user, key=lambda e: e.recorded_global_sequence)
    anchor = Anchor(top.recorded_global_sequence, top.event_id, top.content_hash)
    pending = uuid7(clock_us).to_bytes(16, "big")
    current = meta.idemp_authority.current_image_id if meta.idemp_authority else None
    write_meta(
        directory,
        StoreMeta(
            meta.lineage, IdempAuthority(current, pending, anchor), meta.last_compaction_commit
        ),
        fs,
    )
    image = IdempImage(
        meta.lineage,
        pending,
        current,
        commit.compaction_id if commit else None,
        anchor,
        list(entries.values()),
    )
    write_atomic(path, wrap(IDEMP_MAGIC, IDEMP_VERSION, canonical.encode(image)), fs)
    if commit is not None:
        commit.authority_image_id = pending
    final = StoreMeta(
        meta.lineage,
        IdempAuthority(pending, None, anchor),
        commit or meta.last_compaction_commit,
    )
    write_meta(directory, final, fs)
    return final
